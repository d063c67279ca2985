package service_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
)

// TestCheckKeyring: a keyring passes only when it opens what the store
// holds sealed; no keyring passes only for a store that holds nothing
// sealed (the one case in which a new key may be made).
func TestCheckKeyring(t *testing.T) {
	e := newEnv(t)
	right, err := secrets.NewKeyring("k1", []byte("test master key, 32 bytes long!!"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := secrets.GenerateKeyring(nil)
	sameID, _ := secrets.NewKeyring("k1", []byte("another key that is 32 bytes...."))
	rotated, _ := secrets.NewKeyring("k1", []byte("test master key, 32 bytes long!!"))
	if _, err := rotated.Rotate(); err != nil {
		t.Fatal(err)
	}

	e.identity("alice") // a password: nothing sealed
	for name, k := range map[string]*secrets.Keyring{"no key": nil, "another key": other, "the key": right} {
		if err := service.CheckKeyring(e.ctx, e.st, k); err != nil {
			t.Fatalf("nothing sealed, %s: %v", name, err)
		}
	}

	if _, err := e.addCode("alice", support, codeDevice("KV-1")); err != nil { // an OTP secret
		t.Fatal(err)
	}
	e.importCode(codeDevice("KV-2"), codeDevice("KV-3")) // two imports waiting
	tests := []struct {
		name         string
		keys         *secrets.Keyring
		missing, bad int
		want         []string
	}{
		{"no key", nil, 1, 0, []string{"3 sealed secrets", "3 are sealed under key k1", "no master key"}},
		{"another key", other, 1, 0, []string{"3 are sealed under key k1, which the keyring does not hold", "the keyring holds " + other.Current()}},
		{"same ID, another key", sameID, 0, 1, []string{"do not open with it"}},
		{"the key", right, 0, 0, nil},
		{"the key and a newer one", rotated, 0, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := service.CheckKeyring(e.ctx, e.st, tt.keys)
			if tt.missing+tt.bad == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var mk *service.MasterKeyError
			if !errors.Is(err, service.ErrMasterKey) || !errors.As(err, &mk) {
				t.Fatalf("CheckKeyring = %v, want a *MasterKeyError", err)
			}
			if mk.Sealed != 3 || len(mk.Missing) != tt.missing || len(mk.Wrong) != tt.bad {
				t.Fatalf("%+v", mk)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
}

package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// TestWipeLeavesNoCopy writes secret material through the store, wipes it
// with permanent blocks (and replaces or consumes some of it), and checks
// that neither the database file nor its -wal file holds a copy afterwards
// (secure_delete plus the checkpoint after each wipe).
func TestWipeLeavesNoCopy(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wipe.db")
	s := open(t, path)
	defer s.Close()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p := domain.DefaultPolicy()
	sys := domain.System("test")

	secret := func(name string, n int) []byte {
		b := []byte("SEALED-" + name + "-")
		for len(b) < n {
			b = append(b, fmt.Sprintf("%s%04d", name, len(b))...)
		}
		return b[:n]
	}
	var (
		imported = secret("IMPORT", 64)
		otpOld   = secret("OTPOLD", 64)
		otpNew   = secret("OTPNEW", 64)
		chipKey  = secret("CHIPKEY", 77)
		appKey   = secret("APPKEY", 65)
		pin      = secret("PIN", 97)
		password = secret("PASSWORD", 6000) // larger than a page: overflow pages
	)
	all := map[string][]byte{"import": imported, "old OTP secret": otpOld, "new OTP secret": otpNew,
		"chip key": chipKey, "app key": appKey, "PIN verifier": pin, "password verifier": password}

	ic, err := domain.NewIdentity("id-1", sys, now)
	must(t, err)
	must(t, s.CreateIdentity(ctx, ic))
	id := ic.Identity
	must(t, s.PutImport(ctx, store.Import{Serial: "KV-1", Secret: store.Sealed{KeyID: "k1", Blob: imported}}))

	params := store.OTPParams{Digits: 6, Period: 30 * time.Second, Algorithm: otp.SHA1}
	adds := []struct {
		id   string
		kind device.Kind
		ref  domain.Ref
		el   store.Element
	}{
		{"kv-1", device.KindCodeDisplay, domain.Ref{Serial: "KV-1"}, store.Element{Code: &store.CodeElement{Secret: store.Sealed{KeyID: "k1", Blob: otpOld}, OTPParams: params}}},
		{"chip-1", device.KindChip, domain.Ref{CredentialID: "cred-1"}, store.Element{Chip: &store.ChipElement{PublicKey: chipKey}}},
		{"app-1", device.KindApp, domain.Ref{CredentialID: "appkey-1"}, store.Element{App: &store.AppElement{PublicKey: appKey, PINVerifier: string(pin)}}},
		{"pw-1", device.KindPassword, domain.Ref{}, store.Element{Password: &store.PasswordElement{Verifier: string(password)}}},
	}
	var auths []domain.Authenticator
	for _, a := range adds {
		existing, err := s.ListAuthenticators(ctx, id.ID)
		must(t, err)
		c, err := p.Add(id, existing, nil, domain.AddRequest{ID: a.id, Kind: a.kind, Ref: a.ref}, sys, now)
		must(t, err)
		must(t, s.CreateAuthenticator(ctx, c, a.el))
		c, err = p.Activate(id, c.Authenticator, sys, now)
		must(t, err)
		must(t, s.ApplyChange(ctx, c))
		auths = append(auths, c.Authenticator)
	}
	must(t, s.UpdateSecret(ctx, "kv-1", store.Sealed{KeyID: "k1", Blob: otpOld}, store.Sealed{KeyID: "k2", Blob: otpNew}))

	// Before the blocks, the live secrets are in the database file (so the
	// check below is not vacuous); the consumed and replaced ones are not.
	must(t, s.Checkpoint(ctx))
	files := readDB(t, path)
	for name, b := range all {
		live := name != "import" && name != "old OTP secret"
		if got := bytes.Contains(files, b[:min(len(b), 200)]); got != live {
			t.Errorf("before the blocks: %s in the files = %v, want %v", name, got, live)
		}
	}

	for _, a := range auths {
		c, err := p.Block(a, domain.Support("op-1"), domain.ReasonCompromised, now)
		must(t, err)
		must(t, s.ApplyChange(ctx, c))
	}
	// The store checkpointed after each wipe by itself.
	files = readDB(t, path)
	for name, b := range all {
		// Not even a fragment: an overflowing value is split over pages.
		for off := 0; off+32 <= len(b); off += 32 {
			if i := bytes.Index(files, b[off:off+32]); i >= 0 {
				t.Errorf("after the blocks: bytes %d.. of the %s are still in the database files (at %d)", off, name, i)
				break
			}
		}
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("the -wal file has %d bytes after the checkpoint, want 0", fi.Size())
	}
	must(t, s.Close())
	files = readDB(t, path)
	for name, b := range all {
		if bytes.Contains(files, b[:32]) {
			t.Errorf("after Close: the %s is in the database files", name)
		}
	}
}

// readDB returns the database file and its -wal file (if any), concatenated.
func readDB(t *testing.T, path string) []byte {
	t.Helper()
	var out []byte
	for _, p := range []string{path, path + "-wal", path + "-journal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

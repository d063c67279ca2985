package secrets

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestMACVector pins the derivation (HKDF-SHA256 of RFC 5869 without salt,
// then HMAC-SHA256), computed independently with Python's hmac module:
//
//	prk = HMAC(32 zero bytes, master key)
//	key = HMAC(prk, "authbench/secrets mac key\x00audit checkpoint" | 0x01)
//	mac = HMAC(key, "checkpoint 1")
func TestMACVector(t *testing.T) {
	k := newTestKeyring(t)
	key, err := k.MACKey("k1", "audit checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex(t, "1f1415185683f152abd054b66eabc315d0c24f7b99eb507514775801737a2b60"); !bytes.Equal(key, want) {
		t.Fatalf("MACKey = %x, want %x", key, want)
	}
	mac, err := k.MAC("k1", "audit checkpoint", []byte("checkpoint 1"))
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex(t, "1e049a69b221b9c50d4dd502138904b1131082600b94a3221dcde012be344c97"); !bytes.Equal(mac, want) {
		t.Fatalf("MAC = %x, want %x", mac, want)
	}
	if err := k.CheckMAC("k1", "audit checkpoint", []byte("checkpoint 1"), mac); err != nil {
		t.Fatalf("CheckMAC: %v", err)
	}
}

func TestCheckMACRefuses(t *testing.T) {
	k := newTestKeyring(t)
	msg := []byte("checkpoint 7")
	mac, err := k.MAC("k1", "audit checkpoint", msg)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewKeyring("k1", testKey(9)) // another key under the same ID
	flipped := bytes.Clone(mac)
	flipped[31] ^= 1
	for _, tc := range []struct {
		name    string
		k       *Keyring
		id      string
		purpose string
		msg     []byte
		mac     []byte
		want    error
	}{
		{"message altered", k, "k1", "audit checkpoint", []byte("checkpoint 8"), mac, ErrMAC},
		{"MAC altered", k, "k1", "audit checkpoint", msg, flipped, ErrMAC},
		{"MAC truncated", k, "k1", "audit checkpoint", msg, mac[:16], ErrMAC},
		{"no MAC", k, "k1", "audit checkpoint", msg, nil, ErrMAC},
		{"other purpose", k, "k1", "session", msg, mac, ErrMAC},
		{"other key, same ID", other, "k1", "audit checkpoint", msg, mac, ErrMAC},
		{"unknown key", k, "k2", "audit checkpoint", msg, mac, ErrUnknownKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.k.CheckMAC(tc.id, tc.purpose, tc.msg, tc.mac); !errors.Is(err, tc.want) {
				t.Fatalf("CheckMAC = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestMACAfterRotation: a MAC made under an old key still checks while
// that key is in the keyring, and names the key it needs.
func TestMACAfterRotation(t *testing.T) {
	k := newTestKeyring(t)
	mac, _ := k.MAC("k1", "audit checkpoint", []byte("m"))
	if _, err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	if err := k.CheckMAC("k1", "audit checkpoint", []byte("m"), mac); err != nil {
		t.Fatalf("CheckMAC after rotation: %v", err)
	}
	newMAC, _ := k.MAC(k.Current(), "audit checkpoint", []byte("m"))
	if bytes.Equal(newMAC, mac) {
		t.Fatal("the new key makes the same MAC")
	}
	if err := k.RemoveKey("k1"); err != nil {
		t.Fatal(err)
	}
	err := k.CheckMAC("k1", "audit checkpoint", []byte("m"), mac)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("CheckMAC after removing the key = %v", err)
	}
}

package app

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"testing"
)

func TestDeterministic(t *testing.T) {
	a, err := New(Options{Seed: []byte("seed 1")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Seed: []byte("seed 1")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Seed: []byte("seed 2")})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.PublicKeyDER(), b.PublicKeyDER()) || a.PIN() != b.PIN() {
		t.Error("the same seed gave two different apps")
	}
	if bytes.Equal(a.PublicKeyDER(), c.PublicKeyDER()) {
		t.Error("two seeds gave the same key")
	}
	if !validPIN(a.PIN()) {
		t.Errorf("derived PIN %q is not six digits", a.PIN())
	}
	r1, _ := New(Options{})
	r2, _ := New(Options{})
	if bytes.Equal(r1.PublicKeyDER(), r2.PublicKeyDER()) {
		t.Error("two random apps share a key")
	}
}

func TestSignVerifies(t *testing.T) {
	a, err := New(Options{Seed: []byte{0}, PIN: "123456"})
	if err != nil {
		t.Fatal(err)
	}
	if a.PIN() != "123456" {
		t.Errorf("PIN %q", a.PIN())
	}
	pub, err := x509.ParsePKIXPublicKey(a.PublicKeyDER())
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve.Params().Name != "P-256" {
		t.Fatalf("public key %T is not P-256", pub)
	}
	if !ec.Equal(a.PublicKey()) {
		t.Error("PublicKeyDER and PublicKey differ")
	}
	challenge := []byte("server challenge")
	sig, err := a.Sign(challenge)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(challenge)
	if !ecdsa.VerifyASN1(ec, h[:], sig) {
		t.Error("signature does not verify over SHA-256(challenge)")
	}
	if ecdsa.VerifyASN1(ec, challenge, sig) {
		t.Error("signature verifies over the raw challenge")
	}
	if _, err := a.Sign(nil); err == nil {
		t.Error("empty challenge signed")
	}
	// PublicKeyDER returns a copy.
	a.PublicKeyDER()[0] ^= 1
	if _, err := x509.ParsePKIXPublicKey(a.PublicKeyDER()); err != nil {
		t.Error("PublicKeyDER shares memory with the app")
	}
}

func TestInvalidPIN(t *testing.T) {
	for _, pin := range []string{"12345", "1234567", "12345a", "12 456", "１２３４５６"} {
		if _, err := New(Options{Seed: []byte{1}, PIN: pin}); !errors.Is(err, ErrInvalidPIN) {
			t.Errorf("PIN %q: err %v, want ErrInvalidPIN", pin, err)
		}
	}
}

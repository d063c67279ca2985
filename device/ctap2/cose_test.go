package ctap2

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

func TestEncodeES256PublicKey(t *testing.T) {
	k := testKey(t, vecCredLabel)
	b := EncodeES256PublicKey(&k.PublicKey)
	raw, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	// {1: 2, 3: -7, -1: 1, -2: x, -3: y} in canonical order (RFC 9053 §7.1.1).
	want := cat(mustHex(t, "a5 0102 0326 2001 215820"), raw[1:33], mustHex(t, "225820"), raw[33:])
	if !bytes.Equal(b, want) {
		t.Fatalf("EncodeES256PublicKey =\n %x\nwant\n %x", b, want)
	}
	pub, err := ParsePublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.(*ecdsa.PublicKey).Equal(&k.PublicKey) {
		t.Fatal("parsed key differs")
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if EncodeES256PublicKey(&p384.PublicKey) != nil || EncodeES256PublicKey(nil) != nil {
		t.Fatal("non-P-256 key encoded")
	}
	if _, err := EncodePublicKey(&p384.PublicKey); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Fatalf("P-384: %v", err)
	}
	if _, err := EncodePublicKey("key"); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Fatalf("string key: %v", err)
	}
}

func TestEd25519Key(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncodePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := cat(mustHex(t, "a4 0101 0327 2006 215820"), pub); !bytes.Equal(b, want) {
		t.Fatalf("EdDSA key %x, want %x", b, want)
	}
	authData := adHeader(FlagUP, 1)
	cdh := sha256.Sum256([]byte("client data"))
	sig := ed25519.Sign(priv, cat(authData, cdh[:]))
	if err := VerifyAssertion(b, authData, cdh[:], sig); err != nil {
		t.Fatal(err)
	}
	sig[0] ^= 1
	if err := VerifyAssertion(b, authData, cdh[:], sig); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("bad signature: %v", err)
	}
}

func TestParsePublicKeyErrors(t *testing.T) {
	x := strings.Repeat("11", 32)
	k := testKey(t, vecCredLabel)
	raw, _ := k.PublicKey.Bytes()
	gx, gy := hexOf(raw[1:33]), hexOf(raw[33:])
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"valid", "a5 0102 0326 2001 215820" + gx + " 225820" + gy, nil},
		{"extra label ignored", "a6 0102 0242abcd 0326 2001 215820" + gx + " 225820" + gy, nil},
		{"point not on curve", "a5 0102 0326 2001 215820" + x + " 225820" + x, ErrInvalidKey},
		{"x too short", "a5 0102 0326 2001 21581f" + x[2:] + " 225820" + gy, ErrInvalidKey},
		{"y missing", "a4 0102 0326 2001 215820" + gx, ErrInvalidKey},
		{"private part", "a6 0102 0326 2001 215820" + gx + " 225820" + gy + " 235820" + x, ErrInvalidKey},
		{"alg missing", "a4 0102 2001 215820" + gx + " 225820" + gy, ErrInvalidKey},
		{"kty missing", "a4 0326 2001 215820" + gx + " 225820" + gy, ErrInvalidKey},
		{"P-384", "a5 0102 0338 22 2002 215820" + gx + " 225820" + gy, ErrUnsupportedAlgorithm},
		{"ES256 on P-384", "a5 0102 0326 2002 215820" + gx + " 225820" + gy, ErrUnsupportedAlgorithm},
		{"RSA", "a4 0103 0339 0100 205901 00" + strings.Repeat("ab", 256) + " 2143010001", ErrUnsupportedAlgorithm},
		{"kty as text", "a5 0162 6563 0326 2001 215820" + gx + " 225820" + gy, ErrCBORUnexpectedType},
		{"text label", "a1 616b 02", ErrCBORUnexpectedType},
		{"not a map", "80", ErrCBORUnexpectedType},
		{"non-canonical order", "a5 0326 0102 2001 215820" + gx + " 225820" + gy, ErrInvalidCBOR},
		{"trailing", "a5 0102 0326 2001 215820" + gx + " 225820" + gy + "00", ErrInvalidCBOR},
		{"empty", "", ErrInvalidCBOR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := ParsePublicKey(mustHex(t, tc.in))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) || pub != nil {
				t.Fatalf("ParsePublicKey = %v, %v; want %v", pub, err, tc.want)
			}
		})
	}
	var uk *UnsupportedKeyError
	_, err := ParsePublicKey(mustHex(t, "a5 0102 0338 22 2002 215820"+gx+" 225820"+gy))
	if !errors.As(err, &uk) || uk.KeyType != 2 || uk.Alg != -35 || uk.Curve != 2 {
		t.Fatalf("UnsupportedKeyError = %+v", uk)
	}
	if err.Error() != "ctap2: unsupported COSE key (kty 2, alg -35, crv 2)" {
		t.Errorf("text %q", err)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	var sb strings.Builder
	for _, c := range b {
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&15])
	}
	return sb.String()
}

func TestVerifyAssertion(t *testing.T) {
	k := testKey(t, vecCredLabel)
	key := EncodeES256PublicKey(&k.PublicKey)
	authData := adHeader(FlagUP, 9)
	cdh := sha256.Sum256([]byte("client data"))
	sig := sign(t, k, authData, cdh[:])
	if err := VerifyAssertion(key, authData, cdh[:], sig); err != nil {
		t.Fatal(err)
	}
	other := testKey(t, "someone else")
	for _, tc := range []struct {
		name               string
		key, ad, hash, sig []byte
		want               error
	}{
		{"other key", EncodeES256PublicKey(&other.PublicKey), authData, cdh[:], sig, ErrInvalidSignature},
		{"other authData", key, adHeader(FlagUP, 10), cdh[:], sig, ErrInvalidSignature},
		{"other hash", key, authData, make([]byte, 32), sig, ErrInvalidSignature},
		{"short hash", key, authData, cdh[:31], sig, ErrInvalidLength},
		{"garbage signature", key, authData, cdh[:], []byte{0x30, 0x00}, ErrInvalidSignature},
		{"empty signature", key, authData, cdh[:], nil, ErrInvalidSignature},
		{"bad key", []byte{0xa0}, authData, cdh[:], sig, ErrInvalidKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := VerifyAssertion(tc.key, tc.ad, tc.hash, tc.sig); !errors.Is(err, tc.want) {
				t.Fatalf("VerifyAssertion = %v, want %v", err, tc.want)
			}
		})
	}
	if err := VerifySignature(struct{}{}, authData, cdh[:], sig); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Fatalf("unsupported key: %v", err)
	}
}

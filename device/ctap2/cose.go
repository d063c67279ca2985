package ctap2

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// COSE_Key labels and values (RFC 9052 §7, RFC 9053 §7; IANA "COSE Key
// Common Parameters", "COSE Key Type Parameters", "COSE Elliptic Curves").
const (
	coseLabelKty = 1
	coseLabelAlg = 3
	coseLabelCrv = -1 // EC2 and OKP
	coseLabelX   = -2 // EC2 and OKP
	coseLabelY   = -3 // EC2
	coseLabelD   = -4 // EC2 and OKP private key: never in a public key

	COSEKeyTypeOKP   = 1 // octet key pair (RFC 9053 §7.2)
	COSEKeyTypeEC2   = 2 // elliptic curve with x and y (RFC 9053 §7.1)
	COSECurveP256    = 1 // NIST P-256 (RFC 9053 §7.1)
	COSECurveEd25519 = 6 // Ed25519 (RFC 9053 §7.1)
	AlgEdDSA         = -8
)

// ErrInvalidKey is wrapped when a COSE_Key is malformed: a required parameter
// is missing or has the wrong size, the point is not on the curve, or the key
// holds a private part.
var ErrInvalidKey = errors.New("ctap2: invalid COSE key")

// UnsupportedKeyError reports a well-formed COSE_Key of a key type, algorithm
// or curve this package does not handle. It unwraps to
// ErrUnsupportedAlgorithm.
type UnsupportedKeyError struct {
	KeyType, Alg, Curve int64 // 0 when absent
}

// Error returns "ctap2: unsupported COSE key (kty 3, alg -257, crv 0)" and
// the like.
func (e *UnsupportedKeyError) Error() string {
	return fmt.Sprintf("ctap2: unsupported COSE key (kty %d, alg %d, crv %d)", e.KeyType, e.Alg, e.Curve)
}

// Unwrap returns ErrUnsupportedAlgorithm.
func (e *UnsupportedKeyError) Unwrap() error { return ErrUnsupportedAlgorithm }

// ec2Key and okpKey are the COSE_Key maps this package writes; the field order
// does not matter, the encoder sorts the keys canonically.
type ec2Key struct {
	Kty int64  `cbor:"1,keyasint"`
	Alg int64  `cbor:"3,keyasint"`
	Crv int64  `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint"`
}

type okpKey struct {
	Kty int64  `cbor:"1,keyasint"`
	Alg int64  `cbor:"3,keyasint"`
	Crv int64  `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
}

// EncodeES256PublicKey returns pub as a canonical COSE_Key map
// {1: 2, 3: -7, -1: 1, -2: x, -3: y} (RFC 9053 §7.1.1, WebAuthn §6.5.1.1),
// or nil when pub is nil or not a P-256 key.
func EncodeES256PublicKey(pub *ecdsa.PublicKey) []byte {
	b, err := EncodePublicKey(pub)
	if err != nil {
		return nil
	}
	return b
}

// EncodePublicKey returns pub as a canonical COSE_Key map: a P-256
// *ecdsa.PublicKey as ES256 (alg -7), an ed25519.PublicKey as EdDSA (alg -8).
//
// It returns an *UnsupportedKeyError for other keys and an error wrapping
// ErrInvalidKey for a nil or malformed key.
func EncodePublicKey(pub crypto.PublicKey) ([]byte, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil {
			return nil, fmt.Errorf("%w: nil key", ErrInvalidKey)
		}
		if k.Curve != elliptic.P256() {
			return nil, &UnsupportedKeyError{KeyType: COSEKeyTypeEC2, Alg: AlgES256}
		}
		raw, err := k.Bytes() // 0x04 || x || y
		if err != nil || len(raw) != 65 {
			return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
		return Marshal(ec2Key{Kty: COSEKeyTypeEC2, Alg: AlgES256, Crv: COSECurveP256, X: raw[1:33], Y: raw[33:]})
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: Ed25519 key of %d bytes", ErrInvalidKey, len(k))
		}
		return Marshal(okpKey{Kty: COSEKeyTypeOKP, Alg: AlgEdDSA, Crv: COSECurveEd25519, X: k})
	}
	return nil, &UnsupportedKeyError{}
}

// ParsePublicKey parses a credential public key in COSE_Key form (RFC 9052
// §7, WebAuthn §6.5.1.1), which must be canonical CTAP2 CBOR with integer
// labels. It understands ES256 (kty 2, alg -7, crv 1, 32-byte x and y, point on
// the curve) and EdDSA over Ed25519 (kty 1, alg -8, crv 6, 32-byte x); the alg
// parameter is required. Other labels are ignored; a private key part (-4) is
// refused. It returns an *ecdsa.PublicKey or an ed25519.PublicKey.
//
// It returns an error wrapping ErrInvalidCBOR or ErrCBORUnexpectedType for
// bad CBOR, ErrInvalidKey for a malformed key, and an *UnsupportedKeyError for
// other key types, algorithms or curves.
func ParsePublicKey(b []byte) (crypto.PublicKey, error) {
	var m map[int64]cbor.RawMessage
	if err := Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	kty, err := coseInt(m, coseLabelKty)
	if err != nil {
		return nil, err
	}
	alg, err := coseInt(m, coseLabelAlg)
	if err != nil {
		return nil, err
	}
	if _, ok := m[coseLabelD]; ok {
		return nil, fmt.Errorf("%w: holds a private key", ErrInvalidKey)
	}
	var crv int64
	if kty == COSEKeyTypeEC2 || kty == COSEKeyTypeOKP {
		if crv, err = coseInt(m, coseLabelCrv); err != nil {
			return nil, err
		}
	}
	switch {
	case kty == 0:
		return nil, fmt.Errorf("%w: kty is missing", ErrInvalidKey)
	case alg == 0:
		return nil, fmt.Errorf("%w: alg is missing", ErrInvalidKey)
	case kty == COSEKeyTypeEC2 && alg == AlgES256 && crv == COSECurveP256:
		x, err := coseBytes(m, coseLabelX, 32)
		if err != nil {
			return nil, err
		}
		y, err := coseBytes(m, coseLabelY, 32)
		if err != nil {
			return nil, err
		}
		point := make([]byte, 0, 65)
		point = append(append(append(point, 4), x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
		return pub, nil
	case kty == COSEKeyTypeOKP && alg == AlgEdDSA && crv == COSECurveEd25519:
		x, err := coseBytes(m, coseLabelX, ed25519.PublicKeySize)
		if err != nil {
			return nil, err
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, &UnsupportedKeyError{KeyType: kty, Alg: alg, Curve: crv}
}

func coseInt(m map[int64]cbor.RawMessage, label int64) (int64, error) {
	raw, ok := m[label]
	if !ok {
		return 0, nil
	}
	var v int64
	if err := unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("%w: label %d: %w", ErrInvalidKey, label, err)
	}
	return v, nil
}

func coseBytes(m map[int64]cbor.RawMessage, label int64, size int) ([]byte, error) {
	raw, ok := m[label]
	if !ok {
		return nil, fmt.Errorf("%w: label %d is missing", ErrInvalidKey, label)
	}
	var v []byte
	if err := unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%w: label %d: %w", ErrInvalidKey, label, err)
	}
	if len(v) != size {
		return nil, fmt.Errorf("%w: label %d has %d bytes, want %d", ErrInvalidKey, label, len(v), size)
	}
	return v, nil
}

// VerifySignature checks an assertion signature (WebAuthn §6.3.3) or a packed
// self-attestation signature (WebAuthn §8.2): sig over
// authData || clientDataHash, an ASN.1 DER ECDSA signature over its SHA-256 for
// a P-256 key, an Ed25519 signature for an Ed25519 key.
//
// It returns nil, an error wrapping ErrInvalidLength when clientDataHash is
// not 32 bytes, ErrInvalidSignature when the signature does not verify, or an
// *UnsupportedKeyError for other keys.
func VerifySignature(pub crypto.PublicKey, authData, clientDataHash, sig []byte) error {
	if len(clientDataHash) != ClientDataHashSize {
		return fmt.Errorf("%w: clientDataHash is %d bytes, want %d", ErrInvalidLength, len(clientDataHash), ClientDataHashSize)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != elliptic.P256() {
			return &UnsupportedKeyError{KeyType: COSEKeyTypeEC2, Alg: AlgES256}
		}
		h := sha256.New()
		h.Write(authData)
		h.Write(clientDataHash)
		if !ecdsa.VerifyASN1(k, h.Sum(nil), sig) {
			return ErrInvalidSignature
		}
		return nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 key of %d bytes", ErrInvalidKey, len(k))
		}
		msg := make([]byte, 0, len(authData)+len(clientDataHash))
		msg = append(append(msg, authData...), clientDataHash...)
		if !ed25519.Verify(k, msg, sig) {
			return ErrInvalidSignature
		}
		return nil
	}
	return &UnsupportedKeyError{}
}

// VerifyAssertion checks the signature of an assertion (WebAuthn §7.2,
// "Verifying an Authentication Assertion") made with the credential whose
// COSE_Key public key is pub: sig over authData || clientDataHash.
//
// It returns nil, an error of ParsePublicKey, or an error of VerifySignature
// (ErrInvalidSignature when the signature does not verify).
func VerifyAssertion(pub, authData, clientDataHash, sig []byte) error {
	k, err := ParsePublicKey(pub)
	if err != nil {
		return err
	}
	return VerifySignature(k, authData, clientDataHash, sig)
}

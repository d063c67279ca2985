package app

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
)

// hkdfSalt separates the app's derivations from those of other simulators
// that share a seed.
const hkdfSalt = "authbench sim/app v1"

// PINLength is the number of digits of a MitID app PIN.
const PINLength = 6

// ErrInvalidPIN is wrapped by New when Options.PIN is not six ASCII digits.
var ErrInvalidPIN = errors.New("app: the PIN must be six digits")

// Options configure a new App. The zero value is a random app with a PIN
// derived from its random seed.
type Options struct {
	// Seed makes the app deterministic: the same seed gives the same key
	// pair and the same default PIN. Nil means 32 random bytes.
	Seed []byte
	// PIN is the six-digit PIN the person chose; "" derives one from Seed.
	PIN string
}

// App is a simulated MitID app: a P-256 device key pair and a PIN. It is
// safe for concurrent use (it never changes after New).
type App struct {
	key *ecdsa.PrivateKey
	der []byte
	pin string
}

// New returns the app made from opts.
//
// Errors: an error wrapping ErrInvalidPIN when opts.PIN is given and is not
// six digits; an error when the random seed cannot be read.
func New(opts Options) (*App, error) {
	seed := opts.Seed
	if seed == nil {
		seed = make([]byte, 32)
		if _, err := rand.Read(seed); err != nil {
			return nil, fmt.Errorf("app: random seed: %w", err)
		}
	}
	pin := opts.PIN
	if pin == "" {
		v := binary.BigEndian.Uint64(derive(seed, "pin", 8))
		pin = fmt.Sprintf("%0*d", PINLength, v%1_000_000)
	} else if !validPIN(pin) {
		return nil, fmt.Errorf("%w (got %d characters)", ErrInvalidPIN, len(pin))
	}
	key, err := deriveKey(seed)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("app: public key: %w", err)
	}
	return &App{key: key, der: der, pin: pin}, nil
}

func validPIN(s string) bool {
	if len(s) != PINLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// derive returns n bytes of HKDF-SHA256 output for label.
func derive(seed []byte, label string, n int) []byte {
	out, err := hkdf.Key(sha256.New, seed, []byte(hkdfSalt), label, n)
	if err != nil {
		panic("app: hkdf: " + err.Error()) // only for outputs over 8160 bytes
	}
	return out
}

// deriveKey reduces 40 bytes of HKDF output (64 bits more than the group
// order) to a scalar in [1, n-1], as FIPS 186-5 §A.2.1 ("extra random
// bits") does, and builds the key pair from it.
func deriveKey(seed []byte) (*ecdsa.PrivateKey, error) {
	n := elliptic.P256().Params().N
	k := new(big.Int).SetBytes(derive(seed, "device key", 40))
	k.Mod(k, new(big.Int).Sub(n, big.NewInt(1)))
	k.Add(k, big.NewInt(1))
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), k.FillBytes(make([]byte, 32)))
	if err != nil {
		return nil, fmt.Errorf("app: device key: %w", err)
	}
	return key, nil
}

// PublicKeyDER returns the app's public key as a DER SubjectPublicKeyInfo
// (RFC 5280 §4.1.2.7; id-ecPublicKey with the P-256 curve, RFC 5480), the
// form the server's add-authenticator request takes.
func (a *App) PublicKeyDER() []byte { return append([]byte(nil), a.der...) }

// PublicKey returns the app's public key.
func (a *App) PublicKey() crypto.PublicKey { return &a.key.PublicKey }

// PIN returns the app's PIN, as the person would type it.
func (a *App) PIN() string { return a.pin }

// Sign returns the ECDSA P-256 signature (ASN.1 DER, RFC 3279 §2.2.3) of
// SHA-256(challenge), the proof of possession the server asks for when the
// app is activated and at each login.
//
// Errors: an error when challenge is empty, or from crypto/ecdsa.
func (a *App) Sign(challenge []byte) ([]byte, error) {
	if len(challenge) == 0 {
		return nil, errors.New("app: empty challenge")
	}
	h := sha256.Sum256(challenge)
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, h[:])
	if err != nil {
		return nil, fmt.Errorf("app: sign: %w", err)
	}
	return sig, nil
}

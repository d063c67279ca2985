package pskc

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/authbench/authbench/device/otp"
)

// Algorithm is the OTP algorithm of a key: TOTP or HOTP. On the wire it is
// the Key element's Algorithm URI (RFC 6030 §4.3, §10.4.1).
type Algorithm string

// The algorithms this package imports and exports.
const (
	TOTP Algorithm = "totp" // urn:ietf:params:xml:ns:keyprov:pskc:totp
	HOTP Algorithm = "hotp" // urn:ietf:params:xml:ns:keyprov:pskc:hotp (RFC 6030 §10.4.1)
)

// URI returns the PSKC algorithm URI of a, or "" when a is not TOTP or HOTP.
func (a Algorithm) URI() string {
	switch a {
	case TOTP:
		return uriTOTP
	case HOTP:
		return uriHOTP
	}
	return ""
}

// Key is one OTP key imported from (or exported to) a PSKC KeyPackage.
//
// The secret is held in memory in the clear: a Key never prints it. String,
// Format (every fmt verb) and LogValue (log/slog) leave it out, and
// encoding/json skips it. Call Wipe when done with it.
type Key struct {
	Serial       string `json:"serial,omitempty"`       // DeviceInfo/SerialNo
	Manufacturer string `json:"manufacturer,omitempty"` // DeviceInfo/Manufacturer
	Model        string `json:"model,omitempty"`        // DeviceInfo/Model
	ID           string `json:"id"`                     // Key/@Id, unique within a document

	Algorithm Algorithm     `json:"algorithm"`        // TOTP or HOTP (Key/@Algorithm)
	Hash      otp.Algorithm `json:"hash,omitzero"`    // AlgorithmParameters/Suite; Parse sets SHA1 when absent
	Digits    int           `json:"digits,omitzero"`  // AlgorithmParameters/ResponseFormat/@Length; 0 = not stated
	Period    time.Duration `json:"period,omitzero"`  // Data/TimeInterval (whole seconds); 0 = not stated
	Counter   uint64        `json:"counter,omitzero"` // Data/Counter (HOTP moving factor)
	Time      int64         `json:"time,omitzero"`    // Data/Time, as the producer put it
	Drift     int           `json:"drift,omitzero"`   // Data/TimeDrift, in time steps

	NotBefore time.Time `json:"not_before,omitzero"` // Policy/StartDate, UTC
	NotAfter  time.Time `json:"not_after,omitzero"`  // Policy/ExpiryDate, UTC

	Secret []byte `json:"-"` // the OTP secret K, in the clear; never printed
}

// String describes k without its secret.
func (k Key) String() string {
	var b strings.Builder
	b.WriteString("pskc.Key{")
	if k.Serial != "" {
		b.WriteString("serial=" + strconv.Quote(k.Serial) + " ")
	}
	b.WriteString("id=" + strconv.Quote(k.ID) + " " + string(k.Algorithm))
	if k.Hash != 0 {
		b.WriteString(" " + k.Hash.String())
	}
	if k.Digits != 0 {
		b.WriteString(" digits=" + strconv.Itoa(k.Digits))
	}
	if k.Period != 0 {
		b.WriteString(" period=" + k.Period.String())
	}
	if k.Counter != 0 {
		b.WriteString(" counter=" + strconv.FormatUint(k.Counter, 10))
	}
	if len(k.Secret) > 0 {
		b.WriteString(" secret=redacted")
	} else {
		b.WriteString(" secret=none")
	}
	b.WriteString("}")
	return b.String()
}

// Format implements fmt.Formatter so that no verb (%v, %+v, %#v, %x, %s,
// ...) prints the secret: every verb prints String.
func (k Key) Format(f fmt.State, verb rune) {
	fmt.Fprint(f, k.String())
}

// LogValue implements slog.LogValuer with the secret left out.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("serial", k.Serial),
		slog.String("id", k.ID),
		slog.String("algorithm", string(k.Algorithm)),
		slog.String("hash", k.Hash.String()),
		slog.Int("digits", k.Digits),
		slog.Duration("period", k.Period),
		slog.Bool("secret_set", len(k.Secret) > 0),
	)
}

// Wipe overwrites the secret with zeros and drops it.
func (k *Key) Wipe() {
	clear(k.Secret)
	k.Secret = nil
}

// TOTP returns the otp.TOTP generator for a TOTP key. It shares k.Secret.
// Zero Digits, Period and Hash take the otp package defaults (6 digits,
// 30 s, SHA-1).
//
// It returns an error wrapping ErrUnsupported when k is not a TOTP key, and
// one wrapping otp.ErrInvalidParameters when the parameters do not suit the
// otp package.
func (k *Key) TOTP() (*otp.TOTP, error) {
	if k.Algorithm != TOTP {
		return nil, fmt.Errorf("pskc: key %q: %w: algorithm %q is not totp", k.ID, ErrUnsupported, k.Algorithm)
	}
	p := &otp.TOTP{Secret: k.Secret, Digits: k.Digits, Period: k.Period, Algorithm: k.Hash}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("pskc: key %q: %w", k.ID, err)
	}
	return p, nil
}

// Container is a parsed PSKC document: its keys, in document order.
type Container struct {
	ID   string // KeyContainer/@Id, often empty
	Keys []Key
}

// Wipe wipes the secret of every key.
func (c *Container) Wipe() {
	for i := range c.Keys {
		c.Keys[i].Wipe()
	}
}

// KeySource hands Parse the key that protects a document (RFC 6030 §6):
// a pre-shared key found by its ds:KeyName (§6.1), or the passphrase from
// which PBKDF2 derives the key (§6.2). Return an error wrapping ErrNoKey
// when you have no such key.
type KeySource interface {
	PreSharedKey(name string) ([]byte, error)
	Passphrase() ([]byte, error)
}

// PreShared is a KeySource of pre-shared AES keys by name (RFC 6030 §6.1).
type PreShared map[string][]byte

// PreSharedKey returns the key called name, or an error wrapping ErrNoKey.
func (p PreShared) PreSharedKey(name string) ([]byte, error) {
	k, ok := p[name]
	if !ok {
		return nil, fmt.Errorf("%w: no pre-shared key named %q", ErrNoKey, name)
	}
	return k, nil
}

// Passphrase returns an error wrapping ErrNoKey: PreShared holds no passphrase.
func (PreShared) Passphrase() ([]byte, error) {
	return nil, fmt.Errorf("%w: the document needs a passphrase, only pre-shared keys were given", ErrNoKey)
}

// Passphrase is a KeySource holding one passphrase for PBKDF2
// (RFC 6030 §6.2).
type Passphrase string

// PreSharedKey returns an error wrapping ErrNoKey: a Passphrase holds no
// pre-shared key.
func (Passphrase) PreSharedKey(name string) ([]byte, error) {
	return nil, fmt.Errorf("%w: the document needs pre-shared key %q, only a passphrase was given", ErrNoKey, name)
}

// Passphrase returns the passphrase, or an error wrapping ErrNoKey when it
// is empty.
func (p Passphrase) Passphrase() ([]byte, error) {
	if p == "" {
		return nil, fmt.Errorf("%w: empty passphrase", ErrNoKey)
	}
	return []byte(p), nil
}

var (
	_ KeySource      = PreShared(nil)
	_ KeySource      = Passphrase("")
	_ fmt.Formatter  = Key{}
	_ slog.LogValuer = Key{}
)

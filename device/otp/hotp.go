package otp

import (
	"crypto/hmac"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
)

// Limits on the parameters this package accepts.
const (
	MinDigits = 6 // RFC 4226 §5.3: at least 6 digits
	MaxDigits = 8 // RFC 6238 reference code uses up to 8

	// MaxWindow bounds the HOTP look-ahead window (RFC 4226 §7.4) and the
	// TOTP skew (RFC 6238 §5.2, in steps each side), so that one check costs
	// a bounded number of HMACs.
	MaxWindow = 100
)

// Errors returned by this package. Callers branch on them with errors.Is;
// the returned errors wrap them with detail.
var (
	// ErrInvalidParameters: the generator parameters (secret, digits,
	// algorithm, period, window, time) are unusable.
	ErrInvalidParameters = errors.New("otp: invalid parameters")
	// ErrMismatch: the code is malformed or matches no candidate step.
	ErrMismatch = errors.New("otp: code does not match")
	// ErrReplayed: the code matches only time steps at or below the highest
	// step already used (RFC 6238 §5.2). Count it as a failed attempt.
	ErrReplayed = errors.New("otp: code already used")
)

var pow10 = [...]uint32{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}

// generator computes HOTP values for one secret; it reuses its HMAC state.
type generator struct {
	mac    hash.Hash
	digits int
	sum    [sha512.Size]byte
}

func newGenerator(secret []byte, digits int, alg Algorithm) (*generator, error) {
	if err := checkParams(secret, digits, alg); err != nil {
		return nil, err
	}
	return &generator{mac: hmac.New(alg.New(), secret), digits: digits}, nil
}

// checkParams reports whether newGenerator takes secret, digits and alg,
// without making the HMAC.
func checkParams(secret []byte, digits int, alg Algorithm) error {
	if len(secret) == 0 {
		return fmt.Errorf("%w: empty secret", ErrInvalidParameters)
	}
	if digits < MinDigits || digits > MaxDigits {
		return fmt.Errorf("%w: %d digits (want %d to %d)", ErrInvalidParameters, digits, MinDigits, MaxDigits)
	}
	if alg.New() == nil {
		return fmt.Errorf("%w: algorithm %d", ErrInvalidParameters, uint8(alg))
	}
	return nil
}

// code writes the HOTP value for counter into dst and returns it
// (RFC 4226 §5.3; RFC 6238 §1.2 uses the same truncation for SHA-256/512).
func (g *generator) code(counter uint64, dst *[MaxDigits]byte) []byte {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	g.mac.Reset()
	g.mac.Write(msg[:])
	sum := g.mac.Sum(g.sum[:0])
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	v %= pow10[g.digits]
	for i := g.digits - 1; i >= 0; i-- {
		dst[i] = '0' + byte(v%10)
		v /= 10
	}
	return dst[:g.digits]
}

// HOTP returns the HOTP value of secret at counter (RFC 4226 §5.3) with the
// given number of digits (6 to 8, leading zeros kept) and HMAC hash.
//
// It returns an error wrapping ErrInvalidParameters when secret is empty,
// digits is outside 6..8 or alg is not a supported hash. RFC 4226 §4 R6 asks
// for secrets of at least 128 bits (160 recommended); HOTP does not enforce
// that, so that the RFC's test vectors and short legacy secrets work.
func HOTP(secret []byte, counter uint64, digits int, alg Algorithm) (string, error) {
	g, err := newGenerator(secret, digits, alg)
	if err != nil {
		return "", err
	}
	var buf [MaxDigits]byte
	return string(g.code(counter, &buf)), nil
}

// VerifyHOTP checks code against the HOTP values for counters counter,
// counter+1, ..., counter+window (RFC 4226 §7.4 look-ahead window; counter is
// the next value the server expects). It returns the counter that matched;
// the server must store that value plus one as the next expected counter.
//
// Every candidate is computed and compared in constant time, without an
// early exit. When the same code occurs twice in the window, the highest
// counter wins.
//
// It returns an error wrapping ErrInvalidParameters for bad parameters (as
// HOTP, or window outside 0..MaxWindow), or ErrMismatch when code is not
// digits of the right length or matches no counter in the window.
func VerifyHOTP(secret []byte, code string, counter uint64, window int, digits int, alg Algorithm) (uint64, error) {
	g, err := newGenerator(secret, digits, alg)
	if err != nil {
		return 0, err
	}
	if window < 0 || window > MaxWindow {
		return 0, fmt.Errorf("%w: window %d (want 0 to %d)", ErrInvalidParameters, window, MaxWindow)
	}
	if err := checkCodeFormat(code, digits); err != nil {
		return 0, err
	}
	var buf [MaxDigits]byte
	found, idx := 0, 0
	for i := 0; i <= window; i++ {
		c := counter + uint64(i)
		if c < counter { // wrapped past 2^64-1: no such counter
			break
		}
		eq := subtle.ConstantTimeCompare([]byte(code), g.code(c, &buf))
		found |= eq
		idx = subtle.ConstantTimeSelect(eq, i, idx)
	}
	if found == 0 {
		return 0, ErrMismatch
	}
	return counter + uint64(idx), nil
}

// checkCodeFormat returns an error wrapping ErrMismatch unless code is
// exactly digits ASCII decimal digits. The format of a submitted code is not
// secret, so this check may return early.
func checkCodeFormat(code string, digits int) error {
	if len(code) != digits {
		return fmt.Errorf("%w: %d characters, want %d digits", ErrMismatch, len(code), digits)
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return fmt.Errorf("%w: not all digits", ErrMismatch)
		}
	}
	return nil
}

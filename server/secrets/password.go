package secrets

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Bounds on argon2id parameters (RFC 9106 §3.1 allows far more). Hash
// refuses parameters outside them and ParseVerifier refuses verifiers
// outside them, so that a tampered database cannot make one login cost
// gigabytes or minutes.
const (
	MaxMemory  = 256 << 10 // KiB: 256 MiB
	MaxTime    = 16        // passes
	MaxThreads = 16        // lanes
	MinSaltLen = 8         // bytes (RFC 9106 §3.1: 16 recommended)
	MaxSaltLen = 64        // bytes
	MinKeyLen  = 16        // bytes of hash
	MaxKeyLen  = 64        // bytes of hash

	// MaxPasswordLen bounds a password or PIN in bytes.
	MaxPasswordLen = 1024
	// maxVerifierLen bounds a verifier string; the largest valid one is
	// about 180 characters.
	maxVerifierLen = 256
)

// Params are argon2id parameters (RFC 9106 §3.1). A zero field takes the
// value of DefaultParams, so the zero Params is DefaultParams.
type Params struct {
	Memory  uint32 // memory in KiB (m); at least 8 per thread
	Time    uint32 // passes (t)
	Threads uint8  // lanes (p)
	SaltLen uint32 // salt bytes; 0 means 16
	KeyLen  uint32 // hash bytes; 0 means 32
}

// DefaultParams are the server's parameters: m = 19456 KiB (19 MiB), t = 2,
// p = 1, 16-byte salt, 32-byte hash, the first argon2id setting of the OWASP
// Password Storage Cheat Sheet. One verification costs 19 MiB and a few
// tens of milliseconds of one core.
func DefaultParams() Params {
	return Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// FastParams are cheap parameters (64 KiB, one pass) for tests and the
// demo. They protect nothing: never use them for real verifiers.
func FastParams() Params {
	return Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// withDefaults fills the zero fields of p from DefaultParams.
func (p Params) withDefaults() Params {
	d := DefaultParams()
	if p.Memory == 0 {
		p.Memory = d.Memory
	}
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	return p
}

// check returns an error wrapping ErrBadParams when p (with defaults) is
// outside the bounds.
func (p Params) check() error {
	switch {
	case p.Threads > MaxThreads:
		return fmt.Errorf("secrets: %w: p=%d (at most %d)", ErrBadParams, p.Threads, MaxThreads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > MaxMemory:
		return fmt.Errorf("secrets: %w: m=%d KiB (%d to %d)", ErrBadParams, p.Memory, 8*uint32(p.Threads), MaxMemory)
	case p.Time > MaxTime:
		return fmt.Errorf("secrets: %w: t=%d (at most %d)", ErrBadParams, p.Time, MaxTime)
	case p.SaltLen < MinSaltLen || p.SaltLen > MaxSaltLen:
		return fmt.Errorf("secrets: %w: salt of %d bytes (%d to %d)", ErrBadParams, p.SaltLen, MinSaltLen, MaxSaltLen)
	case p.KeyLen < MinKeyLen || p.KeyLen > MaxKeyLen:
		return fmt.Errorf("secrets: %w: hash of %d bytes (%d to %d)", ErrBadParams, p.KeyLen, MinKeyLen, MaxKeyLen)
	}
	return nil
}

// String prints the parameters in PHC form, "m=19456,t=2,p=1".
func (p Params) String() string {
	return "m=" + strconv.FormatUint(uint64(p.Memory), 10) +
		",t=" + strconv.FormatUint(uint64(p.Time), 10) +
		",p=" + strconv.FormatUint(uint64(p.Threads), 10)
}

// Hash returns an argon2id verifier of secret under p (zero fields take
// DefaultParams) with a random salt from crypto/rand, in the PHC string
// format. The secret is hashed in Unicode Normalization Form C
// (NormalizePassword), so that every spelling of one password gives one
// verifier. It runs under the process-wide Limiter.
//
// It returns an error wrapping ErrBadPassword when secret is empty, longer
// than MaxPasswordLen bytes or not valid UTF-8 text (see
// NormalizePassword), one wrapping ErrBadParams when p is out of bounds,
// and a *BusyError (ErrBusy) when the Limiter had no room in time.
func (p Params) Hash(secret string) (string, error) {
	return p.hash(secret, rand.Reader)
}

func (p Params) hash(secret string, r io.Reader) (string, error) {
	secret, err := NormalizePassword(secret)
	if err != nil {
		return "", err
	}
	p = p.withDefaults()
	if err := p.check(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	if _, err := io.ReadFull(r, salt); err != nil {
		return "", fmt.Errorf("secrets: reading a salt: %w", err)
	}
	v := Verifier{params: p, b: &verifierBytes{salt: salt}}
	if v.b.hash, err = idKey([]byte(secret), salt, p); err != nil {
		return "", err
	}
	return v.Encode(), nil
}

// NormalizePassword returns pw in Unicode Normalization Form C (Unicode
// Standard Annex #15), as NIST SP 800-63B §5.1.1.2 asks of memorized
// secrets before they are hashed: "é" typed as one code point (U+00E9) or
// as "e" and a combining accent (U+0065 U+0301) is one password.
//
// It returns a *PasswordError (wrapping ErrBadPassword), saying why, when
// pw is empty, longer than MaxPasswordLen bytes (before or after normalizing),
// not valid UTF-8, or contains U+FFFD, the replacement character a decoder
// puts where bytes were not valid text (so that no two different byte
// strings could come to match one password).
func NormalizePassword(pw string) (string, error) {
	if err := checkPassword(pw); err != nil {
		return "", err
	}
	if !utf8.ValidString(pw) {
		return "", &PasswordError{Reason: "is not valid UTF-8 text"}
	}
	if strings.ContainsRune(pw, utf8.RuneError) {
		return "", &PasswordError{Reason: "contains U+FFFD, the replacement character that stands for bytes that were not valid text"}
	}
	n := norm.NFC.String(pw)
	if len(n) > MaxPasswordLen {
		return "", &PasswordError{Reason: fmt.Sprintf("is longer than %d bytes", MaxPasswordLen)}
	}
	return n, nil
}

func checkPassword(pw string) error {
	switch {
	case pw == "":
		return &PasswordError{Reason: "is empty"}
	case len(pw) > MaxPasswordLen:
		return &PasswordError{Reason: fmt.Sprintf("is longer than %d bytes", MaxPasswordLen)}
	}
	return nil
}

// Verify reports whether secret matches the verifier encoded, comparing in
// constant time, and, when it does, whether the verifier should be
// replaced by a new Hash because its parameters differ from p's (with
// defaults), its salt is shorter, or it was made from a spelling of the
// password that was not in Normalization Form C (before passwords were
// normalized). needsRehash is false when ok is.
//
// It returns an error wrapping ErrBadVerifier when encoded is malformed or
// its parameters are outside the bounds, and a *BusyError (ErrBusy) when
// the Limiter had no room in time; a secret NormalizePassword refuses
// simply does not match.
func (p Params) Verify(encoded, secret string) (ok, needsRehash bool, err error) {
	v, err := ParseVerifier(encoded)
	if err != nil {
		return false, false, err
	}
	ok, err = v.Check(secret)
	if err != nil {
		return false, false, err
	}
	if !ok {
		if n, err := NormalizePassword(secret); err != nil || n == secret {
			return false, false, nil
		}
		// A verifier made before normalization, of these very bytes.
		if ok, err = v.check(secret); !ok || err != nil {
			return false, false, err
		}
		return true, true, nil
	}
	want, got := p.withDefaults(), v.params
	needsRehash = got.Memory != want.Memory || got.Time != want.Time ||
		got.Threads != want.Threads || got.KeyLen != want.KeyLen || got.SaltLen < want.SaltLen
	return true, needsRehash, nil
}

// HashPassword is p.Hash(pw): an argon2id verifier of a password. It
// returns the errors of Params.Hash.
func HashPassword(pw string, p Params) (string, error) { return p.Hash(pw) }

// VerifyPassword is DefaultParams().Verify(encoded, pw): needsRehash is
// relative to DefaultParams. It returns the errors of Params.Verify.
func VerifyPassword(encoded, pw string) (ok, needsRehash bool, err error) {
	return DefaultParams().Verify(encoded, pw)
}

// Verifier is a parsed argon2id verifier.
//
// A Verifier prints its parameters only (String, GoString, Format,
// LogValue) and refuses encoding/json; Encode gives the stored form. Its
// salt and hash sit behind a pointer, so that even a structure printed
// with a Verifier in an unexported field shows an address, not them.
type Verifier struct {
	params Params // SaltLen and KeyLen are the lengths of salt and hash
	b      *verifierBytes
}

type verifierBytes struct{ salt, hash []byte }

// ParseVerifier parses a verifier in the PHC string format,
// "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH", with decimal parameters without
// leading zeros in that order, and salt and hash in unpadded standard
// base64 (RFC 4648 §4) with zero padding bits. Exactly this form is
// accepted, so v.Encode() returns s.
//
// It returns an error wrapping ErrBadVerifier when s is not in that form,
// names another algorithm or version, or has parameters outside MaxMemory,
// MaxTime, MaxThreads and the salt and hash length bounds. The error never
// quotes the salt or hash.
func ParseVerifier(s string) (*Verifier, error) {
	bad := func(why string) (*Verifier, error) {
		return nil, fmt.Errorf("secrets: %w: %s", ErrBadVerifier, why)
	}
	if len(s) > maxVerifierLen {
		return bad("too long")
	}
	var parts [6]string
	if split(s, '$', parts[:]) != 6 || parts[0] != "" {
		return bad("expected $argon2id$v=19$m=M,t=T,p=P$SALT$HASH")
	}
	if parts[1] != "argon2id" {
		return bad("unsupported algorithm (only argon2id)")
	}
	if parts[2] != "v=19" {
		return bad("unsupported version (only v=19)")
	}
	var ps [3]string
	if split(parts[3], ',', ps[:]) != 3 {
		return bad("expected parameters m=M,t=T,p=P")
	}
	var nums [3]uint32
	for i, name := range []string{"m=", "t=", "p="} {
		n, ok := parseDecimal(ps[i], name)
		if !ok {
			return bad("expected parameters m=M,t=T,p=P in decimal")
		}
		nums[i] = n
	}
	if nums[1] == 0 || nums[2] == 0 {
		return bad("t and p must be at least 1")
	}
	if nums[2] > MaxThreads {
		return bad(fmt.Sprintf("p=%d is above %d", nums[2], MaxThreads))
	}
	enc := base64.RawStdEncoding.Strict()
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return bad("salt is not unpadded base64")
	}
	hash, err := enc.DecodeString(parts[5])
	if err != nil {
		return bad("hash is not unpadded base64")
	}
	v := &Verifier{
		params: Params{Memory: nums[0], Time: nums[1], Threads: uint8(nums[2]), SaltLen: uint32(len(salt)), KeyLen: uint32(len(hash))},
		b:      &verifierBytes{salt: salt, hash: hash},
	}
	if err := v.params.check(); err != nil {
		return bad(strings.TrimPrefix(err.Error(), "secrets: "))
	}
	return v, nil
}

// split cuts s around each sep, as strings.Split does, into parts while
// they last, and returns how many pieces strings.Split would return.
func split(s string, sep byte, parts []string) int {
	n := 0
	for {
		i := strings.IndexByte(s, sep)
		if i < 0 {
			if n < len(parts) {
				parts[n] = s
			}
			return n + 1
		}
		if n < len(parts) {
			parts[n] = s[:i]
		}
		n++
		s = s[i+1:]
	}
}

// parseDecimal parses name followed by a decimal uint32 without sign or
// leading zeros.
func parseDecimal(s, name string) (uint32, bool) {
	d, ok := strings.CutPrefix(s, name)
	if !ok || d == "" || len(d) > 10 || (d[0] == '0' && len(d) > 1) {
		return 0, false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(d, 10, 32)
	return uint32(n), err == nil
}

// Params returns v's parameters; SaltLen and KeyLen are the lengths of its
// salt and hash.
func (v *Verifier) Params() Params { return v.params }

// Encode returns v in the PHC string format read by ParseVerifier.
// The zero Verifier encodes as "".
func (v *Verifier) Encode() string {
	if v.b == nil {
		return ""
	}
	enc := base64.RawStdEncoding
	return "$argon2id$v=19$" + v.params.String() + "$" + enc.EncodeToString(v.b.salt) + "$" + enc.EncodeToString(v.b.hash)
}

// Check reports whether secret, in Normalization Form C
// (NormalizePassword), matches v, comparing the hashes in constant time. A
// secret NormalizePassword refuses does not match and is not hashed. v's
// parameters are used as they are; a v from ParseVerifier is within the
// bounds. The computation runs under the process-wide Limiter: it returns
// a *BusyError (ErrBusy) when there was no room in time.
func (v *Verifier) Check(secret string) (bool, error) {
	n, err := NormalizePassword(secret)
	if err != nil {
		return false, nil
	}
	return v.check(n)
}

// check hashes secret as it is and compares.
func (v *Verifier) check(secret string) (bool, error) {
	if checkPassword(secret) != nil || v.b == nil || len(v.b.hash) == 0 {
		return false, nil
	}
	p := v.params
	p.KeyLen = uint32(len(v.b.hash))
	got, err := idKey([]byte(secret), v.b.salt, p)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, v.b.hash) == 1, nil
}

// String shows the parameters only: "argon2id(m=19456,t=2,p=1, salt and hash redacted)".
func (v Verifier) String() string {
	return "argon2id(" + v.params.String() + ", salt and hash redacted)"
}

// GoString is String.
func (v Verifier) GoString() string { return v.String() }

// Format prints String for every verb.
func (v Verifier) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		io.WriteString(f, strconv.Quote(v.String()))
		return
	}
	io.WriteString(f, v.String())
}

// LogValue logs the parameters only.
func (v Verifier) LogValue() slog.Value {
	return slog.GroupValue(slog.String("alg", "argon2id"), slog.String("params", v.params.String()))
}

// MarshalJSON refuses; store Encode() instead.
func (v Verifier) MarshalJSON() ([]byte, error) {
	return nil, errors.New("secrets: a Verifier is not JSON-encoded; store Encode()")
}

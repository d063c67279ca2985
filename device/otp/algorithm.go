package otp

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"
)

// Algorithm is the HMAC hash of an OTP generator. The numeric values are the
// ones CDP/1 uses on the wire (IDENTIFY tag 0x08).
type Algorithm uint8

// The supported hashes (RFC 6238 §1.2 allows SHA-1, SHA-256 and SHA-512).
const (
	SHA1   Algorithm = 1
	SHA256 Algorithm = 2
	SHA512 Algorithm = 3
)

// String returns "sha1", "sha256" or "sha512".
func (a Algorithm) String() string {
	switch a {
	case SHA1:
		return "sha1"
	case SHA256:
		return "sha256"
	case SHA512:
		return "sha512"
	}
	return fmt.Sprintf("Algorithm(%d)", uint8(a))
}

// Valid reports whether a is a supported hash.
func (a Algorithm) Valid() bool { return a >= SHA1 && a <= SHA512 }

// New returns the hash constructor for a, or nil when a is not valid.
func (a Algorithm) New() func() hash.Hash {
	switch a {
	case SHA1:
		return sha1.New
	case SHA256:
		return sha256.New
	case SHA512:
		return sha512.New
	}
	return nil
}

// ParseAlgorithm accepts "sha1", "sha256" and "sha512" (any case, with or
// without a dash).
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ReplaceAll(strings.ToLower(s), "-", "") {
	case "sha1":
		return SHA1, nil
	case "sha256":
		return SHA256, nil
	case "sha512":
		return SHA512, nil
	}
	return 0, fmt.Errorf("otp: unknown algorithm %q (want sha1, sha256 or sha512)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (a Algorithm) MarshalText() ([]byte, error) {
	if !a.Valid() {
		return nil, fmt.Errorf("otp: invalid algorithm %d", uint8(a))
	}
	return []byte(a.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Algorithm) UnmarshalText(b []byte) error {
	v, err := ParseAlgorithm(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

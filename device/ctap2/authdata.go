package ctap2

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Flags of authenticator data (WebAuthn §6.1, "flags").
const (
	FlagUP byte = 0x01 // user present
	FlagUV byte = 0x04 // user verified
	FlagBE byte = 0x08 // backup eligible
	FlagBS byte = 0x10 // backed up
	FlagAT byte = 0x40 // attested credential data included
	FlagED byte = 0x80 // extension data included
)

// authDataMinLen is rpIdHash (32) + flags (1) + signCount (4).
const authDataMinLen = 37

// ErrInvalidAuthData is wrapped by ParseAuthData and AuthData.Encode when the
// bytes or the value break the layout of WebAuthn §6.1.
var ErrInvalidAuthData = errors.New("ctap2: invalid authenticator data")

// AuthData is authenticator data (WebAuthn §6.1): the bytes an authenticator
// signs, together with the client data hash, in every attestation and
// assertion.
type AuthData struct {
	RPIDHash  [32]byte // SHA-256 of the RP ID (see RPIDHash)
	Flags     byte     // Flag* bits; the reserved bits are kept as they are
	SignCount uint32   // signature counter
	// AttestedCredential is present exactly when Flags has FlagAT.
	AttestedCredential *AttestedCredentialData
	// Extensions is the CBOR map of authenticator extension outputs, kept as
	// encoded; present (non-empty) exactly when Flags has FlagED.
	Extensions []byte
}

// AttestedCredentialData is the credential part of authenticator data
// (WebAuthn §6.5.1).
type AttestedCredentialData struct {
	AAGUID       [16]byte
	CredentialID []byte // 1 to 1023 bytes
	PublicKey    []byte // the credential public key as a COSE_Key CBOR map, kept as encoded
}

// RPIDHash returns the SHA-256 hash of an RP ID, as stored in authenticator
// data (WebAuthn §6.1, rpIdHash).
func RPIDHash(rpID string) [32]byte {
	return sha256.Sum256([]byte(rpID))
}

// ParseAuthData parses authenticator data (WebAuthn §6.1, §6.5.1) strictly:
// the AT flag must match the presence of attested credential data, the ED flag
// the presence of an extension map; the credential ID has 1 to 1023 bytes; the
// credential public key and the extensions are each one well-formed CBOR map
// (definite lengths, no tags; not necessarily canonical); no byte may follow.
// The result does not share memory with b, and Encode reproduces b exactly.
//
// It returns an error wrapping ErrInvalidAuthData.
func ParseAuthData(b []byte) (*AuthData, error) {
	if len(b) < authDataMinLen {
		return nil, fmt.Errorf("%w: %d bytes, at least %d needed", ErrInvalidAuthData, len(b), authDataMinLen)
	}
	a := &AuthData{
		Flags:     b[32],
		SignCount: binary.BigEndian.Uint32(b[33:37]),
	}
	copy(a.RPIDHash[:], b[:32])
	rest := b[authDataMinLen:]
	if a.Flags&FlagAT != 0 {
		const fixed = AAGUIDSize + 2
		if len(rest) < fixed {
			return nil, fmt.Errorf("%w: attested credential data truncated", ErrInvalidAuthData)
		}
		cd := &AttestedCredentialData{}
		copy(cd.AAGUID[:], rest[:AAGUIDSize])
		n := int(binary.BigEndian.Uint16(rest[AAGUIDSize:fixed]))
		if n == 0 || n > MaxCredentialIDLength {
			return nil, fmt.Errorf("%w: credential ID length %d not in 1..%d", ErrInvalidAuthData, n, MaxCredentialIDLength)
		}
		rest = rest[fixed:]
		if len(rest) < n {
			return nil, fmt.Errorf("%w: credential ID truncated", ErrInvalidAuthData)
		}
		cd.CredentialID = append([]byte(nil), rest[:n]...)
		rest = rest[n:]
		if len(rest) == 0 {
			return nil, fmt.Errorf("%w: credential public key missing", ErrInvalidAuthData)
		}
		kl, err := mapItemLen(rest)
		if err != nil {
			return nil, fmt.Errorf("%w: credential public key: %w", ErrInvalidAuthData, err)
		}
		cd.PublicKey = append([]byte(nil), rest[:kl]...)
		rest = rest[kl:]
		a.AttestedCredential = cd
	}
	if a.Flags&FlagED != 0 {
		if len(rest) == 0 {
			return nil, fmt.Errorf("%w: ED flag set but no extensions", ErrInvalidAuthData)
		}
		if err := wellFormedMap(rest); err != nil {
			return nil, fmt.Errorf("%w: extensions: %w", ErrInvalidAuthData, err)
		}
		a.Extensions = append([]byte(nil), rest...)
	} else if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d unexpected bytes at the end", ErrInvalidAuthData, len(rest))
	}
	return a, nil
}

// Encode returns the authenticator data bytes (WebAuthn §6.1). It checks what
// ParseAuthData checks, so that the result always parses back to a.
//
// It returns an error wrapping ErrInvalidAuthData when the AT or ED flag does
// not match the presence of AttestedCredential or Extensions, the credential
// ID length is not in 1..1023, or the public key or extensions are not one
// well-formed CBOR map.
func (a *AuthData) Encode() ([]byte, error) {
	if a == nil {
		return nil, fmt.Errorf("%w: nil", ErrInvalidAuthData)
	}
	if (a.Flags&FlagAT != 0) != (a.AttestedCredential != nil) {
		return nil, fmt.Errorf("%w: AT flag does not match attested credential data", ErrInvalidAuthData)
	}
	if (a.Flags&FlagED != 0) != (len(a.Extensions) != 0) {
		return nil, fmt.Errorf("%w: ED flag does not match extensions", ErrInvalidAuthData)
	}
	size := authDataMinLen + len(a.Extensions)
	if cd := a.AttestedCredential; cd != nil {
		if n := len(cd.CredentialID); n == 0 || n > MaxCredentialIDLength {
			return nil, fmt.Errorf("%w: credential ID length %d not in 1..%d", ErrInvalidAuthData, n, MaxCredentialIDLength)
		}
		if err := wellFormedMap(cd.PublicKey); err != nil {
			return nil, fmt.Errorf("%w: credential public key: %w", ErrInvalidAuthData, err)
		}
		size += AAGUIDSize + 2 + len(cd.CredentialID) + len(cd.PublicKey)
	}
	if len(a.Extensions) != 0 {
		if err := wellFormedMap(a.Extensions); err != nil {
			return nil, fmt.Errorf("%w: extensions: %w", ErrInvalidAuthData, err)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, a.RPIDHash[:]...)
	b = append(b, a.Flags)
	b = binary.BigEndian.AppendUint32(b, a.SignCount)
	if cd := a.AttestedCredential; cd != nil {
		b = append(b, cd.AAGUID[:]...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(cd.CredentialID)))
		b = append(b, cd.CredentialID...)
		b = append(b, cd.PublicKey...)
	}
	b = append(b, a.Extensions...)
	return b, nil
}

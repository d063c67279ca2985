package secrets

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// TokenBytes is the number of random bytes in a session token.
const TokenBytes = 32

// NewToken returns a new self-service session token (TokenBytes bytes from
// crypto/rand in unpadded base64url, 43 characters) for the client, and its
// hash (TokenHash) for the store, which keeps only the hash: a copy of the
// database holds no usable session.
func NewToken() (token string, hash []byte) {
	b := make([]byte, TokenBytes)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	token = base64.RawURLEncoding.EncodeToString(b)
	clear(b)
	return token, TokenHash(token)
}

// TokenHash returns SHA-256 of the token's text. The store looks sessions
// up by it; because the lookup key is a hash of the presented token, its
// timing tells nothing about stored tokens.
func TokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// EqualHash reports whether a and b are equal, in time that depends on
// their lengths only (crypto/subtle). Use it when a stored hash is compared
// with one computed from client input.
func EqualHash(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}

// CheckToken reports whether token matches the stored hash, in constant
// time.
func CheckToken(token string, hash []byte) bool {
	return EqualHash(TokenHash(token), hash)
}

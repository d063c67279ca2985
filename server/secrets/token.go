package secrets

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Session tokens. The client holds the token; the store keeps only a key
// derived from it (TokenKey), so a copy of the database holds no usable
// session. Two forms exist, told apart by their length:
//
//   - the timed form (NewToken issues it): the Unix milliseconds of the
//     session's creation (TokenTimeBytes bytes, big-endian) followed by
//     TokenBytes random bytes, in unpadded base64url (TokenLen
//     characters). Its key is those milliseconds followed by SHA-256 of
//     the token's whole text. The time first makes the keys of the
//     sessions a server creates in one stretch of time neighbours in the
//     store's B-tree, so a commit of many logins writes their session
//     rows into one or two leaf pages instead of each into a page of its
//     own; the hash, over the time too, keeps a presented token finding
//     only its own row: a token whose time was altered has another hash
//     as well as another prefix, and finds nothing.
//   - the untimed form (issued before the timed one): TokenBytes random
//     bytes in unpadded base64url (UntimedTokenLen characters), whose key
//     is SHA-256 of its text. Tokens of this form keep working until
//     their sessions expire.
//
// The keys of the two forms differ in length (TokenKeyLen and
// sha256.Size), so no token of one form finds a row of the other.
//
// The time in a timed token is the session's creation time, which its
// owner sees anyway (the session list). The lookup of a presented token
// walks the B-tree by a key its presenter chose, as it did before the
// time came first: its timing may hint at where stored keys lie, that is
// at when sessions were created and, within a millisecond, at the first
// bytes of their hashes, and a hash without its token opens nothing.

// TokenBytes is the number of random bytes in a session token.
const TokenBytes = 32

// TokenTimeBytes is the number of bytes of the creation time (Unix
// milliseconds, big-endian) at the start of a timed session token: until
// the year 10889.
const TokenTimeBytes = 6

// The lengths of the two forms of session tokens, in characters, and of
// the key of a timed token.
const (
	TokenLen        = (8*(TokenTimeBytes+TokenBytes) + 5) / 6 // 51
	UntimedTokenLen = (8*TokenBytes + 5) / 6                  // 43
	TokenKeyLen     = TokenTimeBytes + sha256.Size            // 38
)

// tokenB64 is the encoding of session tokens: unpadded base64url (RFC 4648
// §5), strict, so that each token has one text.
var tokenB64 = base64.RawURLEncoding.Strict()

// NewToken returns a new self-service session token of the timed form for
// a session created at now (TokenBytes bytes from crypto/rand after the
// time) for the client, and its key (TokenKey) for the store.
func NewToken(now time.Time) (token string, key []byte) {
	var b [TokenTimeBytes + TokenBytes]byte
	putTokenTime(b[:TokenTimeBytes], now)
	rand.Read(b[TokenTimeBytes:]) // never fails (crypto/rand, Go 1.24+)
	var text [TokenLen]byte
	tokenB64.Encode(text[:], b[:])
	clear(b[TokenTimeBytes:])
	key = make([]byte, TokenKeyLen)
	timedKey(key, text[:])
	return string(text[:]), key
}

// putTokenTime writes the Unix milliseconds of t (a time before 1970
// counts as 1970) into the TokenTimeBytes bytes of b, big-endian.
func putTokenTime(b []byte, t time.Time) {
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(max(t.UnixMilli(), 0)))
	copy(b, ms[8-TokenTimeBytes:])
}

// timedKey writes the key of the timed token text into key (TokenKeyLen
// bytes): the time bytes text encodes, then SHA-256 of text.
func timedKey(key, text []byte) {
	// The first 8 characters carry the 6 time bytes exactly.
	tokenB64.Decode(key[:TokenTimeBytes], text[:8])
	h := sha256.Sum256(text)
	copy(key[TokenTimeBytes:], h[:])
}

// TokenKey returns the key the store finds the session of a presented
// token by: for a timed token (TokenLen characters of base64url) its
// creation milliseconds then SHA-256 of its text; for an untimed one
// (UntimedTokenLen characters of base64url) SHA-256 of its text. It
// returns nil and false for a token of neither form, which names no
// session.
func TokenKey(token string) ([]byte, bool) {
	switch len(token) {
	case TokenLen:
		var b [TokenTimeBytes + TokenBytes]byte
		if n, err := tokenB64.Decode(b[:], []byte(token)); err != nil || n != len(b) {
			return nil, false
		}
		clear(b[:])
		key := make([]byte, TokenKeyLen)
		timedKey(key, []byte(token))
		return key, true
	case UntimedTokenLen:
		var b [TokenBytes]byte
		if n, err := tokenB64.Decode(b[:], []byte(token)); err != nil || n != len(b) {
			return nil, false
		}
		clear(b[:])
		return TokenHash(token), true
	}
	return nil, false
}

// TokenHash returns SHA-256 of the token's text: the key of an untimed
// session token, and the part after the time of a timed one's.
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

// CheckToken reports whether token (of either form) matches the stored
// key, in constant time.
func CheckToken(token string, key []byte) bool {
	k, ok := TokenKey(token)
	return ok && EqualHash(k, key)
}

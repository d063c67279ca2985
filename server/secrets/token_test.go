package secrets

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tokenSeed returns the session token in testdata/secrets/tokens/name.
func tokenSeed(t testing.TB, name string) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "secrets", "tokens", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// A new token is of the timed form: its creation milliseconds and 32
// random bytes; its key is those milliseconds and SHA-256 of its text.
func TestToken(t *testing.T) {
	now := time.Date(2026, 12, 7, 21, 30, 0, 123_456_789, time.UTC)
	tok, key := NewToken(now)
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != TokenTimeBytes+TokenBytes || len(tok) != TokenLen || TokenLen != 51 {
		t.Fatalf("NewToken = %q (%v)", tok, err)
	}
	var ms [8]byte
	copy(ms[2:], raw[:TokenTimeBytes])
	if got := int64(binary.BigEndian.Uint64(ms[:])); got != now.UnixMilli() {
		t.Fatalf("the token carries %d ms, want %d", got, now.UnixMilli())
	}
	sum := sha256.Sum256([]byte(tok))
	if !bytes.Equal(key, append(raw[:TokenTimeBytes:TokenTimeBytes], sum[:]...)) || len(key) != TokenKeyLen {
		t.Fatalf("key = %x, want the time and SHA-256 of the token", key)
	}
	if k, ok := TokenKey(tok); !ok || !EqualHash(k, key) || !CheckToken(tok, key) {
		t.Fatal("TokenKey does not find the key NewToken gave")
	}
	tok2, key2 := NewToken(now)
	if tok2 == tok || EqualHash(key, key2) {
		t.Fatal("two tokens are equal")
	}
	for _, bad := range []string{"", tok[:TokenLen-1], tok + "A", tok2, strings.ToUpper(tok), tok[:UntimedTokenLen]} {
		if CheckToken(bad, key) {
			t.Errorf("CheckToken(%q) matched", bad)
		}
	}
	if EqualHash(key, key[:31]) || EqualHash(nil, key) {
		t.Error("EqualHash matched a prefix")
	}
	// SHA-256("abc"), FIPS 180-2 Appendix B.1.
	if got := TokenHash("abc"); fmt.Sprintf("%x", got) != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("TokenHash(abc) = %x", got)
	}
}

// The keys of tokens sort as their creation times, so that the sessions of
// one stretch of time are neighbours in the store's B-tree; a time before
// 1970 counts as 1970.
func TestTokenKeysSortByTime(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)
	var prev []byte
	for i, at := range []time.Time{time.Unix(-5, 0), time.Unix(0, 0), t0, t0.Add(time.Millisecond), t0.Add(time.Hour), time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)} {
		_, k := NewToken(at)
		if i > 0 && bytes.Compare(prev[:TokenTimeBytes], k[:TokenTimeBytes]) > 0 {
			t.Fatalf("the key of %v sorts before the previous one", at)
		}
		if i > 1 && bytes.Compare(prev, k) >= 0 {
			t.Fatalf("the key of %v does not sort after the previous one", at)
		}
		prev = k
	}
}

// A token issued in the untimed form keeps finding its session: its key
// is SHA-256 of its text, as before.
func TestUntimedToken(t *testing.T) {
	tok := tokenSeed(t, "untimed.txt")
	k, ok := TokenKey(tok)
	sum := sha256.Sum256([]byte(tok))
	if !ok || !bytes.Equal(k, sum[:]) || !CheckToken(tok, sum[:]) {
		t.Fatalf("TokenKey(%q) = %x, %v; want SHA-256 of the token", tok, k, ok)
	}
}

// A token whose time was altered, or whose text is not one canonical
// base64url form of either length, finds nothing.
func TestTokenRefused(t *testing.T) {
	timed := tokenSeed(t, "timed.txt")
	key, ok := TokenKey(timed)
	if !ok {
		t.Fatalf("TokenKey(%q) refused", timed)
	}
	altered := tokenSeed(t, "timed-time-altered.txt")
	k, ok := TokenKey(altered)
	if !ok || bytes.Equal(k[:TokenTimeBytes], key[:TokenTimeBytes]) || bytes.Equal(k[TokenTimeBytes:], key[TokenTimeBytes:]) {
		t.Fatalf("the altered token's key %x shares a part with the original's %x", k, key)
	}
	// The original's random part with the key's time moved: not the key
	// of any token (the hash covers the time).
	if CheckToken(altered, key) || CheckToken(timed, k) {
		t.Fatal("an altered time matched")
	}
	for _, name := range []string{"untimed-noncanonical-refused.txt", "timed-std-alphabet-refused.txt"} {
		if k, ok := TokenKey(tokenSeed(t, name)); ok || k != nil {
			t.Errorf("TokenKey(%s) = %x, %v; want refused", name, k, ok)
		}
	}
	for _, tok := range []string{"", "x", timed[:TokenLen-1], timed + "A", timed[:UntimedTokenLen-1], strings.Repeat("=", TokenLen), timed[:TokenLen-2] + "=="} {
		if k, ok := TokenKey(tok); ok || k != nil {
			t.Errorf("TokenKey(%q) = %x, %v; want refused", tok, k, ok)
		}
	}
}

// FuzzTokenKey: TokenKey never panics; it accepts exactly the canonical
// unpadded base64url texts of TokenTimeBytes+TokenBytes or TokenBytes
// bytes, and their keys are the time and the hash, or the hash.
func FuzzTokenKey(f *testing.F) {
	for _, name := range []string{"timed.txt", "untimed.txt", "timed-time-altered.txt", "untimed-noncanonical-refused.txt", "timed-std-alphabet-refused.txt"} {
		f.Add(tokenSeed(f, name))
	}
	tok, _ := NewToken(time.Now())
	f.Add(tok)
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		k, ok := TokenKey(tok)
		raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
		canonical := err == nil && base64.RawURLEncoding.EncodeToString(raw) == tok
		sum := sha256.Sum256([]byte(tok))
		switch {
		case canonical && len(raw) == TokenTimeBytes+TokenBytes:
			if !ok || !bytes.Equal(k, append(raw[:TokenTimeBytes:TokenTimeBytes], sum[:]...)) {
				t.Fatalf("TokenKey(%q) = %x, %v; want the time and the hash", tok, k, ok)
			}
		case canonical && len(raw) == TokenBytes:
			if !ok || !bytes.Equal(k, sum[:]) {
				t.Fatalf("TokenKey(%q) = %x, %v; want the hash", tok, k, ok)
			}
		default:
			if ok || k != nil {
				t.Fatalf("TokenKey(%q) = %x, %v; want refused", tok, k, ok)
			}
		}
	})
}

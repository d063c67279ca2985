package secrets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// seeds adds every file matching pattern under the repository's
// testdata/secrets to the corpus of f.
func seeds(f *testing.F, pattern string, add func([]byte)) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "secrets", pattern))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// FuzzParseVerifier: ParseVerifier never panics, refuses with
// ErrBadVerifier, and what it accepts encodes back to exactly the input,
// within the parameter bounds.
func FuzzParseVerifier(f *testing.F) {
	seeds(f, "verifiers/*.txt", func(b []byte) { f.Add(strings.TrimSuffix(string(b), "\n")) })
	for _, v := range argon2idVectors {
		f.Add(v.encoded)
	}
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=,t=,p=$$")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVerifier(s)
		if err != nil {
			if v != nil || !errors.Is(err, ErrBadVerifier) {
				t.Fatalf("ParseVerifier(%q) = %v, %v", s, v, err)
			}
			return
		}
		if got := v.Encode(); got != s {
			t.Fatalf("ParseVerifier(%q).Encode() = %q", s, got)
		}
		p := v.Params()
		if p.check() != nil || int(p.SaltLen) != len(v.b.salt) || int(p.KeyLen) != len(v.b.hash) {
			t.Fatalf("ParseVerifier(%q) accepted %+v", s, p)
		}
	})
}

// FuzzParseKeyring: ParseKeyring never panics, refuses with a
// *KeyFileError, and what it accepts has a canonical file form that parses
// to the same key IDs and prints the same bytes again.
func FuzzParseKeyring(f *testing.F) {
	seeds(f, "keyfiles/*", func(b []byte) { f.Add(b) })
	f.Add([]byte("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"))
	f.Add([]byte("gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8="))
	f.Add([]byte(`{"current":"a","keys":{"a":"gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8"}}`))
	f.Add([]byte(`{"current":"a","keys":{"a":"x","a":"y"}}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKeyring(data)
		if err != nil {
			var kfe *KeyFileError
			if k != nil || !errors.As(err, &kfe) || !errors.Is(err, ErrKeyFile) {
				t.Fatalf("ParseKeyring = %v, %v", k, err)
			}
			return
		}
		b, err := k.MarshalKeyFile()
		if err != nil {
			t.Fatal(err)
		}
		k2, err := ParseKeyring(b)
		if err != nil {
			t.Fatalf("canonical form %s does not parse: %v", b, err)
		}
		b2, _ := k2.MarshalKeyFile()
		if !bytes.Equal(b, b2) || k.Current() != k2.Current() || !slices.Equal(k.IDs(), k2.IDs()) {
			t.Fatalf("round trip:\n%s\n%s", b, b2)
		}
		// The keyring works.
		s, err := k.Seal([]byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := k2.Open(s, nil); err != nil || string(pt) != "x" {
			t.Fatalf("Open after round trip: %q, %v", pt, err)
		}
	})
}

// FuzzOpen: Open never panics on any blob, and refuses whatever Seal did
// not make for that associated data.
func FuzzOpen(f *testing.F) {
	k, err := NewKeyring("k1", testKey(1))
	if err != nil {
		f.Fatal(err)
	}
	k.Rand = bytes.NewReader(testKey(100)[:24]) // the same blob in every fuzz worker
	good, err := k.Seal([]byte("secret"), []byte("ad"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.Blob, []byte("ad"))
	f.Add([]byte{1}, []byte(nil))
	f.Add(make([]byte, blobOverhead), []byte("ad"))
	f.Fuzz(func(t *testing.T, blob, ad []byte) {
		pt, err := k.Open(Sealed{KeyID: "k1", Blob: blob}, ad)
		if err == nil {
			if !bytes.Equal(blob, good.Blob) || !bytes.Equal(ad, []byte("ad")) || string(pt) != "secret" {
				t.Fatalf("Open accepted a forgery: %x %q -> %q", blob, ad, pt)
			}
			return
		}
		if pt != nil || !errors.Is(err, ErrOpen) {
			t.Fatalf("Open = %q, %v", pt, err)
		}
	})
}

// FuzzNormalizePassword: NormalizePassword never panics; it refuses with a
// *PasswordError exactly what is empty, too long, not UTF-8 or holds
// U+FFFD, and what it returns is valid UTF-8 in Normalization Form C,
// within MaxPasswordLen, and a fixed point.
func FuzzNormalizePassword(f *testing.F) {
	for _, s := range []string{"correct horse", "cafe\u0301", "caf\u00e9", "\u212b", "\u1100\u1161\u11a8",
		"pass\xffword", "\xed\xa0\x80", "\xc0\xaf", "\ufffd", "", strings.Repeat("\u0301", 400)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizePassword(s)
		bad := s == "" || len(s) > MaxPasswordLen || !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError)
		if err != nil {
			var pe *PasswordError
			if n != "" || !errors.As(err, &pe) || !errors.Is(err, ErrBadPassword) {
				t.Fatalf("NormalizePassword(%+q) = %+q, %v", s, n, err)
			}
			if !bad && len(norm.NFC.String(s)) <= MaxPasswordLen {
				t.Fatalf("NormalizePassword(%+q) refused acceptable text: %v", s, err)
			}
			return
		}
		if bad || !utf8.ValidString(n) || !norm.NFC.IsNormalString(n) || len(n) > MaxPasswordLen {
			t.Fatalf("NormalizePassword(%+q) = %+q", s, n)
		}
		if again, err := NormalizePassword(n); err != nil || again != n {
			t.Fatalf("NormalizePassword is not idempotent on %+q: %+q, %v", n, again, err)
		}
	})
}

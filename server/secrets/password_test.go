package secrets

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Reference vectors of the argon2 reference implementation (argon2id,
// version 0x13, password "password", salt "somesalt").
var argon2idVectors = []struct {
	params  Params
	encoded string
}{
	{Params{Memory: 256, Time: 2, Threads: 1, SaltLen: 8, KeyLen: 32}, "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{Params{Memory: 256, Time: 2, Threads: 2, SaltLen: 8, KeyLen: 32}, "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc"},
}

func TestArgon2idVectors(t *testing.T) {
	for _, v := range argon2idVectors {
		got, err := v.params.hash("password", strings.NewReader("somesalt"))
		if err != nil || got != v.encoded {
			t.Errorf("hash = %q, %v\nwant %q", got, err, v.encoded)
		}
		ok, needsRehash, err := v.params.Verify(v.encoded, "password")
		if !ok || needsRehash || err != nil {
			t.Errorf("Verify(%s) = %v, %v, %v", v.encoded, ok, needsRehash, err)
		}
		if ok, _, _ := v.params.Verify(v.encoded, "Password"); ok {
			t.Errorf("Verify(%s) accepted a wrong password", v.encoded)
		}
	}
}

func TestHashVerify(t *testing.T) {
	fast := FastParams()
	enc, err := HashPassword("hunter2 æøå", fast)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("HashPassword = %s", enc)
	}
	if enc2, _ := HashPassword("hunter2 æøå", fast); enc2 == enc {
		t.Fatal("two hashes share a salt")
	}
	tests := []struct {
		name            string
		pw              string
		want            Params
		ok, needsRehash bool
	}{
		{"right, same params", "hunter2 æøå", fast, true, false},
		{"wrong", "hunter2 æøa", fast, false, false},
		{"empty", "", fast, false, false},
		{"too long", strings.Repeat("x", MaxPasswordLen+1), fast, false, false},
		{"right, stronger params wanted", "hunter2 æøå", Params{Memory: 128, Time: 1, Threads: 1}, true, true},
		{"right, more passes wanted", "hunter2 æøå", Params{Memory: 64, Time: 2, Threads: 1}, true, true},
		{"right, longer salt wanted", "hunter2 æøå", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 32}, true, true},
		{"right, shorter salt wanted", "hunter2 æøå", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 8}, true, false},
		{"wrong, stronger params wanted", "nope", Params{Memory: 128, Time: 1, Threads: 1}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, needsRehash, err := tt.want.Verify(enc, tt.pw)
			if err != nil || ok != tt.ok || needsRehash != tt.needsRehash {
				t.Fatalf("Verify = %v, %v, %v; want %v, %v", ok, needsRehash, err, tt.ok, tt.needsRehash)
			}
		})
	}
	// VerifyPassword compares with DefaultParams: a fast verifier needs a rehash.
	if ok, needsRehash, err := VerifyPassword(enc, "hunter2 æøå"); !ok || !needsRehash || err != nil {
		t.Fatalf("VerifyPassword = %v, %v, %v", ok, needsRehash, err)
	}
}

func TestDefaultParams(t *testing.T) {
	if (Params{}).withDefaults() != DefaultParams() {
		t.Fatal("the zero Params is not DefaultParams")
	}
	for _, p := range []Params{DefaultParams(), FastParams()} {
		if err := p.check(); err != nil {
			t.Fatal(err)
		}
	}
	if testing.Short() {
		return
	}
	enc, err := HashPassword("correct horse", Params{})
	if err != nil || !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("HashPassword(default) = %s, %v", enc, err)
	}
	if ok, needsRehash, err := VerifyPassword(enc, "correct horse"); !ok || needsRehash || err != nil {
		t.Fatalf("VerifyPassword = %v, %v, %v", ok, needsRehash, err)
	}
}

func TestHashRefuses(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		p    Params
		want error
	}{
		{"empty password", "", FastParams(), ErrBadPassword},
		{"long password", strings.Repeat("x", MaxPasswordLen+1), FastParams(), ErrBadPassword},
		{"memory", "pw", Params{Memory: MaxMemory + 1}, ErrBadParams},
		{"memory below 8 per lane", "pw", Params{Memory: 15, Threads: 2}, ErrBadParams},
		{"time", "pw", Params{Memory: 64, Time: MaxTime + 1}, ErrBadParams},
		{"threads", "pw", Params{Memory: 1024, Threads: MaxThreads + 1}, ErrBadParams},
		{"salt", "pw", Params{Memory: 64, SaltLen: 4}, ErrBadParams},
		{"key", "pw", Params{Memory: 64, KeyLen: 8}, ErrBadParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := HashPassword(tt.pw, tt.p)
			if enc != "" || !errors.Is(err, tt.want) {
				t.Fatalf("HashPassword = %q, %v; want %v", enc, err, tt.want)
			}
		})
	}
	if _, err := FastParams().hash("pw", bytes.NewReader(nil)); err == nil {
		t.Fatal("hash without randomness succeeded")
	}
}

func TestParseVerifier(t *testing.T) {
	good := argon2idVectors[0].encoded
	hash := "$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"reference", good, true},
		{"max params", "$argon2id$v=19$m=262144,t=16,p=16$c29tZXNhbHQ" + hash, true},
		{"empty", "", false},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1), false},
		{"argon2d", strings.Replace(good, "argon2id", "argon2d", 1), false},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", false},
		{"version 16", strings.Replace(good, "v=19", "v=16", 1), false},
		{"no version", "$argon2id$m=256,t=2,p=1$c29tZXNhbHQ" + hash, false},
		{"absurd memory", strings.Replace(good, "m=256", "m=4194304", 1), false},
		{"memory just above the cap", strings.Replace(good, "m=256", "m=262145", 1), false},
		{"memory over uint32", strings.Replace(good, "m=256", "m=4294967296", 1), false},
		{"absurd time", strings.Replace(good, "t=2", "t=1000000", 1), false},
		{"zero time", strings.Replace(good, "t=2", "t=0", 1), false},
		{"zero lanes", strings.Replace(good, "p=1", "p=0", 1), false},
		{"256 lanes", strings.Replace(good, "p=1", "p=256", 1), false},
		{"memory below 8 per lane", strings.Replace(strings.Replace(good, "m=256", "m=15", 1), "p=1", "p=2", 1), false},
		{"leading zero", strings.Replace(good, "m=256", "m=0256", 1), false},
		{"plus sign", strings.Replace(good, "t=2", "t=+2", 1), false},
		{"order", strings.Replace(good, "m=256,t=2", "t=2,m=256", 1), false},
		{"keyid param", strings.Replace(good, "p=1", "p=1,keyid=x", 1), false},
		{"padded salt", strings.Replace(good, "c29tZXNhbHQ", "c29tZXNhbHQ=", 1), false},
		{"url-safe hash", strings.Replace(good, "/", "_", 1), false},
		{"non-zero padding bits", strings.Replace(good, "c29tZXNhbHQ", "c29tZXNhbHR", 1), false},
		{"short salt", strings.Replace(good, "c29tZXNhbHQ", "c29tZQ", 1), false},
		{"short hash", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR", false},
		{"no hash", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ", false},
		{"trailing $", good + "$", false},
		{"leading space", " " + good, false},
		{"huge", good + strings.Repeat("A", 1000), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ParseVerifier(tt.in)
			if tt.ok {
				if err != nil || v.Encode() != tt.in {
					t.Fatalf("ParseVerifier = %v, %v", v, err)
				}
				return
			}
			if v != nil || !errors.Is(err, ErrBadVerifier) {
				t.Fatalf("ParseVerifier = %v, %v; want ErrBadVerifier", v, err)
			}
			if strings.Contains(err.Error(), "nf65EOgL") {
				t.Fatalf("error quotes the hash: %v", err)
			}
			// Verify reports the same error.
			if ok, _, err := VerifyPassword(tt.in, "password"); ok || !errors.Is(err, ErrBadVerifier) {
				t.Fatalf("VerifyPassword = %v, %v", ok, err)
			}
		})
	}
	var zero Verifier
	if ok, _ := zero.Check("password"); zero.Encode() != "" || ok {
		t.Fatal("the zero Verifier encodes or matches")
	}
}

// TestNormalizePassword: passwords are hashed in Normalization Form C
// (NIST SP 800-63B §5.1.1.2) and must be valid UTF-8 text.
func TestNormalizePassword(t *testing.T) {
	tests := []struct {
		name, in, want string
		why            string // part of the error, "" for none
	}{
		{"ASCII", "correct horse", "correct horse", ""},
		{"NFC stays", "caf\u00e9", "caf\u00e9", ""},
		{"NFD composes", "cafe\u0301", "caf\u00e9", ""},
		{"Angstrom sign", "\u212b", "\u00c5", ""},
		{"Hangul jamo", "\u1100\u1161\u11a8", "\uac01", ""},
		{"compatibility forms stay (NFC, not NFKC)", "\uff41\ufb01", "\uff41\ufb01", ""},
		{"empty", "", "", "is empty"},
		{"too long", strings.Repeat("x", MaxPasswordLen+1), "", "longer than"},
		{"invalid byte", "pass\xffword", "", "not valid UTF-8"},
		{"truncated", "caf\xc3", "", "not valid UTF-8"},
		{"overlong", "\xc0\xaf", "", "not valid UTF-8"},
		{"encoded surrogate", "\xed\xa0\x80", "", "not valid UTF-8"},
		{"replacement character", "pass\ufffdword", "", "U+FFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizePassword(tt.in)
			if tt.why == "" {
				if err != nil || got != tt.want {
					t.Fatalf("NormalizePassword(%+q) = %+q, %v; want %+q", tt.in, got, err, tt.want)
				}
				return
			}
			var pe *PasswordError
			if !errors.Is(err, ErrBadPassword) || !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("NormalizePassword(%+q) = %v, want a *PasswordError saying %q", tt.in, err, tt.why)
			}
			if tt.in != "" && strings.Contains(err.Error(), tt.in) {
				t.Fatalf("the error quotes the password: %v", err)
			}
			if _, err := FastParams().Hash(tt.in); !errors.Is(err, ErrBadPassword) {
				t.Fatalf("Hash(%+q) = %v, want ErrBadPassword", tt.in, err)
			}
		})
	}
}

// TestVerifyNormalizes: a verifier of one spelling matches every
// canonically equivalent one; invalid text matches nothing; a verifier made
// of non-NFC bytes before normalization still matches those bytes and asks
// for a rehash.
func TestVerifyNormalizes(t *testing.T) {
	fast := FastParams()
	nfc, nfd := "r\u00f8d gr\u00f8d med fl\u00f8de \u00e9", "r\u00f8d gr\u00f8d med fl\u00f8de e\u0301"
	enc, err := fast.Hash(nfd)
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{nfc, nfd} {
		if ok, rehash, err := fast.Verify(enc, pw); !ok || rehash || err != nil {
			t.Fatalf("Verify(%+q) = %v, %v, %v", pw, ok, rehash, err)
		}
	}
	for _, pw := range []string{"r\u00f8d gr\u00f8d med fl\u00f8de e", nfc + "\xff", nfc[:len(nfc)-1]} {
		if ok, _, err := fast.Verify(enc, pw); ok || err != nil {
			t.Fatalf("Verify(%+q) = %v, %v; want no match", pw, ok, err)
		}
	}
	// Two invalid byte strings no longer meet in U+FFFD.
	bad, err := fast.Hash("pass\ufffd")
	if err == nil {
		t.Fatalf("Hash of U+FFFD = %s", bad)
	}

	// A verifier of the NFD bytes themselves, as made before passwords
	// were normalized.
	salt := []byte("0123456789abcdef")
	p := fast.withDefaults()
	legacy := Verifier{params: p, b: &verifierBytes{salt: salt}}
	legacy.b.hash, err = idKey([]byte(nfd), salt, p)
	if err != nil {
		t.Fatal(err)
	}
	if ok, rehash, err := fast.Verify(legacy.Encode(), nfd); !ok || !rehash || err != nil {
		t.Fatalf("Verify of a pre-normalization verifier = %v, %v, %v; want a match that needs a rehash", ok, rehash, err)
	}
}

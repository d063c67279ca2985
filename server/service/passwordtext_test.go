package service_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
)

// Spellings of passwords for the NIST SP 800-63B §5.1.1.2 tests: the same
// text in Normalization Forms C and D, and bytes that are not text.
const (
	cafeNFC  = "caf\u00e9 au lait"        // é as one code point
	cafeNFD  = "cafe\u0301 au lait"       // e and a combining acute accent
	angstrom = "\u212b ngstr\u00f6m unit" // ANGSTROM SIGN: NFC makes it U+00C5
	aRing    = "\u00c5 ngstr\u00f6m unit"
	hangulS  = "\u1100\u1161\u11a8 password" // conjoining jamo: NFC composes 각
	hangulC  = "\uac01 password"
)

// TestPasswordsAreNormalized: a password set in one Unicode spelling logs
// in with any canonically equivalent one (NFC before hashing), and a
// different text does not.
func TestPasswordsAreNormalized(t *testing.T) {
	tests := []struct {
		name, set, login string
		ok               bool
	}{
		{"NFD set, NFC login", cafeNFD, cafeNFC, true},
		{"NFC set, NFD login", cafeNFC, cafeNFD, true},
		{"NFC set, NFC login", cafeNFC, cafeNFC, true},
		{"Angstrom sign set, A with ring login", angstrom, aRing, true},
		{"A with ring set, Angstrom sign login", aRing, angstrom, true},
		{"jamo set, syllable login", hangulS, hangulC, true},
		{"accent dropped", cafeNFC, "cafe au lait", false},
		{"compatibility form is another password (NFC, not NFKC)", "\uff41bc password", "abc password", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.svc.CreateIdentity(e.ctx, support, service.CreateIdentityRequest{ID: "alice", Password: tt.set})
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.loginPassword("alice", tt.login)
			if tt.ok && err != nil {
				t.Fatalf("login with %+q after setting %+q: %v", tt.login, tt.set, err)
			}
			if !tt.ok && !errors.Is(err, service.ErrWrongPassword) {
				t.Fatalf("login with %+q after setting %+q: %v, want a wrong password", tt.login, tt.set, err)
			}
		})
	}
}

// badPasswords are passwords that are not valid UTF-8 text; JSON decoding
// would have made each of them U+FFFD, so that they all matched each
// other.
var badPasswords = []struct{ name, pw, why string }{
	{"lone continuation byte", "pass\x80word", "not valid UTF-8"},
	{"0xFF", "pass\xffword", "not valid UTF-8"},
	{"truncated sequence", "caf\xc3", "not valid UTF-8"},
	{"overlong slash", "pass\xc0\xafword", "not valid UTF-8"},
	{"UTF-8 encoded surrogate", "pass\xed\xa0\x80word", "not valid UTF-8"},
	{"replacement character", "pass\ufffdword", "U+FFFD"},
}

// TestInvalidUTF8PasswordsAreRefused: a password that is not valid UTF-8
// text is refused with ErrInvalid (400) when it is set and when it is
// tried, and a refused login counts nothing against the password.
func TestInvalidUTF8PasswordsAreRefused(t *testing.T) {
	for _, tt := range badPasswords {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.svc.CreateIdentity(e.ctx, support, service.CreateIdentityRequest{ID: "bob", Password: tt.pw})
			if !errors.Is(err, service.ErrInvalid) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("CreateIdentity with %+q: %v, want ErrInvalid saying %q", tt.pw, err, tt.why)
			}
			pw := password(e.identity("alice"))
			_, err = e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "password", Password: tt.pw})
			if !errors.Is(err, service.ErrInvalid) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("AddAuthenticator with %+q: %v, want ErrInvalid saying %q", tt.pw, err, tt.why)
			}
			for range 5 {
				_, err = e.loginPassword("alice", tt.pw)
				if !errors.Is(err, service.ErrInvalid) || !strings.Contains(err.Error(), tt.why) {
					t.Fatalf("login with %+q: %v, want ErrInvalid saying %q", tt.pw, err, tt.why)
				}
			}
			if a := e.auth(pw); a.Failures != 0 || a.State != "active" {
				t.Fatalf("after 5 refused logins: %s with %d failures, want active with 0", a.State, a.Failures)
			}
			if _, err := e.loginPassword("alice", "correct horse"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBusyHashingCountsNothing: when the argon2id memory budget is taken,
// a password login is answered ErrBusy (a *BusyError with RetryAfter), is
// not counted as a failure whatever the guess, and an add stores nothing.
func TestBusyHashingCountsNothing(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	if _, err := e.svc.CreateIdentity(e.ctx, support, service.CreateIdentityRequest{ID: "carol"}); err != nil {
		t.Fatal(err)
	}
	lim := secrets.NewLimiter(uint64(secrets.FastParams().Memory), 0)
	prev := secrets.SetLimiter(lim)
	t.Cleanup(func() { secrets.SetLimiter(prev) })
	release, err := lim.Acquire(e.ctx, secrets.FastParams().Memory)
	if err != nil {
		t.Fatal(err)
	}
	for _, guess := range []string{"wrong", "wrong again", "correct horse", "wrong"} {
		_, err := e.loginPassword("alice", guess)
		var be *service.BusyError
		if !errors.Is(err, service.ErrBusy) || !errors.As(err, &be) || be.RetryAfter <= 0 {
			t.Fatalf("login while busy: %v, want a *BusyError", err)
		}
	}
	_, err = e.svc.AddAuthenticator(e.ctx, support, "carol", service.AddRequest{Kind: "password", Password: "another one"})
	if !errors.Is(err, service.ErrBusy) {
		t.Fatalf("add while busy: %v", err)
	}
	// The quota comes before any hashing: alice's second password is
	// refused as such, busy or not.
	_, err = e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "password", Password: "another one"})
	if !errors.Is(err, domain.ErrQuotaExceeded) {
		t.Fatalf("a second password while busy: %v, want the quota's refusal", err)
	}
	if a := e.auth(pw); a.Failures != 0 {
		t.Fatalf("%d failures counted while busy", a.Failures)
	}
	if v, _ := e.svc.Identity(e.ctx, support, "carol"); len(v.Authenticators) != 0 {
		t.Fatalf("an add refused busy stored something: %d authenticators", len(v.Authenticators))
	}
	release()
	if _, err := e.loginPassword("alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
}

// TestPINsAreASCIIDigits: an app PIN is six ASCII digits, not text: other
// digits (fullwidth, Arabic-Indic), invalid bytes and U+FFFD are refused
// with ErrInvalid when the PIN is set and when it is tried, and a refused
// login counts nothing.
func TestPINsAreASCIIDigits(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	app, key, err := e.addApp("alice", support, "246810")
	if err != nil {
		t.Fatal(err)
	}
	for _, pin := range []string{"\uff12\uff14\uff16\uff18\uff11\uff10", "\u0662\u0664\u0666\u0668\u0661\u0660", "24681\xff", "2468\ufffd", "24681"} {
		_, pub := appKey(t)
		_, err := e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "app", PublicKey: pub, PIN: pin})
		if !errors.Is(err, service.ErrInvalid) {
			t.Fatalf("adding an app with PIN %+q: %v, want ErrInvalid", pin, err)
		}
		if _, err := e.loginApp("alice", app.ID, key, pin); !errors.Is(err, service.ErrInvalid) {
			t.Fatalf("logging in with PIN %+q: %v, want ErrInvalid", pin, err)
		}
	}
	if a := e.auth(app.ID); a.Failures != 0 {
		t.Fatalf("%d failures counted for refused PINs", a.Failures)
	}
}

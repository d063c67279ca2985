package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
)

// passwordRaw sends the first step of a password login of identity id
// with the JSON body given byte for byte.
func (s *server) passwordRaw(id, body string) *response {
	s.t.Helper()
	return s.do("POST", "/v1/identities/"+id+"/login/password", "", body)
}

// failures returns the consecutive failures of authenticator aid.
func (s *server) failures(id, aid string) int {
	s.t.Helper()
	r := s.do("GET", "/v1/identities/"+id, supportToken, nil)
	s.want(r, 200, "")
	var v service.IdentityView
	r.decode(s.t, &v)
	for _, a := range v.Authenticators {
		if a.ID == aid {
			return a.Failures
		}
	}
	s.t.Fatalf("identity %s has no authenticator %s", id, aid)
	return 0
}

// TestPasswordSpellingsOverHTTP: a password set in one Unicode spelling
// (JSON escapes or raw UTF-8) logs in with a canonically equivalent one
// (NFC before hashing, NIST SP 800-63B §5.1.1.2).
func TestPasswordSpellingsOverHTTP(t *testing.T) {
	s := start(t)
	r := s.do("POST", "/v1/identities", supportToken, `{"id":"alice","password":"cafe\u0301 cr\u00e8me"}`)
	s.want(r, 201, "")
	var v service.IdentityView
	r.decode(t, &v)
	pw := passwordID(v)
	for _, spelling := range []string{
		`"café crème"`,               // NFC, raw UTF-8
		`"cafe\u0301 cre\u0300me"`,   // NFD, escaped
		"\"cafe\u0301 cre\u0300me\"", // NFD, raw UTF-8
	} {
		s.want(s.passwordRaw("alice", `{"password":`+spelling+`}`), 200, "")
	}
	s.want(s.passwordRaw("alice", `{"password":"cafe creme"}`), 401, "wrong_password")
	if n := s.failures("alice", pw); n != 1 {
		t.Errorf("%d failures after one wrong spelling, want 1", n)
	}
}

// TestInvalidUTF8PasswordsOverHTTP: bytes that are not UTF-8 in a body,
// and JSON escapes that decode to no character (a lone surrogate) or to
// U+FFFD, are refused with 400 when a password is set and when one is
// tried, and a refused login counts nothing. Before, each became U+FFFD,
// so that different passwords matched one verifier.
func TestInvalidUTF8PasswordsOverHTTP(t *testing.T) {
	s := start(t)
	pw := passwordID(s.createIdentity("alice", "correct horse"))
	tests := []struct{ name, password, why string }{
		{"byte 0xFF", "pass\xffword", "not valid UTF-8"},
		{"lone continuation byte", "pass\x80word", "not valid UTF-8"},
		{"encoded surrogate", "pass\xed\xa0\x80word", "not valid UTF-8"},
		{"escaped lone surrogate", `pass\ud800word`, "U+FFFD"},
		{"escaped replacement character", `pass\ufffdword`, "U+FFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(what string, r *response) {
				t.Helper()
				s.want(r, 400, "bad_request")
				if m, _ := r.body["error"].(map[string]any)["message"].(string); !strings.Contains(m, tt.why) {
					t.Fatalf("%s: message %q does not say %q", what, m, tt.why)
				}
			}
			check("create", s.do("POST", "/v1/identities", supportToken, `{"id":"bob","password":"`+tt.password+`"}`))
			check("add", s.do("POST", "/v1/identities/alice/authenticators", supportToken, `{"kind":"password","password":"`+tt.password+`"}`))
			for range 4 {
				check("login", s.passwordRaw("alice", `{"password":"`+tt.password+`"}`))
			}
			if n := s.failures("alice", pw); n != 0 {
				t.Fatalf("%d failures counted for refused passwords", n)
			}
		})
	}
	s.want(s.passwordLogin("alice", "correct horse", ""), 200, "")
}

// TestBusyAnswers503: while the argon2id memory budget is taken, password
// adds, password logins and app logins (whose PIN is hashed) are answered
// 503 busy with Retry-After, and nothing is counted or stored.
func TestBusyAnswers503(t *testing.T) {
	s := start(t)
	pw := passwordID(s.createIdentity("alice", "correct horse"))
	app, key := s.addApp("alice", supportToken, appPIN)
	s.want(s.do("POST", "/v1/identities", supportToken, map[string]any{"id": "carol"}), 201, "")
	lim := secrets.NewLimiter(uint64(secrets.FastParams().Memory), 0)
	prev := secrets.SetLimiter(lim)
	t.Cleanup(func() { secrets.SetLimiter(prev) })
	release, err := lim.Acquire(context.Background(), secrets.FastParams().Memory)
	if err != nil {
		t.Fatal(err)
	}
	busy := func(what string, r *response) {
		t.Helper()
		s.want(r, 503, "busy")
		if ra := r.header.Get("Retry-After"); ra != "1" {
			t.Fatalf("%s: Retry-After %q, want 1", what, ra)
		}
	}
	busy("add", s.do("POST", "/v1/identities/carol/authenticators", supportToken, map[string]any{"kind": "password", "password": "another"}))
	// The quota is checked before any hashing: a second password of alice
	// is refused as such, busy or not.
	s.want(s.do("POST", "/v1/identities/alice/authenticators", supportToken, map[string]any{"kind": "password", "password": "another"}), 409, "quota_exceeded")
	busy("create", s.do("POST", "/v1/identities", supportToken, map[string]any{"id": "bob", "password": "a password"}))
	for _, guess := range []string{"wrong", "wrong", "wrong", "correct horse"} {
		busy("login", s.passwordLogin("alice", guess, ""))
	}
	for _, pin := range []string{"000000", "000000", "000000", appPIN} {
		busy("app login", s.appLogin("alice", app, key, pin))
	}
	if n, m := s.failures("alice", pw), s.failures("alice", app); n != 0 || m != 0 {
		t.Fatalf("%d password and %d app failures counted while busy", n, m)
	}
	s.want(s.do("GET", "/v1/identities/bob", supportToken, nil), 404, "not_found")
	r := s.do("GET", "/v1/identities/carol", supportToken, nil)
	s.want(r, 200, "")
	var carol service.IdentityView
	r.decode(t, &carol)
	if len(carol.Authenticators) != 0 {
		t.Fatalf("the busy add stored %+v", carol.Authenticators)
	}
	release()
	s.want(s.passwordLogin("alice", "correct horse", ""), 200, "")
	s.want(s.appLogin("alice", app, key, appPIN), 200, "")
}

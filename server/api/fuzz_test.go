package api_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/authbench/authbench/server/api/apitest"
)

// FuzzHandler sends arbitrary methods, paths, content types and bodies to
// the API, with and without a support token: no answer is a 5xx (or a
// panic), and every error answer is a JSON error.
func FuzzHandler(f *testing.F) {
	s := start(f)
	contract, err := apitest.New(func(error) {})
	if err != nil {
		f.Fatal(err)
	}
	pw := passwordID(s.createIdentity("alice", "correct horse"))
	f.Add("POST", "/v1/identities", "application/json", []byte(`{"id":"bob"}`), true)
	f.Add("GET", "/v1/identities/alice", "", []byte(nil), true)
	f.Add("POST", "/v1/identities/alice/authenticators", "application/json", []byte(`{"kind":"chip"}`), true)
	f.Add("POST", "/v1/identities/alice/login/password", "application/json", []byte(`{"password":"p","second":"kv-1"}`), false)
	f.Add("POST", "/v1/identities/alice/login/second", "application/json", []byte(`{"ceremony":"t2.x.y","authenticator":"kv-1"}`), false)
	f.Add("POST", "/v1/identities/alice/login/app", "application/json", []byte(`{"authenticator":"app-1"}`), false)
	f.Add("POST", "/v1/identities/alice/login/finish", "application/json", []byte(`{"ceremony":"x","code":"123456"}`), false)
	f.Add("DELETE", "/v1/identities/alice/sessions/ses-1", "", []byte(nil), true)
	f.Add("POST", "/v1/logout", "application/json", []byte(`{}`), true)
	f.Add("POST", "/v1/identities/alice/authenticators/"+pw+"/activate", "application/json", []byte(`{"code":"123456"}`), true)
	f.Add("GET", "/v1/identities/alice/audit?after=1&limit=2", "", []byte(nil), true)
	f.Add("POST", "/v1/pskc", "application/pskc+xml", []byte(`<KeyContainer Version="1.0"/>`), true)
	f.Add("GET", "/v1/../healthz", "", []byte(nil), false)
	f.Fuzz(func(t *testing.T, method, target, ct string, body []byte, auth bool) {
		if !validMethod(method) {
			return
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		req := httptest.NewRequest("GET", "http://authbench.test/", bytes.NewReader(body))
		req.Method = method
		req.URL = u
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if auth {
			req.Header.Set("Authorization", "Bearer "+supportToken)
		}
		w := httptest.NewRecorder()
		s.srv.Handler.ServeHTTP(w, req)
		if err := contract.Check(req, body, w.Code, w.Header(), w.Body.Bytes()); err != nil {
			t.Fatal(err)
		}
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, target, w.Code, w.Body)
		}
		if w.Code >= 400 && method != "HEAD" {
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" {
				t.Fatalf("%s %q: %d %q is not a JSON error", method, target, w.Code, w.Body)
			}
		}
	})
}

// validMethod reports whether m is a token net/http would accept.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`()<>@,;:\"/[]?={}`), c) >= 0 {
			return false
		}
	}
	return true
}

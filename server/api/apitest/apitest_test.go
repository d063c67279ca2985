package apitest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authbench/authbench/server/api/apitest"
)

const token = "support-token-for-tests-0123456789"

// exchange is one request and the answer a server gave it.
type exchange struct {
	name   string
	method string
	target string
	token  string
	ctype  string
	body   string
	status int
	header map[string]string
	answer string
}

const identity = `{"id":"alice","state":"active","created_at":"2026-03-02T09:00:00Z","version":1,"authenticators":[]}`

func errBody(code string) string {
	return `{"error":{"code":"` + code + `","message":"Words."}}`
}

func (x exchange) check(v *apitest.Validator) error {
	var body *strings.Reader
	if x.body != "" {
		body = strings.NewReader(x.body)
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(x.method, x.target, body)
	if x.token != "" {
		req.Header.Set("Authorization", "Bearer "+x.token)
	}
	if x.ctype != "" {
		req.Header.Set("Content-Type", x.ctype)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	for k, val := range x.header {
		h.Set(k, val)
	}
	return v.Check(req, []byte(x.body), x.status, h, []byte(x.answer))
}

// The validator passes the answers the document describes and fails each
// kind of answer it does not: the property the API tests rely on.
func TestValidatorCatchesUndocumentedAnswers(t *testing.T) {
	var reported []error
	v, err := apitest.New(func(err error) { reported = append(reported, err) })
	if err != nil {
		t.Fatal(err)
	}
	good := []exchange{
		{name: "created", method: "POST", target: "/v1/identities", token: token, ctype: "application/json", body: `{"id":"alice"}`,
			status: 201, header: map[string]string{"Location": "/v1/identities/alice"}, answer: identity},
		{name: "credential revoked on finish", method: "POST", target: "/v1/identities/alice/login/finish", ctype: "application/json",
			body: `{"ceremony":"t2.a.b","code":"123456"}`, status: 409, answer: errBody("credential_revoked")},
		{name: "wrong pin with details", method: "POST", target: "/v1/identities/alice/login/finish", ctype: "application/json",
			body: `{"ceremony":"t2.a.b","pin":"428613","signature":"AAAA"}`, status: 401,
			answer: `{"error":{"code":"wrong_pin","message":"Wrong PIN.","details":{"failures":1,"state":"active"}}}`},
		{name: "rate limited", method: "POST", target: "/v1/identities/alice/login/password", ctype: "application/json",
			body: `{"password":"x"}`, status: 429, header: map[string]string{"Retry-After": "3"}, answer: errBody("rate_limited")},
		{name: "invalid request refused", method: "POST", target: "/v1/identities", token: token, ctype: "application/json",
			body: `{"id":7}`, status: 400, answer: errBody("bad_request")},
		{name: "busy", method: "POST", target: "/v1/identities/alice/login/password", ctype: "application/json",
			body: `{"password":"x"}`, status: 503, header: map[string]string{"Retry-After": "1"}, answer: errBody("busy")},
		{name: "unavailable", method: "POST", target: "/v1/identities/alice/login/password", ctype: "application/json",
			body: `{"password":"x"}`, status: 503, answer: errBody("unavailable")},
		{name: "unknown path", method: "GET", target: "/v2/identities", status: 404, answer: errBody("not_found")},
		{name: "other method", method: "DELETE", target: "/v1/identities/alice", token: token, status: 405,
			header: map[string]string{"Allow": "GET"}, answer: errBody("method_not_allowed")},
		{name: "no token", method: "GET", target: "/v1/identities/alice", status: 401,
			header: map[string]string{"WWW-Authenticate": `Bearer realm="authbench"`}, answer: errBody("unauthorized")},
	}
	for _, x := range good {
		if err := x.check(v); err != nil {
			t.Errorf("%s: %v", x.name, err)
		}
	}
	bad := []exchange{
		{name: "undocumented status", method: "GET", target: "/healthz", status: 418, answer: errBody("internal")},
		{name: "undocumented code for the status", method: "POST", target: "/v1/identities/alice/login/finish", ctype: "application/json",
			body: `{"ceremony":"t2.a.b","code":"123456"}`, status: 409, answer: errBody("quota_exceeded")},
		{name: "a code nobody documents", method: "GET", target: "/v1/identities/alice", token: token, status: 404, answer: errBody("gone_fishing")},
		{name: "429 without Retry-After", method: "POST", target: "/v1/identities/alice/login/password", ctype: "application/json",
			body: `{"password":"x"}`, status: 429, answer: errBody("rate_limited")},
		{name: "accepted what the contract refuses", method: "POST", target: "/v1/identities", token: token, ctype: "application/json",
			body: `{"id":7}`, status: 201, header: map[string]string{"Location": "/v1/identities/7"}, answer: identity},
		{name: "accepted without a token", method: "GET", target: "/v1/identities/alice", status: 200, answer: identity},
		{name: "body not the schema", method: "GET", target: "/v1/identities/alice", token: token, status: 200, answer: `{"id":"alice"}`},
		{name: "unknown field in the answer", method: "GET", target: "/v1/identities/alice", token: token, status: 200,
			answer: strings.Replace(identity, `"version":1`, `"version":1,"secret":"x"`, 1)},
		{name: "unknown path answered", method: "GET", target: "/v1/secrets", token: token, status: 200, answer: `{}`},
		{name: "405 without Allow", method: "DELETE", target: "/v1/identities/alice", token: token, status: 405, answer: errBody("method_not_allowed")},
		{name: "405 with a wrong Allow", method: "DELETE", target: "/v1/identities/alice", token: token, status: 405,
			header: map[string]string{"Allow": "GET, POST"}, answer: errBody("method_not_allowed")},
		{name: "201 without Location", method: "POST", target: "/v1/identities", token: token, ctype: "application/json",
			body: `{"id":"alice"}`, status: 201, answer: identity},
		{name: "busy without Retry-After", method: "POST", target: "/v1/identities/alice/login/password", ctype: "application/json",
			body: `{"password":"x"}`, status: 503, answer: errBody("busy")},
		{name: "unauthorized without WWW-Authenticate", method: "POST", target: "/v1/identities/alice/authenticators/kv-1/activate", token: "x",
			ctype: "application/json", body: `{"code":"123456"}`, status: 401, answer: errBody("unauthorized")},
		{name: "an error that is not JSON", method: "GET", target: "/v1/identities/alice", token: token, status: 404, answer: "not found"},
	}
	for _, x := range bad {
		n := len(reported)
		if err := x.check(v); err == nil || len(reported) == n {
			t.Errorf("%s: passed", x.name)
		} else {
			t.Logf("%s: %v", x.name, err)
		}
	}
	if s := v.Stats(); s.Requests != len(good)+len(bad) || s.Failures != len(bad) {
		t.Errorf("stats %+v", s)
	}
}

// A client's transport wrapped by Validator.Transport checks what a real
// server answers over HTTP: a documented exchange passes with both bodies
// intact on their way, and an undocumented answer is reported.
func TestTransportCatchesUndocumentedAnswers(t *testing.T) {
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/identities":
			w.Header().Set("Location", "/v1/identities/alice")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, identity)
		default: // a field the schema does not have
			io.WriteString(w, strings.Replace(identity, `"version":1`, `"version":1,"secret":"x"`, 1))
		}
	}))
	defer srv.Close()
	var reported []error
	v, err := apitest.New(func(err error) { reported = append(reported, err) })
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: v.Transport(srv.Client().Transport)}

	do := func(method, path, body string) string {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	if got := do("POST", "/v1/identities", `{"id":"alice"}`); got != identity || gotBody != `{"id":"alice"}` {
		t.Errorf("through the transport the server read %q and the client %q", gotBody, got)
	}
	if len(reported) != 0 {
		t.Errorf("a documented exchange reported: %v", reported)
	}
	if got := do("GET", "/v1/identities/alice", ""); !strings.Contains(got, `"secret":"x"`) {
		t.Errorf("the client read %q", got)
	}
	if len(reported) != 1 {
		t.Fatalf("an undocumented answer through the transport: %d reports %v", len(reported), reported)
	}
	t.Logf("reported: %v", reported[0])
	if s := v.Stats(); s.Requests != 2 || s.Failures != 1 {
		t.Errorf("stats %+v", s)
	}
}

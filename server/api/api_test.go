package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/server/api"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
)

// The whole lifecycle through HTTP: every endpoint, owner and support.
func TestLifecycleOverHTTP(t *testing.T) {
	s := start(t)
	alice := s.createIdentity("alice", "correct horse")
	pw := passwordID(alice)
	if alice.ID != "alice" || pw == "" || alice.Authenticators[0].State != "active" {
		t.Fatalf("%+v", alice)
	}
	r := s.do("GET", "/v1/identities/alice", supportToken, nil)
	s.want(r, 200, "")

	// Owner session from the password.
	sess := s.session("alice", pw, "correct horse")
	s.want(s.do("GET", "/v1/identities/alice", sess, nil), 200, "")

	// An app, added and activated by the owner.
	key, pub := newAppKey(t)
	r = s.do("POST", "/v1/identities/alice/authenticators", sess, map[string]any{"kind": "app", "public_key": pub, "pin": "428613", "label": "phone"})
	s.want(r, 201, "")
	var addApp struct {
		Authenticator service.AuthenticatorView
		Activation    service.AppActivation
	}
	r.decode(t, &addApp)
	sig, _ := servicetest.SignChallenge(key, addApp.Activation.Challenge)
	r = s.do("POST", "/v1/identities/alice/authenticators/"+addApp.Authenticator.ID+"/activate", sess,
		map[string]any{"ceremony": addApp.Activation.Ceremony, "signature": sig})
	s.want(r, 200, "")
	appID := addApp.Authenticator.ID
	appLogin := func(pin string) *response {
		return s.login("alice", appID, map[string]any{"sign": func(b service.BeginLoginResult) map[string]any {
			sig, _ := servicetest.SignChallenge(key, b.Challenge)
			return map[string]any{"pin": pin, "signature": sig}
		}})
	}
	s.want(appLogin("428613"), 200, "")

	// A chip.
	c := newChip(t, "chip-1")
	ch := s.addChip("alice", supportToken, c)
	s.want(s.chipLogin("alice", ch.ID, c), 200, "")

	// A code display: import, add, activate, log in.
	dev := servicetest.CodeDevice{Serial: "KV-1", Secret: []byte("12345678901234567890")}
	doc, _ := servicetest.PSKC(pskcKey, dev)
	r = s.do("POST", "/v1/pskc", supportToken, doc, "application/pskc+xml")
	s.want(r, 200, "")
	if !strings.Contains(string(r.raw), `"imported":1`) {
		t.Fatalf("%s", r.raw)
	}
	r = s.do("POST", "/v1/identities/alice/authenticators", supportToken, map[string]any{"kind": "code-display", "serial": "KV-1"})
	s.want(r, 201, "")
	if !strings.Contains(string(r.raw), `"activation":{"needs":"code"}`) {
		t.Fatalf("%s", r.raw)
	}
	var addCode service.AddResult
	r.decode(t, &addCode)
	codeID := addCode.Authenticator.ID
	s.want(s.do("POST", "/v1/identities/alice/authenticators/"+codeID+"/activate", supportToken,
		map[string]any{"code": dev.Code(s.clk.Now())}), 200, "")
	s.clk.Advance(30 * time.Second)
	s.want(s.login("alice", codeID, map[string]any{"code": dev.Code(s.clk.Now())}), 200, "")
	r = s.login("alice", codeID, map[string]any{"code": dev.Code(s.clk.Now())})
	s.want(r, 401, "code_replayed")

	// Three wrong PINs suspend the app; the third answer says so.
	for i := 1; i <= 3; i++ {
		r = appLogin("000001")
		s.want(r, 401, "wrong_pin")
		if r.detail("failures") != float64(i) {
			t.Fatalf("attempt %d: %s", i, r.raw)
		}
	}
	if r.detail("state") != "suspended" {
		t.Fatalf("%s", r.raw)
	}
	s.want(appLogin("428613"), 403, "authenticator_suspended")
	// Self-service with the password session (another authenticator).
	r = s.do("POST", "/v1/identities/alice/authenticators/"+appID+"/reactivate", sess, nil)
	s.want(r, 200, "")
	s.want(appLogin("428613"), 200, "")

	// Block the chip: wiped; re-add the same chip.
	r = s.do("POST", "/v1/identities/alice/authenticators/"+ch.ID+"/block", sess, map[string]any{"reason": "lost"})
	s.want(r, 200, "")
	if !strings.Contains(string(r.raw), `"element":{"wiped":true}`) {
		t.Fatalf("%s", r.raw)
	}
	ch2 := s.addChip("alice", sess, c)
	s.want(s.chipLogin("alice", ch2.ID, c), 200, "")

	// Identity block by support.
	s.want(s.do("POST", "/v1/identities/alice/block", sess, map[string]any{"reason": "misuse"}), 403, "forbidden")
	s.want(s.do("POST", "/v1/identities/alice/block", supportToken, map[string]any{"reason": "misuse"}), 200, "")
	s.want(s.login("alice", pw, map[string]any{"password": "correct horse"}), 403, "identity_blocked")
	s.want(s.do("POST", "/v1/identities/alice/unblock", supportToken, map[string]any{"note": "ok"}), 200, "")

	// Audit.
	r = s.do("GET", "/v1/identities/alice/audit?limit=5", sess, nil)
	s.want(r, 200, "")
	var page service.AuditPage
	r.decode(t, &page)
	if len(page.Events) != 5 || page.Next == nil {
		t.Fatalf("%s", r.raw)
	}
	r = s.do("GET", "/v1/identities/alice/audit?after="+jsonNum(*page.Next), sess, nil)
	s.want(r, 200, "")
	r = s.do("GET", "/v1/audit/verify", supportToken, nil)
	s.want(r, 200, "")
	if !strings.Contains(string(r.raw), `"ok":true`) {
		t.Fatalf("%s", r.raw)
	}

	// Health, metrics, OpenAPI.
	s.want(s.do("GET", "/healthz", "", nil), 200, "")
	r = s.do("GET", "/metrics", "", nil)
	for _, m := range []string{
		`authbench_http_requests_total{route="/v1/identities/{id}/authenticators/{aid}/login/finish",status="401"}`,
		`authbench_logins_total{kind="app",outcome="wrong-pin"} 3`,
		`authbench_logins_total{kind="chip",outcome="success"} 2`,
		`authbench_suspensions_total{kind="app"} 1`,
		`authbench_blocks_total{kind="chip",reason="lost"} 1`,
		`authbench_store_duration_seconds_bucket{op="apply_change",le="+Inf"}`,
		`authbench_http_request_duration_seconds_count{route="/v1/pskc"} 1`,
	} {
		if !strings.Contains(string(r.raw), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	r = s.do("GET", "/v1/openapi.json", "", nil)
	s.want(r, 200, "")
	if r.body["openapi"] != "3.1.0" {
		t.Fatal("no OpenAPI document")
	}
}

func jsonNum(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Every endpoint that needs a credential refuses none, a wrong one, and a
// session where support is needed.
func TestAuthFailures(t *testing.T) {
	s := start(t)
	pw := passwordID(s.createIdentity("alice", "correct horse"))
	s.createIdentity("bob", "battery staple")
	sess := s.session("alice", pw, "correct horse")
	type req struct{ method, path, body string }
	owned := []req{
		{"GET", "/v1/identities/alice", ""},
		{"POST", "/v1/identities/alice/authenticators", `{"kind":"chip"}`},
		{"POST", "/v1/identities/alice/authenticators/" + pw + "/activate", `{}`},
		{"POST", "/v1/identities/alice/authenticators/" + pw + "/block", `{"reason":"lost"}`},
		{"POST", "/v1/identities/alice/authenticators/" + pw + "/reactivate", `{}`},
		{"GET", "/v1/identities/alice/audit", ""},
	}
	supportOnly := []req{
		{"POST", "/v1/identities", `{"id":"carol"}`},
		{"POST", "/v1/identities/alice/block", `{"reason":"x"}`},
		{"POST", "/v1/identities/alice/unblock", `{}`},
		{"GET", "/v1/audit/verify", ""},
		{"POST", "/v1/pskc", `<x/>`},
	}
	for _, q := range append(append([]req{}, owned...), supportOnly...) {
		ct := "application/json"
		if q.path == "/v1/pskc" {
			ct = "application/pskc+xml"
		}
		for _, tok := range []string{"", "wrong-token", supportToken + "x", strings.Repeat("a", 300)} {
			r := s.do(q.method, q.path, tok, nilIfEmpty(q.body), ct)
			s.want(r, 401, "unauthorized")
			if r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: no WWW-Authenticate", q.method, q.path)
			}
		}
	}
	for _, q := range supportOnly {
		ct := "application/json"
		if q.path == "/v1/pskc" {
			ct = "application/pskc+xml"
		}
		s.want(s.do(q.method, q.path, sess, nilIfEmpty(q.body), ct), 403, "forbidden")
	}
	for _, q := range owned {
		p := strings.Replace(q.path, "/alice", "/bob", 1)
		s.want(s.do(q.method, p, sess, nilIfEmpty(q.body)), 403, "forbidden")
	}
	// An expired session is refused.
	s.clk.Advance(16 * time.Minute)
	s.want(s.do("GET", "/v1/identities/alice", sess, nil), 401, "unauthorized")
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	var inDoc, inMux []string
	for p, ops := range doc.Paths {
		for m := range ops {
			inDoc = append(inDoc, strings.ToUpper(m)+" "+p)
		}
	}
	h := api.NewHandler(nil, api.Options{})
	for _, rt := range h.Routes() {
		inMux = append(inMux, rt.Method+" "+rt.Pattern)
	}
	slices.Sort(inDoc)
	slices.Sort(inMux)
	if !slices.Equal(inDoc, inMux) {
		t.Fatalf("OpenAPI and routes differ:\nOpenAPI: %v\nroutes:  %v", inDoc, inMux)
	}
	for _, ops := range doc.Paths {
		for m, raw := range ops {
			var op struct {
				OperationID string                     `json:"operationId"`
				Responses   map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil || op.OperationID == "" || len(op.Responses) == 0 {
				t.Errorf("%s: incomplete operation", m)
			}
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	s := start(t)
	for _, q := range []struct{ method, path, allow string }{
		{"DELETE", "/v1/identities/alice", "GET"},
		{"GET", "/v1/identities", "POST"},
		{"PUT", "/v1/pskc", "POST"},
		{"POST", "/healthz", "GET"},
	} {
		r := s.do(q.method, q.path, supportToken, nil)
		s.want(r, 405, "method_not_allowed")
		if r.header.Get("Allow") != q.allow {
			t.Errorf("%s %s: Allow %q", q.method, q.path, r.header.Get("Allow"))
		}
	}
}

func TestRateLimit(t *testing.T) {
	s := start(t, withRateLimit(api.RateLimit{PerSource: api.Rate{Every: -1}, PerIdentity: api.Rate{Burst: 3, Every: time.Hour}}))
	pw := passwordID(s.createIdentity("alice", "correct horse"))
	for range 3 {
		s.want(s.do("POST", "/v1/identities/alice/authenticators/"+pw+"/login/begin", "", nil), 200, "")
	}
	r := s.do("POST", "/v1/identities/alice/authenticators/"+pw+"/login/begin", "", nil)
	s.want(r, 429, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// Another identity is not affected; a limited attempt counted nothing.
	pwb := passwordID(s.createIdentity("bob", "battery staple"))
	s.want(s.do("POST", "/v1/identities/bob/authenticators/"+pwb+"/login/begin", "", nil), 200, "")
	r = s.do("GET", "/v1/identities/alice", supportToken, nil)
	if strings.Contains(string(r.raw), `"failures":1`) {
		t.Fatal("a rate-limited attempt was counted")
	}
}

// A panic in a handler is a 500 JSON answer, logged, and the server goes
// on.
func TestPanicRecovery(t *testing.T) {
	h := api.NewHandler(nil, api.Options{}) // a nil service panics on use
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"code":"internal"`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/v1/openapi.json", nil))
	if w.Code != 200 {
		t.Fatalf("after a panic: %d", w.Code)
	}
}

func TestHealthzStoreDown(t *testing.T) {
	s := start(t)
	if err := s.srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The store is closed now; the handler still answers, with 503.
	w := httptest.NewRecorder()
	s.srv.Handler.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"error"`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestBodyLimitsAndMediaTypes(t *testing.T) {
	s := start(t)
	big := `{"id":"` + strings.Repeat("a", 70<<10) + `"}`
	s.want(s.do("POST", "/v1/identities", supportToken, big), 413, "too_large")
	s.want(s.do("POST", "/v1/identities", supportToken, `{"id":"x"}`, "text/plain"), 415, "unsupported_media_type")
	s.want(s.do("POST", "/v1/identities", supportToken, `{"id":"x"}`, "application/json; charset=utf-8"), 201, "")
	s.want(s.do("POST", "/v1/identities", supportToken, `{"id":"y","extra":true}`), 400, "bad_request")
	s.want(s.do("POST", "/v1/identities", supportToken, `{"id":7}`), 400, "bad_request")
	s.want(s.do("POST", "/v1/pskc", supportToken, strings.Repeat("<a>", 2<<20), "application/pskc+xml"), 413, "too_large")
	s.want(s.do("POST", "/v1/pskc", supportToken, `<x/>`, "application/json"), 415, "unsupported_media_type")
	s.want(s.do("POST", "/v1/pskc", supportToken, `<x/>`, "application/xml"), 400, "pskc_invalid")
	s.want(s.do("GET", "/v1/identities/"+strings.Repeat("a", 65), supportToken, nil), 400, "bad_request")
	s.want(s.do("GET", "/v1/nothing-here", supportToken, nil), 404, "not_found")
}

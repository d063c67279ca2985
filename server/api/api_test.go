package api_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/server/api"
	"github.com/authbench/authbench/server/api/apitest"
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

	// The password alone: no session, no second factor yet.
	r = s.passwordLogin("alice", "correct horse", "")
	s.want(r, 200, "")
	if !strings.Contains(string(r.raw), `"second_factors":[]`) || strings.Contains(string(r.raw), `"session"`) {
		t.Fatalf("%s", r.raw)
	}

	// An app, added and activated by support; the owner logs in with it.
	appID, key := s.addApp("alice", supportToken, appPIN)
	r = s.appLogin("alice", appID, key, appPIN)
	s.want(r, 200, "")
	var login service.LoginResult
	r.decode(t, &login)
	sess := login.Session
	if login.Level != "two-factor" || len(login.Authenticators) != 1 || login.Authenticators[0] != appID || login.SessionID == "" {
		t.Fatalf("%s", r.raw)
	}
	s.want(s.do("GET", "/v1/identities/alice", sess, nil), 200, "")

	// A chip, added by the owner, the second factor after the password.
	c := newChip(t, "chip-1")
	ch := s.addChip("alice", sess, c)
	r = s.chipLogin("alice", "correct horse", ch.ID, c)
	s.want(r, 200, "")
	var viaChip service.LoginResult
	r.decode(t, &viaChip)
	if len(viaChip.Authenticators) != 2 || viaChip.Authenticators[0] != pw || viaChip.Authenticators[1] != ch.ID {
		t.Fatalf("%s", r.raw)
	}

	// A code display: import, add, activate, log in.
	dev := servicetest.CodeDevice{Serial: "KV-1", Secret: []byte("12345678901234567890")}
	doc, _ := servicetest.PSKC(pskcKey, dev)
	r = s.do("POST", "/v1/pskc", supportToken, doc, "application/pskc+xml")
	s.want(r, 200, "")
	if !strings.Contains(string(r.raw), `"imported":1`) {
		t.Fatalf("%s", r.raw)
	}
	r = s.do("POST", "/v1/identities/alice/authenticators", sess, map[string]any{"kind": "code-display", "serial": "KV-1"})
	s.want(r, 201, "")
	if !strings.Contains(string(r.raw), `"activation":{"needs":"code"}`) {
		t.Fatalf("%s", r.raw)
	}
	var addCode service.AddResult
	r.decode(t, &addCode)
	codeID := addCode.Authenticator.ID
	s.want(s.do("POST", "/v1/identities/alice/authenticators/"+codeID+"/activate", sess,
		map[string]any{"code": "000000"}), 401, "wrong_code")
	s.want(s.do("POST", "/v1/identities/alice/authenticators/"+codeID+"/activate", sess,
		map[string]any{"code": dev.Code(s.clk.Now())}), 200, "")
	s.clk.Advance(30 * time.Second)
	s.want(s.codeLogin("alice", "correct horse", codeID, dev.Code(s.clk.Now())), 200, "")
	s.want(s.codeLogin("alice", "correct horse", codeID, dev.Code(s.clk.Now())), 401, "code_replayed")
	// A wrong password never gets as far as the code.
	s.want(s.codeLogin("alice", "wrong horse", codeID, dev.Code(s.clk.Now())), 401, "wrong_password")

	// Three wrong PINs suspend the app; the third answer says so; the
	// app's session ends with it.
	for i := 1; i <= 3; i++ {
		r = s.appLogin("alice", appID, key, "000001")
		s.want(r, 401, "wrong_pin")
		if r.detail("failures") != float64(i) {
			t.Fatalf("attempt %d: %s", i, r.raw)
		}
	}
	if r.detail("state") != "suspended" {
		t.Fatalf("%s", r.raw)
	}
	s.want(s.appLogin("alice", appID, key, appPIN), 403, "authenticator_suspended")
	s.want(s.do("GET", "/v1/identities/alice", sess, nil), 401, "unauthorized")
	// Self-service with the password and chip session.
	sess = viaChip.Session
	r = s.do("POST", "/v1/identities/alice/authenticators/"+appID+"/reactivate", sess, nil)
	s.want(r, 200, "")
	s.want(s.appLogin("alice", appID, key, appPIN), 200, "")

	// Sessions: listed, one ended, then logout.
	r = s.do("GET", "/v1/identities/alice/sessions", sess, nil)
	s.want(r, 200, "")
	var list service.SessionList
	r.decode(t, &list)
	if len(list.Sessions) < 2 {
		t.Fatalf("%s", r.raw)
	}
	var other string
	for _, x := range list.Sessions {
		if !x.Current {
			other = x.ID
		}
	}
	s.want(s.do("DELETE", "/v1/identities/alice/sessions/"+other, sess, nil), 200, "")
	s.want(s.do("DELETE", "/v1/identities/alice/sessions/"+other, sess, nil), 404, "not_found")

	// Block the chip: wiped, and the chip's session ends; re-add the same
	// chip with an app session.
	app := s.session("alice")
	r = s.do("POST", "/v1/identities/alice/authenticators/"+ch.ID+"/block", app, map[string]any{"reason": "lost"})
	s.want(r, 200, "")
	if !strings.Contains(string(r.raw), `"element":{"wiped":true}`) {
		t.Fatalf("%s", r.raw)
	}
	s.want(s.do("GET", "/v1/identities/alice", sess, nil), 401, "unauthorized")
	sess = app
	ch2 := s.addChip("alice", sess, c)
	s.want(s.chipLogin("alice", "correct horse", ch2.ID, c), 200, "")

	// Identity block by support.
	s.want(s.do("POST", "/v1/identities/alice/block", sess, map[string]any{"reason": "misuse"}), 403, "forbidden")
	s.want(s.do("POST", "/v1/identities/alice/block", supportToken, map[string]any{"reason": "misuse"}), 200, "")
	s.want(s.passwordLogin("alice", "correct horse", ""), 403, "identity_blocked")
	s.want(s.do("GET", "/v1/identities/alice", sess, nil), 401, "unauthorized")
	s.want(s.do("POST", "/v1/identities/alice/unblock", supportToken, map[string]any{"note": "ok"}), 200, "")
	sess = s.session("alice")

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
	s.want(s.do("POST", "/v1/logout", sess, nil), 200, "")
	s.want(s.do("POST", "/v1/logout", sess, nil), 401, "unauthorized")

	// Health, metrics, OpenAPI; a path that is refused, and one that
	// names no endpoint (counted as "unmatched").
	s.want(s.do("GET", "/v1/identities/a%2Fb", "", nil), 400, "bad_request")
	s.want(s.do("GET", "/v1/nowhere", "", nil), 404, "not_found")
	s.want(s.do("GET", "/healthz", "", nil), 200, "")
	r = s.do("GET", "/metrics", "", nil)
	for _, m := range []string{
		`authbench_http_requests_total{route="/v1/identities/{id}/login/finish",status="401"}`,
		`authbench_logins_total{kind="app",outcome="wrong-pin"} 3`,
		`authbench_logins_total{kind="chip",outcome="success"} 2`,
		`authbench_suspensions_total{kind="app"} 1`,
		`authbench_blocks_total{kind="chip",reason="lost"} 1`,
		`authbench_verifier_checks_total{kind="password"}`,
		`authbench_store_duration_seconds_bucket{op="apply_change",le="+Inf"}`,
		`authbench_http_request_duration_seconds_count{route="/v1/pskc"} 1`,
		`authbench_http_requests_total{route="unmatched",status="400"} 1`,
		`authbench_http_requests_total{route="unmatched",status="404"} 1`,
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
	sess := s.session("alice")
	type req struct{ method, path, body string }
	owned := []req{
		{"GET", "/v1/identities/alice", ""},
		{"POST", "/v1/identities/alice/authenticators", `{"kind":"chip"}`},
		{"POST", "/v1/identities/alice/authenticators/" + pw + "/activate", `{}`},
		{"POST", "/v1/identities/alice/authenticators/" + pw + "/cancel", `{}`},
		{"POST", "/v1/identities/alice/authenticators/" + pw + "/block", `{"reason":"lost"}`},
		{"POST", "/v1/identities/alice/authenticators/" + pw + "/reactivate", `{}`},
		{"GET", "/v1/identities/alice/audit", ""},
		{"GET", "/v1/identities/alice/sessions", ""},
		{"DELETE", "/v1/identities/alice/sessions/ses-1", ""},
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

// The per-source limit applies before anything is looked up; the limit
// per identity and authenticator only once they are found, so made-up IDs
// cost the owner nothing. A limited attempt is counted nowhere.
func TestRateLimit(t *testing.T) {
	s := start(t, withRateLimit(api.RateLimit{PerSource: api.Rate{Burst: 1000, Every: time.Hour}, PerAuthenticator: api.Rate{Burst: 2, Every: time.Hour}}))
	s.createIdentity("alice", "correct horse")
	for range 2 {
		s.want(s.passwordLogin("alice", "wrong", ""), 401, "wrong_password")
	}
	r := s.passwordLogin("alice", "wrong", "")
	s.want(r, 429, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// Made-up app IDs of alice are answered like a real one and take
	// nothing from alice's limits; another identity is not affected.
	for i := range 20 {
		s.want(s.do("POST", "/v1/identities/alice/login/app", "", map[string]any{"authenticator": "app-" + jsonNum(uint64(i))}), 200, "")
	}
	s.createIdentity("bob", "battery staple")
	s.want(s.passwordLogin("bob", "battery staple", ""), 200, "")
	if id := s.identity("alice"); id.Authenticators[0].Failures != 2 {
		t.Fatalf("failures %d after 2 wrong and 1 limited attempt", id.Authenticators[0].Failures)
	}
	// The per-source limit answers 429 before anything is looked up.
	s2 := start(t, withRateLimit(api.RateLimit{PerSource: api.Rate{Burst: 2, Every: time.Hour}, PerAuthenticator: api.Rate{Every: -1}}))
	s2.createIdentity("alice", "correct horse")
	s2.want(s2.passwordLogin("alice", "correct horse", ""), 200, "")
	s2.want(s2.passwordLogin("alice", "correct horse", ""), 200, "")
	s2.want(s2.passwordLogin("nobody", "x", ""), 429, "rate_limited")
}

// identity returns identity id as support sees it.
func (s *server) identity(id string) service.IdentityView {
	s.t.Helper()
	r := s.do("GET", "/v1/identities/"+id, supportToken, nil)
	s.want(r, 200, "")
	var v service.IdentityView
	r.decode(s.t, &v)
	return v
}

// A panic in a handler is a 500 JSON answer, logged, and the server goes
// on.
func TestPanicRecovery(t *testing.T) {
	var logs bytes.Buffer
	m := api.NewMetrics()
	// a nil service panics on use
	h := apitest.ForTest(t).Wrap(api.NewHandler(nil, api.Options{Metrics: m, Logger: slog.New(slog.NewTextHandler(&logs, nil))}))
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
	// The panic, and the request line, name the route that panicked.
	for _, want := range []string{`msg="api: panic" route=/healthz`, `msg=request method=GET route=/healthz status=500`,
		`msg=request method=GET route=/v1/openapi.json status=200`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, logs.String())
		}
	}
	var text bytes.Buffer
	if _, err := m.WriteTo(&text); err != nil {
		t.Fatal(err)
	}
	if want := `authbench_http_requests_total{route="/healthz",status="500"} 1`; !strings.Contains(text.String(), want) {
		t.Errorf("the metrics lack %s", want)
	}
}

func TestHealthzStoreDown(t *testing.T) {
	s := start(t)
	if err := s.srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The store is closed now; the handler still answers, with 503.
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
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

// TestChipRegistrationTokenLongest registers a chip with the longest
// identity ID and the longest label, of the characters JSON escapes the
// most: the sealed registration token that carries them stays within the
// contract.
func TestChipRegistrationTokenLongest(t *testing.T) {
	s := start(t)
	id := strings.Repeat("i", service.MaxIDLen)
	s.createIdentity(id, "correct horse")
	label := strings.Repeat("<", service.MaxLabelLen)
	r := s.do("POST", "/v1/identities/"+id+"/authenticators", supportToken, map[string]any{"kind": "chip", "label": label})
	s.want(r, 201, "")
	var res struct {
		Authenticator service.AuthenticatorView
		Activation    service.ChipActivation
	}
	r.decode(t, &res)
	c := newChip(t, "longest")
	reg, err := servicetest.Register(t.Context(), c, origin, res.Activation.PublicKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	r = s.do("POST", "/v1/identities/"+id+"/authenticators/"+res.Authenticator.ID+"/activate", supportToken,
		map[string]any{"ceremony": res.Activation.Ceremony, "credential": reg})
	s.want(r, 200, "")
	var v service.AuthenticatorView
	r.decode(t, &v)
	if v.Label != label || v.State != "active" {
		t.Fatalf("%+v", v)
	}
	t.Logf("registration token: %d bytes", len(res.Activation.Ceremony))
}

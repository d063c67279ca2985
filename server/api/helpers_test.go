package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/server/api"
	"github.com/authbench/authbench/server/api/apitest"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
	"github.com/authbench/authbench/sim/chip"
)

const (
	origin       = "https://localhost"
	supportToken = "support-token-for-tests-0123456789"
)

var (
	b64     = base64.RawURLEncoding
	pskcKey = []byte("0123456789abcdef0123456789abcdef")
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is an embedded server for a test, with a virtual clock, a debug
// log kept in memory, and a record of every response body.
type server struct {
	t   testing.TB
	srv *embedded.Server
	// h is the API handler as the HTTP server serves it: wrapped by the
	// contract's validator (apitest), except in benchmarks and fuzzing.
	h    http.Handler
	v    *apitest.Validator
	clk  *servicetest.Clock
	log  *syncBuffer
	db   string
	mu   sync.Mutex
	seen []string // response bodies
	apps map[string]testApp
}

type startOption func(*embedded.Options)

func withRateLimit(r api.RateLimit) startOption { return func(o *embedded.Options) { o.RateLimit = r } }

func start(t testing.TB, opts ...startOption) *server {
	t.Helper()
	clk := servicetest.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	logs := &syncBuffer{}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(chip.TestCACertPEM())
	keys, err := secrets.NewKeyring("k1", []byte("test master key, 32 bytes long!!"))
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "authbench.db")
	o := embedded.Options{
		DB:               db,
		Keyring:          keys,
		SupportTokens:    map[string]string{supportToken: "op-1"},
		AttestationRoots: roots,
		Hasher:           secrets.FastParams(),
		PSKCKey:          pskcKey,
		Now:              clk.Now,
		Logger:           slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RateLimit:        api.RateLimit{PerSource: api.Rate{Every: -1}, PerAuthenticator: api.Rate{Every: -1}},
	}
	// Every exchange of a test is checked against the OpenAPI document;
	// benchmarks measure the server alone, and a fuzz target checks its
	// answers itself (F's methods cannot be called from the target).
	var v *apitest.Validator
	switch t.(type) {
	case *testing.B, *testing.F:
	default:
		v = apitest.ForTest(t)
		o.Wrap = v.Wrap
	}
	for _, f := range opts {
		f(&o)
	}
	srv, err := embedded.Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	var h http.Handler = srv.Handler
	if v != nil {
		h = v.Wrap(h)
	}
	return &server{t: t, srv: srv, h: h, v: v, clk: clk, log: logs, db: db, apps: map[string]testApp{}}
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// code returns error.code of an error answer.
func (r *response) code() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (r *response) detail(k string) any {
	e, _ := r.body["error"].(map[string]any)
	d, _ := e["details"].(map[string]any)
	return d[k]
}

// decode decodes the answer into v.
func (r *response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.raw, v); err != nil {
		t.Fatalf("decoding %s: %v", r.raw, err)
	}
}

// do sends a request over the real HTTP server. body is JSON-encoded
// unless it is a []byte or string (sent as is with contentType).
func (s *server) do(method, path, token string, body any, contentType ...string) *response {
	s.t.Helper()
	var rd io.Reader
	ct := "application/json"
	if len(contentType) > 0 {
		ct = contentType[0]
	}
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(s.t.Context(), method, s.srv.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if rd != nil && ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.seen = append(s.seen, string(raw))
	s.mu.Unlock()
	r := &response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			s.t.Fatalf("%s %s: answer is not JSON: %q", method, path, raw)
		}
	}
	return r
}

// serve sends a request straight to the handler (no network), for the
// hostile-input corpus: the path is used verbatim.
func (s *server) serve(method, rawPath, token string, body []byte, contentType string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://authbench.test/", bytes.NewReader(body))
	u, err := url.ParseRequestURI(rawPath) // keeps dot segments as sent
	if err != nil {
		s.t.Fatalf("path %q: %v", rawPath, err)
	}
	req.URL = u
	req.RequestURI = rawPath
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, req)
	return w
}

func (s *server) want(r *response, status int, code string) {
	s.t.Helper()
	if r.status != status || (code != "" && r.code() != code) {
		s.t.Fatalf("got %d %s, want %d %s", r.status, r.raw, status, code)
	}
}

// createIdentity creates id with password pw.
func (s *server) createIdentity(id, pw string) service.IdentityView {
	s.t.Helper()
	r := s.do("POST", "/v1/identities", supportToken, map[string]string{"id": id, "password": pw})
	s.want(r, 201, "")
	var v service.IdentityView
	r.decode(s.t, &v)
	return v
}

func passwordID(v service.IdentityView) string {
	for _, a := range v.Authenticators {
		if a.Kind == "password" {
			return a.ID
		}
	}
	return ""
}

// passwordLogin sends password pw of identity id, choosing second factor
// second when it is not "".
func (s *server) passwordLogin(id, pw, second string) *response {
	s.t.Helper()
	body := map[string]any{"password": pw}
	if second != "" {
		body["second"] = second
	}
	return s.do("POST", "/v1/identities/"+id+"/login/password", "", body)
}

// finish finishes the login ceremony f with body fields.
func (s *server) finish(id string, f service.FactorLogin, fields map[string]any) *response {
	s.t.Helper()
	if fields == nil {
		fields = map[string]any{}
	}
	fields["ceremony"] = f.Ceremony
	return s.do("POST", "/v1/identities/"+id+"/login/finish", "", fields)
}

// factor sends the right password of identity id and chooses second
// factor aid; it returns the factor's ceremony, or nil and the answer.
func (s *server) factor(id, pw, aid string) (*service.FactorLogin, *response) {
	s.t.Helper()
	r := s.passwordLogin(id, pw, aid)
	if r.status != 200 {
		return nil, r
	}
	var p service.PasswordLoginResult
	r.decode(s.t, &p)
	if p.Next == nil {
		s.t.Fatalf("no ceremony for %s: %s", aid, r.raw)
	}
	return p.Next, r
}

// codeLogin logs in with password pw and code of code device aid.
func (s *server) codeLogin(id, pw, aid, code string) *response {
	s.t.Helper()
	f, r := s.factor(id, pw, aid)
	if f == nil {
		return r
	}
	return s.finish(id, *f, map[string]any{"code": code})
}

// appLogin logs in with app aid (key) and pin.
func (s *server) appLogin(id, aid string, key *ecdsa.PrivateKey, pin string) *response {
	s.t.Helper()
	r := s.do("POST", "/v1/identities/"+id+"/login/app", "", map[string]any{"authenticator": aid})
	if r.status != 200 {
		return r
	}
	var f service.FactorLogin
	r.decode(s.t, &f)
	sig, err := servicetest.SignChallenge(key, f.Challenge)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.finish(id, f, map[string]any{"pin": pin, "signature": sig})
}

// addApp adds (as token) and activates an app with PIN pin for identity
// id, returning its ID and key.
func (s *server) addApp(id, token, pin string) (string, *ecdsa.PrivateKey) {
	s.t.Helper()
	key, pub := newAppKey(s.t)
	r := s.do("POST", "/v1/identities/"+id+"/authenticators", token, map[string]any{"kind": "app", "public_key": pub, "pin": pin, "label": "phone"})
	s.want(r, 201, "")
	var add struct {
		Authenticator service.AuthenticatorView
		Activation    service.AppActivation
	}
	r.decode(s.t, &add)
	sig, _ := servicetest.SignChallenge(key, add.Activation.Challenge)
	r = s.do("POST", "/v1/identities/"+id+"/authenticators/"+add.Authenticator.ID+"/activate", token,
		map[string]any{"ceremony": add.Activation.Ceremony, "signature": sig})
	s.want(r, 200, "")
	return add.Authenticator.ID, key
}

// session returns the token of a two-factor session of identity id: its
// app (added by support the first time) logs in.
func (s *server) session(id string) string {
	s.t.Helper()
	a, ok := s.apps[id]
	if !ok {
		a.id, a.key = s.addApp(id, supportToken, appPIN)
		s.apps[id] = a
	}
	r := s.appLogin(id, a.id, a.key, appPIN)
	s.want(r, 200, "")
	var res service.LoginResult
	r.decode(s.t, &res)
	return res.Session
}

// appPIN is the PIN of the apps the tests add.
const appPIN = "428613"

type testApp struct {
	id  string
	key *ecdsa.PrivateKey
}

func newAppKey(t testing.TB) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return k, b64.EncodeToString(der)
}

func newChip(t testing.TB, seed string) *chip.Chip {
	t.Helper()
	c, err := chip.New(chip.Options{Seed: []byte(seed)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// addChip adds and activates c, returning the authenticator.
func (s *server) addChip(id, token string, c *chip.Chip) service.AuthenticatorView {
	s.t.Helper()
	r := s.do("POST", "/v1/identities/"+id+"/authenticators", token, map[string]any{"kind": "chip", "label": "keys"})
	s.want(r, 201, "")
	var res struct {
		Authenticator service.AuthenticatorView
		Activation    service.ChipActivation
	}
	r.decode(s.t, &res)
	reg, err := servicetest.Register(context.Background(), c, origin, res.Activation.PublicKey, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	r = s.do("POST", "/v1/identities/"+id+"/authenticators/"+res.Authenticator.ID+"/activate", token,
		map[string]any{"ceremony": res.Activation.Ceremony, "credential": reg})
	s.want(r, 200, "")
	var v service.AuthenticatorView
	r.decode(s.t, &v)
	return v
}

// chipLogin logs in with password pw and chip c (authenticator aid).
func (s *server) chipLogin(id, pw, aid string, c *chip.Chip) *response {
	s.t.Helper()
	f, r := s.factor(id, pw, aid)
	if f == nil {
		return r
	}
	resp, err := servicetest.Assert(context.Background(), c, origin, f.PublicKey)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.finish(id, *f, map[string]any{"credential": resp})
}

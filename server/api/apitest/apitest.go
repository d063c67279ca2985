// Package apitest holds the API contract to every exchange a test makes: a
// Validator checks each request and its answer against the OpenAPI
// document of server/api (openapi.json, served at /v1/openapi.json) with
// github.com/getkin/kin-openapi's openapi3filter, so that a route that
// answers anything the document does not describe fails the test.
//
// It sits beside server/api, for tests only: the API tests, the client's
// end-to-end tests and the command tests wrap the server's handler with
// Validator.Wrap (embedded.Options.Wrap), and so see every exchange on the
// server's side, whichever client sent it. Tests that run real `authbench
// serve` processes (server/scaletest) check the same exchanges on the
// client's side instead, through Validator.Transport.
//
// The rules, for each exchange:
//
//   - a path that is no operation's (an unknown endpoint, a path refused
//     before routing) must be answered as the document's components say:
//     404 not_found or 400 bad_request; a known path with another method
//     405 method_not_allowed with an Allow header naming the documented
//     methods;
//   - the request is checked against its operation (bearer token format,
//     path and query parameters, media type, body schema). A request the
//     contract does not allow may be sent (the negative and hostile tests
//     do), but then the answer must be a documented 4xx: a server that
//     accepts what the contract refuses fails;
//   - the answer must be one the operation documents: its status, its
//     headers (Retry-After, Allow, Location where documented), its media
//     type and its body schema, down to the error codes each status may
//     carry.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/authbench/authbench/server/api"
)

// Stats counts what a Validator checked.
type Stats struct {
	// Requests is the number of exchanges checked (each request and its
	// answer).
	Requests int
	// Refused is how many of those requests the contract does not allow
	// (and the server refused, as it must).
	Refused int
	// Unrouted is how many requests matched no operation (unknown paths,
	// paths refused before routing, other methods); their answers were
	// checked against the document's components.
	Unrouted int
	// Failures is the number of exchanges that broke the contract.
	Failures int
}

// Validator checks exchanges against the API's OpenAPI document. It is
// safe for concurrent use.
type Validator struct {
	doc    *openapi3.T
	paths  []template
	report func(error)

	unrouted, notAllowed *openapi3.Operation

	mu    sync.Mutex
	stats Stats
	ops   map[string]map[int]bool // operationId → statuses seen
}

// template is one path of the document, split into segments.
type template struct {
	path     string
	segments []string // "{name}" for a parameter
	literal  int      // number of literal segments (more wins)
}

// bearerToken is the form of a bearer token the document states in
// components.securitySchemes.bearer: RFC 6750 §2.1's b64token, at most
// 256 characters.
var bearerToken = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

// New returns a Validator of the document api.OpenAPI() that calls report
// with each broken rule. It fails when the document does not load or is
// not valid OpenAPI 3.1.
func New(report func(error)) (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI())
	if err != nil {
		return nil, fmt.Errorf("apitest: loading the OpenAPI document: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("apitest: the OpenAPI document is not valid: %w", err)
	}
	v := &Validator{doc: doc, report: report, ops: map[string]map[int]bool{}}
	for path := range doc.Paths.Map() {
		t := template{path: path, segments: strings.Split(strings.TrimPrefix(path, "/"), "/")}
		for _, s := range t.segments {
			if !strings.HasPrefix(s, "{") {
				t.literal++
			}
		}
		v.paths = append(v.paths, t)
	}
	slices.SortFunc(v.paths, func(a, b template) int { return b.literal - a.literal })
	// The answers to requests outside every operation are components
	// (there is no operation to list them under).
	comp := func(names map[int]string) (*openapi3.Operation, error) {
		op := &openapi3.Operation{OperationID: "(no operation)", Responses: openapi3.NewResponses()}
		for status, name := range names {
			r := doc.Components.Responses[name]
			if r == nil {
				return nil, fmt.Errorf("apitest: the OpenAPI document has no components.responses.%s", name)
			}
			op.Responses.Set(fmt.Sprint(status), r)
		}
		op.Responses.Delete("default")
		return op, nil
	}
	if v.unrouted, err = comp(map[int]string{400: "BadRequest", 404: "NoSuchEndpoint"}); err != nil {
		return nil, err
	}
	if v.notAllowed, err = comp(map[int]string{400: "BadRequest", 405: "MethodNotAllowed"}); err != nil {
		return nil, err
	}
	return v, nil
}

// ForTest returns a Validator that fails t at each broken rule, and logs
// what it checked when t ends.
func ForTest(t testing.TB) *Validator {
	t.Helper()
	var mu sync.Mutex
	ended := false
	v, err := New(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if ended {
			// An answer written after the test ended (a client that
			// gave up): t can take no more failures.
			fmt.Fprintf(os.Stderr, "%s: after the test ended: %v\n", t.Name(), err)
			return
		}
		t.Errorf("%v", err)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mu.Lock()
		ended = true
		mu.Unlock()
		s := v.Stats()
		if s.Requests == 0 {
			return
		}
		t.Logf("apitest: %d requests and answers checked against the OpenAPI document (%d requests the contract does not allow, refused; %d outside every operation); %d broke it",
			s.Requests, s.Refused, s.Unrouted, s.Failures)
	})
	return v
}

// Stats returns what v checked so far.
func (v *Validator) Stats() Stats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stats
}

// Seen returns, per operationId, the statuses answered so far.
func (v *Validator) Seen() map[string][]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[string][]int{}
	for op, st := range v.ops {
		for s := range st {
			out[op] = append(out[op], s)
		}
		slices.Sort(out[op])
	}
	return out
}

// Wrap returns next, with every request it serves and every answer it
// writes checked.
func (v *Validator) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			var err error
			body, err = io.ReadAll(r.Body)
			r.Body.Close()
			if err != nil {
				// The client went away; nothing to check.
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		// What the handler sees is a copy: it may change r.
		req := r.Clone(context.Background())
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		v.Check(req, body, rec.status, rec.sent, rec.body.Bytes())
	})
}

// recorder passes an answer on and keeps a copy of it.
type recorder struct {
	http.ResponseWriter
	status int
	sent   http.Header
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		r.sent = r.ResponseWriter.Header().Clone()
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Check checks one exchange: req with body reqBody, answered status with
// header and body. It reports each broken rule and returns them joined.
func (v *Validator) Check(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	if header == nil {
		header = http.Header{}
	}
	what := req.Method + " " + trunc(req.URL.RequestURI(), 120)
	route, params, allowed := v.route(req)
	var errs []error
	refused := false
	switch {
	case route == nil && allowed == nil:
		errs = v.answer(what, req, v.unrouted, status, header, body)
	case route == nil:
		errs = v.answer(what, req, v.notAllowed, status, header, body)
		if status == http.StatusMethodNotAllowed {
			if got := header.Get("Allow"); got != strings.Join(allowed, ", ") {
				errs = append(errs, fmt.Errorf("%s: answered 405 with Allow %q; the document lists %s", what, got, strings.Join(allowed, ", ")))
			}
		}
	default:
		in := &openapi3filter.RequestValidationInput{
			Request:    withBody(req, reqBody),
			PathParams: params,
			Route:      route,
			Options: &openapi3filter.Options{
				AuthenticationFunc:  checkBearer,
				SkipSettingDefaults: true,
				MultiError:          false,
			},
		}
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			refused = true
			if status < 400 || status >= 500 {
				errs = append(errs, fmt.Errorf("%s: the server answered %d to a request the OpenAPI document does not allow: %v", what, status, short(err)))
			}
		}
		errs = append(errs, v.answer(what, req, route.Operation, status, header, body)...)
		v.mu.Lock()
		if v.ops[route.Operation.OperationID] == nil {
			v.ops[route.Operation.OperationID] = map[int]bool{}
		}
		v.ops[route.Operation.OperationID][status] = true
		v.mu.Unlock()
	}
	errs = append(errs, headersOfCode(what, status, header, body)...)
	v.mu.Lock()
	v.stats.Requests++
	if refused {
		v.stats.Refused++
	}
	if route == nil {
		v.stats.Unrouted++
	}
	if len(errs) > 0 {
		v.stats.Failures++
	}
	v.mu.Unlock()
	for _, err := range errs {
		v.report(err)
	}
	return errors.Join(errs...)
}

// answer checks an answer against the responses of op.
func (v *Validator) answer(what string, req *http.Request, op *openapi3.Operation, status int, header http.Header, body []byte) []error {
	route := &routers.Route{Spec: v.doc, Path: req.URL.Path, Method: req.Method, Operation: op, PathItem: &openapi3.PathItem{}}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: false},
	}
	in.SetBodyBytes(body)
	if req.Method == http.MethodHead {
		// openapi3filter skips HEAD; the answer is checked as a GET's.
		r := req.Clone(context.Background())
		r.Method = http.MethodGet
		in.RequestValidationInput.Request = r
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return []error{fmt.Errorf("%s (%s): the answer %d %s is not one the OpenAPI document describes: %v",
			what, op.OperationID, status, trunc(string(body), 300), short(err))}
	}
	return nil
}

// codeHeaders are the headers the document's table of error codes says an
// answer with the code carries (a status may carry several codes, so the
// response objects cannot require them all).
var codeHeaders = map[string]string{
	api.CodeUnauthorized:     "WWW-Authenticate",
	api.CodeMethodNotAllowed: "Allow",
	api.CodeRateLimited:      "Retry-After",
	api.CodeAttemptsInFlight: "Retry-After",
	api.CodeBusy:             "Retry-After",
}

// headersOfCode checks that an error answer carries the headers of its
// code.
func headersOfCode(what string, status int, header http.Header, body []byte) []error {
	if status < 400 {
		return nil
	}
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return nil // the schema check says so
	}
	if h := codeHeaders[e.Error.Code]; h != "" && header.Get(h) == "" {
		return []error{fmt.Errorf("%s: answered %d %s without %s", what, status, e.Error.Code, h)}
	}
	return nil
}

// route finds the operation of req: its route and path parameters; or,
// for a documented path with another method, the documented methods.
func (v *Validator) route(req *http.Request) (*routers.Route, map[string]string, []string) {
	segs := strings.Split(strings.TrimPrefix(req.URL.EscapedPath(), "/"), "/")
	for _, t := range v.paths {
		params, ok := t.match(segs)
		if !ok {
			continue
		}
		item := v.doc.Paths.Value(t.path)
		op := item.GetOperation(req.Method)
		if op == nil {
			var allowed []string
			for m := range item.Operations() {
				allowed = append(allowed, m)
			}
			slices.Sort(allowed)
			return nil, nil, allowed
		}
		return &routers.Route{Spec: v.doc, Path: t.path, PathItem: item, Method: req.Method, Operation: op}, params, nil
	}
	return nil, nil, nil
}

// match matches escaped path segments (an encoded slash stays inside its
// segment, as the server sees it).
func (t template) match(segs []string) (map[string]string, bool) {
	if len(segs) != len(t.segments) {
		return nil, false
	}
	params := map[string]string{}
	for i, s := range t.segments {
		val, err := url.PathUnescape(segs[i])
		if err != nil {
			return nil, false
		}
		if name, ok := strings.CutPrefix(s, "{"); ok {
			params[strings.TrimSuffix(name, "}")] = val
			continue
		}
		if segs[i] != s {
			return nil, false
		}
	}
	return params, true
}

// checkBearer checks the Authorization header against the bearer scheme
// of the document.
func checkBearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	auth := in.RequestValidationInput.Request.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	switch {
	case auth == "":
		return in.NewError(errors.New("no Authorization header"))
	case !ok || !strings.EqualFold(scheme, "bearer"):
		return in.NewError(errors.New("the Authorization header is not \"Bearer TOKEN\""))
	case len(token) > 256 || !bearerToken.MatchString(token):
		return in.NewError(errors.New("the bearer token is not a b64token of at most 256 characters"))
	}
	return nil
}

// withBody returns a copy of req that reads body.
func withBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return r
}

// short keeps an error of openapi3filter to its first lines (it may quote
// the whole schema).
func short(err error) string {
	s := err.Error()
	if i := strings.Index(s, "\nSchema:"); i >= 0 {
		s = s[:i]
	}
	return trunc(strings.ReplaceAll(s, "\n", " "), 600)
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Transport returns base (http.DefaultTransport when nil) with every
// request sent through it and every answer it brings back checked, for
// tests that talk to a real server over HTTP (server/scaletest): the
// client's side of Wrap. Request and answer bodies are read in full and
// handed on unchanged; base keeps its dialer, so connections still come
// from whatever source address it binds.
func (v *Validator) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{v: v, base: base}
}

type transport struct {
	v    *Validator
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		reqBody, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("apitest: reading the request body: %w", err)
		}
		// A RoundTripper must not change the caller's request: send a
		// copy (with the caller's context and deadline) that reads the
		// buffered body.
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		// No answer (refused connection, deadline): nothing to check.
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		// The answer broke off (the server died, the client's deadline):
		// the caller sees the same bytes and the same error, unchecked.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
		return resp, nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	t.v.Check(req, reqBody, resp.StatusCode, resp.Header, body)
	return resp, nil
}

// errReader fails every read with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

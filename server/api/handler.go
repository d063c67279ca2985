package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
)

// Defaults of Options.
const (
	DefaultMaxBody     = 64 << 10
	DefaultMaxPSKCBody = 4 << 20
)

// Options configure NewHandler. The zero value is the default; without
// SupportTokens no support operation is possible.
type Options struct {
	// SupportTokens maps each support bearer token to the ID of the
	// operator who holds it.
	SupportTokens map[string]string
	// Logger receives one line per request (method, route pattern,
	// status, duration; never bodies or tokens) and panics; nil discards.
	Logger *slog.Logger
	// MaxBody bounds JSON request bodies; default 64 KiB.
	MaxBody int64
	// MaxPSKCBody bounds PSKC documents; default 4 MiB.
	MaxPSKCBody int64
	// Metrics collects what /metrics shows; nil means a new Metrics.
	Metrics *Metrics
	// RateLimit limits the login and activation endpoints per source;
	// RateLimit.PerAuthenticator is the service's (see RateLimit).
	RateLimit RateLimit
	// Now is the clock of the rate limiter; nil means time.Now.
	Now func() time.Time
}

// Handler serves the API. It is safe for concurrent use.
type Handler struct {
	svc     *service.Service
	support []supportToken
	log     *slog.Logger
	maxBody int64
	maxPSKC int64
	metrics *Metrics
	bySrc   *service.Limiter
	mux     *http.ServeMux
	routes  []Route
}

type supportToken struct {
	hash     [sha256.Size]byte
	operator string
}

// Route is one endpoint of the API: a method and a path pattern in the
// syntax of net/http.ServeMux (and of OpenAPI paths).
type Route struct {
	Method  string
	Pattern string
	handle  func(h *Handler, w http.ResponseWriter, r *http.Request) error
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns the API handler over svc.
func NewHandler(svc *service.Service, opts Options) *Handler {
	h := &Handler{
		svc:     svc,
		log:     opts.Logger,
		maxBody: opts.MaxBody,
		maxPSKC: opts.MaxPSKCBody,
		metrics: opts.Metrics,
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBody
	}
	if h.maxPSKC <= 0 {
		h.maxPSKC = DefaultMaxPSKCBody
	}
	if h.metrics == nil {
		h.metrics = NewMetrics()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	h.bySrc = service.NewLimiter(opts.RateLimit.PerSource.Or(DefaultPerSource), now)
	ops := make([]string, 0, len(opts.SupportTokens))
	for tok := range opts.SupportTokens {
		ops = append(ops, tok)
	}
	sort.Strings(ops)
	for _, tok := range ops {
		if tok != "" {
			h.support = append(h.support, supportToken{hash: sha256.Sum256([]byte(tok)), operator: opts.SupportTokens[tok]})
		}
	}
	h.routes = routes()
	h.mux = http.NewServeMux()
	byPattern := map[string][]Route{}
	var order []string
	for _, rt := range h.routes {
		if _, ok := byPattern[rt.Pattern]; !ok {
			order = append(order, rt.Pattern)
		}
		byPattern[rt.Pattern] = append(byPattern[rt.Pattern], rt)
	}
	for _, p := range order {
		h.mux.Handle(p, h.dispatch(p, byPattern[p]))
	}
	h.mux.Handle("/", h.dispatch("", nil))
	return h
}

// Routes returns the endpoints the handler serves, in a stable order.
func (h *Handler) Routes() []Route { return append([]Route(nil), h.routes...) }

// SourceLimiter returns the per-source limit of the login and activation
// endpoints, for another face of the same server (the pages) to share.
func (h *Handler) SourceLimiter() *service.Limiter { return h.bySrc }

// Metrics returns the metrics the handler records.
func (h *Handler) Metrics() *Metrics { return h.metrics }

func routes() []Route {
	return []Route{
		{"POST", "/v1/identities", (*Handler).createIdentity},
		{"GET", "/v1/identities/{id}", (*Handler).getIdentity},
		{"POST", "/v1/identities/{id}/authenticators", (*Handler).addAuthenticator},
		{"POST", "/v1/identities/{id}/authenticators/{aid}/activate", (*Handler).activate},
		{"POST", "/v1/identities/{id}/authenticators/{aid}/cancel", (*Handler).cancel},
		{"POST", "/v1/identities/{id}/authenticators/{aid}/block", (*Handler).blockAuthenticator},
		{"POST", "/v1/identities/{id}/authenticators/{aid}/reactivate", (*Handler).reactivate},
		loginSteps["password"].route(),
		loginSteps["second"].route(),
		loginSteps["app"].route(),
		loginSteps["finish"].route(),
		{"GET", "/v1/identities/{id}/sessions", (*Handler).listSessions},
		{"DELETE", "/v1/identities/{id}/sessions/{sid}", (*Handler).endSession},
		{"POST", "/v1/logout", (*Handler).logout},
		{"POST", "/v1/identities/{id}/block", (*Handler).blockIdentity},
		{"POST", "/v1/identities/{id}/unblock", (*Handler).unblockIdentity},
		{"GET", "/v1/identities/{id}/audit", (*Handler).listAudit},
		{"GET", "/v1/audit/verify", (*Handler).verifyAudit},
		{"POST", "/v1/pskc", (*Handler).importPSKC},
		{"GET", "/v1/openapi.json", (*Handler).openAPI},
		{"GET", "/healthz", (*Handler).healthz},
		{"GET", "/metrics", (*Handler).serveMetrics},
	}
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP refuses non-canonical paths, routes the request, recovers from
// panics, and logs and counts it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	routed := false
	defer func() {
		// The mux sets the pattern it chose on the request before it
		// calls the route's handler, so that a panic has it too.
		route := "unmatched"
		if routed && r.Pattern != "" && r.Pattern != "/" {
			route = r.Pattern
		}
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.ErrorContext(r.Context(), "api: panic", "route", route, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if sw.status == 0 {
				writeError(sw, http.StatusInternalServerError, Error{Code: CodeInternal, Message: "An internal error occurred; it was logged."})
			}
		}
		d := time.Since(start)
		h.metrics.request(route, sw.status, d)
		h.logRequest(r, route, sw.status, d)
	}()
	if msg := pathProblem(r); msg != "" {
		writeError(sw, http.StatusBadRequest, Error{Code: CodeBadRequest, Message: msg})
		return
	}
	routed = true
	if step, id, ok := loginRoute(r); ok {
		// What the mux and dispatch would do for this request, without
		// the mux's search.
		r.Pattern = step.pattern
		if err := step.serve(h, sw, r, id); err != nil {
			h.fail(sw, r, err)
		}
		return
	}
	h.mux.ServeHTTP(sw, r)
}

// The login steps are the endpoints every login takes, two or three
// times; ServeHTTP finds them by their path (loginRoute) before it asks
// the mux, which spends about a third of a microsecond more on each.

// loginPrefix starts the patterns of the login steps.
const loginPrefix = "/v1/identities/{id}/login/"

// loginStep is a login endpoint: POST on pattern, served by serve with
// the {id} path parameter.
type loginStep struct {
	pattern string
	serve   func(h *Handler, w http.ResponseWriter, r *http.Request, id string) error
}

// loginSteps are the login endpoints by the last segment of their path.
var loginSteps = map[string]loginStep{
	"password": {loginPrefix + "password", (*Handler).loginPassword},
	"second":   {loginPrefix + "second", (*Handler).loginSecond},
	"app":      {loginPrefix + "app", (*Handler).loginApp},
	"finish":   {loginPrefix + "finish", (*Handler).finishLogin},
}

// route returns s as the mux serves it.
func (s loginStep) route() Route {
	serve := s.serve
	return Route{"POST", s.pattern, func(h *Handler, w http.ResponseWriter, r *http.Request) error {
		return serve(h, w, r, r.PathValue("id"))
	}}
}

// loginRoute finds the login step of a POST to /v1/identities/ID/login/STEP
// as the mux would, and returns it with ID. It takes only paths the mux
// serves as they are and matches the same way: plain ASCII letters,
// digits and "-._~" between the slashes, nothing escaped, so that the
// path is its escaped form, already clean (pathProblem refused dot and
// empty segments), and ID is the segment unescaped. Other paths and
// methods go through the mux (and Handler.dispatch, which answers 405).
func loginRoute(r *http.Request) (loginStep, string, bool) {
	const ids = "/v1/identities/"
	p := r.URL.Path
	if r.Method != http.MethodPost || r.URL.RawPath != "" || !strings.HasPrefix(p, ids) {
		return loginStep{}, "", false
	}
	for i := len(ids); i < len(p); i++ {
		if c := p[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
			return loginStep{}, "", false
		}
	}
	id, rest, ok := strings.Cut(p[len(ids):], "/")
	if !ok || id == "" {
		return loginStep{}, "", false
	}
	name, ok := strings.CutPrefix(rest, "login/")
	if !ok {
		return loginStep{}, "", false
	}
	step, ok := loginSteps[name]
	return step, id, ok
}

// logRequest writes the line of one request at level Info: method, route
// pattern, status and duration. It builds nothing when the logger does not
// take Info, and the record carries no source position (the call site is
// always this one), which spares the stack walk of slog.Logger.
func (h *Handler) logRequest(r *http.Request, route string, status int, d time.Duration) {
	ctx := r.Context()
	if !h.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	rec := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	rec.AddAttrs(slog.String("method", r.Method), slog.String("route", route), slog.Int("status", status), slog.Duration("duration", d))
	h.log.Handler().Handle(ctx, rec)
}

// pathProblem refuses paths that a client could use to confuse routing:
// dot segments, empty segments, encoded slashes, NULs and control
// characters, over-long paths.
func pathProblem(r *http.Request) string {
	p := r.URL.Path
	raw := r.URL.RawPath
	switch {
	case len(p) > 1024 || len(r.URL.RawQuery) > 1024:
		return "The request path or query is too long."
	case !strings.HasPrefix(p, "/"):
		return "The request path must start with /."
	case strings.Contains(strings.ToLower(raw), "%2f") || strings.Contains(strings.ToLower(raw), "%5c"):
		return "The request path must not contain encoded slashes."
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return "The request path must not contain . or .. segments."
		}
	}
	if strings.Contains(p[1:], "//") {
		return "The request path must not contain empty segments."
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\' {
			return "The request path holds forbidden characters."
		}
	}
	return ""
}

// dispatch serves the routes of one pattern: the method picks the route,
// else 405 with Allow; an empty list is the catch-all 404.
func (h *Handler) dispatch(pattern string, rts []Route) http.Handler {
	allow := make([]string, 0, len(rts))
	for _, rt := range rts {
		allow = append(allow, rt.Method)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(rts) == 0 {
			writeError(w, http.StatusNotFound, Error{Code: CodeNotFound, Message: "There is no such endpoint; see /v1/openapi.json."})
			return
		}
		for _, rt := range rts {
			if r.Method == rt.Method {
				if err := rt.handle(h, w, r); err != nil {
					h.fail(w, r, err)
				}
				return
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, Error{Code: CodeMethodNotAllowed,
			Message: fmt.Sprintf("%s %s accepts %s only.", r.Method, pattern, strings.Join(allow, ", "))})
	})
}

// fail writes the answer for err.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var re *requestError
	status, body := 0, Error{}
	if errors.As(err, &re) {
		status, body = re.status, Error{Code: re.code, Message: re.msg}
	} else {
		status, body = classify(err)
	}
	switch {
	case status >= 500 && body.Code != CodeBusy: // busy is load, not a failure
		h.log.ErrorContext(r.Context(), "api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	default:
		h.log.DebugContext(r.Context(), "api: request refused", "method", r.Method, "path", r.URL.Path, "code", body.Code)
	}
	if status == http.StatusUnauthorized && body.Code == CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="authbench"`)
	}
	var rl *service.RateLimitError
	be := (*service.BusyError)(nil)
	switch {
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((rl.RetryAfter+time.Second-1)/time.Second))))
	case body.Code == CodeAttemptsInFlight:
		w.Header().Set("Retry-After", "1")
	case errors.As(err, &be):
		// RFC 9110 §10.2.3: when to send the request again.
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter(be)))
	}
	writeError(w, status, body)
}

func writeError(w http.ResponseWriter, status int, e Error) {
	writeJSON(w, status, errorBody{Error: e})
}

// jsonEncoder is a buffer with its encoder (as json.Marshal: HTML
// characters escaped, with a newline after each value), reused through
// jsonEncoders: the ResponseWriter copies what it is given.
type jsonEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var jsonEncoders = sync.Pool{New: func() any {
	e := new(jsonEncoder)
	e.enc = json.NewEncoder(&e.buf)
	return e
}}

// The values of the headers of every JSON answer, shared (capacity 1:
// an Add to one of them copies it).
var (
	hdrJSON    = []string{"application/json"}[:1:1]
	hdrNoStore = []string{"no-store"}[:1:1]
	hdrNosniff = []string{"nosniff"}[:1:1]
)

// contentLengths holds, for each answer length below maxShared bytes, the
// value of its Content-Length header, made the first time and then shared
// between answers as the values above are.
const maxShared = 4096

var contentLengths [maxShared]atomic.Pointer[[]string]

// contentLength returns the value of the Content-Length header of an
// answer of n bytes.
func contentLength(n int) []string {
	if n >= maxShared {
		return []string{strconv.Itoa(n)}
	}
	if v := contentLengths[n].Load(); v != nil {
		return *v
	}
	v := []string{strconv.Itoa(n)}[:1:1]
	contentLengths[n].Store(&v)
	return v
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	e := jsonEncoders.Get().(*jsonEncoder)
	defer func() {
		if e.buf.Cap() <= 64<<10 {
			jsonEncoders.Put(e)
		}
	}()
	buf := &e.buf
	buf.Reset()
	if b, ok := appendAnswer(buf.AvailableBuffer(), v); ok {
		buf.Write(b)
	} else if err := e.enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"An internal error occurred."}}` + "\n")
	}
	hd := w.Header()
	hd["Content-Type"] = hdrJSON
	hd["Cache-Control"] = hdrNoStore
	hd["X-Content-Type-Options"] = hdrNosniff
	hd["Content-Length"] = contentLength(buf.Len())
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// bearer returns the request's bearer token.
func bearer(r *http.Request) (string, error) {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", &requestError{http.StatusUnauthorized, CodeUnauthorized, "A bearer token is required (Authorization: Bearer TOKEN)."}
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 256 {
		return "", &requestError{http.StatusUnauthorized, CodeUnauthorized, "The bearer token is not valid."}
	}
	return token, nil
}

// actor returns who the request's bearer token belongs to: a support
// operator or the owner of a two-factor self-service session.
func (h *Handler) actor(r *http.Request) (domain.Actor, error) {
	token, err := bearer(r)
	if err != nil {
		return domain.Actor{}, err
	}
	sum := sha256.Sum256([]byte(token))
	operator, found := "", 0
	for _, s := range h.support {
		// Every configured token is compared, in constant time, so the
		// time taken says nothing about which one matched.
		eq := subtle.ConstantTimeCompare(sum[:], s.hash[:])
		if eq == 1 && found == 0 {
			operator = s.operator
		}
		found |= eq
	}
	if found == 1 {
		return domain.Support(operator), nil
	}
	a, err := h.svc.Authenticate(r.Context(), token)
	if errors.Is(err, service.ErrUnauthorized) {
		return domain.Actor{}, &requestError{http.StatusUnauthorized, CodeUnauthorized,
			"The bearer token is unknown or its session ended (logout, expiry, or an authenticator that proved it is no longer active)."}
	}
	return a, err
}

// ids returns the validated {id} and {aid} (or {sid}) path parameters
// ("" when the route has none).
func ids(r *http.Request) (id, aid string, err error) {
	id, aid = r.PathValue("id"), r.PathValue("aid")
	if sid := r.PathValue("sid"); sid != "" {
		if err := service.CheckID("the session ID", sid); err != nil {
			return "", "", err
		}
		aid = sid
	}
	if id != "" {
		if err := service.CheckID("the identity ID", id); err != nil {
			return "", "", err
		}
	}
	if aid != "" {
		if err := service.CheckID("the authenticator ID", aid); err != nil {
			return "", "", err
		}
	}
	return id, aid, nil
}

// noQuery refuses query parameters on an endpoint that takes none.
func noQuery(r *http.Request) error {
	if r.URL.RawQuery != "" {
		return badRequest("This endpoint takes no query parameters.")
	}
	return nil
}

// source returns the client address the per-source limit keys on.
func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limit applies the per-source rate limit of the login and activation
// endpoints, before anything is looked up. The limit per identity and
// authenticator is the service's, once it knows they exist.
func (h *Handler) limit(w http.ResponseWriter, r *http.Request) error {
	if ok, wait := h.bySrc.Allow(source(r)); !ok {
		secs := int(wait/time.Second) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return &requestError{http.StatusTooManyRequests, CodeRateLimited,
			fmt.Sprintf("Too many login attempts from this address; try again in %d seconds.", secs)}
	}
	return nil
}

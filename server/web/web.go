package web

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/authbench/authbench/server/service"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Defaults of Options.
const (
	DefaultMaxForm     = 64 << 10
	DefaultMaxPSKCBody = 4 << 20
)

// Options configure New. Service is required; the zero value of every
// other field is a usable default.
type Options struct {
	// Service runs every use case of the pages.
	Service *service.Service
	// SupportTokens maps each support token to the ID of the operator who
	// holds it (as api.Options); without any, nobody can log in to the
	// support console.
	SupportTokens map[string]string
	// Secure marks a server reached over TLS: cookies are Secure with
	// __Host- names, and Strict-Transport-Security is sent.
	Secure bool
	// SourceLimit is the per-source limit of the login and activation
	// requests, shared with the API (api.Handler.SourceLimiter); nil
	// applies none.
	SourceLimit *service.Limiter
	// ConsoleTTL is how long a support console login lasts; default
	// service.DefaultSessionTTL.
	ConsoleTTL time.Duration
	// MaxPSKCBody bounds an uploaded PSKC document; default 4 MiB.
	MaxPSKCBody int64
	// Logger receives refusals of forms and internal errors; nil discards.
	Logger *slog.Logger
	// Now is the clock of the console's cookies; nil means time.Now.
	Now func() time.Time
}

// Handler serves the pages. It is safe for concurrent use.
type Handler struct {
	svc        *service.Service
	support    []supportKey
	secure     bool
	limit      *service.Limiter
	consoleTTL time.Duration
	maxPSKC    int64
	log        *slog.Logger
	now        func() time.Time
	mux        *http.ServeMux
	pages      map[string]*template.Template
	static     http.Handler
	ended      endedSet
}

var _ http.Handler = (*Handler)(nil)

// New returns the pages' handler over opts.Service. It returns an error
// when Service is nil or a template does not parse.
func New(opts Options) (*Handler, error) {
	if opts.Service == nil {
		return nil, errors.New("web: Options.Service is required")
	}
	h := &Handler{
		svc:        opts.Service,
		secure:     opts.Secure,
		limit:      opts.SourceLimit,
		consoleTTL: opts.ConsoleTTL,
		maxPSKC:    opts.MaxPSKCBody,
		log:        opts.Logger,
		now:        opts.Now,
		ended:      endedSet{m: map[string]time.Time{}},
	}
	if h.consoleTTL <= 0 {
		h.consoleTTL = service.DefaultSessionTTL
	}
	if h.maxPSKC <= 0 {
		h.maxPSKC = DefaultMaxPSKCBody
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.support = supportKeys(opts.SupportTokens)
	var err error
	if h.pages, err = parsePages(); err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(staticFS, "static")
	h.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	h.routes()
	return h, nil
}

// funcs are the template functions: args passes several values to a
// shared template ({{template "authdetails" (args $ .)}}).
var funcs = template.FuncMap{"args": func(v ...any) []any { return v }}

// parsePages parses each page template with the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		pages[base] = t
	}
	return pages, nil
}

func (h *Handler) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.home)
	m.HandleFunc("GET /sessions", h.sessions)
	m.HandleFunc("GET /audit", h.audit)
	m.Handle("GET /static/", h.static)
	h.post(m, "/login", h.loginPassword, limited)
	h.post(m, "/login/second", h.loginSecond, limited)
	h.post(m, "/login/app", h.loginApp, limited)
	h.post(m, "/login/finish", h.loginFinish, limited)
	h.post(m, "/logout", h.logout, 0)
	h.post(m, "/authenticators/{aid}/block", h.block, 0)
	h.post(m, "/authenticators/{aid}/reactivate", h.reactivate, 0)
	h.post(m, "/authenticators/{aid}/activate", h.activate, limited)
	h.post(m, "/authenticators/{aid}/cancel", h.cancel, 0)
	h.post(m, "/chip", h.addChip, 0)
	h.post(m, "/chip/finish", h.finishChip, limited)
	h.post(m, "/code-device", h.addCodeDevice, 0)
	h.post(m, "/password", h.addPassword, 0)
	h.post(m, "/sessions/{sid}/end", h.endSession, 0)

	m.HandleFunc("GET /support", h.supportHome)
	m.HandleFunc("GET /support/identities/{id}", h.supportIdentity)
	h.post(m, "/support/login", h.supportLogin, limited)
	h.post(m, "/support/logout", h.supportLogout, 0)
	h.post(m, "/support/find", h.supportFind, 0)
	h.post(m, "/support/identities", h.supportCreate, 0)
	h.post(m, "/support/identities/{id}/block", h.supportBlockIdentity, 0)
	h.post(m, "/support/identities/{id}/unblock", h.supportUnblockIdentity, 0)
	h.post(m, "/support/identities/{id}/password", h.supportPassword, 0)
	h.post(m, "/support/identities/{id}/code-device", h.supportAddCode, 0)
	h.post(m, "/support/identities/{id}/authenticators/{aid}/activate", h.supportActivate, limited)
	h.post(m, "/support/identities/{id}/authenticators/{aid}/reactivate", h.supportReactivate, 0)
	h.post(m, "/support/identities/{id}/authenticators/{aid}/block", h.supportBlock, 0)
	h.post(m, "/support/identities/{id}/authenticators/{aid}/cancel", h.supportCancel, 0)
	h.post(m, "/support/identities/{id}/sessions/{sid}/end", h.supportEndSession, 0)
	h.post(m, "/support/pskc", h.supportPSKC, multipart)
	h.post(m, "/support/audit/verify", h.supportVerify, 0)
	m.HandleFunc("/", h.notFound)
	h.mux = m
}

// Form flags of post.
const (
	limited   = 1 << iota // the per-source rate limit of logins and activations
	multipart             // a multipart/form-data body (an upload)
)

// post registers a form handler: the body is bounded and parsed, the CSRF
// token checked, and the rate limit applied, before f runs.
func (h *Handler) post(m *http.ServeMux, path string, f http.HandlerFunc, flags int) {
	m.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
		max := int64(DefaultMaxForm)
		if flags&multipart != 0 {
			max = h.maxPSKC + 64<<10
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		var err error
		if flags&multipart != 0 {
			if err = r.ParseMultipartForm(1 << 20); errors.Is(err, http.ErrNotMultipart) {
				err = r.ParseForm() // no upload: refused below
			}
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				h.failPage(w, r, http.StatusRequestEntityTooLarge, "error.too_large")
				return
			}
			h.failPage(w, r, http.StatusBadRequest, "error.bad_form")
			return
		}
		if !h.csrfOK(r) {
			h.log.InfoContext(r.Context(), "web: form refused: missing or wrong CSRF token", "path", r.URL.Path)
			h.failPage(w, r, http.StatusForbidden, "error.csrf")
			return
		}
		if flags&limited != 0 && h.limit != nil {
			if ok, wait := h.limit.Allow(source(r)); !ok {
				w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
				msg, _ := service.Message(&service.RateLimitError{RetryAfter: wait})
				v := h.view(w, r, "error.title")
				v.Error = msg
				h.render(w, r, http.StatusTooManyRequests, "error", v)
				return
			}
		}
		f(w, r)
	})
}

// source is the client address the per-source limit keys on.
func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// contentSecurityPolicy allows the pages' own script, styles and images
// only: no inline script or style, no frames, forms to this origin only.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// ServeHTTP sets the security headers of every answer, recovers from
// panics and routes the request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "publickey-credentials-create=(self), publickey-credentials-get=(self), camera=(), microphone=(), geolocation=()")
	if h.secure {
		hd.Set("Strict-Transport-Security", "max-age=31536000")
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.ErrorContext(r.Context(), "web: panic", "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			h.failPage(w, r, http.StatusInternalServerError, "error.internal")
		}
	}()
	if r.Method == http.MethodGet {
		if l := r.URL.Query().Get("lang"); l != "" {
			h.switchLanguage(w, r, l)
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// notFound answers paths the pages do not have.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		h.failPage(w, r, http.StatusMethodNotAllowed, "error.method")
		return
	}
	h.failPage(w, r, http.StatusNotFound, "error.not_found")
}

// Cookies.
const (
	sessionCookie = "authbench_session"
	consoleCookie = "authbench_support"
	csrfCookie    = "authbench_csrf"
	flashCookie   = "authbench_flash"
	langCookie    = "authbench_lang"
	csrfField     = "csrf"
)

// cookieName is base, with the __Host- prefix over TLS (RFC 6265bis §4.1.3.2:
// Secure, Path=/, no Domain, so no other host can set or shadow it).
func (h *Handler) cookieName(base string) string {
	if h.secure {
		return "__Host-" + base
	}
	return base
}

// setCookie sets cookie base to value for this browser session (no
// expiry), HttpOnly, SameSite=Strict, Path=/, Secure over TLS; an empty
// value deletes it.
func (h *Handler) setCookie(w http.ResponseWriter, base, value string) {
	c := &http.Cookie{Name: h.cookieName(base), Value: value, Path: "/", HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteStrictMode}
	if value == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// cookie returns the value of cookie base, "" when there is none.
func (h *Handler) cookie(r *http.Request, base string) string {
	c, err := r.Cookie(h.cookieName(base))
	if err != nil {
		return ""
	}
	return c.Value
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// csrfToken returns the request's CSRF token, setting a new cookie when it
// has none.
func (h *Handler) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if tok := h.cookie(r, csrfCookie); len(tok) == 43 {
		return tok
	}
	tok := randomToken()
	h.setCookie(w, csrfCookie, tok)
	// A form rendered in this answer must match the new cookie.
	r.AddCookie(&http.Cookie{Name: h.cookieName(csrfCookie), Value: tok})
	return tok
}

// rotateCSRF gives the browser a new CSRF token (at login and logout).
func (h *Handler) rotateCSRF(w http.ResponseWriter) {
	h.setCookie(w, csrfCookie, randomToken())
}

// csrfOK checks a form's CSRF token against the cookie (double submit; the
// cookie is SameSite=Strict and, over TLS, __Host-), and refuses a request
// that a browser marks as coming from another site.
func (h *Handler) csrfOK(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	form := r.PostFormValue(csrfField)
	if r.MultipartForm != nil {
		if v := r.MultipartForm.Value[csrfField]; len(v) == 1 {
			form = v[0]
		}
	}
	c := h.cookie(r, csrfCookie)
	return c != "" && form != "" && subtle.ConstantTimeCompare([]byte(c), []byte(form)) == 1
}

// flash remembers a message for the next page (after a redirect).
func (h *Handler) flash(w http.ResponseWriter, key string, args ...string) {
	v := key
	for _, a := range args {
		v += "\x1f" + a
	}
	h.setCookie(w, flashCookie, base64.RawURLEncoding.EncodeToString([]byte(v)))
}

// takeFlash returns and deletes the message of the previous answer.
func (h *Handler) takeFlash(w http.ResponseWriter, r *http.Request) (string, []string) {
	c := h.cookie(r, flashCookie)
	if c == "" {
		return "", nil
	}
	h.setCookie(w, flashCookie, "")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) > 512 {
		return "", nil
	}
	parts := strings.Split(string(b), "\x1f")
	if !knownKey(parts[0]) || !strings.HasPrefix(parts[0], "flash.") {
		return "", nil
	}
	return parts[0], parts[1:]
}

// redirect answers a form with 303 See Other to path.
func redirect(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, path, http.StatusSeeOther)
}

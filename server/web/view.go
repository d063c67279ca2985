package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
)

// view is what every page template gets: the language, the CSRF token, the
// messages, who is logged in, and the page's own Data.
type view struct {
	Lang     string // "da" or "en"
	Path     string // the page's path, for the language switch
	CSRF     string
	Title    string   // a text key
	Flash    string   // a success message, in the page's language
	Error    string   // a refusal, in the service's words
	Notice   string   // a note, in the page's language
	Identity string   // the person logged in
	Operator string   // the support operator logged in
	Support  bool     // a console page
	Data     any      // the page's own
	args     []string // of Flash
}

// T returns the text of key in the page's language, with args in place of
// %s.
func (v *view) T(key string, args ...any) string {
	s := text(v.Lang, key)
	if len(args) > 0 {
		s = fmt.Sprintf(s, args...)
	}
	return s
}

// Other is the language the switch offers.
func (v *view) Other() string {
	if v.Lang == "da" {
		return "en"
	}
	return "da"
}

// Kind names an authenticator kind.
func (v *view) Kind(k device.Kind) string { return v.T("kind." + string(k)) }

// State names an authenticator state.
func (v *view) State(s domain.State) string { return v.T("state." + string(s)) }

// IdentityState names an identity state.
func (v *view) IdentityState(s string) string { return v.T("identity." + s) }

// Time formats t for a person (UTC), "—" when it is zero.
func (v *view) Time(t time.Time) string {
	if t.IsZero() {
		return v.T("never")
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// Element says whether the authenticator's security element exists.
func (v *view) Element(a service.AuthenticatorView) string {
	switch a.Element.(type) {
	case service.WipedSummary:
		return v.T("element.deleted")
	case service.ChipSummary, service.CodeSummary, service.AppSummary, service.PasswordSummary:
		return v.T("element.present")
	}
	return v.T("element.none")
}

// Attestation says how a chip's attestation was verified: its format,
// and whether it chains to a trusted root; "" for other kinds.
func (v *view) Attestation(a service.AuthenticatorView) string {
	c, ok := a.Element.(service.ChipSummary)
	if !ok {
		return ""
	}
	if c.AttestationTrusted {
		return c.AttestationFormat + " (" + v.T("attestation.trusted") + ")"
	}
	return c.AttestationFormat + " (" + v.T("attestation.untrusted") + ")"
}

// Name is how a person recognises an authenticator: its label, else its
// serial or the start of its credential ID, else its ID.
func (v *view) Name(a service.AuthenticatorView) string {
	n := v.Kind(a.Kind)
	switch {
	case a.Label != "":
		n += " “" + a.Label + "”"
	case a.Serial != "":
		n += " " + a.Serial
	}
	return n
}

// Short shortens a credential ID for display.
func (v *view) Short(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

// lang returns the request's language: the cookie set by the switch, else
// the first of Danish and English in Accept-Language, else Danish.
func (h *Handler) lang(r *http.Request) string {
	if l := h.cookie(r, langCookie); l == "da" || l == "en" {
		return l
	}
	best, bestQ := "", -1.0
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if (base == "da" || base == "en") && q > bestQ {
			best, bestQ = base, q
		}
	}
	if best == "" {
		return "da"
	}
	return best
}

// switchLanguage remembers the language chosen with ?lang= and shows the
// page again without the query.
func (h *Handler) switchLanguage(w http.ResponseWriter, r *http.Request, l string) {
	if l != "da" && l != "en" {
		h.failPage(w, r, http.StatusBadRequest, "error.bad_form")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: h.cookieName(langCookie), Value: l, Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteStrictMode})
	// Back to the page, or to the front page of a form's address.
	to := r.URL.Path
	probe := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: to}, Host: r.Host}
	if _, pattern := h.mux.Handler(probe); pattern == "/" || pattern == "" {
		to = "/"
		if strings.HasPrefix(r.URL.Path, "/support") {
			to = "/support"
		}
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// view starts the view of a page titled title (a text key).
func (h *Handler) view(w http.ResponseWriter, r *http.Request, title string) *view {
	v := &view{Lang: h.lang(r), Path: r.URL.Path, CSRF: h.csrfToken(w, r), Title: title,
		Support: r.URL.Path == "/support" || strings.HasPrefix(r.URL.Path, "/support/")}
	if key, args := h.takeFlash(w, r); key != "" {
		v.Flash, v.args = key, args
		anys := make([]any, len(args))
		for i, a := range args {
			anys[i] = a
		}
		v.Flash = v.T(key, anys...)
	}
	return v
}

// render writes page name with v.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	t, ok := h.pages[name]
	if !ok {
		panic("web: no page " + name)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		h.log.ErrorContext(r.Context(), "web: rendering a page", "page", name, "err", err)
		http.Error(w, service.InternalMessage, http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// failPage answers with the error page saying key.
func (h *Handler) failPage(w http.ResponseWriter, r *http.Request, status int, key string) {
	v := h.view(w, r, "error.title")
	v.Notice = v.T(key)
	h.render(w, r, status, "error", v)
}

// refusal puts err in v: the service's words for a refusal; an internal
// error is logged and shown as service.InternalMessage. It returns the
// status of the page.
func (h *Handler) refusal(ctx context.Context, v *view, err error) int {
	msg, ok := service.Message(err)
	v.Error = msg
	var rl *service.RateLimitError
	var be *service.BusyError
	switch {
	case !ok:
		h.log.ErrorContext(ctx, "web: request failed", "err", err)
		return http.StatusInternalServerError
	case errors.As(err, &rl), errors.Is(err, service.ErrAttemptsInFlight):
		return http.StatusTooManyRequests
	case errors.As(err, &be), errors.Is(err, service.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, service.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, service.ErrInvalid), errors.Is(err, domain.ErrInvalid):
		return http.StatusBadRequest
	}
	return http.StatusUnprocessableEntity
}

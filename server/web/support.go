package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
)

// The support console: a support operator logs in with their support token
// and acts on any identity, as a citizen service centre does.
//
// The console's cookie holds the operator, an expiry and a nonce, MACed
// (HMAC-SHA256) under a key derived from the operator's support token: any
// replica that holds the same token file accepts it, nothing is stored,
// and a token removed from the file ends its logins at the next start. A
// logout ends the login on the replica that served it at once, and
// everywhere at its expiry (Options.ConsoleTTL).

// supportKey is the console key of one support token.
type supportKey struct {
	operator string
	key      [sha256.Size]byte
}

// supportKeys derives the console keys of tokens (token → operator), in a
// stable order.
func supportKeys(tokens map[string]string) []supportKey {
	list := make([]string, 0, len(tokens))
	for t := range tokens {
		if t != "" {
			list = append(list, t)
		}
	}
	sort.Strings(list)
	keys := make([]supportKey, 0, len(list))
	for _, t := range list {
		keys = append(keys, supportKey{operator: tokens[t], key: sha256.Sum256([]byte("authbench support console\x00" + t))})
	}
	return keys
}

// mac returns the MAC of payload under k.
func (k *supportKey) mac(payload string) []byte {
	m := hmac.New(sha256.New, k.key[:])
	io.WriteString(m, payload)
	return m.Sum(nil)
}

// tokenKey returns the key of support token tok, comparing every key (in
// constant time, so the time taken says nothing about which matched).
func (h *Handler) tokenKey(tok string) (*supportKey, bool) {
	sum := sha256.Sum256([]byte("authbench support console\x00" + tok))
	var found *supportKey
	for i := range h.support {
		if subtle.ConstantTimeCompare(sum[:], h.support[i].key[:]) == 1 && found == nil {
			found = &h.support[i]
		}
	}
	return found, found != nil
}

// consoleValue returns the cookie of a console login of k until exp.
func consoleValue(k *supportKey, exp time.Time, nonce string) string {
	payload := k.operator + "|" + strconv.FormatInt(exp.Unix(), 10) + "|" + nonce
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(k.mac(payload))
}

// operator returns the support actor of the request's console cookie.
func (h *Handler) operator(r *http.Request) (domain.Actor, bool) {
	c := h.cookie(r, consoleCookie)
	p64, m64, ok := strings.Cut(c, ".")
	if !ok || len(c) > 512 {
		return domain.Actor{}, false
	}
	raw, err1 := base64.RawURLEncoding.DecodeString(p64)
	mac, err2 := base64.RawURLEncoding.DecodeString(m64)
	if err1 != nil || err2 != nil {
		return domain.Actor{}, false
	}
	payload := string(raw)
	var match *supportKey
	for i := range h.support {
		if hmac.Equal(h.support[i].mac(payload), mac) && match == nil {
			match = &h.support[i]
		}
	}
	parts := strings.Split(payload, "|")
	if match == nil || len(parts) != 3 || parts[0] != match.operator {
		return domain.Actor{}, false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !h.now().Before(time.Unix(exp, 0)) || h.ended.has(parts[2], h.now()) {
		return domain.Actor{}, false
	}
	return domain.Support(match.operator), true
}

// endedSet holds the nonces of console logins that logged out before they
// expired.
type endedSet struct {
	mu sync.Mutex
	m  map[string]time.Time // nonce → expiry
}

func (e *endedSet) add(nonce string, exp, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for n, x := range e.m {
		if !now.Before(x) {
			delete(e.m, n)
		}
	}
	e.m[nonce] = exp
}

func (e *endedSet) has(nonce string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[nonce]
	return ok && now.Before(x)
}

// console returns the operator of the request, or answers with the
// console's login page and returns ok false.
func (h *Handler) console(w http.ResponseWriter, r *http.Request) (domain.Actor, bool) {
	by, ok := h.operator(r)
	if !ok {
		status := http.StatusOK
		v := h.view(w, r, "support.login.title")
		if h.cookie(r, consoleCookie) != "" {
			h.setCookie(w, consoleCookie, "")
			v.Notice = v.T("support.ended")
			status = http.StatusUnauthorized
		} else if r.Method != http.MethodGet {
			v.Notice = v.T("support.needed")
			status = http.StatusUnauthorized
		}
		h.render(w, r, status, "support-login", v)
	}
	return by, ok
}

// supportView is the view of a console page for by.
func (h *Handler) supportView(w http.ResponseWriter, r *http.Request, by domain.Actor, title string) *view {
	v := h.view(w, r, title)
	v.Operator = by.ID
	v.Support = true
	return v
}

// supportHome is GET /support: find or create an identity, import PSKC,
// verify the audit trail.
func (h *Handler) supportHome(w http.ResponseWriter, r *http.Request) {
	by, ok := h.console(w, r)
	if !ok {
		return
	}
	h.render(w, r, http.StatusOK, "support-home", h.supportView(w, r, by, "support.title"))
}

// supportHomeData is the outcome of an action on the console's home page.
type supportHomeData struct {
	Import *service.ImportResult
	Verify *service.AuditVerification
}

// supportHomeWith shows the console's home page with the outcome of an
// action: err as the refusal, or data (an import or a verification).
func (h *Handler) supportHomeWith(w http.ResponseWriter, r *http.Request, by domain.Actor, err error, data any) {
	v := h.supportView(w, r, by, "support.title")
	status := http.StatusOK
	if err != nil {
		status = h.refusal(r.Context(), v, err)
	} else {
		switch d := data.(type) {
		case service.ImportResult:
			v.Data = supportHomeData{Import: &d}
		case service.AuditVerification:
			v.Data = supportHomeData{Verify: &d}
		}
	}
	h.render(w, r, status, "support-home", v)
}

// supportLogin is POST /support/login: the operator's support token.
func (h *Handler) supportLogin(w http.ResponseWriter, r *http.Request) {
	k, ok := h.tokenKey(r.PostFormValue("token"))
	if !ok {
		v := h.view(w, r, "support.login.title")
		v.Error = v.T("support.bad_token")
		h.render(w, r, http.StatusUnauthorized, "support-login", v)
		return
	}
	h.setCookie(w, consoleCookie, consoleValue(k, h.now().Add(h.consoleTTL), randomToken()))
	h.rotateCSRF(w)
	redirect(w, r, "/support")
}

// supportLogout is POST /support/logout.
func (h *Handler) supportLogout(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.operator(r); ok {
		c := h.cookie(r, consoleCookie)
		p64, _, _ := strings.Cut(c, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(p64)
		if parts := strings.Split(string(raw), "|"); len(parts) == 3 {
			exp, _ := strconv.ParseInt(parts[1], 10, 64)
			h.ended.add(parts[2], time.Unix(exp, 0), h.now())
		}
	}
	h.setCookie(w, consoleCookie, "")
	h.rotateCSRF(w)
	h.flash(w, "flash.logged_out")
	redirect(w, r, "/support")
}

// identityPath is the console page of identity id.
func identityPath(id string) string { return "/support/identities/" + url.PathEscape(id) }

// supportFind is POST /support/find: go to the identity with the ID typed.
func (h *Handler) supportFind(w http.ResponseWriter, r *http.Request) {
	by, ok := h.console(w, r)
	if !ok {
		return
	}
	id := strings.TrimSpace(r.PostFormValue("identity"))
	if err := service.CheckID("the identity ID", id); err != nil {
		h.supportHomeWith(w, r, by, err, nil)
		return
	}
	if _, err := h.svc.Identity(r.Context(), by, id); err != nil {
		h.supportHomeWith(w, r, by, err, nil)
		return
	}
	redirect(w, r, identityPath(id))
}

// supportCreate is POST /support/identities: a new identity, with a
// password when one is typed.
func (h *Handler) supportCreate(w http.ResponseWriter, r *http.Request) {
	by, ok := h.console(w, r)
	if !ok {
		return
	}
	pw, err := newPassword(r)
	if err == nil {
		var v service.IdentityView
		v, err = h.svc.CreateIdentity(r.Context(), by, service.CreateIdentityRequest{ID: strings.TrimSpace(r.PostFormValue("identity")), Password: pw})
		if err == nil {
			h.flash(w, "flash.identity_created", v.ID)
			redirect(w, r, identityPath(v.ID))
			return
		}
	}
	h.supportHomeWith(w, r, by, err, nil)
}

// supportIdentityData is the data of an identity's console page.
type supportIdentityData struct {
	service.IdentityView
	Sessions service.SessionList
	Audit    auditData
}

// supportIdentity is GET /support/identities/{id}.
func (h *Handler) supportIdentity(w http.ResponseWriter, r *http.Request) {
	by, ok := h.console(w, r)
	if !ok {
		return
	}
	h.supportIdentityPage(w, r, by, nil)
}

func (h *Handler) supportIdentityPage(w http.ResponseWriter, r *http.Request, by domain.Actor, err error) {
	id := r.PathValue("id")
	v := h.supportView(w, r, by, "support.identity.title")
	status := http.StatusOK
	if err != nil {
		status = h.refusal(r.Context(), v, err)
	}
	iv, ierr := h.svc.Identity(r.Context(), by, id)
	if ierr != nil {
		h.render(w, r, h.refusal(r.Context(), v, ierr), "support-home", v)
		return
	}
	d := supportIdentityData{IdentityView: iv}
	if d.Sessions, ierr = h.svc.Sessions(r.Context(), by, id, ""); ierr == nil {
		d.Audit, ierr = h.auditData(r, by, id)
	}
	if ierr != nil {
		h.render(w, r, h.refusal(r.Context(), v, ierr), "support-home", v)
		return
	}
	v.Data = d
	h.render(w, r, status, "support-identity", v)
}

// supportChange runs a console action on identity {id}: on success its
// page with the flash key, on a refusal its page with the service's words.
func (h *Handler) supportChange(w http.ResponseWriter, r *http.Request, flash string, f func(by domain.Actor, id, aid string) (string, error)) {
	by, ok := h.console(w, r)
	if !ok {
		return
	}
	id, aid := r.PathValue("id"), r.PathValue("aid")
	if aid == "" {
		aid = r.PathValue("sid")
	}
	arg, err := f(by, id, aid)
	if err != nil {
		h.supportIdentityPage(w, r, by, err)
		return
	}
	h.flash(w, flash, arg)
	redirect(w, r, identityPath(id))
}

// supportBlockIdentity is POST /support/identities/{id}/block.
func (h *Handler) supportBlockIdentity(w http.ResponseWriter, r *http.Request) {
	h.supportChange(w, r, "flash.identity_blocked", func(by domain.Actor, id, _ string) (string, error) {
		_, err := h.svc.BlockIdentity(r.Context(), by, id, r.PostFormValue("reason"))
		return id, err
	})
}

// supportUnblockIdentity is POST /support/identities/{id}/unblock.
func (h *Handler) supportUnblockIdentity(w http.ResponseWriter, r *http.Request) {
	h.supportChange(w, r, "flash.identity_unblocked", func(by domain.Actor, id, _ string) (string, error) {
		_, err := h.svc.UnblockIdentity(r.Context(), by, id, r.PostFormValue("note"))
		return id, err
	})
}

// supportPassword is POST /support/identities/{id}/password: a new
// password, typed by the person at the desk.
func (h *Handler) supportPassword(w http.ResponseWriter, r *http.Request) {
	h.supportChange(w, r, "flash.password", func(by domain.Actor, id, _ string) (string, error) {
		pw, err := newPassword(r)
		if err != nil {
			return "", err
		}
		_, err = h.svc.AddAuthenticator(r.Context(), by, id, service.AddRequest{Kind: string(device.KindPassword), Password: pw})
		return "", err
	})
}

// supportAddCode is POST /support/identities/{id}/code-device: a code
// device added at the desk (an identity's first second factor).
func (h *Handler) supportAddCode(w http.ResponseWriter, r *http.Request) {
	h.supportChange(w, r, "flash.code_added", func(by domain.Actor, id, _ string) (string, error) {
		res, err := h.svc.AddAuthenticator(r.Context(), by, id, codeRequest(r))
		return res.Authenticator.Serial, err
	})
}

// supportActivate is POST .../authenticators/{aid}/activate: a pending
// code device's first code, read from the device at the desk.
func (h *Handler) supportActivate(w http.ResponseWriter, r *http.Request) {
	h.supportChange(w, r, "flash.activated", func(by domain.Actor, id, aid string) (string, error) {
		_, err := h.svc.Activate(r.Context(), by, id, aid, service.ActivateRequest{Code: r.PostFormValue("code")})
		return aid, err
	})
}

// supportReactivate is POST .../authenticators/{aid}/reactivate.
func (h *Handler) supportReactivate(w http.ResponseWriter, r *http.Request) {
	h.supportChange(w, r, "flash.reactivated", func(by domain.Actor, id, aid string) (string, error) {
		_, err := h.svc.Reactivate(r.Context(), by, id, aid)
		return aid, err
	})
}

// supportBlock is POST .../authenticators/{aid}/block.
func (h *Handler) supportBlock(w http.ResponseWriter, r *http.Request) {
	h.supportChange(w, r, "flash.blocked", func(by domain.Actor, id, aid string) (string, error) {
		_, err := h.svc.Block(r.Context(), by, id, aid, service.BlockRequest{Reason: r.PostFormValue("reason")})
		return aid, err
	})
}

// supportCancel is POST .../authenticators/{aid}/cancel.
func (h *Handler) supportCancel(w http.ResponseWriter, r *http.Request) {
	h.supportChange(w, r, "flash.cancelled", func(by domain.Actor, id, aid string) (string, error) {
		_, err := h.svc.Cancel(r.Context(), by, id, aid)
		return aid, err
	})
}

// supportEndSession is POST .../sessions/{sid}/end.
func (h *Handler) supportEndSession(w http.ResponseWriter, r *http.Request) {
	h.supportChange(w, r, "flash.session_ended", func(by domain.Actor, id, sid string) (string, error) {
		_, err := h.svc.EndSession(r.Context(), by, id, sid)
		return sid, err
	})
}

// errNoDocument refuses an upload without a file.
var errNoDocument = fmt.Errorf("%w: choose a PSKC document to upload", service.ErrInvalid)

// supportPSKC is POST /support/pskc: an uploaded PSKC document (RFC 6030).
func (h *Handler) supportPSKC(w http.ResponseWriter, r *http.Request) {
	by, ok := h.console(w, r)
	if !ok {
		return
	}
	f, _, err := r.FormFile("document")
	if err != nil {
		h.supportHomeWith(w, r, by, errNoDocument, nil)
		return
	}
	defer f.Close()
	doc, err := io.ReadAll(io.LimitReader(f, h.maxPSKC+1))
	switch {
	case err != nil:
		h.supportHomeWith(w, r, by, err, nil)
		return
	case len(doc) == 0:
		h.supportHomeWith(w, r, by, errNoDocument, nil)
		return
	case int64(len(doc)) > h.maxPSKC:
		h.supportHomeWith(w, r, by, fmt.Errorf("%w: the document is larger than %d bytes", service.ErrInvalid, h.maxPSKC), nil)
		return
	}
	res, err := h.svc.ImportPSKC(r.Context(), by, doc)
	h.supportHomeWith(w, r, by, err, res)
}

// supportVerify is POST /support/audit/verify: the whole audit trail
// checked.
func (h *Handler) supportVerify(w http.ResponseWriter, r *http.Request) {
	by, ok := h.console(w, r)
	if !ok {
		return
	}
	res, err := h.svc.VerifyAudit(r.Context(), by)
	h.supportHomeWith(w, r, by, err, res)
}

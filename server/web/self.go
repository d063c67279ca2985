package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
)

// The self-service pages: the login (password, then a second factor), the
// person's authenticators and what they can do with them, sessions and the
// audit trail. Every change goes through the service with the owner actor
// of the session the cookie holds.

// owner returns the actor of the request's session. Without a usable
// session it answers itself (the login page, saying why a session ended)
// and returns ok false.
func (h *Handler) owner(w http.ResponseWriter, r *http.Request) (by domain.Actor, token string, ok bool) {
	token = h.cookie(r, sessionCookie)
	if token == "" {
		if r.Method == http.MethodGet {
			h.loginPage(w, r, http.StatusOK, "")
		} else {
			h.loginPage(w, r, http.StatusUnauthorized, "login.needed")
		}
		return domain.Actor{}, "", false
	}
	by, err := h.svc.Authenticate(r.Context(), token)
	if err != nil {
		h.setCookie(w, sessionCookie, "")
		if errors.Is(err, service.ErrUnauthorized) || errors.Is(err, service.ErrForbidden) {
			h.loginPage(w, r, http.StatusUnauthorized, "login.ended")
			return domain.Actor{}, "", false
		}
		v := h.view(w, r, "login.title")
		h.render(w, r, h.refusal(r.Context(), v, err), "error", v)
		return domain.Actor{}, "", false
	}
	return by, token, true
}

// loginData is the data of the login pages.
type loginData struct {
	IdentityID string
	AppID      string // the app of an app login
	Ceremony   string
	Factors    []service.SecondFactor // to choose from
	Factor     *service.FactorLogin   // the one chosen
	Options    string                 // its WebAuthn request options, JSON
}

// loginPage shows the first step of the login; notice is a text key or "".
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request, status int, notice string) {
	v := h.view(w, r, "login.title")
	if notice != "" {
		v.Notice = v.T(notice)
	}
	v.Data = loginData{IdentityID: r.PostFormValue("identity")}
	h.render(w, r, status, "login", v)
}

// home is GET /: the person's authenticators, or the login.
func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	by, _, ok := h.owner(w, r)
	if !ok {
		return
	}
	h.homePage(w, r, by, nil, http.StatusOK)
}

// homeData is the data of the home page.
type homeData struct {
	service.IdentityView
	// NeedsPassword: the identity has no password that can be used or
	// reactivated, so the page offers a new one.
	NeedsPassword bool
	ChipOptions   string // the WebAuthn options of a chip being added, JSON
}

// homePage shows the identity of by with err, if any, as the refusal.
func (h *Handler) homePage(w http.ResponseWriter, r *http.Request, by domain.Actor, err error, status int) {
	v := h.view(w, r, "home.title")
	v.Identity = by.ID
	if err != nil {
		status = h.refusal(r.Context(), v, err)
	}
	id, ierr := h.svc.Identity(r.Context(), by, by.ID)
	if ierr != nil {
		h.render(w, r, h.refusal(r.Context(), v, ierr), "error", v)
		return
	}
	d := homeData{IdentityView: id, NeedsPassword: true}
	for _, a := range id.Authenticators {
		if a.Kind == device.KindPassword && (a.State == domain.StateActive || a.State == domain.StateSuspended) {
			d.NeedsPassword = false
		}
	}
	v.Data = d
	h.render(w, r, status, "home", v)
}

// loginPassword is POST /login: the password, the first step.
func (h *Handler) loginPassword(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("identity")
	v := h.view(w, r, "login.title")
	v.Data = loginData{IdentityID: id}
	if err := service.CheckID("the user ID", id); err != nil {
		h.render(w, r, h.refusal(r.Context(), v, err), "login", v)
		return
	}
	res, err := h.svc.LoginPassword(r.Context(), id, service.PasswordLoginRequest{Password: r.PostFormValue("password")})
	if err == nil && len(res.SecondFactors) == 0 {
		// The service's sentinel says it; the API leaves it to the client.
		err = fmt.Errorf("%w: the password is right, but no chip or code device is active; log in with the MitID app, or contact support", service.ErrSecondFactor)
	}
	if err != nil {
		h.render(w, r, h.refusal(r.Context(), v, err), "login", v)
		return
	}
	if len(res.SecondFactors) == 1 {
		h.beginFactor(w, r, id, res.Ceremony, res.SecondFactors[0].ID)
		return
	}
	v.Data = loginData{IdentityID: id, Ceremony: res.Ceremony, Factors: res.SecondFactors}
	h.render(w, r, http.StatusOK, "choose", v)
}

// loginApp is POST /login/app: the MitID app alone (its device key and
// its PIN are two factors). The page shows the service's challenge as a
// transfer code for the app; the app's response and the PIN go to
// /login/finish together, as the service's FinishLogin takes them.
func (h *Handler) loginApp(w http.ResponseWriter, r *http.Request) {
	id, aid := r.PostFormValue("identity"), r.PostFormValue("app")
	v := h.view(w, r, "login.title")
	v.Data = loginData{IdentityID: id, AppID: aid}
	if err := service.CheckID("the user ID", id); err != nil {
		h.render(w, r, h.refusal(r.Context(), v, err), "login", v)
		return
	}
	f, err := h.svc.BeginApp(r.Context(), id, service.AppLoginRequest{Authenticator: aid})
	if err != nil {
		h.render(w, r, h.refusal(r.Context(), v, err), "login", v)
		return
	}
	h.factorPage(w, r, v, id, &f, http.StatusOK)
}

// loginSecond is POST /login/second: the second factor chosen.
func (h *Handler) loginSecond(w http.ResponseWriter, r *http.Request) {
	h.beginFactor(w, r, r.PostFormValue("identity"), r.PostFormValue("ceremony"), r.PostFormValue("authenticator"))
}

// beginFactor shows the step of second factor aid: a code to type, or the
// chip to use.
func (h *Handler) beginFactor(w http.ResponseWriter, r *http.Request, id, ceremony, aid string) {
	v := h.view(w, r, "login.title")
	v.Data = loginData{IdentityID: id}
	if err := service.CheckID("the user ID", id); err != nil {
		h.render(w, r, h.refusal(r.Context(), v, err), "login", v)
		return
	}
	f, err := h.svc.BeginSecondFactor(r.Context(), id, service.SecondFactorRequest{Ceremony: ceremony, Authenticator: aid})
	if err != nil {
		h.render(w, r, h.refusal(r.Context(), v, err), "login", v)
		return
	}
	h.factorPage(w, r, v, id, &f, http.StatusOK)
}

// factorPage shows the step of second factor f of identity id.
func (h *Handler) factorPage(w http.ResponseWriter, r *http.Request, v *view, id string, f *service.FactorLogin, status int) {
	d := loginData{IdentityID: id, Ceremony: f.Ceremony, Factor: f}
	if f.PublicKey != nil {
		b, _ := json.Marshal(f.PublicKey)
		d.Options = string(b)
	}
	v.Data = d
	h.render(w, r, status, "factor", v)
}

// loginFinish is POST /login/finish: the code or the chip's assertion. A
// session is the cookie of the answer.
func (h *Handler) loginFinish(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("identity")
	v := h.view(w, r, "login.title")
	v.Data = loginData{IdentityID: id}
	if err := service.CheckID("the user ID", id); err != nil {
		h.render(w, r, h.refusal(r.Context(), v, err), "login", v)
		return
	}
	req := service.FinishLoginRequest{Ceremony: r.PostFormValue("ceremony"), Code: r.PostFormValue("code"),
		PIN: r.PostFormValue("pin"), Signature: strings.TrimSpace(r.PostFormValue("response"))}
	if c := r.PostFormValue("credential"); c != "" {
		req.Credential = new(service.AuthenticationResponse)
		if err := json.Unmarshal([]byte(c), req.Credential); err != nil {
			h.render(w, r, h.refusal(r.Context(), v, errCredential), "login", v)
			return
		}
	}
	res, err := h.svc.FinishLogin(r.Context(), id, req)
	if err != nil {
		// The ceremony is spent, right or wrong: the person starts again
		// at the password.
		h.render(w, r, h.refusal(r.Context(), v, err), "login", v)
		return
	}
	h.setCookie(w, sessionCookie, res.Session)
	h.rotateCSRF(w)
	h.flash(w, "flash.logged_in")
	redirect(w, r, "/")
}

// errCredential refuses a form whose credential is not WebAuthn JSON.
var errCredential = fmt.Errorf("%w: the credential is not the JSON of a WebAuthn response", service.ErrInvalid)

// logout is POST /logout.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if token := h.cookie(r, sessionCookie); token != "" {
		if _, err := h.svc.Logout(r.Context(), token); err != nil && !errors.Is(err, service.ErrUnauthorized) {
			h.log.WarnContext(r.Context(), "web: logout", "err", err)
		}
	}
	h.setCookie(w, sessionCookie, "")
	h.rotateCSRF(w)
	h.flash(w, "flash.logged_out")
	redirect(w, r, "/")
}

// change runs a self-service change for the session's owner: on success
// the home page with the flash key, on a refusal the home page with the
// service's words. A change that ends the session itself (blocking an
// authenticator that proved it) leads to the login, which says so.
func (h *Handler) change(w http.ResponseWriter, r *http.Request, flash string, f func(by domain.Actor, arg string) (string, error)) {
	by, _, ok := h.owner(w, r)
	if !ok {
		return
	}
	arg, err := f(by, r.PathValue("aid"))
	if err != nil {
		h.homePage(w, r, by, err, 0)
		return
	}
	h.flash(w, flash, arg)
	redirect(w, r, "/")
}

// block is POST /authenticators/{aid}/block (reason lost or compromised).
func (h *Handler) block(w http.ResponseWriter, r *http.Request) {
	h.change(w, r, "flash.blocked", func(by domain.Actor, aid string) (string, error) {
		_, err := h.svc.Block(r.Context(), by, by.ID, aid, service.BlockRequest{Reason: r.PostFormValue("reason")})
		return aid, err
	})
}

// reactivate is POST /authenticators/{aid}/reactivate.
func (h *Handler) reactivate(w http.ResponseWriter, r *http.Request) {
	h.change(w, r, "flash.reactivated", func(by domain.Actor, aid string) (string, error) {
		_, err := h.svc.Reactivate(r.Context(), by, by.ID, aid)
		return aid, err
	})
}

// activate is POST /authenticators/{aid}/activate: a pending code device's
// first code.
func (h *Handler) activate(w http.ResponseWriter, r *http.Request) {
	h.change(w, r, "flash.activated", func(by domain.Actor, aid string) (string, error) {
		_, err := h.svc.Activate(r.Context(), by, by.ID, aid, service.ActivateRequest{Code: r.PostFormValue("code")})
		return aid, err
	})
}

// cancel is POST /authenticators/{aid}/cancel: a pending add withdrawn.
func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) {
	h.change(w, r, "flash.cancelled", func(by domain.Actor, aid string) (string, error) {
		_, err := h.svc.Cancel(r.Context(), by, by.ID, aid)
		return aid, err
	})
}

// addCodeDevice is POST /code-device: a code display or audio code reader
// added by serial, pending until its first code.
func (h *Handler) addCodeDevice(w http.ResponseWriter, r *http.Request) {
	h.change(w, r, "flash.code_added", func(by domain.Actor, _ string) (string, error) {
		res, err := h.svc.AddAuthenticator(r.Context(), by, by.ID, codeRequest(r))
		return res.Authenticator.Serial, err
	})
}

// codeRequest is the add request of a code device form.
func codeRequest(r *http.Request) service.AddRequest {
	kind := r.PostFormValue("kind")
	if kind == "" {
		kind = string(device.KindCodeDisplay)
	}
	return service.AddRequest{Kind: kind, Serial: r.PostFormValue("serial"), Label: r.PostFormValue("label")}
}

// addPassword is POST /password: a new password (after the old one was
// blocked for good).
func (h *Handler) addPassword(w http.ResponseWriter, r *http.Request) {
	h.change(w, r, "flash.password", func(by domain.Actor, _ string) (string, error) {
		pw, err := newPassword(r)
		if err != nil {
			return "", err
		}
		_, err = h.svc.AddAuthenticator(r.Context(), by, by.ID, service.AddRequest{Kind: string(device.KindPassword), Password: pw})
		return "", err
	})
}

// errPasswordsDiffer refuses a new password typed differently twice.
var errPasswordsDiffer = fmt.Errorf("%w: the two passwords differ", service.ErrInvalid)

// newPassword returns the password of a form that asks for it twice.
func newPassword(r *http.Request) (string, error) {
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("repeat") {
		return "", errPasswordsDiffer
	}
	return pw, nil
}

// chipData is the data of the page that adds a chip.
type chipData struct {
	Authenticator string
	Ceremony      string
	Options       string // WebAuthn creation options, JSON
}

// addChip is POST /chip: the registration of a chip begins; the page runs
// navigator.credentials.create and posts the result to /chip/finish.
func (h *Handler) addChip(w http.ResponseWriter, r *http.Request) {
	by, _, ok := h.owner(w, r)
	if !ok {
		return
	}
	res, err := h.svc.AddAuthenticator(r.Context(), by, by.ID, service.AddRequest{Kind: string(device.KindChip), Label: r.PostFormValue("label")})
	if err != nil {
		h.homePage(w, r, by, err, 0)
		return
	}
	act, ok := res.Activation.(service.ChipActivation)
	if !ok {
		h.homePage(w, r, by, errors.New("web: a chip's add did not start a registration"), 0)
		return
	}
	b, _ := json.Marshal(act.PublicKey)
	v := h.view(w, r, "chip.title")
	v.Identity = by.ID
	v.Data = chipData{Authenticator: res.Authenticator.ID, Ceremony: act.Ceremony, Options: string(b)}
	h.render(w, r, http.StatusOK, "chip", v)
}

// finishChip is POST /chip/finish: the chip's registration response.
func (h *Handler) finishChip(w http.ResponseWriter, r *http.Request) {
	by, _, ok := h.owner(w, r)
	if !ok {
		return
	}
	aid := r.PostFormValue("authenticator")
	req := service.ActivateRequest{Ceremony: r.PostFormValue("ceremony"), Credential: new(service.RegistrationResponse)}
	if err := json.Unmarshal([]byte(r.PostFormValue("credential")), req.Credential); err != nil {
		h.homePage(w, r, by, errCredential, 0)
		return
	}
	if err := service.CheckID("the authenticator ID", aid); err != nil {
		h.homePage(w, r, by, err, 0)
		return
	}
	a, err := h.svc.Activate(r.Context(), by, by.ID, aid, req)
	if err != nil {
		h.homePage(w, r, by, err, 0)
		return
	}
	h.flash(w, "flash.chip_added", a.ID)
	redirect(w, r, "/")
}

// sessions is GET /sessions: the person's sessions.
func (h *Handler) sessions(w http.ResponseWriter, r *http.Request) {
	by, token, ok := h.owner(w, r)
	if !ok {
		return
	}
	h.sessionsPage(w, r, by, token, nil)
}

func (h *Handler) sessionsPage(w http.ResponseWriter, r *http.Request, by domain.Actor, token string, err error) {
	v := h.view(w, r, "sessions.title")
	v.Identity = by.ID
	status := http.StatusOK
	if err != nil {
		status = h.refusal(r.Context(), v, err)
	}
	list, lerr := h.svc.Sessions(r.Context(), by, by.ID, token)
	if lerr != nil {
		h.render(w, r, h.refusal(r.Context(), v, lerr), "error", v)
		return
	}
	v.Data = list
	h.render(w, r, status, "sessions", v)
}

// endSession is POST /sessions/{sid}/end.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) {
	by, token, ok := h.owner(w, r)
	if !ok {
		return
	}
	sid := r.PathValue("sid")
	if _, err := h.svc.EndSession(r.Context(), by, by.ID, sid); err != nil {
		h.sessionsPage(w, r, by, token, err)
		return
	}
	h.flash(w, "flash.session_ended", sid)
	redirect(w, r, "/sessions")
}

// auditData is the data of an audit trail page.
type auditData struct {
	IdentityID string
	Page       service.AuditPage
	Next       string // the query of the next page, "" on the last
}

// auditPageSize is the number of events per page.
const auditPageSize = 50

// auditQuery reads ?after=SEQ.
func auditQuery(r *http.Request) (uint64, error) {
	a := r.URL.Query().Get("after")
	if a == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(a, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("%w: after must be a sequence number", service.ErrInvalid)
	}
	return n, nil
}

// audit is GET /audit: the person's audit trail, a page at a time.
func (h *Handler) audit(w http.ResponseWriter, r *http.Request) {
	by, _, ok := h.owner(w, r)
	if !ok {
		return
	}
	v := h.view(w, r, "audit.title")
	v.Identity = by.ID
	d, err := h.auditData(r, by, by.ID)
	if err != nil {
		h.render(w, r, h.refusal(r.Context(), v, err), "error", v)
		return
	}
	v.Data = d
	h.render(w, r, http.StatusOK, "audit", v)
}

// auditData loads the page of identity id's audit trail that r asks for.
func (h *Handler) auditData(r *http.Request, by domain.Actor, id string) (auditData, error) {
	after, err := auditQuery(r)
	if err != nil {
		return auditData{}, err
	}
	p, err := h.svc.ListAudit(r.Context(), by, id, after, auditPageSize)
	if err != nil {
		return auditData{}, err
	}
	d := auditData{IdentityID: id, Page: p}
	if p.Next != nil {
		d.Next = "?after=" + strconv.FormatUint(*p.Next, 10)
	}
	return d, nil
}

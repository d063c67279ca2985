package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Every method below returns, on failure:
//   - an *APIError for an error answer (match it with errors.Is against
//     ErrUnauthorized, ErrNotFound, ErrSuspended, ...);
//   - an error wrapping ErrUnreachable when no answer came;
//   - an error wrapping ErrBadResponse when the answer cannot be read;
//   - an error wrapping ctx's error when ctx ended first.

func identityPath(id string) string { return "/v1/identities/" + esc(id) }

func authPath(id, aid string) string {
	return identityPath(id) + "/authenticators/" + esc(aid)
}

// CreateIdentity creates a person (POST /v1/identities; support token).
// See the method comment block above for the errors.
func (c *Client) CreateIdentity(ctx context.Context, req CreateIdentityRequest) (*Identity, error) {
	var out Identity
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/identities", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Identity returns a person and their authenticators (GET
// /v1/identities/{id}; support token or a session of id). Errors: see
// above; ErrNotFound for an unknown identity.
func (c *Client) Identity(ctx context.Context, id string) (*Identity, error) {
	var out Identity
	if err := c.do(ctx, request{method: http.MethodGet, path: identityPath(id)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AddAuthenticator adds a pending authenticator (POST
// /v1/identities/{id}/authenticators; support token or a session of id)
// and returns it with what its activation needs. Errors: see above;
// notably ErrQuotaExceeded, ErrSerialRevoked, ErrAlreadyRegistered.
func (c *Client) AddAuthenticator(ctx context.Context, id string, req AddRequest) (*Added, error) {
	var out Added
	if err := c.do(ctx, request{method: http.MethodPost, path: identityPath(id) + "/authenticators", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Activate activates a pending authenticator (POST .../activate; support
// token or a session of id) and returns it, active. Errors: see above;
// notably ErrWrongCode, ErrBadSignature, ErrAttestationUntrusted,
// ErrAlreadyRegistered, ErrCeremonyExpired.
func (c *Client) Activate(ctx context.Context, id, aid string, req ActivateRequest) (*Authenticator, error) {
	var out Authenticator
	if err := c.do(ctx, request{method: http.MethodPost, path: authPath(id, aid) + "/activate", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PasswordLogin sends the password of identity id, the first step of
// MitID's password login (POST /v1/identities/{id}/login/password; no
// token needed). A right password yields no session: the answer lists the
// identity's second factors and carries the ceremony for choosing one
// (SecondFactorLogin); when second names one, the answer's Next is that
// factor's ceremony already. Errors: see above; a wrong password is an
// *APIError matching ErrWrongPassword (and ErrFailedAttempt);
// ErrSuspended, ErrBlocked, ErrIdentityBlocked, ErrNotFound,
// ErrRateLimited, ErrAttemptsInFlight.
func (c *Client) PasswordLogin(ctx context.Context, id, password, second string) (*PasswordStep, error) {
	var out PasswordStep
	body := struct {
		Password string `json:"password"`
		Second   string `json:"second,omitempty"`
	}{password, second}
	if err := c.do(ctx, request{method: http.MethodPost, path: identityPath(id) + "/login/password", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SecondFactorLogin chooses the second factor aid (a chip or code device)
// for the ceremony of a right password (POST .../login/second; no token
// needed). Errors: see above; ErrCeremonyExpired, ErrNotFound,
// ErrSuspended, ErrBlocked.
func (c *Client) SecondFactorLogin(ctx context.Context, id, ceremony, aid string) (*FactorChallenge, error) {
	var out FactorChallenge
	body := struct {
		Ceremony      string `json:"ceremony"`
		Authenticator string `json:"authenticator"`
	}{ceremony, aid}
	if err := c.do(ctx, request{method: http.MethodPost, path: identityPath(id) + "/login/second", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AppLogin starts a login with the MitID app aid (POST .../login/app; no
// token needed): the answer's Challenge is for the app to sign. Errors:
// see above; ErrSuspended, ErrBlocked, ErrIdentityBlocked.
func (c *Client) AppLogin(ctx context.Context, id, aid string) (*FactorChallenge, error) {
	var out FactorChallenge
	body := struct {
		Authenticator string `json:"authenticator"`
	}{aid}
	if err := c.do(ctx, request{method: http.MethodPost, path: identityPath(id) + "/login/app", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FinishLogin sends the proof of the factor a login ceremony chose (POST
// .../login/finish; no token needed) and returns the two-factor session.
// Errors: see above; a failed attempt is an *APIError matching
// ErrFailedAttempt (and ErrWrongCode, ErrWrongPIN, ...) whose Failures
// and State say how many failures the authenticator has now (an app
// signature that does not verify matches ErrBadSignature and counts
// nothing); ErrSuspended, ErrBlocked, ErrIdentityBlocked, ErrCodeReplayed,
// ErrCeremonyExpired, ErrRateLimited, ErrAttemptsInFlight.
func (c *Client) FinishLogin(ctx context.Context, id string, req FinishLoginRequest) (*Session, error) {
	var out Session
	if err := c.do(ctx, request{method: http.MethodPost, path: identityPath(id) + "/login/finish", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Sessions lists the sessions of identity id (GET
// /v1/identities/{id}/sessions; support token or a session of id); the
// caller's own session is marked Current. Errors: see above.
func (c *Client) Sessions(ctx context.Context, id string) ([]SessionInfo, error) {
	var out struct {
		Sessions []SessionInfo `json:"sessions"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: identityPath(id) + "/sessions"}, &out); err != nil {
		return nil, err
	}
	return out.Sessions, nil
}

// EndSession ends session sid of identity id (DELETE
// /v1/identities/{id}/sessions/{sid}; support token or a session of id).
// Errors: see above; ErrNotFound when the identity has no such session.
func (c *Client) EndSession(ctx context.Context, id, sid string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: identityPath(id) + "/sessions/" + esc(sid)}, nil)
}

// Logout ends the session whose token c sends (POST /v1/logout). Errors:
// see above; ErrUnauthorized when the session ended already.
func (c *Client) Logout(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/v1/logout", body: struct{}{}}, nil)
}

// Cancel withdraws a pending authenticator (POST .../cancel; support
// token or a session of id); nothing is revoked, so its serial or key can
// be added again. Errors: see above; ErrConflict for an authenticator that
// is not pending (block it instead).
func (c *Client) Cancel(ctx context.Context, id, aid string) error {
	return c.do(ctx, request{method: http.MethodPost, path: authPath(id, aid) + "/cancel", body: struct{}{}}, nil)
}

// Block blocks an authenticator permanently (POST .../block; support
// token or a session of id) for reason ReasonLost or ReasonCompromised,
// and returns it, blocked, with its element wiped. Errors: see above.
func (c *Client) Block(ctx context.Context, id, aid, reason string) (*Authenticator, error) {
	var out Authenticator
	body := struct {
		Reason string `json:"reason"`
	}{reason}
	if err := c.do(ctx, request{method: http.MethodPost, path: authPath(id, aid) + "/block", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Reactivate lifts the suspension of an authenticator (POST
// .../reactivate): with a support token it is a support reactivation, with
// a two-factor session of id proven with other authenticators it is
// self-service. Errors: see above; notably ErrSelfServiceRefused and
// ErrBlocked.
func (c *Client) Reactivate(ctx context.Context, id, aid string) (*Authenticator, error) {
	var out Authenticator
	if err := c.do(ctx, request{method: http.MethodPost, path: authPath(id, aid) + "/reactivate", body: struct{}{}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// BlockIdentity blocks a whole identity temporarily (POST
// /v1/identities/{id}/block; support token). Errors: see above.
func (c *Client) BlockIdentity(ctx context.Context, id, reason string) (*Identity, error) {
	var out Identity
	body := struct {
		Reason string `json:"reason"`
	}{reason}
	if err := c.do(ctx, request{method: http.MethodPost, path: identityPath(id) + "/block", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UnblockIdentity lifts an identity's block (POST
// /v1/identities/{id}/unblock; support token); note is optional. Errors:
// see above.
func (c *Client) UnblockIdentity(ctx context.Context, id, note string) (*Identity, error) {
	var out Identity
	body := struct {
		Note string `json:"note,omitempty"`
	}{note}
	if err := c.do(ctx, request{method: http.MethodPost, path: identityPath(id) + "/unblock", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Audit returns one page of an identity's audit events after seq after (0
// for the first page), at most limit of them (0 lets the server choose)
// (GET /v1/identities/{id}/audit; support token or a session of id).
// Errors: see above.
func (c *Client) Audit(ctx context.Context, id string, after uint64, limit int) (*AuditPage, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out AuditPage
	if err := c.do(ctx, request{method: http.MethodGet, path: identityPath(id) + "/audit", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AllAudit returns every audit event of an identity, following the pages.
// Errors: those of Audit, and an error wrapping ErrBadResponse when the
// server's next seq does not move forward.
func (c *Client) AllAudit(ctx context.Context, id string) ([]Event, error) {
	var all []Event
	var after uint64
	for {
		p, err := c.Audit(ctx, id, after, 0)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Events...)
		if p.Next == nil || len(p.Events) == 0 {
			return all, nil
		}
		if *p.Next <= after {
			return nil, fmt.Errorf("client: audit of %s: %w: next page at %d after %d", id, ErrBadResponse, *p.Next, after)
		}
		after = *p.Next
	}
}

// VerifyAudit asks the server to verify the whole audit chain (GET
// /v1/audit/verify; support token). A broken chain is not an error: the
// answer has OK false and says where. Errors: see above.
func (c *Client) VerifyAudit(ctx context.Context) (*AuditVerification, error) {
	var out AuditVerification
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/audit/verify"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ImportPSKC imports code-device secrets from a PSKC document (RFC 6030)
// (POST /v1/pskc; support token), all or nothing. Errors: see above;
// ErrPSKCMAC when the document's MAC does not check, ErrPSKCInvalid when
// it cannot be read.
func (c *Client) ImportPSKC(ctx context.Context, doc []byte) (*PSKCImport, error) {
	var out PSKCImport
	r := request{method: http.MethodPost, path: "/v1/pskc", raw: doc, contentType: "application/pskc+xml"}
	if doc == nil {
		r.raw = []byte{}
	}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// OpenAPI returns the server's OpenAPI 3.1 document (GET
// /v1/openapi.json), unparsed. Errors: see above.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	var out []byte
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/openapi.json"}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Health checks GET /healthz. Errors: see above; an *APIError (status
// 503, matching ErrUnavailable) when the server cannot reach its store.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/healthz"}, nil)
}

// Metrics returns the server's Prometheus metrics (GET /metrics) as text.
// Errors: see above.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	var out []byte
	if err := c.do(ctx, request{method: http.MethodGet, path: "/metrics", accept: "text/plain"}, &out); err != nil {
		return "", err
	}
	return string(out), nil
}

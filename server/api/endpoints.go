package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
)

// Most endpoints below differ only in the service method they call; the
// steps around it live in three helpers, one per shape of request:
//
//   - serveJSON: bearer token and a JSON body (the POSTs);
//   - serveGet: bearer token and no body (the GETs);
//   - serveLogin: no token, a JSON body, and the per-source rate limit.
//
// Each checks, in this order: the path IDs, the query, the token, the body
// (for login, the rate limit after the body); then it calls the service and
// writes its result. A returned error is written by Handler.fail.

// serveJSON serves an endpoint that needs a bearer token and takes a JSON
// body, answering status with call's result. id and aid are the path
// parameters, "" where the route has none.
func serveJSON[Req, Res any](h *Handler, w http.ResponseWriter, r *http.Request, status int,
	call func(ctx context.Context, by domain.Actor, id, aid string, req Req) (Res, error)) error {
	id, aid, by, err := h.target(r)
	if err != nil {
		return err
	}
	var req Req
	if err := decodeJSON(w, r, h.maxBody, &req); err != nil {
		return err
	}
	res, err := call(r.Context(), by, id, aid, req)
	if err != nil {
		return err
	}
	writeJSON(w, status, res)
	return nil
}

// target checks the path IDs, that there is no query, and the bearer
// token, in that order, and returns them.
func (h *Handler) target(r *http.Request) (id, aid string, by domain.Actor, err error) {
	if id, aid, err = ids(r); err != nil {
		return "", "", domain.Actor{}, err
	}
	if err = noQuery(r); err != nil {
		return "", "", domain.Actor{}, err
	}
	by, err = h.actor(r)
	return id, aid, by, err
}

// serveGet serves a GET that needs a bearer token, answering 200 with
// call's result. query checks the query string before the token is; q is
// what it returns.
func serveGet[Q, Res any](h *Handler, w http.ResponseWriter, r *http.Request, query func(*http.Request) (Q, error),
	call func(ctx context.Context, by domain.Actor, id string, q Q) (Res, error)) error {
	id, _, err := ids(r)
	if err != nil {
		return err
	}
	q, err := query(r)
	if err != nil {
		return err
	}
	by, err := h.actor(r)
	if err != nil {
		return err
	}
	res, err := call(r.Context(), by, id, q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// serveLogin serves a login step of identity id (the {id} path
// parameter): no bearer token, a JSON body, then the per-source rate
// limit; it answers 200 with call's result. The limit per
// identity and authenticator is applied by the service once it has looked
// them up.
func serveLogin[Req, Res any](h *Handler, w http.ResponseWriter, r *http.Request, id string,
	call func(ctx context.Context, id string, req Req) (Res, error)) error {
	if err := service.CheckID("the identity ID", id); err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	var req Req
	if err := decodeJSON(w, r, h.maxBody, &req); err != nil {
		return err
	}
	if err := h.limit(w, r); err != nil {
		return err
	}
	res, err := call(r.Context(), id, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// noParams is the query of a GET that takes none.
func noParams(r *http.Request) (struct{}, error) { return struct{}{}, noQuery(r) }

// POST /v1/identities (support).
func (h *Handler) createIdentity(w http.ResponseWriter, r *http.Request) error {
	return serveJSON(h, w, r, http.StatusCreated, func(ctx context.Context, by domain.Actor, _, _ string, req service.CreateIdentityRequest) (service.IdentityView, error) {
		v, err := h.svc.CreateIdentity(ctx, by, req)
		if err == nil {
			w.Header().Set("Location", "/v1/identities/"+url.PathEscape(v.ID))
		}
		return v, err
	})
}

// GET /v1/identities/{id} (support, or a session of {id}).
func (h *Handler) getIdentity(w http.ResponseWriter, r *http.Request) error {
	return serveGet(h, w, r, noParams, func(ctx context.Context, by domain.Actor, id string, _ struct{}) (service.IdentityView, error) {
		return h.svc.Identity(ctx, by, id)
	})
}

// POST /v1/identities/{id}/authenticators (support, or a session of {id}).
func (h *Handler) addAuthenticator(w http.ResponseWriter, r *http.Request) error {
	return serveJSON(h, w, r, http.StatusCreated, func(ctx context.Context, by domain.Actor, id, _ string, req service.AddRequest) (service.AddResult, error) {
		res, err := h.svc.AddAuthenticator(ctx, by, id, req)
		if err == nil {
			w.Header().Set("Location", "/v1/identities/"+url.PathEscape(id))
		}
		return res, err
	})
}

// POST /v1/identities/{id}/authenticators/{aid}/activate (support, or a
// two-factor session of {id}); rate limited per source, and per
// authenticator by the service.
func (h *Handler) activate(w http.ResponseWriter, r *http.Request) error {
	if err := h.limit(w, r); err != nil {
		return err
	}
	return serveJSON(h, w, r, http.StatusOK, h.svc.Activate)
}

// cancelRequest is the (empty) body of cancel.
type cancelRequest struct{}

// POST /v1/identities/{id}/authenticators/{aid}/cancel (support, or a
// two-factor session of {id}).
func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) error {
	return serveJSON(h, w, r, http.StatusOK, func(ctx context.Context, by domain.Actor, id, aid string, _ cancelRequest) (service.CancelResult, error) {
		return h.svc.Cancel(ctx, by, id, aid)
	})
}

// POST /v1/identities/{id}/login/password (no auth).
func (h *Handler) loginPassword(w http.ResponseWriter, r *http.Request, id string) error {
	return serveLogin(h, w, r, id, h.svc.LoginPassword)
}

// POST /v1/identities/{id}/login/second (no auth; the ceremony of a right
// password).
func (h *Handler) loginSecond(w http.ResponseWriter, r *http.Request, id string) error {
	return serveLogin(h, w, r, id, h.svc.BeginSecondFactor)
}

// POST /v1/identities/{id}/login/app (no auth).
func (h *Handler) loginApp(w http.ResponseWriter, r *http.Request, id string) error {
	return serveLogin(h, w, r, id, h.svc.BeginApp)
}

// POST /v1/identities/{id}/login/finish (no auth).
func (h *Handler) finishLogin(w http.ResponseWriter, r *http.Request, id string) error {
	return serveLogin(h, w, r, id, h.svc.FinishLogin)
}

// GET /v1/identities/{id}/sessions (support, or a session of {id}).
func (h *Handler) listSessions(w http.ResponseWriter, r *http.Request) error {
	return serveGet(h, w, r, noParams, func(ctx context.Context, by domain.Actor, id string, _ struct{}) (service.SessionList, error) {
		token, _ := bearer(r)
		return h.svc.Sessions(ctx, by, id, token)
	})
}

// DELETE /v1/identities/{id}/sessions/{sid} (support, or a session of
// {id}).
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) error {
	id, sid, by, err := h.target(r)
	if err != nil {
		return err
	}
	res, err := h.svc.EndSession(r.Context(), by, id, sid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// POST /v1/logout (a session's bearer token): ends that session.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	token, err := bearer(r)
	if err != nil {
		return err
	}
	var req struct{}
	if err := decodeJSON(w, r, h.maxBody, &req); err != nil {
		return err
	}
	res, err := h.svc.Logout(r.Context(), token)
	if errors.Is(err, service.ErrUnauthorized) {
		return &requestError{http.StatusUnauthorized, CodeUnauthorized, "The bearer token is not a session, or its session ended already."}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// POST /v1/identities/{id}/authenticators/{aid}/block (support, or a
// session of {id}).
func (h *Handler) blockAuthenticator(w http.ResponseWriter, r *http.Request) error {
	return serveJSON(h, w, r, http.StatusOK, h.svc.Block)
}

// reactivateRequest is the (empty) body of reactivate.
type reactivateRequest struct{}

// POST /v1/identities/{id}/authenticators/{aid}/reactivate (support, or a
// session of {id} proven with another authenticator).
func (h *Handler) reactivate(w http.ResponseWriter, r *http.Request) error {
	return serveJSON(h, w, r, http.StatusOK, func(ctx context.Context, by domain.Actor, id, aid string, _ reactivateRequest) (service.AuthenticatorView, error) {
		return h.svc.Reactivate(ctx, by, id, aid)
	})
}

type blockIdentityRequest struct {
	Reason string `json:"reason"`
}

// POST /v1/identities/{id}/block (support).
func (h *Handler) blockIdentity(w http.ResponseWriter, r *http.Request) error {
	return serveJSON(h, w, r, http.StatusOK, func(ctx context.Context, by domain.Actor, id, _ string, req blockIdentityRequest) (service.IdentityView, error) {
		return h.svc.BlockIdentity(ctx, by, id, req.Reason)
	})
}

type unblockIdentityRequest struct {
	Note string `json:"note,omitempty"`
}

// POST /v1/identities/{id}/unblock (support).
func (h *Handler) unblockIdentity(w http.ResponseWriter, r *http.Request) error {
	return serveJSON(h, w, r, http.StatusOK, func(ctx context.Context, by domain.Actor, id, _ string, req unblockIdentityRequest) (service.IdentityView, error) {
		return h.svc.UnblockIdentity(ctx, by, id, req.Note)
	})
}

// auditQuery is the query of the audit listing.
type auditQuery struct {
	after uint64
	limit int // 0: the service's default
}

// parseAuditQuery reads after=SEQ and limit=N, each at most once, and
// refuses any other parameter.
func parseAuditQuery(r *http.Request) (auditQuery, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return auditQuery{}, badRequest("The query string is malformed.")
	}
	var aq auditQuery
	for k, vs := range q {
		if len(vs) != 1 {
			return auditQuery{}, badRequest("The query parameter %q is given more than once.", k)
		}
		switch k {
		case "after":
			if aq.after, err = strconv.ParseUint(vs[0], 10, 63); err != nil {
				return auditQuery{}, badRequest("after must be a sequence number.")
			}
		case "limit":
			n, err := strconv.ParseUint(vs[0], 10, 16)
			if err != nil || n == 0 {
				return auditQuery{}, badRequest("limit must be a number from 1 to 1000.")
			}
			aq.limit = int(n)
		default:
			return auditQuery{}, badRequest("Unknown query parameter; use after and limit.")
		}
	}
	return aq, nil
}

// GET /v1/identities/{id}/audit?after=SEQ&limit=N (support, or a session
// of {id}).
func (h *Handler) listAudit(w http.ResponseWriter, r *http.Request) error {
	return serveGet(h, w, r, parseAuditQuery, func(ctx context.Context, by domain.Actor, id string, q auditQuery) (service.AuditPage, error) {
		return h.svc.ListAudit(ctx, by, id, q.after, q.limit)
	})
}

// GET /v1/audit/verify (support).
func (h *Handler) verifyAudit(w http.ResponseWriter, r *http.Request) error {
	return serveGet(h, w, r, noParams, func(ctx context.Context, by domain.Actor, _ string, _ struct{}) (service.AuditVerification, error) {
		return h.svc.VerifyAudit(ctx, by)
	})
}

// POST /v1/pskc (support; application/pskc+xml or application/xml).
func (h *Handler) importPSKC(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	// The credential is checked before the (possibly large) body is read.
	by, err := h.actor(r)
	if err != nil {
		return err
	}
	doc, err := readBody(w, r, h.maxPSKC, "application/pskc+xml", "application/xml", "text/xml")
	if err != nil {
		return err
	}
	if len(doc) == 0 {
		return badRequest("The request body must be a PSKC document.")
	}
	res, err := h.svc.ImportPSKC(r.Context(), by, doc)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// GET /v1/openapi.json (no auth).
func (h *Handler) openAPI(w http.ResponseWriter, r *http.Request) error {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Content-Length", strconv.Itoa(len(openAPIDocument)))
	w.WriteHeader(http.StatusOK)
	w.Write(openAPIDocument)
	return nil
}

// GET /healthz (no auth).
func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.Ping(r.Context()); err != nil {
		h.log.WarnContext(r.Context(), "api: health check failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, Error{Code: CodeUnavailable, Message: "The store is unreachable."})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// GET /metrics (no auth).
func (h *Handler) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	h.metrics.ServeHTTP(w, r)
	return nil
}

package api

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/authbench/authbench/server/service"
)

// Each endpoint below checks the request, calls one service method and
// writes its answer; a returned error is written by Handler.fail.

// POST /v1/identities (support).
func (h *Handler) createIdentity(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	by, err := h.actor(r)
	if err != nil {
		return err
	}
	var req service.CreateIdentityRequest
	if err := decodeJSON(w, r, h.maxBody, &req); err != nil {
		return err
	}
	v, err := h.svc.CreateIdentity(r.Context(), by, req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/identities/"+url.PathEscape(v.ID))
	writeJSON(w, http.StatusCreated, v)
	return nil
}

// GET /v1/identities/{id} (support, or a session of {id}).
func (h *Handler) getIdentity(w http.ResponseWriter, r *http.Request) error {
	id, _, err := ids(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	by, err := h.actor(r)
	if err != nil {
		return err
	}
	v, err := h.svc.Identity(r.Context(), by, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// POST /v1/identities/{id}/authenticators (support, or a session of {id}).
func (h *Handler) addAuthenticator(w http.ResponseWriter, r *http.Request) error {
	id, _, err := ids(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	by, err := h.actor(r)
	if err != nil {
		return err
	}
	var req service.AddRequest
	if err := decodeJSON(w, r, h.maxBody, &req); err != nil {
		return err
	}
	res, err := h.svc.AddAuthenticator(r.Context(), by, id, req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/identities/"+url.PathEscape(id))
	writeJSON(w, http.StatusCreated, res)
	return nil
}

// POST /v1/identities/{id}/authenticators/{aid}/activate (support, or a
// session of {id}).
func (h *Handler) activate(w http.ResponseWriter, r *http.Request) error {
	id, aid, err := ids(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	by, err := h.actor(r)
	if err != nil {
		return err
	}
	var req service.ActivateRequest
	if err := decodeJSON(w, r, h.maxBody, &req); err != nil {
		return err
	}
	v, err := h.svc.Activate(r.Context(), by, id, aid, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// loginBegin is the (empty) body of login/begin.
type loginBegin struct{}

// POST /v1/identities/{id}/authenticators/{aid}/login/begin (no auth).
func (h *Handler) beginLogin(w http.ResponseWriter, r *http.Request) error {
	id, aid, err := ids(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	var req loginBegin
	if err := decodeJSON(w, r, h.maxBody, &req); err != nil {
		return err
	}
	if err := h.limit(w, r, id); err != nil {
		return err
	}
	res, err := h.svc.BeginLogin(r.Context(), id, aid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// POST /v1/identities/{id}/authenticators/{aid}/login/finish (no auth).
func (h *Handler) finishLogin(w http.ResponseWriter, r *http.Request) error {
	id, aid, err := ids(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	var req service.FinishLoginRequest
	if err := decodeJSON(w, r, h.maxBody, &req); err != nil {
		return err
	}
	if err := h.limit(w, r, id); err != nil {
		return err
	}
	res, err := h.svc.FinishLogin(r.Context(), id, aid, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// POST /v1/identities/{id}/authenticators/{aid}/block (support, or a
// session of {id}).
func (h *Handler) blockAuthenticator(w http.ResponseWriter, r *http.Request) error {
	id, aid, err := ids(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	by, err := h.actor(r)
	if err != nil {
		return err
	}
	var req service.BlockRequest
	if err := decodeJSON(w, r, h.maxBody, &req); err != nil {
		return err
	}
	v, err := h.svc.Block(r.Context(), by, id, aid, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// reactivateRequest is the (empty) body of reactivate.
type reactivateRequest struct{}

// POST /v1/identities/{id}/authenticators/{aid}/reactivate (support, or a
// session of {id} proven with another authenticator).
func (h *Handler) reactivate(w http.ResponseWriter, r *http.Request) error {
	id, aid, err := ids(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	by, err := h.actor(r)
	if err != nil {
		return err
	}
	var req reactivateRequest
	if err := decodeJSON(w, r, h.maxBody, &req); err != nil {
		return err
	}
	v, err := h.svc.Reactivate(r.Context(), by, id, aid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

type blockIdentityRequest struct {
	Reason string `json:"reason"`
}

type unblockIdentityRequest struct {
	Note string `json:"note,omitempty"`
}

// POST /v1/identities/{id}/block (support).
func (h *Handler) blockIdentity(w http.ResponseWriter, r *http.Request) error {
	id, _, err := ids(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	by, err := h.actor(r)
	if err != nil {
		return err
	}
	var req blockIdentityRequest
	if err := decodeJSON(w, r, h.maxBody, &req); err != nil {
		return err
	}
	v, err := h.svc.BlockIdentity(r.Context(), by, id, req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// POST /v1/identities/{id}/unblock (support).
func (h *Handler) unblockIdentity(w http.ResponseWriter, r *http.Request) error {
	id, _, err := ids(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	by, err := h.actor(r)
	if err != nil {
		return err
	}
	var req unblockIdentityRequest
	if err := decodeJSON(w, r, h.maxBody, &req); err != nil {
		return err
	}
	v, err := h.svc.UnblockIdentity(r.Context(), by, id, req.Note)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// GET /v1/identities/{id}/audit?after=SEQ&limit=N (support, or a session
// of {id}).
func (h *Handler) listAudit(w http.ResponseWriter, r *http.Request) error {
	id, _, err := ids(r)
	if err != nil {
		return err
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badRequest("The query string is malformed.")
	}
	var after uint64
	limit := 0
	for k, vs := range q {
		if len(vs) != 1 {
			return badRequest("The query parameter %q is given more than once.", k)
		}
		switch k {
		case "after":
			if after, err = strconv.ParseUint(vs[0], 10, 63); err != nil {
				return badRequest("after must be a sequence number.")
			}
		case "limit":
			n, err := strconv.ParseUint(vs[0], 10, 16)
			if err != nil || n == 0 {
				return badRequest("limit must be a number from 1 to 1000.")
			}
			limit = int(n)
		default:
			return badRequest("Unknown query parameter; use after and limit.")
		}
	}
	by, err := h.actor(r)
	if err != nil {
		return err
	}
	p, err := h.svc.ListAudit(r.Context(), by, id, after, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// GET /v1/audit/verify (support).
func (h *Handler) verifyAudit(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	by, err := h.actor(r)
	if err != nil {
		return err
	}
	v, err := h.svc.VerifyAudit(r.Context(), by)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
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
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err := h.metrics.WriteTo(w)
	if err != nil {
		h.log.DebugContext(r.Context(), "api: writing metrics", "err", err)
	}
	return nil
}

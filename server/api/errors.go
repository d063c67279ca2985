package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
)

// Stable error codes of the API contract.
const (
	CodeBadRequest             = "bad_request"
	CodeUnauthorized           = "unauthorized"
	CodeForbidden              = "forbidden"
	CodeNotFound               = "not_found"
	CodeMethodNotAllowed       = "method_not_allowed"
	CodeConflict               = "conflict"
	CodeTooLarge               = "too_large"
	CodeUnsupportedMediaType   = "unsupported_media_type"
	CodeRateLimited            = "rate_limited"
	CodeAttemptsInFlight       = "attempts_in_flight"
	CodeSerialLocked           = "serial_locked"
	CodePendingExpired         = "pending_expired"
	CodeIdentityBlocked        = "identity_blocked"
	CodeAuthenticatorPending   = "authenticator_pending"
	CodeAuthenticatorSuspended = "authenticator_suspended"
	CodeAuthenticatorBlocked   = "authenticator_blocked"
	CodeQuotaExceeded          = "quota_exceeded"
	CodeSerialRevoked          = "serial_revoked"
	CodeCredentialRevoked      = "credential_revoked"
	CodeAlreadyRegistered      = "already_registered"
	CodeIdentityTaken          = "identity_taken"
	CodeAttestationUntrusted   = "attestation_untrusted"
	CodeWrongCode              = "wrong_code"
	CodeCodeReplayed           = "code_replayed"
	CodeWrongPIN               = "wrong_pin"
	CodeWrongPassword          = "wrong_password"
	CodeBadSignature           = "bad_signature"
	CodeSignCount              = "sign_count"
	CodeCeremonyExpired        = "ceremony_expired"
	CodeSelfServiceRefused     = "self_service_refused"
	CodePSKCMAC                = "pskc_mac"
	CodePSKCInvalid            = "pskc_invalid"
	CodeUnavailable            = "unavailable"
	CodeBusy                   = "busy"
	CodeInternal               = "internal"
)

// errorTable maps the sentinels of the lower layers to HTTP answers. The
// first entry that errors.Is matches wins, so the more specific come
// first.
var errorTable = []struct {
	err    error
	status int
	code   string
}{
	{service.ErrInvalid, http.StatusBadRequest, CodeBadRequest},
	{domain.ErrInvalid, http.StatusBadRequest, CodeBadRequest},
	{service.ErrRateLimited, http.StatusTooManyRequests, CodeRateLimited},
	{service.ErrAttemptsInFlight, http.StatusTooManyRequests, CodeAttemptsInFlight},
	{service.ErrUnauthorized, http.StatusUnauthorized, CodeUnauthorized},
	{service.ErrBadSignature, http.StatusUnauthorized, CodeBadSignature},
	{service.ErrSerialLocked, http.StatusForbidden, CodeSerialLocked},
	{service.ErrForbidden, http.StatusForbidden, CodeForbidden},
	{service.ErrNotFound, http.StatusNotFound, CodeNotFound},
	{service.ErrCeremonyExpired, http.StatusGone, CodeCeremonyExpired},
	{service.ErrAttestationUntrusted, http.StatusForbidden, CodeAttestationUntrusted},
	{service.ErrPSKCMAC, http.StatusBadRequest, CodePSKCMAC},
	{service.ErrPSKCInvalid, http.StatusBadRequest, CodePSKCInvalid},
	{service.ErrIdentityTaken, http.StatusConflict, CodeIdentityTaken},
	{domain.ErrIdentityBlocked, http.StatusForbidden, CodeIdentityBlocked},
	{domain.ErrNotActive, http.StatusForbidden, CodeAuthenticatorPending},
	{domain.ErrSuspended, http.StatusForbidden, CodeAuthenticatorSuspended},
	{domain.ErrBlocked, http.StatusForbidden, CodeAuthenticatorBlocked},
	{domain.ErrSelfServiceRefused, http.StatusForbidden, CodeSelfServiceRefused},
	{domain.ErrNotAllowed, http.StatusForbidden, CodeForbidden},
	{domain.ErrQuotaExceeded, http.StatusConflict, CodeQuotaExceeded},
	{domain.ErrSerialRevoked, http.StatusConflict, CodeSerialRevoked},
	{domain.ErrCredentialRevoked, http.StatusConflict, CodeCredentialRevoked},
	{domain.ErrAlreadyAdded, http.StatusConflict, CodeAlreadyRegistered},
	{domain.ErrInvalidTransition, http.StatusConflict, CodeConflict},
	{domain.ErrTooEarly, http.StatusConflict, CodeConflict},
	{domain.ErrExpired, http.StatusConflict, CodePendingExpired},
	{service.ErrConflict, http.StatusConflict, CodeConflict},
	{service.ErrUnavailable, http.StatusServiceUnavailable, CodeUnavailable},
}

// failureCodes maps the cause of a recorded failed attempt to its code.
var failureCodes = map[domain.Cause]string{
	domain.CauseWrongPIN:      CodeWrongPIN,
	domain.CauseWrongPassword: CodeWrongPassword,
	domain.CauseWrongCode:     CodeWrongCode,
	domain.CauseBadSignature:  CodeBadSignature,
	domain.CauseSignCount:     CodeSignCount,
	domain.CauseReplayedCode:  CodeCodeReplayed,
}

// Error is the error body of every 4xx and 5xx answer.
type Error struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

type errorBody struct {
	Error Error `json:"error"`
}

// classify returns the status and error body for err. Unknown errors are
// 500 internal with a message that reveals nothing.
func classify(err error) (int, Error) {
	var be *service.BusyError
	if errors.As(err, &be) {
		msg, _ := service.Message(err)
		return http.StatusServiceUnavailable, Error{Code: CodeBusy, Message: msg}
	}
	var fe *service.FailureError
	if errors.As(err, &fe) {
		code, ok := failureCodes[fe.Cause]
		if !ok {
			code = CodeBadSignature
		}
		return http.StatusUnauthorized, Error{Code: code, Message: message(err),
			Details: map[string]any{"failures": fe.Failures, "state": string(fe.State)}}
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.status, Error{Code: e.code, Message: message(err)}
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, Error{Code: CodeUnavailable, Message: "The request was cancelled or timed out."}
	}
	return http.StatusInternalServerError, Error{Code: CodeInternal, Message: "An internal error occurred; it was logged."}
}

// retryAfter is the Retry-After of a busy answer, in whole seconds (at
// least 1).
func retryAfter(be *service.BusyError) int {
	return max(1, int((be.RetryAfter+time.Second-1)/time.Second))
}

// message turns an error into a sentence for a person (service.Sentence:
// the words the pages show too).
func message(err error) string { return service.Sentence(err.Error()) }

package client

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinels for the stable error codes of the API contract. An *APIError
// matches the sentinel of its code under errors.Is; a code this client does
// not know matches the sentinel of its HTTP status (ErrBadRequest,
// ErrUnauthorized, ErrForbidden, ErrNotFound, ErrConflict, ErrTooLarge,
// ErrUnsupportedMediaType, ErrRateLimited, ErrUnavailable or ErrInternal).
var (
	ErrBadRequest           = errors.New("bad request")
	ErrUnauthorized         = errors.New("not authenticated: token missing, wrong or expired")
	ErrForbidden            = errors.New("not allowed for this token")
	ErrNotFound             = errors.New("not found")
	ErrConflict             = errors.New("conflict with the current state")
	ErrTooLarge             = errors.New("request body too large")
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	ErrRateLimited          = errors.New("too many requests")
	ErrAttemptsInFlight     = errors.New("the attempts left are being checked; try again in a moment")
	ErrSerialLocked         = errors.New("the serial is locked after too many wrong activation codes; support imports it again")
	ErrPendingExpired       = errors.New("the pending authenticator expired; cancel it and add it again")
	ErrIdentityBlocked      = errors.New("the identity is temporarily blocked")
	ErrPending              = errors.New("the authenticator is not activated yet")
	ErrSuspended            = errors.New("the authenticator is temporarily blocked")
	ErrBlocked              = errors.New("the authenticator is permanently blocked")
	ErrQuotaExceeded        = errors.New("no more authenticators of this kind can be added")
	ErrSerialRevoked        = errors.New("the serial number was permanently blocked; order a new authenticator")
	ErrCredentialRevoked    = errors.New("the credential was permanently blocked")
	ErrAlreadyRegistered    = errors.New("the authenticator is already registered")
	ErrIdentityTaken        = errors.New("an identity with this ID exists already")
	ErrAttestationUntrusted = errors.New("the chip's attestation is not trusted")
	ErrWrongCode            = errors.New("wrong one-time code")
	ErrCodeReplayed         = errors.New("the one-time code was already used")
	ErrWrongPIN             = errors.New("wrong PIN")
	ErrWrongPassword        = errors.New("wrong password")
	ErrBadSignature         = errors.New("bad signature")
	ErrSignCount            = errors.New("the chip's signature counter did not increase; it may be cloned")
	ErrCeremonyExpired      = errors.New("the ceremony expired or is unknown")
	ErrSelfServiceRefused   = errors.New("not possible on self-service")
	ErrPSKCMAC              = errors.New("the PSKC document's MAC does not check")
	ErrPSKCInvalid          = errors.New("the PSKC document is invalid")
	ErrUnavailable          = errors.New("the server cannot reach its store")
	ErrInternal             = errors.New("server error")

	// ErrFailedAttempt matches every answer that counts as a failed
	// attempt against the authenticator: wrong_code, wrong_pin,
	// wrong_password, bad_signature and sign_count. APIError.Failures and
	// APIError.State tell how far the authenticator is from suspension.
	ErrFailedAttempt = errors.New("failed attempt")
)

// Errors that come from the client side, not from an answer of the server.
var (
	// ErrUnreachable is wrapped when no HTTP answer came: the server is
	// down, the address is wrong, or the connection broke. The transport's
	// own error is wrapped too.
	ErrUnreachable = errors.New("server unreachable")
	// ErrBadResponse is wrapped when an answer cannot be read: not JSON,
	// the wrong shape, or larger than Options.MaxResponseBytes.
	ErrBadResponse = errors.New("unreadable answer from the server")
)

// codeSentinels maps the contract's error codes to sentinels.
var codeSentinels = map[string]error{
	"bad_request":             ErrBadRequest,
	"unauthorized":            ErrUnauthorized,
	"forbidden":               ErrForbidden,
	"not_found":               ErrNotFound,
	"conflict":                ErrConflict,
	"too_large":               ErrTooLarge,
	"unsupported_media_type":  ErrUnsupportedMediaType,
	"rate_limited":            ErrRateLimited,
	"attempts_in_flight":      ErrAttemptsInFlight,
	"serial_locked":           ErrSerialLocked,
	"pending_expired":         ErrPendingExpired,
	"identity_blocked":        ErrIdentityBlocked,
	"authenticator_pending":   ErrPending,
	"authenticator_suspended": ErrSuspended,
	"authenticator_blocked":   ErrBlocked,
	"quota_exceeded":          ErrQuotaExceeded,
	"serial_revoked":          ErrSerialRevoked,
	"credential_revoked":      ErrCredentialRevoked,
	"already_registered":      ErrAlreadyRegistered,
	"identity_taken":          ErrIdentityTaken,
	"attestation_untrusted":   ErrAttestationUntrusted,
	"wrong_code":              ErrWrongCode,
	"code_replayed":           ErrCodeReplayed,
	"wrong_pin":               ErrWrongPIN,
	"wrong_password":          ErrWrongPassword,
	"bad_signature":           ErrBadSignature,
	"sign_count":              ErrSignCount,
	"ceremony_expired":        ErrCeremonyExpired,
	"self_service_refused":    ErrSelfServiceRefused,
	"pskc_mac":                ErrPSKCMAC,
	"pskc_invalid":            ErrPSKCInvalid,
	"unavailable":             ErrUnavailable,
	"method_not_allowed":      ErrBadRequest,
	"internal":                ErrInternal,
}

// failedAttemptCodes are the codes ErrFailedAttempt matches.
var failedAttemptCodes = map[string]bool{
	"wrong_code": true, "wrong_pin": true, "wrong_password": true,
	"bad_signature": true, "sign_count": true,
}

// statusCodes gives the generic code of an HTTP status, for answers whose
// body carries no code of its own.
func statusCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusGone:
		return "ceremony_expired"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	if status >= 500 {
		return "internal"
	}
	return "bad_request"
}

// APIError is an error answer of the server (HTTP 4xx or 5xx with the body
// {"error":{"code","message","details"}} of the contract).
//
// errors.Is(err, ErrX) matches the sentinel of Code (see the Err* variables);
// ErrFailedAttempt matches the codes of failed attempts.
type APIError struct {
	Status  int            // HTTP status code
	Code    string         // stable snake_case code, e.g. "wrong_code"
	Message string         // a sentence for a person, as the server wrote it
	Details map[string]any // optional details, e.g. {"failures": 2, "state": "active"}
	Method  string         // the request's method
	Path    string         // the request's path, e.g. "/v1/identities/p1"
}

// Error returns "client: POST /v1/...: MESSAGE (401 wrong_code)".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("client: ")
	if e.Method != "" {
		b.WriteString(e.Method + " " + e.Path + ": ")
	}
	msg := e.Message
	if msg == "" {
		if s, ok := codeSentinels[e.Code]; ok {
			msg = s.Error()
		} else {
			msg = http.StatusText(e.Status)
		}
	}
	b.WriteString(msg)
	fmt.Fprintf(&b, " (%d %s)", e.Status, e.Code)
	return b.String()
}

// Is reports whether target is the sentinel of e's code (or, for a code
// this client does not know, of e's HTTP status), or ErrFailedAttempt for
// the codes of failed attempts.
func (e *APIError) Is(target error) bool {
	if target == ErrFailedAttempt {
		return failedAttemptCodes[e.Code]
	}
	s, ok := codeSentinels[e.Code]
	if !ok {
		s = codeSentinels[statusCode(e.Status)]
	}
	return s == target
}

// Failures returns the "failures" detail of a failed attempt: the number of
// consecutive failures the authenticator now has. ok is false when the
// answer did not say.
func (e *APIError) Failures() (n int, ok bool) {
	switch v := e.Details["failures"].(type) {
	case float64:
		return int(v), true
	case int:
		return v, true
	}
	return 0, false
}

// State returns the "state" detail of a failed attempt: the
// authenticator's state after it ("active", "suspended" or "blocked"), or
// "" when the answer did not say.
func (e *APIError) State() string {
	s, _ := e.Details["state"].(string)
	return s
}

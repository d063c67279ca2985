package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/authbench/authbench/server/domain"
)

// refusals are the errors this package returns for a request it refused
// (beside *FailureError, *RateLimitError and *BusyError): their words are
// meant for the person who made the request.
var refusals = []error{
	ErrInvalid, ErrNotFound, ErrUnauthorized, ErrForbidden, ErrWrongCode, ErrWrongPIN,
	ErrWrongPassword, ErrBadSignature, ErrCeremonyExpired, ErrAttestationUntrusted, ErrPSKCMAC,
	ErrPSKCInvalid, ErrIdentityTaken, ErrUnavailable, ErrConflict, ErrRateLimited,
	ErrAttemptsInFlight, ErrSerialLocked, ErrSecondFactor, ErrBusy,
	domain.ErrInvalid, domain.ErrInvalidTransition, domain.ErrNotActive, domain.ErrSuspended,
	domain.ErrBlocked, domain.ErrIdentityBlocked, domain.ErrQuotaExceeded, domain.ErrSerialRevoked,
	domain.ErrCredentialRevoked, domain.ErrAlreadyAdded, domain.ErrSelfServiceRefused,
	domain.ErrNotAllowed, domain.ErrTooEarly, domain.ErrExpired, domain.ErrCodeReplayed,
	domain.ErrCloneSuspected,
}

// InternalMessage is what a person is told of an error that is not a
// refusal (a broken store, a bug): nothing of its details.
const InternalMessage = "An internal error occurred; it was logged."

// Message returns the words for a person of err, an error of this package:
// the sentence of the refusal without the package prefixes, starting with
// a capital and ending with a period (the HTTP API's error message, and
// what the pages show). refusal is false for an error that is not a
// refusal of a request (the store failed, a bug); its message is then
// InternalMessage, which reveals nothing.
func Message(err error) (msg string, refusal bool) {
	if err == nil {
		return "", false
	}
	var be *BusyError
	if errors.As(err, &be) {
		n := retrySeconds(be.RetryAfter)
		return fmt.Sprintf("The server is busy hashing other passwords and PINs; nothing was checked or counted. Try again in %d second%s.",
			n, map[bool]string{true: "s"}[n != 1]), true
	}
	known := false
	for _, r := range refusals {
		if errors.Is(err, r) {
			known = true
			break
		}
	}
	if !known {
		var fe *FailureError
		var rl *RateLimitError
		known = errors.As(err, &fe) || errors.As(err, &rl)
	}
	if !known {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return "The request was cancelled or timed out.", true
		}
		return InternalMessage, false
	}
	return Sentence(err.Error()), true
}

// Sentence turns the text of an error into a sentence for a person: the
// package prefixes go, the first letter is upper case, and it ends with a
// period.
func Sentence(m string) string {
	for _, p := range []string{"service: ", "domain: ", "store: ", "sqlite: ", "api: "} {
		m = strings.ReplaceAll(m, p, "")
	}
	if m == "" {
		return "Error."
	}
	m = strings.ToUpper(m[:1]) + m[1:]
	if !strings.HasSuffix(m, ".") {
		m += "."
	}
	return m
}

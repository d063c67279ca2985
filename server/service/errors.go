package service

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
)

// Sentinel errors callers branch on with errors.Is. The service also
// returns the sentinels of server/domain (most often inside a
// *domain.TransitionError) and of server/store (store.ErrConflict when
// retries ran out).
var (
	// ErrInvalid: a malformed request: a missing or badly formed field,
	// bad base64, bad CBOR or JSON inside a WebAuthn payload, a value of
	// the wrong size. Nothing was counted or changed.
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: no such identity, authenticator or ceremony for this
	// identity.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: no valid session for the token given.
	ErrUnauthorized = errors.New("not authenticated")
	// ErrForbidden: the caller may not do this (a session of another
	// identity, a session on a support operation).
	ErrForbidden = errors.New("forbidden")
	// ErrWrongCode: a one-time code that matched no time step.
	ErrWrongCode = errors.New("wrong one-time code")
	// ErrWrongPIN: a wrong app PIN.
	ErrWrongPIN = errors.New("wrong PIN")
	// ErrWrongPassword: a wrong password.
	ErrWrongPassword = errors.New("wrong password")
	// ErrBadSignature: a chip assertion or an app signature that did not
	// verify (or was made for another challenge, origin or RP).
	ErrBadSignature = errors.New("the signature did not verify")
	// ErrCeremonyExpired: the ceremony is unknown, used already or expired;
	// begin again.
	ErrCeremonyExpired = errors.New("the ceremony expired or was already used")
	// ErrAttestationUntrusted: a chip whose attestation does not chain to a
	// trusted root, uses a format that is not accepted, or is not a MitID
	// chip (backup eligible).
	ErrAttestationUntrusted = errors.New("the chip's attestation is not trusted")
	// ErrPSKCMAC: a PSKC document whose MAC check failed (RFC 6030 §6.1.1).
	ErrPSKCMAC = errors.New("the PSKC document failed its integrity check")
	// ErrPSKCInvalid: a PSKC document that is malformed, unsupported, cannot
	// be decrypted with the configured key, or names a serial that cannot
	// be imported.
	ErrPSKCInvalid = errors.New("the PSKC document cannot be imported")
	// ErrIdentityTaken: an identity with the requested ID exists already.
	ErrIdentityTaken = errors.New("an identity with this ID exists already")
	// ErrUnavailable: the store cannot be reached.
	ErrUnavailable = errors.New("the store is unavailable")
	// ErrConflict: the record changed meanwhile (retries ran out), or a
	// unique value is taken.
	ErrConflict = errors.New("conflicting change")
	// ErrRateLimited: too many checks of one authenticator's secret in a
	// short time (Options.LoginLimit); nothing was checked or counted. The
	// error is a *RateLimitError, which says when to try again.
	ErrRateLimited = errors.New("too many attempts")
	// ErrAttemptsInFlight: every attempt the authenticator has left is
	// being checked right now (attempts are reserved before they are
	// checked); nothing was checked or counted. Try again in a moment.
	ErrAttemptsInFlight = errors.New("the attempts left are being checked")
	// ErrSerialLocked: the code device serial took
	// domain.Policy.MaxActivationFailures wrong activation codes; support
	// imports its secret again to unlock it.
	ErrSerialLocked = errors.New("the serial is locked after too many wrong activation codes")
	// ErrSecondFactor: the password was right, and a second factor is
	// needed for a session (DESIGN §1), but the identity has no active
	// chip or code device. Log in with the app, or ask support.
	ErrSecondFactor = errors.New("no second factor to log in with")
	// ErrBusy: too many argon2id computations (password and PIN hashes)
	// at once for the process's memory budget (secrets.Limiter); nothing
	// was checked, counted or stored. The error is a *BusyError, whose
	// RetryAfter says when to try again.
	ErrBusy = secrets.ErrBusy
	// ErrMasterKey: the master keyring does not open the secrets the store
	// holds sealed, or there is no keyring for them. The error is a
	// *MasterKeyError.
	ErrMasterKey = errors.New("the master key does not open the sealed secrets in the store")
)

var _ error = (*RateLimitError)(nil)

// RateLimitError is ErrRateLimited with the time until the next attempt
// is allowed.
type RateLimitError struct {
	RetryAfter time.Duration
}

// Error says when to try again.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("service: %v; try again in %d seconds", ErrRateLimited, retrySeconds(e.RetryAfter))
}

// Unwrap returns ErrRateLimited.
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// retrySeconds rounds d up to whole seconds, at least 1.
func retrySeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// BusyError is a request refused because the argon2id memory budget was
// taken (see ErrBusy).
type BusyError = secrets.BusyError

// passwordErr turns a password that secrets refuses (a
// *secrets.PasswordError) into an error wrapping ErrInvalid that says why;
// other errors (a *BusyError) pass through.
func passwordErr(err error) error {
	var pe *secrets.PasswordError
	if errors.As(err, &pe) {
		return invalid("the password %s", pe.Reason)
	}
	return err
}

// The causes of a failed login attempt map to these sentinels.
var causeErrors = map[domain.Cause]error{
	domain.CauseWrongPIN:      ErrWrongPIN,
	domain.CauseWrongPassword: ErrWrongPassword,
	domain.CauseWrongCode:     ErrWrongCode,
	domain.CauseBadSignature:  ErrBadSignature,
	domain.CauseSignCount:     domain.ErrCloneSuspected,
	domain.CauseReplayedCode:  domain.ErrCodeReplayed,
}

var _ error = (*FailureError)(nil)

// FailureError is a failed attempt (a wrong PIN, password or code, a bad
// signature, a signature counter that did not increase, a replayed code)
// that was recorded: Failures and State are the authenticator's after the
// attempt. It unwraps to ErrWrongPIN, ErrWrongPassword, ErrWrongCode,
// ErrBadSignature, domain.ErrCloneSuspected or domain.ErrCodeReplayed.
type FailureError struct {
	AuthenticatorID string
	Kind            string
	Cause           domain.Cause
	Failures        int          // consecutive failures now
	State           domain.State // the state after the attempt
	MaxFailures     int          // the policy's limit, for the message
	// activation marks a wrong activation code of a pending code device,
	// whose Failures are the serial's (domain.Policy.MaxActivationFailures).
	activation bool
}

// Error says what failed and what happens next, in a sentence for a person.
func (e *FailureError) Error() string {
	s := "service: " + e.Unwrap().Error()
	switch e.State {
	case domain.StateSuspended:
		return s + "; the authenticator is now temporarily blocked: reactivate it on self-service, logged in with other authenticators, or contact support"
	case domain.StateBlocked:
		return s + "; the authenticator is now permanently blocked"
	case domain.StatePending:
		if e.activation && e.MaxFailures > 0 {
			if left := e.MaxFailures - e.Failures; left > 0 {
				return s + " (" + strconv.Itoa(e.Failures) + " wrong activation codes for this serial; " +
					strconv.Itoa(left) + " more and it is locked until support imports it again)"
			}
			return s + "; the serial is now locked until support imports it again"
		}
		return s
	}
	if e.Cause == domain.CauseReplayedCode && e.Failures == 0 {
		return s + "; wait for the next code"
	}
	if left := e.MaxFailures - e.Failures; e.MaxFailures > 0 && left > 0 {
		return s + " (" + strconv.Itoa(e.Failures) + " failed attempts in a row; " +
			strconv.Itoa(left) + " more and the authenticator is temporarily blocked)"
	}
	return s
}

// Unwrap returns the sentinel of the cause.
func (e *FailureError) Unwrap() error {
	if err, ok := causeErrors[e.Cause]; ok {
		return err
	}
	return ErrBadSignature
}

// invalid returns an error wrapping ErrInvalid.
func invalid(format string, args ...any) error {
	return fmt.Errorf("service: %w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// untrusted returns an error wrapping ErrAttestationUntrusted.
func untrusted(format string, args ...any) error {
	return fmt.Errorf("service: %w: %s", ErrAttestationUntrusted, fmt.Sprintf(format, args...))
}

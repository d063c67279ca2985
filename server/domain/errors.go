package domain

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/authbench/authbench/device"
)

// Sentinel errors callers branch on with errors.Is. The errors returned by
// this package wrap them (most often inside a *TransitionError) and add
// what the person can do about it.
var (
	// ErrInvalid: a malformed request or record (empty ID, unknown kind or
	// state, missing serial or credential ID, reserved reason).
	ErrInvalid = errors.New("invalid request")
	// ErrInvalidTransition: the change does not apply to the current state
	// (activating an active authenticator, unblocking an active identity).
	ErrInvalidTransition = errors.New("not possible in the current state")
	// ErrNotActive: the authenticator is pending, not activated yet. The
	// other states that are not active have their own sentinels,
	// ErrSuspended and ErrBlocked.
	ErrNotActive = errors.New("the authenticator is not activated yet")
	// ErrSuspended: the authenticator is temporarily blocked.
	ErrSuspended = errors.New("the authenticator is temporarily blocked")
	// ErrBlocked: the authenticator is permanently blocked.
	ErrBlocked = errors.New("the authenticator is permanently blocked")
	// ErrIdentityBlocked: the whole identity is temporarily blocked.
	ErrIdentityBlocked = errors.New("the identity is temporarily blocked")
	// ErrQuotaExceeded: the identity already holds as many authenticators of
	// that kind as the policy allows.
	ErrQuotaExceeded = errors.New("no more authenticators of this kind can be added")
	// ErrSerialRevoked: a code device serial number that was permanently
	// blocked; it can never be added again.
	ErrSerialRevoked = errors.New("this serial number was permanently blocked and can never be added again")
	// ErrCredentialRevoked: a chip credential or app key that was
	// permanently blocked; it can never be used again.
	ErrCredentialRevoked = errors.New("this credential was permanently blocked and can never be used again")
	// ErrAlreadyAdded: the serial number or credential is already in use.
	ErrAlreadyAdded = errors.New("this authenticator is already added")
	// ErrSelfServiceRefused: the owner may not do this on self-service (no
	// valid proving authenticator, or a suspension only support lifts).
	ErrSelfServiceRefused = errors.New("this cannot be done on self-service")
	// ErrNotAllowed: the actor may not make this change.
	ErrNotAllowed = errors.New("not allowed")
	// ErrTooEarly: the change becomes possible later (activation delay,
	// suspension expiry).
	ErrTooEarly = errors.New("not possible yet")
	// ErrExpired: a pending authenticator was not activated within
	// Policy.PendingExpiry; it can only be cancelled (and added again).
	ErrExpired = errors.New("the pending authenticator expired")
	// ErrCodeReplayed: a one-time code whose time step was already used
	// (RFC 6238 §5.2).
	ErrCodeReplayed = errors.New("the one-time code was already used")
	// ErrCloneSuspected: a chip's signature counter did not increase
	// (WebAuthn Level 2 §6.1.1).
	ErrCloneSuspected = errors.New("the chip's signature counter did not increase; it may be cloned")
)

var (
	_ error = (*TransitionError)(nil)
	_ error = (*SignCountError)(nil)
	_ error = (*ReplayError)(nil)
)

// Op names a transition or check, in TransitionError and in audit details.
type Op string

// Transitions and checks.
const (
	OpCreateIdentity  Op = "create-identity"
	OpBlockIdentity   Op = "block-identity"
	OpUnblockIdentity Op = "unblock-identity"
	OpAdd             Op = "add"
	OpActivate        Op = "activate"
	OpLogin           Op = "login"
	OpSuccess         Op = "success"
	OpFailure         Op = "failure"
	OpSuspend         Op = "suspend"
	OpReactivate      Op = "reactivate"
	OpBlock           Op = "block"
	OpCancel          Op = "cancel"
	OpExpire          Op = "expire"
)

func (o Op) identityOp() bool {
	return o == OpCreateIdentity || o == OpBlockIdentity || o == OpUnblockIdentity
}

func (o Op) verb() string {
	switch o {
	case OpCreateIdentity:
		return "create"
	case OpBlockIdentity:
		return "block"
	case OpUnblockIdentity:
		return "lift the block of"
	case OpAdd:
		return "add"
	case OpLogin:
		return "log in with"
	case OpSuccess:
		return "record a login with"
	case OpFailure:
		return "record a failed attempt with"
	case OpExpire:
		return "lift the suspension of"
	case "":
		return "change"
	}
	return string(o)
}

// TransitionError is a refused transition or check. It unwraps to Reason,
// one of the sentinel errors of this package.
type TransitionError struct {
	IdentityID      string
	AuthenticatorID string      // empty for identity operations and OpAdd
	Kind            device.Kind // the authenticator's kind, when there is one
	From            string      // the authenticator's (or identity's) state when refused
	Event           Op          // what was attempted
	Reason          error       // the sentinel
	Detail          string      // why, and what the person can do
}

// Error returns a sentence for a person, such as "domain: cannot reactivate
// app a1 (blocked): the authenticator is permanently blocked; get a new
// MitID app".
func (e *TransitionError) Error() string {
	var b strings.Builder
	b.WriteString("domain: cannot ")
	b.WriteString(e.Event.verb())
	switch {
	case e.Event.identityOp():
		b.WriteString(" identity " + e.IdentityID)
	case e.AuthenticatorID != "" && e.Kind != "":
		b.WriteString(" " + string(e.Kind) + " " + e.AuthenticatorID)
	case e.AuthenticatorID != "":
		b.WriteString(" authenticator " + e.AuthenticatorID)
	case e.Kind != "":
		b.WriteString(" " + string(e.Kind))
	default:
		b.WriteString(" authenticator")
	}
	if e.From != "" {
		b.WriteString(" (" + e.From + ")")
	}
	b.WriteString(": ")
	if e.Reason != nil {
		b.WriteString(e.Reason.Error())
	} else {
		b.WriteString("refused")
	}
	if e.Detail != "" {
		b.WriteString("; " + e.Detail)
	}
	return b.String()
}

// Unwrap returns Reason.
func (e *TransitionError) Unwrap() error { return e.Reason }

// Audit returns the event to record for the refusal (EventRefused, or
// EventIdentityRefused for identity operations), attributed to by.
func (e *TransitionError) Audit(by Actor, at time.Time) Event {
	t := EventRefused
	if e.Event.identityOp() {
		t = EventIdentityRefused
	}
	d := map[string]string{"op": string(e.Event)}
	if e.From != "" {
		d["from"] = e.From
	}
	if e.Kind != "" {
		d["kind"] = string(e.Kind)
	}
	if e.Detail != "" {
		d["detail"] = e.Detail
	}
	reason := "refused"
	if e.Reason != nil {
		reason = e.Reason.Error()
	}
	return Event{
		Type:            t,
		IdentityID:      e.IdentityID,
		AuthenticatorID: e.AuthenticatorID,
		Actor:           by,
		Reason:          reason,
		Details:         d,
		At:              at,
	}
}

// refuse returns a *TransitionError about authenticator a.
func refuse(a *Authenticator, op Op, reason error, detail string) *TransitionError {
	return &TransitionError{
		IdentityID:      a.IdentityID,
		AuthenticatorID: a.ID,
		Kind:            a.Kind,
		From:            string(a.State),
		Event:           op,
		Reason:          reason,
		Detail:          detail,
	}
}

// refuseIdentity returns a *TransitionError about identity id.
func refuseIdentity(id *Identity, op Op, reason error, detail string) *TransitionError {
	return &TransitionError{
		IdentityID: id.ID,
		From:       string(id.State),
		Event:      op,
		Reason:     reason,
		Detail:     detail,
	}
}

// refuseState returns the refusal for op on a, whose state op does not
// accept: the sentinel that names the state, and advice for the person.
func refuseState(a *Authenticator, op Op) *TransitionError {
	switch a.State {
	case StatePending:
		return refuse(a, op, ErrNotActive, "activate it first")
	case StateSuspended:
		return refuse(a, op, ErrSuspended, suspendedAdvice(a))
	case StateBlocked:
		return refuse(a, op, ErrBlocked, blockedAdvice(a.Kind))
	}
	return refuse(a, op, ErrInvalidTransition, "it is "+string(a.State))
}

// suspendedAdvice says how a suspended authenticator comes back.
func suspendedAdvice(a *Authenticator) string {
	if a.SuspendReason == ReasonFailures {
		return "reactivate it on self-service, logged in with other authenticators, or contact support"
	}
	return "contact support to have it reactivated"
}

// blockedAdvice says what a person whose authenticator of kind k is
// permanently blocked does next (the seed's advice per kind).
func blockedAdvice(k device.Kind) string {
	switch k {
	case device.KindChip:
		return "add the chip again to create a new security element in it"
	case device.KindCodeDisplay, device.KindAudioCodeReader:
		return "order a new authenticator"
	case device.KindApp:
		return "get a new MitID app (a new app registration)"
	case device.KindPassword:
		return "create a new password"
	}
	return "add a new authenticator"
}

// SignCountError is the cloned-chip signal of CheckSignCount. It unwraps to
// ErrCloneSuspected.
type SignCountError struct {
	Stored, Received uint32
}

// Error says which counters were seen.
func (e *SignCountError) Error() string {
	return fmt.Sprintf("domain: the chip's signature counter %d is not above the stored %d; the chip may be cloned", e.Received, e.Stored)
}

// Unwrap returns ErrCloneSuspected.
func (e *SignCountError) Unwrap() error { return ErrCloneSuspected }

// Failure returns the failed attempt to record with RecordFailure
// (CauseSignCount, with both counters in the details).
func (e *SignCountError) Failure() Failure {
	return Failure{Cause: CauseSignCount, Details: map[string]string{
		"stored_count":   strconv.FormatUint(uint64(e.Stored), 10),
		"received_count": strconv.FormatUint(uint64(e.Received), 10),
	}}
}

// ReplayError is a one-time code refused by CheckOTPStep. It unwraps to
// ErrCodeReplayed.
type ReplayError struct {
	Highest, Step uint64
}

// Error says which time step was replayed.
func (e *ReplayError) Error() string {
	return fmt.Sprintf("domain: the one-time code of time step %d was already used (highest used step %d); wait for the next code", e.Step, e.Highest)
}

// Unwrap returns ErrCodeReplayed.
func (e *ReplayError) Unwrap() error { return ErrCodeReplayed }

// Failure returns the failed attempt to record with RecordFailure
// (CauseReplayedCode, with both steps in the details).
func (e *ReplayError) Failure() Failure {
	return Failure{Cause: CauseReplayedCode, Details: map[string]string{
		"step":         strconv.FormatUint(e.Step, 10),
		"highest_step": strconv.FormatUint(e.Highest, 10),
	}}
}

// EncodeCredentialID returns the text form of a raw credential ID used in
// Ref.CredentialID: unpadded base64url (RFC 4648 §5), as in WebAuthn JSON.
func EncodeCredentialID(raw []byte) string {
	return base64.RawURLEncoding.EncodeToString(raw)
}

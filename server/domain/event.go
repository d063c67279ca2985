package domain

import (
	"strconv"
	"time"
)

// EventType is the stable code of an audit event. Stores and reports key on
// these strings; they never change meaning.
type EventType string

// Audit event types. Every state change and every failed attempt produces
// one; refusals produce one through TransitionError.Audit.
const (
	EventIdentityCreated   EventType = "identity.created"
	EventIdentityBlocked   EventType = "identity.blocked"
	EventIdentityUnblocked EventType = "identity.unblocked"
	EventIdentityRefused   EventType = "identity.refused"

	EventAdded             EventType = "authenticator.added"
	EventActivated         EventType = "authenticator.activated"
	EventLoginSucceeded    EventType = "authenticator.login_succeeded"
	EventLoginFailed       EventType = "authenticator.login_failed"
	EventSuspended         EventType = "authenticator.suspended"
	EventSuspensionExpired EventType = "authenticator.suspension_expired"
	EventReactivated       EventType = "authenticator.reactivated"
	EventBlocked           EventType = "authenticator.blocked"
	EventCancelled         EventType = "authenticator.cancelled"
	EventRefused           EventType = "authenticator.refused"
)

// Event is one entry for the audit log. The store chains and persists it;
// this package only says what happened.
//
// Details keys used here: "kind", "from", "to", "failures", "suspensions",
// "cause", "via", "serial", "credential_id", "op", "error", plus the keys of
// Failure.Details.
type Event struct {
	Type            EventType         `json:"type"`
	IdentityID      string            `json:"identity_id"`
	AuthenticatorID string            `json:"authenticator_id,omitempty"`
	Actor           Actor             `json:"actor"`
	Reason          string            `json:"reason,omitempty"`
	Details         map[string]string `json:"details,omitempty"`
	At              time.Time         `json:"at"`
}

// authEvent returns an event of type t about authenticator a (in its new
// state), with the kind and the state change in Details.
func authEvent(t EventType, a *Authenticator, from State, by Actor, reason string, at time.Time) Event {
	d := map[string]string{"kind": string(a.Kind)}
	if from != "" {
		d["from"] = string(from)
		d["to"] = string(a.State)
	}
	return Event{
		Type:            t,
		IdentityID:      a.IdentityID,
		AuthenticatorID: a.ID,
		Actor:           by,
		Reason:          reason,
		Details:         d,
		At:              at,
	}
}

// withCounters adds the failure and suspension counters of a to e.
func withCounters(e Event, a *Authenticator) Event {
	e.Details["failures"] = strconv.Itoa(a.Failures)
	e.Details["suspensions"] = strconv.Itoa(a.Suspensions)
	return e
}

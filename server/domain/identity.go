package domain

import (
	"time"
)

// NewIdentity returns a new active identity with Version 1 and its
// EventIdentityCreated, attributed to by. It returns a *TransitionError
// unwrapping to ErrInvalid when id is empty.
func NewIdentity(id string, by Actor, now time.Time) (IdentityChange, error) {
	if id == "" {
		return IdentityChange{}, &TransitionError{Event: OpCreateIdentity, Reason: ErrInvalid, Detail: "an identity needs an ID"}
	}
	n := Identity{ID: id, State: IdentityActive, CreatedAt: now, Version: 1}
	return IdentityChange{Identity: n, Events: []Event{identityEvent(EventIdentityCreated, &n, "", by, "", now)}}, nil
}

// BlockIdentity temporarily blocks a whole identity on suspected misuse
// (DESIGN §1). Support, the system or the owner may do it; only support
// lifts it (UnblockIdentity). While it lasts no login succeeds (CanLogin)
// and self-service is refused. It returns a *TransitionError unwrapping to
// ErrInvalid (malformed record, no reason), ErrNotAllowed or
// ErrIdentityBlocked (already blocked).
func (p Policy) BlockIdentity(id Identity, by Actor, reason Reason, now time.Time) (IdentityChange, error) {
	const op = OpBlockIdentity
	if err := id.Validate(); err != nil {
		return IdentityChange{}, err
	}
	if err := checkActor(by, id.ID, identityRefuser(&id, op), ActorOwner, ActorSupport, ActorSystem); err != nil {
		return IdentityChange{}, err
	}
	if reason == "" {
		return IdentityChange{}, refuseIdentity(&id, op, ErrInvalid, "a reason is required")
	}
	if id.State == IdentityBlocked {
		return IdentityChange{}, refuseIdentity(&id, op, ErrIdentityBlocked, "it is already blocked")
	}
	n := id
	n.State = IdentityBlocked
	n.BlockedReason = reason
	n.BlockedAt = now
	n.BlockedBy = by
	n.Version++
	return IdentityChange{Identity: n, Events: []Event{identityEvent(EventIdentityBlocked, &n, id.State, by, string(reason), now)}}, nil
}

// UnblockIdentity lifts the temporary block of an identity. Only a support
// operator may (Support(operatorID)); note says why, for the audit log and
// may be empty. It returns a *TransitionError unwrapping to ErrInvalid,
// ErrNotAllowed or ErrInvalidTransition (not blocked).
func (p Policy) UnblockIdentity(id Identity, by Actor, note string, now time.Time) (IdentityChange, error) {
	const op = OpUnblockIdentity
	if err := id.Validate(); err != nil {
		return IdentityChange{}, err
	}
	if err := checkActor(by, id.ID, identityRefuser(&id, op), ActorSupport); err != nil {
		return IdentityChange{}, err
	}
	if id.State != IdentityBlocked {
		return IdentityChange{}, refuseIdentity(&id, op, ErrInvalidTransition, "it is not blocked")
	}
	n := id
	n.State = IdentityActive
	n.BlockedReason = ""
	n.BlockedAt = time.Time{}
	n.BlockedBy = Actor{}
	n.Version++
	ev := identityEvent(EventIdentityUnblocked, &n, id.State, by, note, now)
	ev.Details["blocked_reason"] = string(id.BlockedReason)
	return IdentityChange{Identity: n, Events: []Event{ev}}, nil
}

func identityEvent(t EventType, id *Identity, from IdentityState, by Actor, reason string, at time.Time) Event {
	d := map[string]string{}
	if from != "" {
		d["from"] = string(from)
		d["to"] = string(id.State)
	}
	return Event{Type: t, IdentityID: id.ID, Actor: by, Reason: reason, Details: d, At: at}
}

func identityRefuser(id *Identity, op Op) func(error, string) error {
	return func(reason error, detail string) error { return refuseIdentity(id, op, reason, detail) }
}

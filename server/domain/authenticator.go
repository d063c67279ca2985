package domain

import (
	"time"
)

// The transitions below take values and return new ones; they never change
// their arguments. Each successful one returns a Change whose Authenticator
// has Version one higher than the input.

// Activate makes a pending authenticator active: the person proved
// possession (a chip's attestation, a code device's first code, an app's
// confirmation). The owner, support or the system may activate; while the
// identity is blocked only support may. It returns a *TransitionError
// unwrapping to ErrInvalid, ErrNotAllowed, ErrIdentityBlocked, ErrTooEarly
// (before Policy.ActivationDelay has passed), ErrExpired (pending for
// longer than Policy.PendingExpiry), ErrInvalidTransition (already
// active), ErrSuspended or ErrBlocked.
func (p Policy) Activate(id Identity, a Authenticator, by Actor, now time.Time) (Change, error) {
	const op = OpActivate
	if err := checkPair(&id, &a, op); err != nil {
		return Change{}, err
	}
	if err := checkActor(by, a.IdentityID, refuser(&a, op), ActorOwner, ActorSupport, ActorSystem); err != nil {
		return Change{}, err
	}
	switch a.State {
	case StatePending:
	case StateActive:
		return Change{}, refuse(&a, op, ErrInvalidTransition, "it is already active")
	default:
		return Change{}, refuseState(&a, op)
	}
	if id.State == IdentityBlocked && by.Kind != ActorSupport {
		return Change{}, refuse(&a, op, ErrIdentityBlocked, "contact support")
	}
	if p.ActivationDelay > 0 {
		if from := a.CreatedAt.Add(p.ActivationDelay); now.Before(from) {
			return Change{}, refuse(&a, op, ErrTooEarly, "it can be activated from "+from.UTC().Format(time.RFC3339))
		}
	}
	if p.PendingExpired(a, now) {
		return Change{}, refuse(&a, op, ErrExpired, "it was added more than "+p.pendingExpiry().String()+" ago; cancel it and add it again")
	}
	n := a
	n.State = StateActive
	n.ActivatedAt = now
	n.Failures = 0
	n.Version++
	return Change{Authenticator: n, Events: []Event{authEvent(EventActivated, &n, a.State, by, "", now)}}, nil
}

// RecordSuccess records a successful login with an active authenticator:
// the consecutive failure count goes back to zero (DESIGN §1). A failure
// suspension that has lasted Policy.SuspensionExpiry is lifted first (one
// more event). It returns a *TransitionError unwrapping to ErrInvalid,
// ErrNotActive, ErrSuspended or ErrBlocked when a is not active.
func (p Policy) RecordSuccess(a Authenticator, now time.Time) (Change, error) {
	const op = OpSuccess
	if err := a.Validate(); err != nil {
		return Change{}, err
	}
	n, events := p.settle(a, now)
	if n.State != StateActive {
		return Change{}, refuseState(&n, op)
	}
	n.Failures = 0
	n.LastUsedAt = now
	n.Version++
	events = append(events, authEvent(EventLoginSucceeded, &n, "", loginActor, "", now))
	return Change{Authenticator: n, Events: events}, nil
}

// RecordFailure records a failed attempt with an active authenticator (a
// wrong PIN, password or code, a bad signature, a sign-counter regression,
// a replayed code). Every failure is audited (EventLoginFailed). When the
// cause counts (see Policy.CountReplays), the consecutive count grows; the
// Policy.MaxFailures-th consecutive failure suspends the authenticator
// (reason "failures", EventSuspended), and when that would be its
// Policy.MaxSuspensions-th suspension it is blocked for good instead
// (reason "escalation", EventBlocked, WipeSecret and a Tombstone).
//
// Escalation counts only suspensions caused by attempts that are not
// Failure.Anonymous: a suspension caused by anonymous attempts (wrong
// passwords, which anybody who knows the identity ID can send) leaves
// Suspensions as it is, so nobody without another factor of the identity
// can make a block permanent. A
// failure suspension that has lasted Policy.SuspensionExpiry is lifted
// first. It returns a *TransitionError unwrapping to ErrInvalid (no cause),
// ErrNotActive, ErrSuspended or ErrBlocked when a is not active: refuse
// those attempts with CanLogin before verifying anything.
func (p Policy) RecordFailure(a Authenticator, f Failure, now time.Time) (Change, error) {
	const op = OpFailure
	if err := a.Validate(); err != nil {
		return Change{}, err
	}
	if f.Cause == "" {
		return Change{}, refuse(&a, op, ErrInvalid, "the failure has no cause")
	}
	n, events := p.settle(a, now)
	if n.State != StateActive {
		return Change{}, refuseState(&n, op)
	}
	counted := p.counts(f.Cause)
	if counted {
		n.Failures++
	}
	failed := authEvent(EventLoginFailed, &n, "", loginActor, string(f.Cause), now)
	for k, v := range f.Details {
		failed.Details[k] = v
	}
	failed.Details["cause"] = string(f.Cause)
	events = append(events, withCounters(failed, &n))

	c := Change{}
	if max := p.maxFailures(); counted && max > 0 && n.Failures >= max {
		if f.Anonymous {
			// An anonymous caller may suspend (the seed's rule), but
			// this suspension never counts toward a permanent block.
			n.State = StateSuspended
			n.SuspendedAt = now
			n.SuspendReason = ReasonFailures
			ev := withCounters(authEvent(EventSuspended, &n, StateActive, loginActor, string(ReasonFailures), now), &n)
			ev.Details["escalation"] = "not counted (anonymous attempts)"
			n.Version++
			c.Authenticator = n
			c.Events = append(events, ev)
			return c, nil
		}
		n.Suspensions++
		if ms := p.maxSuspensions(); ms > 0 && n.Suspensions >= ms {
			n.State = StateBlocked
			n.BlockedAt = now
			n.BlockReason = ReasonEscalation
			events = append(events, withCounters(authEvent(EventBlocked, &n, StateActive, loginActor, string(ReasonEscalation), now), &n))
			c.WipeSecret = true
			c.Tombstone = tombstone(&n, loginActor)
		} else {
			n.State = StateSuspended
			n.SuspendedAt = now
			n.SuspendReason = ReasonFailures
			events = append(events, withCounters(authEvent(EventSuspended, &n, StateActive, loginActor, string(ReasonFailures), now), &n))
		}
	}
	n.Version++
	c.Authenticator = n
	c.Events = events
	return c, nil
}

// Suspend temporarily blocks an active authenticator on the word of support
// or the system (suspected misuse). Such a suspension does not count toward
// escalation, never expires by itself, and only support lifts it. It
// returns a *TransitionError unwrapping to ErrInvalid (empty or reserved
// reason), ErrNotAllowed (the owner blocks instead), ErrNotActive,
// ErrSuspended or ErrBlocked.
func (p Policy) Suspend(a Authenticator, by Actor, reason Reason, now time.Time) (Change, error) {
	const op = OpSuspend
	if err := a.Validate(); err != nil {
		return Change{}, err
	}
	if err := checkActor(by, a.IdentityID, refuser(&a, op), ActorSupport, ActorSystem); err != nil {
		return Change{}, err
	}
	if err := checkReason(&a, op, reason); err != nil {
		return Change{}, err
	}
	if a.State != StateActive {
		return Change{}, refuseState(&a, op)
	}
	n := a
	n.State = StateSuspended
	n.SuspendedAt = now
	n.SuspendReason = reason
	n.Version++
	return Change{Authenticator: n, Events: []Event{authEvent(EventSuspended, &n, a.State, by, string(reason), now)}}, nil
}

// Reactivate lifts the suspension of a suspended authenticator (DESIGN §1).
//
// By support (Support(operatorID)) it always works. By the owner
// (Owner(identityID, via)) it is self-service: the owner proves themself
// with another authenticator, via, which must be among others (the
// identity's authenticators as stored), belong to the same identity, not be
// a itself, and be active. Self-service only lifts suspensions caused by
// failed attempts, and is refused while the identity is blocked. The
// caller checks that the owner's session was really proven with via.
//
// The event records who and how (Reason "self-service" or "support", and
// Details "via"). It returns a *TransitionError unwrapping to ErrInvalid,
// ErrNotAllowed (another identity, the system, support without an ID),
// ErrIdentityBlocked, ErrSelfServiceRefused, ErrInvalidTransition (not
// suspended) or ErrBlocked.
func (p Policy) Reactivate(id Identity, a Authenticator, by Actor, others []Authenticator, now time.Time) (Change, error) {
	const op = OpReactivate
	if err := checkPair(&id, &a, op); err != nil {
		return Change{}, err
	}
	if err := checkActor(by, a.IdentityID, refuser(&a, op), ActorOwner, ActorSupport); err != nil {
		return Change{}, err
	}
	switch a.State {
	case StateSuspended:
	case StateBlocked:
		return Change{}, refuseState(&a, op)
	default:
		return Change{}, refuse(&a, op, ErrInvalidTransition, "it is not suspended")
	}
	how := "support"
	if by.Kind == ActorOwner {
		how = "self-service"
		if err := p.checkSelfService(&id, &a, by, others, now); err != nil {
			return Change{}, err
		}
	}
	n := a
	n.State = StateActive
	n.Failures = 0
	n.SuspendedAt = time.Time{}
	n.SuspendReason = ""
	n.Version++
	ev := withCounters(authEvent(EventReactivated, &n, a.State, by, how, now), &n)
	if by.Via != "" {
		ev.Details["via"] = by.Via
	}
	return Change{Authenticator: n, Events: []Event{ev}}, nil
}

// checkSelfService applies the self-service reactivation rules.
func (p Policy) checkSelfService(id *Identity, a *Authenticator, by Actor, others []Authenticator, now time.Time) error {
	const op = OpReactivate
	if id.State == IdentityBlocked {
		return refuse(a, op, ErrIdentityBlocked, "while the identity is blocked only support can help")
	}
	if a.SuspendReason != ReasonFailures {
		return refuse(a, op, ErrSelfServiceRefused, "it was suspended by support or the system; contact support")
	}
	switch by.Via {
	case "":
		return refuse(a, op, ErrSelfServiceRefused, "log in with other authenticators first")
	case a.ID:
		return refuse(a, op, ErrSelfServiceRefused, "an authenticator cannot vouch for itself; use another active authenticator")
	}
	for _, via := range by.Proofs() {
		if via == a.ID {
			return refuse(a, op, ErrSelfServiceRefused, "an authenticator cannot vouch for itself; log in with other authenticators")
		}
		var proof *Authenticator
		for i := range others {
			if others[i].ID == via {
				proof = &others[i]
				break
			}
		}
		switch {
		case proof == nil:
			return refuse(a, op, ErrSelfServiceRefused, "the proving authenticator "+via+" is unknown")
		case proof.IdentityID != a.IdentityID:
			return refuse(a, op, ErrSelfServiceRefused, "the proving authenticator belongs to another identity")
		case proof.State != StateActive && !p.expired(proof, now):
			return refuse(a, op, ErrSelfServiceRefused, "the proving authenticator "+via+" is not active ("+string(proof.State)+")")
		}
	}
	return nil
}

// Block blocks an authenticator permanently (DESIGN §1): the owner does it
// when the device is lost or may be compromised; support and the system
// may too. Pending, active and suspended authenticators can be blocked.
// The Change carries WipeSecret (delete the security element now) and the
// Tombstone to keep. A pending authenticator added by mistake is withdrawn
// with Cancel instead: Block revokes its serial or credential forever. It returns a *TransitionError unwrapping to
// ErrInvalid (empty or reserved reason), ErrNotAllowed or ErrBlocked
// (already blocked).
func (p Policy) Block(a Authenticator, by Actor, reason Reason, now time.Time) (Change, error) {
	const op = OpBlock
	if err := a.Validate(); err != nil {
		return Change{}, err
	}
	if err := checkActor(by, a.IdentityID, refuser(&a, op), ActorOwner, ActorSupport, ActorSystem); err != nil {
		return Change{}, err
	}
	if err := checkReason(&a, op, reason); err != nil {
		return Change{}, err
	}
	if a.State == StateBlocked {
		return Change{}, refuseState(&a, op)
	}
	n := a
	n.State = StateBlocked
	n.BlockedAt = now
	n.BlockReason = reason
	n.Version++
	ev := authEvent(EventBlocked, &n, a.State, by, string(reason), now)
	if n.Serial != "" {
		ev.Details["serial"] = n.Serial
	}
	if n.CredentialID != "" {
		ev.Details["credential_id"] = n.CredentialID
	}
	return Change{
		Authenticator: n,
		Events:        []Event{ev},
		WipeSecret:    true,
		Tombstone:     tombstone(&n, by),
	}, nil
}

// Cancel withdraws a pending authenticator that was never activated (a
// mistyped serial, an enrolment given up). Nothing was ever proven with it,
// so nothing is revoked: the Change has Remove and WipeSecret and no
// Tombstone. It returns a *TransitionError unwrapping to ErrInvalid,
// ErrNotAllowed, ErrInvalidTransition (active or suspended: block it
// instead) or ErrBlocked.
func (p Policy) Cancel(a Authenticator, by Actor, now time.Time) (Change, error) {
	const op = OpCancel
	if err := a.Validate(); err != nil {
		return Change{}, err
	}
	if err := checkActor(by, a.IdentityID, refuser(&a, op), ActorOwner, ActorSupport, ActorSystem); err != nil {
		return Change{}, err
	}
	switch a.State {
	case StatePending:
	case StateBlocked:
		return Change{}, refuseState(&a, op)
	default:
		return Change{}, refuse(&a, op, ErrInvalidTransition, "only a pending authenticator can be cancelled; block it instead")
	}
	n := a
	n.Version++
	return Change{
		Authenticator: n,
		Events:        []Event{authEvent(EventCancelled, &n, "", by, "", now)},
		WipeSecret:    true,
		Remove:        true,
	}, nil
}

// Expire lifts a failure suspension that has lasted Policy.SuspensionExpiry
// (EventSuspensionExpired, by the system). RecordSuccess, RecordFailure and
// CanLogin apply the same rule on the fly, so calling Expire is only needed
// to tidy records. It returns a *TransitionError unwrapping to ErrInvalid,
// ErrInvalidTransition (not suspended), ErrBlocked, ErrNotAllowed (the
// policy never expires suspensions, or support imposed this one) or
// ErrTooEarly.
func (p Policy) Expire(a Authenticator, now time.Time) (Change, error) {
	const op = OpExpire
	if err := a.Validate(); err != nil {
		return Change{}, err
	}
	switch a.State {
	case StateSuspended:
	case StateBlocked:
		return Change{}, refuseState(&a, op)
	default:
		return Change{}, refuse(&a, op, ErrInvalidTransition, "it is not suspended")
	}
	switch {
	case p.SuspensionExpiry <= 0:
		return Change{}, refuse(&a, op, ErrNotAllowed, "suspensions do not expire under this policy; reactivate it")
	case a.SuspendReason != ReasonFailures:
		return Change{}, refuse(&a, op, ErrNotAllowed, "only support lifts this suspension")
	case !p.expired(&a, now):
		return Change{}, refuse(&a, op, ErrTooEarly, "the suspension lifts at "+a.SuspendedAt.Add(p.SuspensionExpiry).UTC().Format(time.RFC3339))
	}
	n, events := p.settle(a, now)
	n.Version++
	return Change{Authenticator: n, Events: events}, nil
}

// settle applies the time-driven transition (suspension expiry) to a,
// without touching Version.
func (p Policy) settle(a Authenticator, now time.Time) (Authenticator, []Event) {
	if !p.expired(&a, now) {
		return a, nil
	}
	n := a
	n.State = StateActive
	n.Failures = 0
	n.SuspendedAt = time.Time{}
	n.SuspendReason = ""
	ev := withCounters(authEvent(EventSuspensionExpired, &n, a.State, System("expiry"), string(a.SuspendReason), now), &n)
	return n, []Event{ev}
}

// refuser returns a constructor of refusals of op on a, for checkActor.
func refuser(a *Authenticator, op Op) func(error, string) error {
	return func(reason error, detail string) error { return refuse(a, op, reason, detail) }
}

// checkReason refuses empty reasons and the ones reserved for automatic
// transitions.
func checkReason(a *Authenticator, op Op, r Reason) error {
	switch r {
	case "":
		return refuse(a, op, ErrInvalid, "a reason is required")
	case ReasonFailures, ReasonEscalation:
		return refuse(a, op, ErrInvalid, "the reason "+string(r)+" is set only by failed attempts")
	}
	return nil
}

// tombstone returns what remains of the permanently blocked a.
func tombstone(a *Authenticator, by Actor) *Tombstone {
	return &Tombstone{
		IdentityID:      a.IdentityID,
		AuthenticatorID: a.ID,
		Kind:            a.Kind,
		Ref:             a.Ref,
		Reason:          a.BlockReason,
		BlockedAt:       a.BlockedAt,
		By:              by,
	}
}

package domain

import (
	"time"
)

// CheckSignCount applies the cloned-chip rule of WebAuthn Level 2 §6.1.1
// and §7.2 step 21 to the signature counter of an assertion. When both
// counters are zero the chip keeps no counter and nil is returned; when
// either is non-zero the received one must be greater than the stored one.
// Otherwise it returns a *SignCountError (unwrapping to ErrCloneSuspected):
// refuse the assertion and record it with RecordFailure(err.Failure()).
func CheckSignCount(stored, received uint32) error {
	if stored == 0 && received == 0 || received > stored {
		return nil
	}
	return &SignCountError{Stored: stored, Received: received}
}

// CheckOTPStep applies the single-use rule of RFC 6238 §5.2: a one-time code
// is refused when its time step is at or below highestUsed, the highest
// step already accepted for the device (0 when none was; step 0 is 1970
// and never current). It returns a *ReplayError (unwrapping to
// ErrCodeReplayed) on a replay. The store must apply this check and raise
// the watermark in one atomic statement (UPDATE ... WHERE highest < step),
// so that two replicas seeing one code at the same instant accept it once.
func CheckOTPStep(highestUsed, step uint64) error {
	if step > highestUsed {
		return nil
	}
	return &ReplayError{Highest: highestUsed, Step: step}
}

// CanLogin reports whether authenticator a of identity id may be used to
// log in at now; call it before verifying the PIN, code or signature. A
// failure suspension that has lasted Policy.SuspensionExpiry counts as
// lifted. It returns nil or a *TransitionError (Event OpLogin) unwrapping
// to:
//   - ErrInvalid: a malformed record;
//   - ErrNotAllowed: a belongs to another identity;
//   - ErrIdentityBlocked: the identity is temporarily blocked;
//   - ErrNotActive: a is pending;
//   - ErrSuspended: a is suspended;
//   - ErrBlocked: a is permanently blocked.
func (p Policy) CanLogin(id Identity, a Authenticator, now time.Time) error {
	if err := checkPair(&id, &a, OpLogin); err != nil {
		return err
	}
	if id.State == IdentityBlocked {
		return refuse(&a, OpLogin, ErrIdentityBlocked, "contact support")
	}
	if a.State == StateActive || p.expired(&a, now) {
		return nil
	}
	return refuseState(&a, OpLogin)
}

// checkPair validates an identity and one of its authenticators.
func checkPair(id *Identity, a *Authenticator, op Op) error {
	if err := id.Validate(); err != nil {
		return err
	}
	if err := a.Validate(); err != nil {
		return err
	}
	if a.IdentityID != id.ID {
		return refuse(a, op, ErrNotAllowed, "it belongs to another identity")
	}
	return nil
}

// checkActor returns nil when by may act on identity identityID in one of
// the roles allowed, or a TransitionError built by mk.
func checkActor(by Actor, identityID string, mk func(reason error, detail string) error, allowed ...ActorKind) error {
	ok := false
	for _, k := range allowed {
		if by.Kind == k {
			ok = true
		}
	}
	switch {
	case !ok:
		return mk(ErrNotAllowed, actorAdvice(by, allowed))
	case by.Kind == ActorSupport && by.ID == "":
		return mk(ErrNotAllowed, "a support action needs the operator's ID")
	case by.Kind == ActorOwner && by.ID != identityID:
		return mk(ErrNotAllowed, "the session belongs to another identity")
	}
	return nil
}

func actorAdvice(by Actor, allowed []ActorKind) string {
	if len(allowed) == 1 && allowed[0] == ActorSupport {
		return "only a support operator can do this"
	}
	if by.Kind == "" {
		return "no actor given"
	}
	return "not for the role " + string(by.Kind)
}

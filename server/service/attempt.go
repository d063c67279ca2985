package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// Attempts are reserved before they are checked (DESIGN §1), as a smart
// card decrements its retry counter before it compares a PIN: a guess is
// evaluated only once store.Attempts.ReserveAttempt has counted it in
// flight, and the store never lets the failures recorded plus the attempts
// in flight pass the limit (domain.Policy.MaxFailures for an
// authenticator; MaxActivationFailures for a code device serial being
// activated). Of 64 guesses that arrive at once on any number of replicas,
// at most 3 are ever evaluated. A guess that finds every remaining attempt
// in flight waits until they are decided: when they suspend the
// authenticator it gets the same answer as any guess after the suspension
// (Service.refusal), whatever it guessed; when they leave attempts, it
// takes one.

// attempt is one reservation, made by reserve and ended by the caller.
type attempt struct {
	s          *Service
	op         string // "login" or "activate", for the rate limit
	identityID string
	aid        string // the authenticator the check is against
	serial     string // or the serial's import (activation of a code device)
	max        int
	// recheck explains a reservation refused with store.ErrExhausted: the
	// error to answer with when the subject takes no attempts any more,
	// or nil when the attempts left are only in flight.
	recheck func(ctx context.Context) error

	id string // set once reserved
}

// reserve applies the rate limit of the authenticator, then reserves the
// attempt, waiting (up to Options.AttemptWait, and ctx) while every
// attempt left is in flight. It returns a *RateLimitError, the error of
// recheck, an error wrapping ErrAttemptsInFlight when the wait ran out, or
// the store's error.
func (t *attempt) reserve(ctx context.Context) error {
	s := t.s
	if err := s.allow(t.op, t.identityID, t.aid); err != nil {
		return err
	}
	id, err := s.newID("att")
	if err != nil {
		return err
	}
	// The deadline is on the real clock: it bounds real waiting, whatever
	// the service's clock says.
	deadline := time.Now().Add(s.wait)
	pause := 10 * time.Millisecond
	// The first try listens for nothing: most find an attempt free. Once
	// refused, each try listens before it is made, so that an attempt
	// that ends between the try and the wait still wakes this one.
	var ended <-chan struct{}
	for try := 0; ; try++ {
		if try > 0 {
			ended = s.bell.wait(t.subject())
		}
		now := s.clock()
		a := store.Attempt{ID: id, ExpiresAt: now.Add(s.attemptTTL)}
		if t.serial != "" {
			a.Serial = t.serial
		} else {
			a.AuthenticatorID = t.aid
		}
		err := s.st.ReserveAttempt(ctx, a, t.max, now)
		if err == nil {
			t.id = id
			return nil
		}
		if !errors.Is(err, store.ErrExhausted) {
			return storeErr(err, "reserve an attempt")
		}
		if err := t.recheck(ctx); err != nil {
			return err
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("service: %w; try again in a moment", ErrAttemptsInFlight)
		}
		if ended == nil {
			// Refused unheard: listen, and try again before waiting.
			continue
		}
		// Wait for an attempt on this subject to end here, or poll for
		// one that ends on another replica (or lapses).
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ended:
		case <-time.After(pause):
			pause = min(2*pause, 250*time.Millisecond)
		}
	}
}

// subject names what t is an attempt against, for the bell.
func (t *attempt) subject() subject {
	if t.serial != "" {
		return subject{serial: true, id: t.serial}
	}
	return subject{id: t.aid}
}

// subject is what attempts are against: an authenticator, or a code
// device serial being activated.
type subject struct {
	serial bool
	id     string
}

// ended rings the bell of t's subject: an attempt against it ended (its
// outcome recorded, or released), so a waiting one may take its place or
// find the subject suspended.
func (t *attempt) ended() { t.s.bell.ring(t.subject()) }

// bell wakes the guesses waiting for the attempts in flight against one
// subject to end, on this replica; waiters on other replicas poll.
type bell struct {
	mu sync.Mutex
	ch map[subject]chan struct{}
}

// wait returns a channel that is closed the next time subject rings.
func (b *bell) wait(sub subject) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = map[subject]chan struct{}{}
	}
	c := b.ch[sub]
	if c == nil {
		c = make(chan struct{})
		b.ch[sub] = c
	}
	return c
}

// ring wakes every waiter of subject.
func (b *bell) ring(sub subject) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.ch[sub]; c != nil {
		close(c)
		delete(b.ch, sub)
	}
}

// release ends a reservation whose check ended without an outcome to
// record (malformed input found late, a store error). Its errors are
// logged: the reservation lapses by itself.
func (t *attempt) release(ctx context.Context) {
	if t.id == "" {
		return
	}
	if err := t.s.st.EndAttempt(context.WithoutCancel(ctx), t.id, nil); err != nil {
		t.s.log.WarnContext(ctx, "service: could not end an attempt; it lapses by itself", "attempt", t.id, "err", err)
	}
	t.id = ""
	t.ended()
}

// loginAttempt returns the attempt of a login check against a of identity
// id: at most Policy.MaxFailures, refused as Service.refusal says once a
// takes none.
func (s *Service) loginAttempt(id domain.Identity, a domain.Authenticator) *attempt {
	identityID, aid := id.ID, a.ID // the recheck holds the IDs, not copies of the records
	return &attempt{s: s, op: "login", identityID: identityID, aid: aid, max: s.policy.Failures(),
		recheck: func(ctx context.Context) error {
			_, _, err := s.ready(ctx, identityID, aid)
			return err
		}}
}

// ready reloads identity identityID and its authenticator aid and returns
// them when the authenticator takes login attempts: it is active (a
// failure suspension that has lasted Policy.SuspensionExpiry is lifted
// first). Otherwise it returns the refusal (Service.refusal).
func (s *Service) ready(ctx context.Context, identityID, aid string) (domain.Identity, domain.Authenticator, error) {
	id, a, err := s.loadPair(ctx, identityID, aid)
	if err != nil {
		return id, a, err
	}
	return s.readyAs(ctx, id, a)
}

// readyAs is ready for identity id and its authenticator a as the caller
// has just loaded them. It needs no reload: the reservation that comes
// next checks in the store that a is still active.
func (s *Service) readyAs(ctx context.Context, id domain.Identity, a domain.Authenticator) (domain.Identity, domain.Authenticator, error) {
	identityID, aid := id.ID, a.ID
	if err := s.refusal(ctx, id, a); err != nil {
		return id, a, err
	}
	if a.State == domain.StateSuspended {
		// CanLogin let it through: its suspension has expired.
		c, err := s.applyAuth(ctx, aid, loginActor, func(a domain.Authenticator) (domain.Change, error) {
			return s.policy.Expire(a, s.clock())
		})
		if err != nil && !errors.Is(err, domain.ErrInvalidTransition) {
			return id, a, err
		}
		if err == nil {
			a = c.Authenticator
		} else if id, a, err = s.loadPair(ctx, identityID, aid); err != nil {
			return id, a, err
		}
	}
	return id, a, nil
}

// refusal returns nil when authenticator a of identity id may be used to
// log in now, or the refusal of domain.Policy.CanLogin, audited. The
// refusal depends on the state of the identity and the authenticator
// only, never on what the caller sent: every attempt on a suspended
// authenticator gets the same status, code and words.
func (s *Service) refusal(ctx context.Context, id domain.Identity, a domain.Authenticator) error {
	err := s.policy.CanLogin(id, a, s.clock())
	if err != nil {
		s.auditRefusal(ctx, err, loginActor)
	}
	return err
}

// prove runs the shared part of checking a login proof against
// authenticator a of identity id: the lifecycle rule (the authenticator
// takes attempts), then check (the kind's), which reserves the attempt
// (rate limit, reservation) right before it evaluates the proof, then the
// failure, when there is one, recorded with the end of the attempt.
// anonymous marks the failures of a caller who proved no other factor
// first (domain.Failure.Anonymous). On success it returns the verdict and
// the attempt, still reserved: the caller ends it with the success
// (commitLogin). It returns the refusal of Service.refusal, a
// *FailureError, the errors of check, or the store's error.
func (s *Service) prove(ctx context.Context, id domain.Identity, a domain.Authenticator, anonymous bool,
	check func(reserve func() error) (verdict, error)) (verdict, *attempt, error) {
	id, a, err := s.readyAs(ctx, id, a)
	if err != nil {
		return verdict{}, nil, err
	}
	att := s.loginAttempt(id, a)
	v, err := check(func() error { return att.reserve(ctx) })
	if err != nil {
		att.release(ctx)
		return verdict{}, nil, err
	}
	if v.fail != nil {
		v.fail.Anonymous = anonymous
		return verdict{}, nil, s.recordFailure(ctx, id, a.ID, att, *v.fail)
	}
	return v, att, nil
}

// recordFailure records failed attempt f with authenticator aid of
// identity id and ends attempt att in the same write, and returns the
// *FailureError describing the outcome (or the refusal when the
// authenticator stopped being active meanwhile).
func (s *Service) recordFailure(ctx context.Context, id domain.Identity, aid string, att *attempt, f domain.Failure) error {
	for try := 0; ; try++ {
		cur, err := s.st.Authenticator(ctx, aid)
		if err != nil {
			att.release(ctx)
			return storeErr(err, "authenticator "+aid)
		}
		c, err := s.policy.RecordFailure(cur, f, s.clock())
		if err != nil {
			// Blocked or suspended meanwhile (by support, the owner, or
			// the identity's block): answer as any later attempt.
			att.release(ctx)
			if rerr := s.refusal(ctx, id, cur); rerr != nil {
				return rerr
			}
			return err
		}
		if !c.WipeSecret && c.Authenticator.State == cur.State && c.Authenticator.Failures == cur.Failures {
			// An attempt that does not count (a replayed code, by
			// default) changes nothing but the audit log: no versioned
			// write, so a burst of replays does not contend for the
			// record.
			att.release(ctx)
			if err := s.st.AppendAudit(ctx, c.Events...); err != nil {
				return storeErr(err, "audit")
			}
			s.logChange(ctx, c.Events)
			return s.failureError(cur, f.Cause)
		}
		err = s.st.EndAttempt(ctx, att.id, &c)
		if err == nil {
			att.id = ""
			att.ended()
			s.logChange(ctx, c.Events)
			return s.failureError(c.Authenticator, f.Cause)
		}
		if !errors.Is(err, store.ErrConflict) || try >= s.retries {
			att.release(ctx)
			return storeErr(err, "authenticator "+aid)
		}
	}
}

// failureError describes a recorded failed attempt with a, as a is now.
func (s *Service) failureError(a domain.Authenticator, c domain.Cause) error {
	return &FailureError{AuthenticatorID: a.ID, Kind: string(a.Kind), Cause: c, Failures: a.Failures, State: a.State, MaxFailures: s.policy.Failures()}
}

// commitLogin ends attempt att with the success of a (domain.Policy.
// RecordSuccess) and l's guard and session, retrying on a version
// conflict; prior, when not "", names the password of the same login whose
// success is recorded in the same write. A guard that does not move is the
// failure it means (a replayed code, a counter that did not increase) and
// is recorded as such. It returns the change stored, the refusal when a,
// the password or the session's other proofs stopped being active
// meanwhile, a *FailureError, or the store's error.
func (s *Service) commitLogin(ctx context.Context, id domain.Identity, a domain.Authenticator, prior string, att *attempt, v verdict, sess *store.Session, spent *store.Ceremony) (domain.Change, error) {
	var pw domain.Authenticator
	readPrior := prior != "" // the password is read again after a conflict
	for try := 0; ; try++ {
		now := s.clock()
		c, err := s.policy.RecordSuccess(a, now)
		if err != nil {
			att.release(ctx)
			if rerr := s.refusal(ctx, id, a); rerr != nil {
				return domain.Change{}, rerr
			}
			return domain.Change{}, err
		}
		l := store.Login{Attempt: att.id, Change: c, Session: sess, OTP: v.otp}
		if readPrior {
			if pw, err = s.st.Authenticator(ctx, prior); err != nil {
				att.release(ctx)
				return domain.Change{}, storeErr(err, "authenticator "+prior)
			}
			readPrior = false
		}
		if prior != "" {
			pc, err := s.policy.RecordSuccess(pw, now)
			if err != nil {
				att.release(ctx)
				if rerr := s.refusal(ctx, id, pw); rerr != nil {
					return domain.Change{}, rerr
				}
				return domain.Change{}, err
			}
			l.Prior, l.PriorPlain = &pc, pw.Failures == 0
		}
		if v.chip != nil {
			l.Chip = &store.ChipGuard{Count: v.chip.Count, Spent: *spent}
		}
		ok, err := s.st.CommitLogin(ctx, l)
		switch {
		case err == nil && ok:
			att.id = ""
			att.ended()
			if l.Prior != nil {
				s.logChange(ctx, l.Prior.Events)
			}
			s.logChange(ctx, c.Events)
			return c, nil
		case err == nil && v.chip != nil:
			// The counter did not increase: a possible clone (WebAuthn
			// Level 2 §6.1.1). The challenge is spent all the same.
			if serr := s.st.PutCeremony(ctx, *spent); serr != nil && !errors.Is(serr, store.ErrDuplicate) {
				att.release(ctx)
				return domain.Change{}, storeErr(serr, "login ceremony")
			}
			var stored uint32
			if v.el.Chip != nil {
				stored = v.el.Chip.SignCount
			}
			se := &domain.SignCountError{Stored: stored, Received: v.chip.Count}
			return domain.Change{}, s.recordFailure(ctx, id, a.ID, att, se.Failure())
		case err == nil:
			// Another request (or replica) accepted this step a moment ago.
			return domain.Change{}, s.recordFailure(ctx, id, a.ID, att, domain.Failure{Cause: domain.CauseReplayedCode})
		case v.chip != nil && errors.Is(err, store.ErrDuplicate):
			att.release(ctx)
			return domain.Change{}, errBeginAgain()
		case (errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound)) && try < s.retries:
			// A version conflict, or an element gone under the login (a
			// block wipes it): read a again, and its refusal, if any, ends
			// the login above.
			if a, err = s.st.Authenticator(ctx, a.ID); err != nil {
				att.release(ctx)
				return domain.Change{}, storeErr(err, "authenticator "+a.ID)
			}
			readPrior = prior != ""
			if sess != nil {
				// A proof of the session may have stopped being active.
				if err := s.sessionProofs(ctx, id.ID, sess.Authenticators); err != nil {
					att.release(ctx)
					return domain.Change{}, err
				}
			}
		default:
			att.release(ctx)
			return domain.Change{}, storeErr(err, "authenticator "+a.ID)
		}
	}
}

// sessionProofs returns the refusal of the first of the authenticators
// aids (of identity identityID) that may not log in now, or nil.
func (s *Service) sessionProofs(ctx context.Context, identityID string, aids []string) error {
	for _, aid := range aids {
		if _, _, err := s.ready(ctx, identityID, aid); err != nil {
			return err
		}
	}
	return nil
}

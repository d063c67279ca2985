package sqlcore

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// The writes of a successful check, in one transaction (store.Logins): the
// proofs of the session (PostgreSQL share-locks the identity and those the
// transaction does not update), the authenticator's record (and the
// password's, when its success was left for this write: Login.Prior),
// the replay guard of the security element (the OTP watermark of RFC 6238
// §5.2, or the signature counter of WebAuthn Level 2 §6.1.1 with the spent
// challenge), the end of the attempt's reservation, their
// EventLoginSucceeded audit events, and the session: one commit for the
// whole login.
//
// The order is the lock order of every write that changes an
// authenticator and its element (a block wipes the element after it
// updated the record; ApplyChange): the identity, the authenticators, the
// element, and the head of the audit chain last. A login that locked the
// element before the record, as it once did, and a block of the same chip
// could each wait for the other until PostgreSQL broke the deadlock
// (deadlock_timeout, 1 s by default) by aborting one of them.

// errGuard undoes a login transaction whose replay guard did not move.
var errGuard = errors.New("replay guard not advanced")

// CommitLogin implements store.Logins. A login without a replay guard (a
// password's success before the second factor) need not reach the disk
// before it returns (Lapse): lost in a crash of the machine, its failures
// stay counted and its session, if any, is gone, which both fail closed.
func (s *Store) CommitLogin(ctx context.Context, l store.Login) (bool, error) {
	ts, sts, err := s.col.Login(&l)
	if err != nil {
		return false, err
	}
	var step int64
	var spentExp any
	switch {
	case l.OTP != nil:
		if step, err = s.col.U63(l.OTP.Step, "time step"); err != nil {
			return false, err
		}
	case l.Chip != nil:
		if err := l.Chip.Spent.Check(); err != nil {
			return false, err
		}
		if spentExp, err = s.col.Time(l.Chip.Spent.ExpiresAt); err != nil {
			return false, err
		}
	}
	var f Flags
	if l.OTP == nil && l.Chip == nil {
		f = Lapse
	}
	ac := &appliedChange{c: l.Change, ts: ts}
	a := &l.Change.Authenticator
	if l.OTP != nil {
		if !isCodeDevice(a.Kind) || l.Change.Remove || l.Change.WipeSecret || l.Change.Tombstone != nil {
			return false, s.errf("%w: an OTP login's change must be a code device's, and no removal, wipe or block", store.ErrInvalid)
		}
		ac.otp = &otpStep{step: step, drift: int64(l.OTP.Drift)}
	}
	var prior *appliedChange
	events := l.Change.Events
	if l.Prior != nil {
		if prior, err = s.prepareChange(*l.Prior); err != nil {
			return false, err
		}
		if p := &l.Prior.Authenticator; p.ID == a.ID || p.IdentityID != a.IdentityID || l.Prior.WipeSecret || l.Prior.Remove || l.Prior.Tombstone != nil {
			return false, s.errf("%w: the prior success of a login must be another authenticator of the same identity, and only a success", store.ErrInvalid)
		}
		events = loginEvents(l.Prior, l.PriorPlain, events)
	}
	if l.Session != nil && l.Session.IdentityID != a.IdentityID {
		return false, s.errf("%w: a login's session is of identity %s, its authenticator %s of %s", store.ErrInvalid, l.Session.IdentityID, a.ID, a.IdentityID)
	}
	err = s.writeEnding(ctx, f, l.Attempt, func(ctx context.Context, tx Tx) error {
		if l.Session != nil {
			if err := s.checkProofs(ctx, tx, l.Session, a.ID, priorID(l.Prior)); err != nil {
				return err
			}
		}
		if prior != nil {
			if err := s.applyRecord(ctx, tx, prior); err != nil {
				return err
			}
		}
		if err := s.applyRecord(ctx, tx, ac); err != nil {
			return err
		}
		// An OTP step moved the watermark with the record (applyRecord).
		if l.Chip != nil {
			sp := &l.Chip.Spent
			if err := s.execLater(ctx, tx, s.q.ceremonyInsert, s.wrapAs("ceremony ", sp.Key), sp.Key, sp.IdentityID, columns.NonNil(sp.Data), spentExp); err != nil {
				return err
			}
			ok, err := s.advanceSign(ctx, tx, a.CredentialID, l.Chip.Count)
			if err != nil {
				return err
			}
			if !ok {
				return errGuard
			}
		}
		if err := s.endAttempt(ctx, tx, l.Attempt); err != nil {
			return err
		}
		if err := s.appendAudit(ctx, tx, events); err != nil {
			return err
		}
		if l.Session != nil {
			return s.insertSession(ctx, tx, l.Session, sts)
		}
		return nil
	})
	var miss *guardMiss
	if errors.As(err, &miss) {
		err = miss.explain(ctx, s)
	}
	if errors.Is(err, errGuard) || miss != nil && err == nil {
		return false, nil
	}
	return err == nil, err
}

// loginEvents returns the audit events of a login with a prior success:
// the prior's events, then the factor's (events). When the prior ends
// nothing (plain: it had no failures to reset), its events are only its
// success with no details but its kind, and the
// factor's include its success at the same moment by the same actor, the
// two successes are one record: the factor's, naming the prior in
// store.DetailFirstFactor and store.DetailFirstFactorKind. A person's audit trail
// then shows one login with both of its factors, and every login costs
// the audit log one record (its rows, its index and the hash of the
// chain) instead of two. Anything else (a suspension of the password
// that expired meanwhile, say) is recorded as it is, one event a record.
func loginEvents(prior *domain.Change, plain bool, events []domain.Event) []domain.Event {
	if plain && successAlone(prior) {
		p := &prior.Events[0]
		for i := range events {
			e := &events[i]
			if e.Type != domain.EventLoginSucceeded || p.IdentityID != e.IdentityID || !p.At.Equal(e.At) ||
				p.Actor != e.Actor || p.Reason != e.Reason {
				continue
			}
			out := slices.Clone(events)
			d := make(map[string]string, len(e.Details)+2)
			maps.Copy(d, e.Details)
			d[store.DetailFirstFactor] = p.AuthenticatorID
			d[store.DetailFirstFactorKind] = string(prior.Authenticator.Kind)
			out[i].Details = d
			return out
		}
	}
	return append(append(make([]domain.Event, 0, len(prior.Events)+len(events)), prior.Events...), events...)
}

// successAlone reports whether c's only event is its authenticator's
// success, with no details but its kind.
func successAlone(c *domain.Change) bool {
	if len(c.Events) != 1 {
		return false
	}
	e := &c.Events[0]
	return e.Type == domain.EventLoginSucceeded && e.AuthenticatorID == c.Authenticator.ID &&
		len(e.Details) == 1 && e.Details["kind"] == string(c.Authenticator.Kind)
}

// priorID is the authenticator of a login's prior success, or "".
func priorID(c *domain.Change) string {
	if c == nil {
		return ""
	}
	return c.Authenticator.ID
}

// ActivateCodeDevice implements store.Logins.
func (s *Store) ActivateCodeDevice(ctx context.Context, act store.CodeActivation) error {
	ac, err := s.prepareChange(act.Change)
	if err != nil {
		return err
	}
	a := &act.Change.Authenticator
	if !isCodeDevice(a.Kind) {
		return s.errf("%w: authenticator %s is not a code device", store.ErrInvalid, a.ID)
	}
	if err := act.Element.Check(a.Kind); err != nil {
		return err
	}
	im := &act.Import
	if im.Serial != a.Serial {
		return s.errf("%w: the import of serial %s is not for authenticator %s (serial %s)", store.ErrInvalid, im.Serial, a.ID, a.Serial)
	}
	return s.writeEnding(ctx, Scrub, act.Attempt, func(ctx context.Context, tx Tx) error {
		if err := s.lockSerial(ctx, tx, a.Serial); err != nil {
			return err
		}
		n, err := tx.Exec(ctx, s.q.importTakeExact, im.Serial, im.Secret.KeyID, im.Secret.Blob)
		if err != nil {
			return s.dbErr(err, "take the import of serial "+im.Serial)
		}
		if n != 1 {
			return s.errf("activate %s: the import of serial %s: %w (taken by another activation, or replaced)", a.ID, im.Serial, store.ErrNotFound)
		}
		if err := s.endAttempt(ctx, tx, act.Attempt); err != nil {
			return err
		}
		if err := s.insertElement(ctx, tx, a.ID, &act.Element); err != nil {
			return err
		}
		return s.applyChange(ctx, tx, ac)
	})
}

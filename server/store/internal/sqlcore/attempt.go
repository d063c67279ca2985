package sqlcore

import (
	"context"
	"math"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// Attempts (store.Attempts). A reservation reads its subject (the
// authenticator, or the import of a serial) before it counts the attempts
// in flight, in the write transaction that inserts it (the insert reads
// the subject and counts them itself, after the lock: attemptInsertAuth): SQLite's write
// transactions are serialised anyway, and PostgreSQL locks the subject's
// row (FOR UPDATE), so two reservations for one subject, on any replicas,
// never interleave; the writes that end an attempt with its outcome update
// that same row, so a reservation either sees their outcome or waits for
// it. Where the dialect has a Reserve statement (PostgreSQL's
// reserve_attempt function) the lock and the insert are that one
// statement, run in autocommit.
//
// Reservations and their releases need not reach the disk before they
// return (Lapse): a crash of the machine takes the checks they reserve
// with it, and a release lost in one leaves the reservation to lapse at
// its expiry. Failures are recorded durably (EndAttempt with a change).
//
// A backend whose database only one process writes (SQLite) keeps the
// attempts in flight in memory instead (Options.InFlight, see InFlight):
// a reservation is then a read, and its release no write at all.

// ReserveAttempt implements store.Attempts.
func (s *Store) ReserveAttempt(ctx context.Context, a store.Attempt, max int, now time.Time) error {
	if err := a.Check(); err != nil {
		return err
	}
	exp, err := s.col.Time(a.ExpiresAt)
	if err != nil {
		return err
	}
	if s.inFlight != nil {
		return s.reserveInMemory(ctx, a, max, now)
	}
	at := columns.ClampNanos(now)
	what := attemptWhat(&a)
	limit := int64(math.MaxInt64)
	if max >= 0 {
		limit = int64(max)
	}
	if s.q.attemptReserve != nil {
		return s.write(ctx, Lapse|Single, func(ctx context.Context, tx Tx) error {
			var ok bool
			if err := tx.QueryRow(ctx, s.q.attemptReserve, a.ID, a.AuthenticatorID, a.Serial, exp, at, limit).Scan(&ok); err != nil {
				return s.dbErr(err, "reserve an attempt against "+what)
			}
			if ok {
				return nil
			}
			return s.refused(ctx, tx, &a, at, max)
		})
	}
	lock, insert, subject := s.q.attemptAuth, s.q.attemptInsertAuth, []any{a.AuthenticatorID, string(domain.StateActive)}
	if a.Serial != "" {
		lock, insert, subject = s.q.attemptImport, s.q.attemptInsertImport, []any{a.Serial}
	}
	args := append(append([]any{a.ID, a.AuthenticatorID, a.Serial, exp}, subject...), a.AuthenticatorID, a.Serial, at, limit)
	return s.write(ctx, Lapse, func(ctx context.Context, tx Tx) error {
		// The subject's lock, then the insert, a statement of its own
		// that sees every reservation and failure committed before the
		// lock was granted; it needs no answer from the lock, so both
		// go out together where the backend can (Later).
		if err := s.execLater(ctx, tx, lock, s.wrapAs("reserve an attempt against ", what), subject[0]); err != nil {
			return err
		}
		n, err := tx.Exec(ctx, insert, args...)
		if err != nil || n == 1 {
			return s.dbErr(err, "attempt "+a.ID)
		}
		return s.refused(ctx, tx, &a, at, max)
	})
}

// refused returns the error of a reservation of a refused at time at (Unix
// nanoseconds) with limit max: why, as read in tx.
func (s *Store) refused(ctx context.Context, tx Tx, a *store.Attempt, at int64, max int) error {
	what := attemptWhat(a)
	failures, _, err := s.attemptSubject(ctx, tx, a)
	if err != nil {
		return s.dbErr(err, "reserve an attempt against "+what)
	}
	var inFlight int64
	if err := tx.QueryRow(ctx, s.q.attemptsInFlight, a.AuthenticatorID, a.Serial, at).Scan(&inFlight); err != nil {
		return s.dbErr(err, "count the attempts against "+what)
	}
	return s.errf("%s: %w (%d failures, %d attempts in flight, limit %d)", what, store.ErrExhausted, failures, inFlight, max)
}

// attemptWhat names the subject of a in errors.
func attemptWhat(a *store.Attempt) string {
	if a.Serial != "" {
		return "the import of serial " + a.Serial
	}
	return "authenticator " + a.AuthenticatorID
}

// attemptSubject reads the failures of a's subject, and whether it takes
// attempts (an authenticator must be active; an import takes them while it
// exists).
func (s *Store) attemptSubject(ctx context.Context, tx Tx, a *store.Attempt) (failures int64, active bool, err error) {
	if a.Serial != "" {
		err = tx.QueryRow(ctx, s.q.attemptImport, a.Serial).Scan(&failures)
		return failures, true, err
	}
	var state string
	err = tx.QueryRow(ctx, s.q.attemptAuth, a.AuthenticatorID).Scan(&state, &failures)
	return failures, state == string(domain.StateActive), err
}

// EndAttempt implements store.Attempts.
func (s *Store) EndAttempt(ctx context.Context, id string, c *domain.Change) error {
	var (
		ac *appliedChange
		f  = Lapse
	)
	if c != nil {
		var err error
		if ac, err = s.prepareChange(*c); err != nil {
			return err
		}
		f = scrubIf(c.WipeSecret || c.Remove)
	}
	if s.inFlight != nil && ac == nil {
		s.inFlight.end(id)
		return nil
	}
	if ac == nil {
		// One statement, which needs no transaction block of its own.
		f |= Single
	}
	return s.writeEnding(ctx, f, id, func(ctx context.Context, tx Tx) error {
		if err := s.endAttempt(ctx, tx, id); err != nil {
			return err
		}
		if ac == nil {
			return nil
		}
		return s.applyChange(ctx, tx, ac)
	})
}

// endAttempt deletes attempt id in tx (nothing when the attempts are held
// in memory: writeEnding ends it after the commit).
func (s *Store) endAttempt(ctx context.Context, tx Tx, id string) error {
	if id == "" || s.inFlight != nil {
		return nil
	}
	return s.execLater(ctx, tx, s.q.attemptDelete, s.wrapAs("end attempt ", id), id)
}

// FailImportAttempt implements store.Attempts.
func (s *Store) FailImportAttempt(ctx context.Context, id, serial string, events []domain.Event) (int, error) {
	var n int64
	err := s.writeEnding(ctx, 0, id, func(ctx context.Context, tx Tx) error {
		if err := s.endAttempt(ctx, tx, id); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, s.q.importFail, serial).Scan(&n); err != nil {
			return s.dbErr(err, "count a wrong activation code against the import of serial "+serial)
		}
		return s.appendAudit(ctx, tx, events)
	})
	return int(n), err
}

// SweepAttempts implements store.Attempts.
func (s *Store) SweepAttempts(ctx context.Context, now time.Time) (int, error) {
	if s.inFlight != nil {
		return s.inFlight.sweep(now), nil
	}
	return s.sweep(ctx, s.q.attemptsSweep, now, "sweep attempts")
}

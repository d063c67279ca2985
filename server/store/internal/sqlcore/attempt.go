package sqlcore

import (
	"context"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// Attempts (store.Attempts). A reservation reads its subject (the
// authenticator, or the import of a serial) before it counts the attempts
// in flight, in the write transaction that inserts it: SQLite's write
// transactions are serialised anyway, and PostgreSQL locks the subject's
// row (FOR UPDATE), so two reservations for one subject, on any replicas,
// never interleave; the writes that end an attempt with its outcome update
// that same row, so a reservation either sees their outcome or waits for
// it.
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
	return s.write(ctx, Lapse, func(ctx context.Context, tx Tx) error {
		var (
			failures int64
			ok       = true
			what     string
			err      error
		)
		if a.AuthenticatorID != "" {
			what = "authenticator " + a.AuthenticatorID
			var state string
			err = tx.QueryRow(ctx, s.q.attemptAuth, a.AuthenticatorID).Scan(&state, &failures)
			ok = state == string(domain.StateActive)
		} else {
			what = "the import of serial " + a.Serial
			err = tx.QueryRow(ctx, s.q.attemptImport, a.Serial).Scan(&failures)
		}
		if err != nil {
			return s.dbErr(err, "reserve an attempt against "+what)
		}
		var inFlight int64
		if err := tx.QueryRow(ctx, s.q.attemptsInFlight, a.AuthenticatorID, a.Serial, at).Scan(&inFlight); err != nil {
			return s.dbErr(err, "count the attempts against "+what)
		}
		if !ok || max >= 0 && failures+inFlight >= int64(max) {
			return s.errf("%s: %w (%d failures, %d attempts in flight, limit %d)", what, store.ErrExhausted, failures, inFlight, max)
		}
		_, err = tx.Exec(ctx, s.q.attemptInsert, a.ID, a.AuthenticatorID, a.Serial, exp)
		return s.dbErr(err, "attempt "+a.ID)
	})
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
	err := s.write(ctx, f, func(ctx context.Context, tx Tx) error {
		if err := s.endAttempt(ctx, tx, s.attemptInTx(id)); err != nil {
			return err
		}
		if ac == nil {
			return nil
		}
		return s.applyChange(ctx, tx, ac)
	})
	if err == nil {
		s.endInMemory(id)
	}
	return err
}

// endAttempt deletes attempt id in tx.
func (s *Store) endAttempt(ctx context.Context, tx Tx, id string) error {
	if id == "" {
		return nil
	}
	_, err := tx.Exec(ctx, s.q.attemptDelete, id)
	return s.dbErr(err, "end attempt "+id)
}

// FailImportAttempt implements store.Attempts.
func (s *Store) FailImportAttempt(ctx context.Context, id, serial string, events []domain.Event) (int, error) {
	var n int64
	err := s.write(ctx, 0, func(ctx context.Context, tx Tx) error {
		if err := s.endAttempt(ctx, tx, s.attemptInTx(id)); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, s.q.importFail, serial).Scan(&n); err != nil {
			return s.dbErr(err, "count a wrong activation code against the import of serial "+serial)
		}
		return s.appendAudit(ctx, tx, events)
	})
	if err == nil {
		s.endInMemory(id)
	}
	return int(n), err
}

// SweepAttempts implements store.Attempts.
func (s *Store) SweepAttempts(ctx context.Context, now time.Time) (int, error) {
	if s.inFlight != nil {
		return s.inFlight.sweep(now), nil
	}
	return s.sweep(ctx, s.q.attemptsSweep, now, "sweep attempts")
}

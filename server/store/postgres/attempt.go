package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// Attempts (store.Attempts). A reservation locks the row of its subject
// (the authenticator, or the import of a serial) with SELECT ... FOR UPDATE
// before it counts the attempts in flight, so two reservations for one
// subject, on any replicas, are serialised; the writes that end an attempt
// (recording a failure or a success) update that same row, so a
// reservation either sees their outcome or waits for it.

// ReserveAttempt implements store.Attempts.
func (s *Store) ReserveAttempt(ctx context.Context, a store.Attempt, max int, now time.Time) error {
	if err := a.Check(); err != nil {
		return err
	}
	exp, err := col.Time(a.ExpiresAt)
	if err != nil {
		return err
	}
	at := columns.ClampNanos(now)
	return s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var (
			failures int64
			ok       = true
			what     string
			err      error
		)
		if a.AuthenticatorID != "" {
			what = "authenticator " + a.AuthenticatorID
			var state string
			err = tx.QueryRow(ctx, `SELECT state, failures FROM authenticators WHERE id = $1 FOR UPDATE`, a.AuthenticatorID).Scan(&state, &failures)
			ok = state == string(domain.StateActive)
		} else {
			what = "the import of serial " + a.Serial
			err = tx.QueryRow(ctx, `SELECT failures FROM imports WHERE serial = $1 FOR UPDATE`, a.Serial).Scan(&failures)
		}
		if err != nil {
			return dbErr(err, "reserve an attempt against "+what)
		}
		var inFlight int64
		err = tx.QueryRow(ctx, `SELECT COUNT(*) FROM attempts
WHERE ((authenticator_id <> '' AND authenticator_id = $1) OR (serial <> '' AND serial = $2)) AND expires_at > $3`,
			a.AuthenticatorID, a.Serial, at).Scan(&inFlight)
		if err != nil {
			return dbErr(err, "count the attempts against "+what)
		}
		if !ok || max >= 0 && failures+inFlight >= int64(max) {
			return fmt.Errorf("postgres: %s: %w (%d failures, %d attempts in flight, limit %d)", what, store.ErrExhausted, failures, inFlight, max)
		}
		_, err = tx.Exec(ctx, `INSERT INTO attempts (id, authenticator_id, serial, expires_at) VALUES ($1, $2, $3, $4)`,
			a.ID, a.AuthenticatorID, a.Serial, exp)
		return dbErr(err, "attempt "+a.ID)
	})
}

// EndAttempt implements store.Attempts.
func (s *Store) EndAttempt(ctx context.Context, id string, c *domain.Change) error {
	var ac *appliedChange
	if c != nil {
		var err error
		if ac, err = s.prepareChange(*c); err != nil {
			return err
		}
	}
	return s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if ac != nil {
			if err := s.applyChange(ctx, tx, ac); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `DELETE FROM attempts WHERE id = $1`, id)
		return dbErr(err, "end attempt "+id)
	})
}

// FailImportAttempt implements store.Attempts.
func (s *Store) FailImportAttempt(ctx context.Context, id, serial string, events []domain.Event) (int, error) {
	var n int64
	err := s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE imports SET failures = failures + 1 WHERE serial = $1 RETURNING failures`, serial).Scan(&n)
		if err != nil {
			return dbErr(err, "count a wrong activation code against the import of serial "+serial)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM attempts WHERE id = $1`, id); err != nil {
			return dbErr(err, "end attempt "+id)
		}
		return s.appendAudit(ctx, tx, events)
	})
	return int(n), err
}

// SweepAttempts implements store.Attempts.
func (s *Store) SweepAttempts(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, `DELETE FROM attempts WHERE expires_at <= $1`, columns.ClampNanos(now))
	if err != nil {
		return 0, dbErr(err, "sweep attempts")
	}
	return int(n), nil
}

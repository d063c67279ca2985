package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// Attempts (store.Attempts). Every write runs on the one write connection
// inside BEGIN IMMEDIATE, so the count of attempts in flight and the insert
// of a new one cannot interleave with another reservation, in this process
// or another on the same file.

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
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var (
			failures int64
			ok       = true
			what     string
			err      error
		)
		if a.AuthenticatorID != "" {
			what = "authenticator " + a.AuthenticatorID
			var state string
			err = tx.QueryRowContext(ctx, `SELECT state, failures FROM authenticators WHERE id = ?`, a.AuthenticatorID).Scan(&state, &failures)
			ok = state == string(domain.StateActive)
		} else {
			what = "the import of serial " + a.Serial
			err = tx.QueryRowContext(ctx, `SELECT failures FROM imports WHERE serial = ?`, a.Serial).Scan(&failures)
		}
		if err != nil {
			return dbErr(err, "reserve an attempt against "+what)
		}
		var inFlight int64
		err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM attempts
WHERE ((authenticator_id <> '' AND authenticator_id = ?) OR (serial <> '' AND serial = ?)) AND expires_at > ?`,
			a.AuthenticatorID, a.Serial, at).Scan(&inFlight)
		if err != nil {
			return dbErr(err, "count the attempts against "+what)
		}
		if !ok || max >= 0 && failures+inFlight >= int64(max) {
			return fmt.Errorf("sqlite: %s: %w (%d failures, %d attempts in flight, limit %d)", what, store.ErrExhausted, failures, inFlight, max)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO attempts (id, authenticator_id, serial, expires_at) VALUES (?, ?, ?, ?)`,
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
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM attempts WHERE id = ?`, id); err != nil {
			return dbErr(err, "end attempt "+id)
		}
		if ac == nil {
			return nil
		}
		return s.applyChange(ctx, tx, ac)
	})
	if err == nil && c != nil && (c.WipeSecret || c.Remove) {
		s.scrub(ctx)
	}
	return err
}

// FailImportAttempt implements store.Attempts.
func (s *Store) FailImportAttempt(ctx context.Context, id, serial string, events []domain.Event) (int, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM attempts WHERE id = ?`, id); err != nil {
			return dbErr(err, "end attempt "+id)
		}
		err := tx.QueryRowContext(ctx, `UPDATE imports SET failures = failures + 1 WHERE serial = ? RETURNING failures`, serial).Scan(&n)
		if err != nil {
			return dbErr(err, "count a wrong activation code against the import of serial "+serial)
		}
		return s.appendAudit(ctx, tx, events)
	})
	return int(n), err
}

// SweepAttempts implements store.Attempts.
func (s *Store) SweepAttempts(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, `DELETE FROM attempts WHERE expires_at <= ?`, columns.ClampNanos(now))
	if err != nil {
		return 0, dbErr(err, "sweep attempts")
	}
	return int(n), nil
}

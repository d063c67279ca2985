package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// Sessions (store.Sessions). A session row names the authenticators that
// proved it in session_authenticators; the query that finds a session
// joins them and the identity, so a session whose identity is blocked or
// whose proof stopped being active is never returned, whatever wrote that
// change. The writes that change an authenticator's or identity's state
// also delete such sessions in the same transaction, so they stay ended
// when the state comes back (a suspension that expires).

// validSession is the condition a usable session meets at ? (now).
const validSession = `s.expires_at > ?
	AND EXISTS (SELECT 1 FROM identities i WHERE i.id = s.identity_id AND i.state = 'active')
	AND NOT EXISTS (SELECT 1 FROM session_authenticators sa JOIN authenticators a ON a.id = sa.authenticator_id
		WHERE sa.token_hash = s.token_hash AND a.state <> 'active')`

const sessionCols = `s.token_hash, s.id, s.identity_id, s.level, s.via, s.created_at, s.expires_at`

// PutSession implements store.Sessions.
func (s *Store) PutSession(ctx context.Context, se store.Session) error {
	if err := se.Check(); err != nil {
		return err
	}
	ts, err := col.Times(se.CreatedAt, se.ExpiresAt)
	if err != nil {
		return err
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := checkProofs(ctx, tx, &se); err != nil {
			return err
		}
		return insertSession(ctx, tx, &se, ts)
	})
}

// checkProofs returns nil when the identity of se and every authenticator
// that proved it are active, in tx.
func checkProofs(ctx context.Context, tx *sql.Tx, se *store.Session) error {
	var state string
	err := tx.QueryRowContext(ctx, `SELECT state FROM identities WHERE id = ?`, se.IdentityID).Scan(&state)
	if err != nil {
		return dbErr(err, "session of identity "+se.IdentityID)
	}
	if state != string(domain.IdentityActive) {
		return fmt.Errorf("sqlite: session of identity %s: %w: the identity is %s", se.IdentityID, store.ErrConflict, state)
	}
	for _, aid := range se.Authenticators {
		var owner, st string
		err := tx.QueryRowContext(ctx, `SELECT identity_id, state FROM authenticators WHERE id = ?`, aid).Scan(&owner, &st)
		switch {
		case err != nil:
			return dbErr(err, "session of identity "+se.IdentityID+": authenticator "+aid)
		case owner != se.IdentityID:
			return fmt.Errorf("sqlite: session of identity %s: %w: authenticator %s belongs to another identity", se.IdentityID, store.ErrInvalid, aid)
		case st != string(domain.StateActive):
			return fmt.Errorf("sqlite: session of identity %s: %w: authenticator %s is %s", se.IdentityID, store.ErrConflict, aid, st)
		}
	}
	return nil
}

// insertSession stores se (checked with checkProofs; ts are its created_at
// and expires_at) in tx.
func insertSession(ctx context.Context, tx *sql.Tx, se *store.Session, ts []any) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, id, identity_id, level, via, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`, se.TokenHash, se.ID, se.IdentityID, se.Level, se.Via(), ts[0], ts[1]); err != nil {
		return dbErr(err, "session of "+se.IdentityID)
	}
	for _, aid := range se.Authenticators {
		if _, err := tx.ExecContext(ctx, `INSERT INTO session_authenticators (token_hash, authenticator_id) VALUES (?, ?)`,
			se.TokenHash, aid); err != nil {
			return dbErr(err, "session of "+se.IdentityID+": authenticator "+aid)
		}
	}
	return nil
}

// endSessionsOf deletes the sessions authenticator aid proved, in tx.
func endSessionsOf(ctx context.Context, tx *sql.Tx, aid string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM sessions
WHERE token_hash IN (SELECT token_hash FROM session_authenticators WHERE authenticator_id = ?)`, aid)
	return dbErr(err, "end the sessions of authenticator "+aid)
}

// endIdentitySessions deletes the sessions of identity id, in tx.
func endIdentitySessions(ctx context.Context, tx *sql.Tx, id string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE identity_id = ?`, id)
	return dbErr(err, "end the sessions of identity "+id)
}

// Session implements store.Sessions.
func (s *Store) Session(ctx context.Context, tokenHash []byte, now time.Time) (store.Session, error) {
	db, err := s.reader()
	if err != nil {
		return store.Session{}, err
	}
	se, err := scanSession(db.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions s
WHERE s.token_hash = ? AND `+validSession, tokenHash, columns.ClampNanos(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, fmt.Errorf("sqlite: session: %w (unknown, expired, or its proof is not active)", store.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, dbErr(err, "session")
	}
	return se, nil
}

// ListSessions implements store.Sessions.
func (s *Store) ListSessions(ctx context.Context, identityID string, now time.Time) ([]store.Session, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions s
WHERE s.identity_id = ? AND `+validSession+` ORDER BY s.created_at, s.id`, identityID, columns.ClampNanos(now))
	if err != nil {
		return nil, dbErr(err, "sessions of "+identityID)
	}
	defer rows.Close()
	var out []store.Session
	for rows.Next() {
		se, err := scanSession(rows)
		if err != nil {
			return nil, dbErr(err, "sessions of "+identityID)
		}
		out = append(out, se)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "sessions of "+identityID)
	}
	return out, nil
}

func scanSession(sc scanner) (store.Session, error) {
	var (
		se      store.Session
		via     string
		created *int64
		expires int64
	)
	if err := sc.Scan(&se.TokenHash, &se.ID, &se.IdentityID, &se.Level, &via, &created, &expires); err != nil {
		return store.Session{}, err
	}
	if via != "" {
		se.Authenticators = strings.Split(via, domain.ViaSep)
	}
	se.CreatedAt = columns.FromNanos(created)
	se.ExpiresAt = time.Unix(0, expires).UTC()
	return se, nil
}

// EndSession implements store.Sessions.
func (s *Store) EndSession(ctx context.Context, identityID, id string) error {
	n, err := s.exec(ctx, `DELETE FROM sessions WHERE identity_id = ? AND id = ?`, identityID, id)
	if err != nil {
		return dbErr(err, "end session "+id)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: session %s of %s: %w", id, identityID, store.ErrNotFound)
	}
	return nil
}

// DeleteSession implements store.Sessions.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) error {
	_, err := s.exec(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash)
	return dbErr(err, "delete session")
}

// SweepSessions implements store.Sessions.
func (s *Store) SweepSessions(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, columns.ClampNanos(now))
	if err != nil {
		return 0, dbErr(err, "sweep sessions")
	}
	return int(n), nil
}

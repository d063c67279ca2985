package sqlcore

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// Sessions (store.Sessions). A session row names the authenticators that
// proved it in its own columns (proof_1, and proof_2 for a second factor,
// empty when there is none), so that a login writes one row and no B-tree of
// links. The query that finds a session reads the identity and the proofs
// by their primary keys, so a session whose identity is blocked or whose
// proof stopped being active (or is gone) is never returned, whatever
// wrote that change. The writes that take an authenticator out of the
// active state, or delete it, also delete its sessions in the same
// transaction (endSessionsOf, which finds them among the sessions of the
// authenticator's identity: sessions_identity), as blocking an identity
// deletes all of its sessions, so they stay ended when the state comes
// back (a suspension that expires).
//
// A login that writes a session first reads (PostgreSQL: share-locks) the
// identity and the proving authenticators it does not update
// (checkProofs; on SQLite the INSERT of the session checks the identity),
// and updates the others at the version it read them active. So a
// concurrent suspension, block or removal either commits first, and the
// login finds its proof not active (or its version moved), or waits for
// the login's locks (PostgreSQL: the share lock, or the row lock of the
// update; SQLite: the one write lock) and then deletes the new session in
// its own transaction: its DELETE runs after its UPDATE of the
// authenticator, which waited for the login to commit, and on PostgreSQL
// at READ COMMITTED each statement reads what was committed when it
// started.

// PutSession implements store.Sessions.
func (s *Store) PutSession(ctx context.Context, se store.Session) error {
	if err := se.Check(); err != nil {
		return err
	}
	ts, err := s.col.Times(se.CreatedAt, se.ExpiresAt)
	if err != nil {
		return err
	}
	return s.write(ctx, 0, func(ctx context.Context, tx Tx) error {
		if err := s.checkProofs(ctx, tx, &se); err != nil {
			return err
		}
		return s.insertSession(ctx, tx, &se, ts)
	})
}

// checkProofs returns nil when the identity of se and every authenticator
// that proved it are active, holding them (PostgreSQL: share locks) until
// the end of tx.
//
// The authenticators among updated are skipped: the transaction updates
// their records at the version it read them active (a versioned write
// that fails with store.ErrConflict when they changed).
//
// Where a write transaction holds the database's only write lock (no row
// locks: SQLite) and every proof is among updated (a login's), the
// identity is checked by the INSERT of the session instead
// (insertSession), one statement less.
func (s *Store) checkProofs(ctx context.Context, tx Tx, se *store.Session, updated ...string) error {
	if s.d.ForShare != "" || slices.ContainsFunc(se.Authenticators, func(aid string) bool { return !slices.Contains(updated, aid) }) {
		if err := s.checkIdentity(ctx, tx, se); err != nil {
			return err
		}
	}
	for _, aid := range se.Authenticators {
		if slices.Contains(updated, aid) {
			continue
		}
		err := s.queryLater(ctx, tx, s.q.proofAuth, func(r Row) error {
			var owner, st string
			err := r.Scan(&owner, &st)
			switch {
			case err != nil:
				return s.dbErr(err, "session of identity "+se.IdentityID+": authenticator "+aid)
			case owner != se.IdentityID:
				return s.errf("session of identity %s: %w: authenticator %s belongs to another identity", se.IdentityID, store.ErrInvalid, aid)
			case st != string(domain.StateActive):
				return s.errf("session of identity %s: %w: authenticator %s is %s", se.IdentityID, store.ErrConflict, aid, st)
			}
			return nil
		}, aid)
		if err != nil {
			return err
		}
	}
	return nil
}

// checkIdentity returns nil when the identity of se is active, holding it
// (PostgreSQL: a share lock) until the end of tx. The checks of
// checkProofs go out with the transaction's next statement where the
// backend can (Later): they need no statement of their own.
func (s *Store) checkIdentity(ctx context.Context, tx Tx, se *store.Session) error {
	return s.queryLater(ctx, tx, s.q.proofIdentity, func(r Row) error {
		var state string
		if err := r.Scan(&state); err != nil {
			return s.dbErr(err, "session of identity "+se.IdentityID)
		}
		if state != string(domain.IdentityActive) {
			return s.errf("session of identity %s: %w: the identity is %s", se.IdentityID, store.ErrConflict, state)
		}
		return nil
	}, se.IdentityID)
}

// insertSession stores se (checked with checkProofs; ts are its created_at
// and expires_at) in tx. Where checkProofs left the identity to it, the
// INSERT stores the session only while the identity is active.
func (s *Store) insertSession(ctx context.Context, tx Tx, se *store.Session, ts []any) error {
	p1, p2 := proofs(se)
	if s.d.ForShare != "" {
		return s.execLater(ctx, tx, s.q.sessionInsert, s.wrapAs("session of ", se.IdentityID), se.TokenHash, se.ID, se.IdentityID, se.Level, p1, p2, ts[0], ts[1])
	}
	n, err := tx.Exec(ctx, s.q.sessionInsertActive, se.TokenHash, se.ID, se.Level, p1, p2, ts[0], ts[1], se.IdentityID)
	if err != nil {
		return s.dbErr(err, "session of "+se.IdentityID)
	}
	if n == 0 {
		if err := s.checkIdentity(ctx, tx, se); err != nil {
			return err
		}
		return s.errf("session of identity %s: %w: the identity is no longer active", se.IdentityID, store.ErrConflict)
	}
	return nil
}

// proofs returns the proof_1 and proof_2 columns of se (checked: one or
// two authenticators).
func proofs(se *store.Session) (string, string) {
	if len(se.Authenticators) == 2 {
		return se.Authenticators[0], se.Authenticators[1]
	}
	return se.Authenticators[0], ""
}

// endSessionsOf deletes the sessions authenticator aid of identity
// identityID proved, in tx.
func (s *Store) endSessionsOf(ctx context.Context, tx Tx, identityID, aid string) error {
	return s.execLater(ctx, tx, s.q.sessionsEndOf, s.wrapAs("end the sessions of authenticator ", aid), identityID, aid, aid)
}

// Session implements store.Sessions.
func (s *Store) Session(ctx context.Context, tokenHash []byte, now time.Time) (store.Session, error) {
	var se store.Session
	err := s.read(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		se, err = scanSession(tx.QueryRow(ctx, s.q.sessionByToken, columns.NonNil(tokenHash), columns.ClampNanos(now)))
		return err
	})
	if errors.Is(err, ErrNoRows) {
		return store.Session{}, s.errf("session: %w (unknown, expired, or its proof is not active)", store.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, s.dbErr(err, "session")
	}
	return se, nil
}

// ListSessions implements store.Sessions.
func (s *Store) ListSessions(ctx context.Context, identityID string, now time.Time) ([]store.Session, error) {
	var out []store.Session
	err := s.read(ctx, func(ctx context.Context, tx Tx) error {
		rows, err := tx.Query(ctx, s.q.sessionsOfIdentity, identityID, columns.ClampNanos(now))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			se, err := scanSession(rows)
			if err != nil {
				return err
			}
			out = append(out, se)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.dbErr(err, "sessions of "+identityID)
	}
	return out, nil
}

func scanSession(sc Row) (store.Session, error) {
	var (
		se      store.Session
		p1, p2  string
		created *int64
		expires int64
	)
	if err := sc.Scan(&se.TokenHash, &se.ID, &se.IdentityID, &se.Level, &p1, &p2, &created, &expires); err != nil {
		return store.Session{}, err
	}
	se.Authenticators = []string{p1}
	if p2 != "" {
		se.Authenticators = append(se.Authenticators, p2)
	}
	se.CreatedAt = columns.FromNanos(created)
	se.ExpiresAt = time.Unix(0, expires).UTC()
	return se, nil
}

// EndSession implements store.Sessions.
func (s *Store) EndSession(ctx context.Context, identityID, id string) error {
	n, err := s.exec(ctx, 0, s.q.sessionEnd, identityID, id)
	if err != nil {
		return s.dbErr(err, "end session "+id)
	}
	if n == 0 {
		return s.errf("session %s of %s: %w", id, identityID, store.ErrNotFound)
	}
	return nil
}

// DeleteSession implements store.Sessions.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) error {
	_, err := s.exec(ctx, 0, s.q.sessionDelete, columns.NonNil(tokenHash))
	return s.dbErr(err, "delete session")
}

// SweepSessions implements store.Sessions.
func (s *Store) SweepSessions(ctx context.Context, now time.Time) (int, error) {
	return s.sweep(ctx, s.q.sessionsSweep, now, "sweep sessions")
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

const identityCols = `id, state, blocked_reason, blocked_at, blocked_by_kind, blocked_by_id, blocked_by_via, created_at, version`

// CreateIdentity implements store.Identities.
func (s *Store) CreateIdentity(ctx context.Context, c domain.IdentityChange, first ...store.NewAuthenticator) error {
	if err := store.CheckIdentityChange(&c); err != nil {
		return err
	}
	id := &c.Identity
	args, err := col.IdentityArgs(id)
	if err != nil {
		return err
	}
	auths := make([]*newAuth, len(first))
	for i := range first {
		f := &first[i]
		if f.Change.Authenticator.IdentityID != id.ID {
			return fmt.Errorf("sqlite: %w: create identity %s: authenticator %s belongs to identity %q", store.ErrInvalid,
				id.ID, f.Change.Authenticator.ID, f.Change.Authenticator.IdentityID)
		}
		if auths[i], err = s.prepareAuthenticator(f.Change, f.Element); err != nil {
			return err
		}
	}
	consumed := false
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		consumed = false
		_, err := tx.ExecContext(ctx, `INSERT INTO identities (`+identityCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		if err != nil {
			return dbErr(err, "create identity "+id.ID)
		}
		events := c.Events
		for _, n := range auths {
			took, err := s.insertAuthenticator(ctx, tx, n, -1)
			if err != nil {
				return err
			}
			consumed = consumed || took
			events = append(events[:len(events):len(events)], n.c.Events...)
		}
		return s.appendAudit(ctx, tx, events)
	})
	if err == nil && consumed {
		s.scrub(ctx)
	}
	return err
}

// Identity implements store.Identities.
func (s *Store) Identity(ctx context.Context, id string) (domain.Identity, error) {
	db, err := s.reader()
	if err != nil {
		return domain.Identity{}, err
	}
	row := db.QueryRowContext(ctx, `SELECT `+identityCols+` FROM identities WHERE id = ?`, id)
	v, err := scanIdentity(row)
	if err != nil {
		return domain.Identity{}, dbErr(err, "identity "+id)
	}
	return v, nil
}

// UpdateIdentity implements store.Identities.
func (s *Store) UpdateIdentity(ctx context.Context, c domain.IdentityChange) error {
	if err := store.CheckIdentityChange(&c); err != nil {
		return err
	}
	id := &c.Identity
	if id.Version < 2 {
		return fmt.Errorf("sqlite: %w: identity %s: an update needs version 2 or more, not %d", store.ErrInvalid, id.ID, id.Version)
	}
	ts, err := col.Times(id.BlockedAt)
	if err != nil {
		return err
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE identities SET state = ?, blocked_reason = ?, blocked_at = ?,
	blocked_by_kind = ?, blocked_by_id = ?, blocked_by_via = ?, version = ?
WHERE id = ? AND version = ?`,
			string(id.State), string(id.BlockedReason), ts[0],
			string(id.BlockedBy.Kind), id.BlockedBy.ID, id.BlockedBy.Via, int64(id.Version),
			id.ID, int64(id.Version-1))
		if err != nil {
			return dbErr(err, "update identity "+id.ID)
		}
		if err := versionCheck(ctx, tx, res, "identities", "identity", id.ID, id.Version-1); err != nil {
			return err
		}
		if id.State != domain.IdentityActive {
			if err := endIdentitySessions(ctx, tx, id.ID); err != nil {
				return err
			}
		}
		return s.appendAudit(ctx, tx, c.Events)
	})
}

// versionCheck turns an UPDATE ... WHERE id = ? AND version = ? that changed
// no row into ErrConflict (the record is at another version) or
// ErrNotFound.
func versionCheck(ctx context.Context, tx *sql.Tx, res sql.Result, table, what, id string, want uint64) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: %s %s: %w", what, id, err)
	}
	if n == 1 {
		return nil
	}
	var have int64
	err = tx.QueryRowContext(ctx, `SELECT version FROM `+table+` WHERE id = ?`, id).Scan(&have)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s %s: %w", what, id, store.ErrNotFound)
	}
	if err != nil {
		return dbErr(err, what+" "+id)
	}
	return fmt.Errorf("sqlite: %s %s: %w: stored at version %d, the change was made from version %d", what, id, store.ErrConflict, have, want)
}

func scanIdentity(sc scanner) (domain.Identity, error) {
	var r columns.IdentityRow
	if err := sc.Scan(r.Dest()...); err != nil {
		return domain.Identity{}, err
	}
	return col.Identity(&r)
}

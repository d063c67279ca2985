package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

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
			return fmt.Errorf("postgres: %w: create identity %s: authenticator %s belongs to identity %q", store.ErrInvalid,
				id.ID, f.Change.Authenticator.ID, f.Change.Authenticator.IdentityID)
		}
		if auths[i], err = s.prepareAuthenticator(f.Change, f.Element); err != nil {
			return err
		}
	}
	return s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO identities (`+identityCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, args...)
		if err != nil {
			return dbErr(err, "create identity "+id.ID)
		}
		events := c.Events
		for _, n := range auths {
			if err := s.insertAuthenticator(ctx, tx, n, -1); err != nil {
				return err
			}
			events = append(events[:len(events):len(events)], n.c.Events...)
		}
		// The events of the identity, then of each authenticator, in
		// order; the audit lock last.
		return s.appendAudit(ctx, tx, events)
	})
}

// Identity implements store.Identities.
func (s *Store) Identity(ctx context.Context, id string) (domain.Identity, error) {
	var v domain.Identity
	err := s.read(ctx, func(db dbtx) error {
		var err error
		v, err = scanIdentity(db.QueryRow(ctx, `SELECT `+identityCols+` FROM identities WHERE id = $1`, id))
		return err
	})
	if err != nil {
		return domain.Identity{}, dbErr(err, "identity "+id)
	}
	return v, nil
}

// UpdateIdentity implements store.Identities. The version check and the
// update are one statement (UPDATE ... WHERE version = $old), in the
// transaction that appends the events.
func (s *Store) UpdateIdentity(ctx context.Context, c domain.IdentityChange) error {
	if err := store.CheckIdentityChange(&c); err != nil {
		return err
	}
	id := &c.Identity
	if id.Version < 2 {
		return fmt.Errorf("postgres: %w: identity %s: an update needs version 2 or more, not %d", store.ErrInvalid, id.ID, id.Version)
	}
	ts, err := col.Times(id.BlockedAt)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE identities SET state = $1, blocked_reason = $2, blocked_at = $3,
	blocked_by_kind = $4, blocked_by_id = $5, blocked_by_via = $6, version = $7
WHERE id = $8 AND version = $9`,
			string(id.State), string(id.BlockedReason), ts[0],
			string(id.BlockedBy.Kind), id.BlockedBy.ID, id.BlockedBy.Via, int64(id.Version),
			id.ID, int64(id.Version-1))
		if err != nil {
			return dbErr(err, "update identity "+id.ID)
		}
		if tag.RowsAffected() != 1 {
			return missingOrConflict(ctx, tx, "identities", "identity", id.ID, id.Version-1)
		}
		if id.State != domain.IdentityActive {
			if err := endIdentitySessions(ctx, tx, id.ID); err != nil {
				return err
			}
		}
		return s.appendAudit(ctx, tx, c.Events)
	})
}

// missingOrConflict explains an UPDATE ... WHERE id = $ AND version = $
// that changed no row: an error wrapping store.ErrConflict (the record is
// at another version) or store.ErrNotFound.
func missingOrConflict(ctx context.Context, tx pgx.Tx, table, what, id string, want uint64) error {
	var have int64
	err := tx.QueryRow(ctx, `SELECT version FROM `+table+` WHERE id = $1`, id).Scan(&have)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: %s %s: %w", what, id, store.ErrNotFound)
	}
	if err != nil {
		return dbErr(err, what+" "+id)
	}
	return fmt.Errorf("postgres: %s %s: %w: stored at version %d, the change was made from version %d", what, id, store.ErrConflict, have, want)
}

func scanIdentity(sc scanner) (domain.Identity, error) {
	var r columns.IdentityRow
	if err := sc.Scan(r.Dest()...); err != nil {
		return domain.Identity{}, err
	}
	return col.Identity(&r)
}

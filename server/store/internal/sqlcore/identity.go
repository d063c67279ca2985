package sqlcore

import (
	"context"
	"errors"
	"fmt"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// CreateIdentity implements store.Identities.
func (s *Store) CreateIdentity(ctx context.Context, c domain.IdentityChange, first ...store.NewAuthenticator) error {
	if err := store.CheckIdentityChange(&c); err != nil {
		return err
	}
	id := &c.Identity
	args, err := s.col.IdentityArgs(id)
	if err != nil {
		return err
	}
	auths := make([]*newAuth, len(first))
	for i := range first {
		f := &first[i]
		if f.Change.Authenticator.IdentityID != id.ID {
			return s.errf("%w: create identity %s: authenticator %s belongs to identity %q", store.ErrInvalid,
				id.ID, f.Change.Authenticator.ID, f.Change.Authenticator.IdentityID)
		}
		if auths[i], err = s.prepareAuthenticator(f.Change, f.Element); err != nil {
			return err
		}
	}
	return s.write(ctx, scrubIf(consumesImport(auths...)), func(ctx context.Context, tx Tx) error {
		if _, err := tx.Exec(ctx, s.q.identityInsert, args...); err != nil {
			return s.dbErr(err, "create identity "+id.ID)
		}
		events := c.Events
		for _, n := range auths {
			if err := s.insertAuthenticator(ctx, tx, n, -1); err != nil {
				return err
			}
			events = append(events[:len(events):len(events)], n.c.Events...)
		}
		// The events of the identity, then of each authenticator, in
		// order; the audit head last.
		return s.appendAudit(ctx, tx, events)
	})
}

// Identity implements store.Identities.
func (s *Store) Identity(ctx context.Context, id string) (domain.Identity, error) {
	var v domain.Identity
	err := s.mirrored(ctx, id, func(h *heldIdentity) (err error) {
		v, _, err = s.heldIdentity(h)
		return err
	})
	if err == nil || errors.Is(err, ErrNoRows) {
		return v, s.dbErr(err, "identity "+id)
	}
	return readRow(ctx, s, "identity "+id, s.scanIdentity, s.q.identityByID, id)
}

// UpdateIdentity implements store.Identities. The version check and the
// update are one statement (UPDATE ... WHERE version = old), in the
// transaction that ends the identity's sessions when it is no longer
// active and appends the events.
func (s *Store) UpdateIdentity(ctx context.Context, c domain.IdentityChange) error {
	if err := store.CheckIdentityChange(&c); err != nil {
		return err
	}
	id := &c.Identity
	if id.Version < 2 {
		return s.errf("%w: identity %s: an update needs version 2 or more, not %d", store.ErrInvalid, id.ID, id.Version)
	}
	ts, err := s.col.Times(id.BlockedAt)
	if err != nil {
		return err
	}
	return s.write(ctx, 0, func(ctx context.Context, tx Tx) error {
		n, err := tx.Exec(ctx, s.q.identityUpdate,
			string(id.State), string(id.BlockedReason), ts[0],
			string(id.BlockedBy.Kind), id.BlockedBy.ID, id.BlockedBy.Via, int64(id.Version),
			id.ID, int64(id.Version-1))
		if err != nil {
			return s.dbErr(err, "update identity "+id.ID)
		}
		if n != 1 {
			return s.explainStale(ctx, tx, &staleRecord{version: s.q.identityVersion, what: "identity", id: id.ID, want: id.Version - 1})
		}
		if id.State != domain.IdentityActive {
			if _, err := tx.Exec(ctx, s.q.identitySessionsEnd, id.ID); err != nil {
				return s.dbErr(err, "end the sessions of identity "+id.ID)
			}
		}
		return s.appendAudit(ctx, tx, c.Events)
	})
}

// staleRecord is the error of a versioned write that changed no row: the
// write explains it with explainStale (once its transaction is rolled
// back, when it was checked after the statement was sent with others:
// Store.write).
type staleRecord struct {
	version *Stmt // selects the version of the record by ID
	what    string
	id      string
	want    uint64
	// fixed, when set, is what the write's WHERE clause also required
	// to stay as it is (the identity, kind and reference of an
	// authenticator): a record at the version wanted that changed no row
	// was a change of it, refused with store.ErrInvalid.
	fixed string
	// guarded marks a write that also required the record's OTP
	// watermark to be below step; version then selects the version and
	// the watermark (authenticator-guard). A record at the version wanted
	// whose watermark is at or above step refused a replayed step:
	// errGuard.
	guarded bool
	step    int64
}

func (e *staleRecord) Error() string {
	return fmt.Sprintf("%s %s: not at version %d", e.what, e.id, e.want)
}

// explainStale explains a versioned UPDATE (or DELETE) ... WHERE id = ?
// AND version = ? that changed no row: an error wrapping
// store.ErrConflict (the record is at another version, read with
// st.version), store.ErrNotFound, or store.ErrInvalid (st.fixed); or
// errGuard, for a guarded write refused by the OTP watermark alone.
func (s *Store) explainStale(ctx context.Context, tx Tx, st *staleRecord) error {
	var have, highest int64
	var err error
	if st.guarded {
		err = tx.QueryRow(ctx, st.version, st.id).Scan(&have, &highest)
	} else {
		err = tx.QueryRow(ctx, st.version, st.id).Scan(&have)
	}
	if errors.Is(err, ErrNoRows) {
		return s.errf("%s %s: %w", st.what, st.id, store.ErrNotFound)
	}
	if err != nil {
		return s.dbErr(err, st.what+" "+st.id)
	}
	if st.guarded && have >= 0 && uint64(have) == st.want && highest >= st.step {
		return errGuard
	}
	if st.fixed != "" && have >= 0 && uint64(have) == st.want {
		return s.errf("%w: %s %s: %s", store.ErrInvalid, st.what, st.id, st.fixed)
	}
	return s.errf("%s %s: %w: stored at version %d, the change was made from version %d", st.what, st.id, store.ErrConflict, have, st.want)
}

func (s *Store) scanIdentity(sc Row) (domain.Identity, error) {
	var r columns.IdentityRow
	if err := sc.Scan(r.Dest()...); err != nil {
		return domain.Identity{}, err
	}
	return s.col.Identity(&r)
}

// scrubIf returns Scrub when removed is true.
func scrubIf(removed bool) Flags {
	if removed {
		return Scrub
	}
	return 0
}

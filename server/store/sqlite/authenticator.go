package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

const authCols = `id, identity_id, kind, state, serial, credential_id, label, failures, suspensions,
	created_at, activated_at, last_used_at, suspended_at, suspend_reason, blocked_at, block_reason, version`

func isCodeDevice(k device.Kind) bool {
	return k == device.KindCodeDisplay || k == device.KindAudioCodeReader
}

// CreateAuthenticator implements store.Authenticators.
func (s *Store) CreateAuthenticator(ctx context.Context, c domain.Change, el store.Element) error {
	return s.createAuthenticator(ctx, c, el, -1)
}

// CreateAuthenticatorAt implements store.Authenticators.
func (s *Store) CreateAuthenticatorAt(ctx context.Context, c domain.Change, el store.Element, version uint64) error {
	v, err := col.U63(version, "authenticator set version")
	if err != nil {
		return err
	}
	return s.createAuthenticator(ctx, c, el, v)
}

// createAuthenticator stores a new authenticator, raising the version of
// its identity's authenticator set from version (-1: from any version).
func (s *Store) createAuthenticator(ctx context.Context, c domain.Change, el store.Element, version int64) error {
	n, err := s.prepareAuthenticator(c, el)
	if err != nil {
		return err
	}
	consumed := false
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if consumed, err = s.insertAuthenticator(ctx, tx, n, version); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, n.c.Events)
	})
	if err == nil && consumed {
		s.scrub(ctx)
	}
	return err
}

// newAuth is a new authenticator checked and converted to column values by
// prepareAuthenticator, ready for insertAuthenticator.
type newAuth struct {
	c    domain.Change
	el   store.Element
	args []any
	now  any
}

// prepareAuthenticator checks the change c that creates an authenticator
// with element el and computes its column values, outside the
// transaction.
func (s *Store) prepareAuthenticator(c domain.Change, el store.Element) (*newAuth, error) {
	args, err := col.NewAuthenticator(&c, &el)
	if err != nil {
		return nil, err
	}
	now, err := col.Time(s.now())
	if err != nil {
		return nil, err
	}
	return &newAuth{c: c, el: el, args: args, now: now}, nil
}

// insertAuthenticator stores the prepared authenticator n in tx: it raises
// the identity's authenticator set version from version (-1: any), checks
// the tombstones of a code device serial, registers the credential ID,
// inserts the record and its element, and consumes a waiting import; the
// caller appends n.c.Events. It reports whether an import was consumed (its
// secret then needs scrubbing after the commit).
func (s *Store) insertAuthenticator(ctx context.Context, tx *sql.Tx, n *newAuth, version int64) (consumed bool, err error) {
	a := &n.c.Authenticator
	if err := bumpSetVersion(ctx, tx, a, version); err != nil {
		return false, err
	}
	if isCodeDevice(a.Kind) {
		var k int
		err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tombstones
WHERE serial = ? AND kind IN ('code-display', 'audio-code-reader')`, a.Serial).Scan(&k)
		if err != nil {
			return false, dbErr(err, "check tombstones")
		}
		if k > 0 {
			return false, fmt.Errorf("sqlite: add authenticator %s: %w: serial %s was permanently blocked (revoked)", a.ID, store.ErrDuplicate, a.Serial)
		}
	}
	if a.CredentialID != "" {
		_, err := tx.ExecContext(ctx, `INSERT INTO credential_ids (credential_id, authenticator_id, registered_at) VALUES (?, ?, ?)`,
			a.CredentialID, a.ID, n.now)
		if err != nil {
			return false, dbErr(err, "add authenticator "+a.ID+": credential ID "+a.CredentialID+" (credential IDs are unique forever)")
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO authenticators (`+authCols+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, n.args...); err != nil {
		return false, dbErr(err, "add authenticator "+a.ID+explainAuthUnique(err, a))
	}
	if columns.PendingCodeDevice(a, &n.el) {
		// It proves possession first (ActivateCodeDevice).
		return false, nil
	}
	if err := insertElement(ctx, tx, a.ID, &n.el); err != nil {
		return false, err
	}
	if isCodeDevice(a.Kind) {
		res, err := tx.ExecContext(ctx, `DELETE FROM imports WHERE serial = ?`, a.Serial)
		if err != nil {
			return false, dbErr(err, "consume the import of serial "+a.Serial)
		}
		k, _ := res.RowsAffected()
		consumed = k > 0
	}
	return consumed, nil
}

// bumpSetVersion raises the authenticator set version of the identity of
// the new authenticator a by one if it is version (any version when
// version < 0). It returns an error wrapping store.ErrNotFound (no such
// identity) or store.ErrConflict (the version moved).
func bumpSetVersion(ctx context.Context, tx *sql.Tx, a *domain.Authenticator, version int64) error {
	identityID := a.IdentityID
	what := "add authenticator " + a.ID + ": identity " + identityID
	var have int64
	err := tx.QueryRowContext(ctx, `UPDATE identities SET authenticators_version = authenticators_version + 1
WHERE id = ? AND (? < 0 OR authenticators_version = ?)
RETURNING authenticators_version`, identityID, version, version).Scan(&have)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return dbErr(err, what)
	}
	err = tx.QueryRowContext(ctx, `SELECT authenticators_version FROM identities WHERE id = ?`, identityID).Scan(&have)
	if err != nil {
		return dbErr(err, what) // sql.ErrNoRows: store.ErrNotFound
	}
	return fmt.Errorf("sqlite: %s: %w: its authenticator set is at version %d, the add was checked at version %d",
		what, store.ErrConflict, have, version)
}

// AuthenticatorSet implements store.Authenticators.
func (s *Store) AuthenticatorSet(ctx context.Context, identityID string) (store.AuthenticatorSet, error) {
	db, err := s.reader()
	if err != nil {
		return store.AuthenticatorSet{}, err
	}
	// The version first: the list read after it is at least as new, so a
	// create the list misses is one the version guard will see.
	var v int64
	err = db.QueryRowContext(ctx, `SELECT authenticators_version FROM identities WHERE id = ?`, identityID).Scan(&v)
	if err != nil {
		return store.AuthenticatorSet{}, dbErr(err, "identity "+identityID)
	}
	ver, err := col.FromI64(v, "authenticator set version")
	if err != nil {
		return store.AuthenticatorSet{}, err
	}
	list, err := s.ListAuthenticators(ctx, identityID)
	if err != nil {
		return store.AuthenticatorSet{}, err
	}
	return store.AuthenticatorSet{Version: ver, Authenticators: list}, nil
}

// explainAuthUnique names the unique value an INSERT into authenticators
// collided with.
func explainAuthUnique(err error, a *domain.Authenticator) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "authenticators.id"):
		return ": the ID is taken"
	case strings.Contains(msg, "authenticators.serial"):
		return ": serial " + a.Serial + " is in use by another authenticator that is neither pending nor blocked"
	case strings.Contains(msg, "authenticators.credential_id"):
		return ": credential ID " + a.CredentialID + " is in use"
	}
	return ""
}

// Authenticator implements store.Authenticators.
func (s *Store) Authenticator(ctx context.Context, id string) (domain.Authenticator, error) {
	db, err := s.reader()
	if err != nil {
		return domain.Authenticator{}, err
	}
	a, err := scanAuthenticator(db.QueryRowContext(ctx, `SELECT `+authCols+` FROM authenticators WHERE id = ?`, id))
	if err != nil {
		return domain.Authenticator{}, dbErr(err, "authenticator "+id)
	}
	return a, nil
}

// ListAuthenticators implements store.Authenticators.
func (s *Store) ListAuthenticators(ctx context.Context, identityID string) ([]domain.Authenticator, error) {
	return s.queryAuthenticators(ctx, "authenticators of "+identityID,
		`SELECT `+authCols+` FROM authenticators WHERE identity_id = ? ORDER BY created_at, id`, identityID)
}

// FindAuthenticators implements store.Authenticators.
func (s *Store) FindAuthenticators(ctx context.Context, ref domain.Ref) ([]domain.Authenticator, error) {
	if ref.Serial == "" && ref.CredentialID == "" {
		return nil, nil
	}
	return s.queryAuthenticators(ctx, "find authenticators",
		`SELECT `+authCols+` FROM authenticators
WHERE (serial <> '' AND serial = ?) OR (credential_id <> '' AND credential_id = ?)
ORDER BY created_at, id`, ref.Serial, ref.CredentialID)
}

func (s *Store) queryAuthenticators(ctx context.Context, what, query string, args ...any) ([]domain.Authenticator, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbErr(err, what)
	}
	defer rows.Close()
	var out []domain.Authenticator
	for rows.Next() {
		a, err := scanAuthenticator(rows)
		if err != nil {
			return nil, dbErr(err, what)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, what)
	}
	return out, nil
}

// UpdateAuthenticator implements store.Authenticators.
func (s *Store) UpdateAuthenticator(ctx context.Context, a domain.Authenticator) error {
	return s.ApplyChange(ctx, domain.Change{Authenticator: a})
}

// ApplyChange implements store.Authenticators.
func (s *Store) ApplyChange(ctx context.Context, c domain.Change) error {
	ac, err := s.prepareChange(c)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error { return s.applyChange(ctx, tx, ac) })
	if err == nil && (c.WipeSecret || c.Remove) {
		s.scrub(ctx)
	}
	return err
}

// appliedChange is a change checked and converted to column values by
// prepareChange, ready for applyChange.
type appliedChange struct {
	c       domain.Change
	ts      []any // activated_at, last_used_at, suspended_at, blocked_at
	tomb    any   // the tombstone's blocked_at
	wipedAt any
}

// prepareChange checks c and computes its column values, outside the
// transaction.
func (s *Store) prepareChange(c domain.Change) (*appliedChange, error) {
	ts, err := col.Change(&c)
	if err != nil {
		return nil, err
	}
	ac := &appliedChange{c: c, ts: ts}
	if t := c.Tombstone; t != nil {
		if ac.tomb, err = col.Time(t.BlockedAt); err != nil {
			return nil, err
		}
	}
	if ac.wipedAt, err = col.Time(s.now()); err != nil {
		return nil, err
	}
	return ac, nil
}

// applyChange applies the prepared change ac in tx (see ApplyChange).
func (s *Store) applyChange(ctx context.Context, tx *sql.Tx, ac *appliedChange) error {
	c := &ac.c
	a := &c.Authenticator
	from := int64(a.Version - 1)
	if c.Remove {
		// Before the delete, whose cascade would drop the links.
		if err := endSessionsOf(ctx, tx, a.ID); err != nil {
			return err
		}
	}
	var row *sql.Row
	if c.Remove {
		row = tx.QueryRowContext(ctx, `DELETE FROM authenticators WHERE id = ? AND version = ?
RETURNING identity_id, kind, serial, credential_id`, a.ID, from)
	} else {
		ts := ac.ts
		row = tx.QueryRowContext(ctx, `UPDATE authenticators SET state = ?, label = ?, failures = ?, suspensions = ?,
	activated_at = ?, last_used_at = ?, suspended_at = ?, suspend_reason = ?, blocked_at = ?, block_reason = ?, version = ?
WHERE id = ? AND version = ?
RETURNING identity_id, kind, serial, credential_id`,
			string(a.State), a.Label, a.Failures, a.Suspensions,
			ts[0], ts[1], ts[2], string(a.SuspendReason), ts[3], string(a.BlockReason), int64(a.Version),
			a.ID, from)
	}
	var identityID, kind, serial, cred string
	err := row.Scan(&identityID, &kind, &serial, &cred)
	if errors.Is(err, sql.ErrNoRows) {
		return missingOrConflict(ctx, tx, a.ID, a.Version-1)
	}
	if err != nil {
		return dbErr(err, "update authenticator "+a.ID)
	}
	if identityID != a.IdentityID || kind != string(a.Kind) || serial != a.Serial || cred != a.CredentialID {
		return fmt.Errorf("sqlite: %w: authenticator %s: the identity, kind and reference cannot change", store.ErrInvalid, a.ID)
	}
	if !c.Remove && a.State != domain.StateActive {
		// After the update, which holds the record: a login writing a
		// session this authenticator proves has either committed (its
		// session is deleted here) or will find it not active.
		if err := endSessionsOf(ctx, tx, a.ID); err != nil {
			return err
		}
	}
	if c.WipeSecret && !c.Remove {
		if err := wipeElement(ctx, tx, a.Kind, a.ID, ac.wipedAt); err != nil {
			return err
		}
	}
	if t := c.Tombstone; t != nil {
		if err := insertTombstone(ctx, tx, t, ac.tomb); err != nil {
			return err
		}
	}
	return s.appendAudit(ctx, tx, c.Events)
}

func missingOrConflict(ctx context.Context, tx *sql.Tx, id string, want uint64) error {
	var have int64
	err := tx.QueryRowContext(ctx, `SELECT version FROM authenticators WHERE id = ?`, id).Scan(&have)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: authenticator %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return dbErr(err, "authenticator "+id)
	}
	return fmt.Errorf("sqlite: authenticator %s: %w: stored at version %d, the change was made from version %d", id, store.ErrConflict, have, want)
}

func scanAuthenticator(sc scanner) (domain.Authenticator, error) {
	var r columns.AuthenticatorRow
	if err := sc.Scan(r.Dest()...); err != nil {
		return domain.Authenticator{}, err
	}
	return col.Authenticator(&r)
}

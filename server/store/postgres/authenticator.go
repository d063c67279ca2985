package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

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

// lockSerial takes a transaction advisory lock on a code device serial.
// The add of a code device (which checks that no tombstone revokes the
// serial) and the permanent block of one (which writes that tombstone)
// both take it first, so that neither misses the other's commit.
func lockSerial(ctx context.Context, tx pgx.Tx, serial string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('authbench serial ' || $1, 0))`, serial)
	return dbErr(err, "lock serial "+serial)
}

// CreateAuthenticator implements store.Authenticators.
func (s *Store) CreateAuthenticator(ctx context.Context, c domain.Change, el store.Element) error {
	return s.createAuthenticator(ctx, c, el, -1)
}

// CreateAuthenticatorAt implements store.Authenticators. The guard is the
// conditional UPDATE of identities.authenticators_version (from version to
// version+1) in the transaction that inserts the authenticator; the row
// lock it takes orders concurrent adds for one identity, and of two adds
// from one version the second finds the version moved.
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
	return s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := s.insertAuthenticator(ctx, tx, n, version); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, n.c.Events) // the audit lock last
	})
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

// insertAuthenticator stores the prepared authenticator n in tx: it locks
// a code device serial, raises the identity's authenticator set version
// from version (-1: any), checks the tombstones of the serial, registers
// the credential ID, inserts the record and its element, and consumes a
// waiting import. The caller appends n.c.Events afterwards, taking the
// lock of the identity's audit chain head last (see appendAudit).
func (s *Store) insertAuthenticator(ctx context.Context, tx pgx.Tx, n *newAuth, version int64) error {
	a := &n.c.Authenticator
	if isCodeDevice(a.Kind) {
		if err := lockSerial(ctx, tx, a.Serial); err != nil {
			return err
		}
	}
	if err := bumpSetVersion(ctx, tx, a, version); err != nil {
		return err
	}
	if isCodeDevice(a.Kind) {
		var k int
		err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM tombstones
WHERE serial = $1 AND kind IN ('code-display', 'audio-code-reader')`, a.Serial).Scan(&k)
		if err != nil {
			return dbErr(err, "check tombstones")
		}
		if k > 0 {
			return fmt.Errorf("postgres: add authenticator %s: %w: serial %s was permanently blocked (revoked)", a.ID, store.ErrDuplicate, a.Serial)
		}
	}
	if a.CredentialID != "" {
		_, err := tx.Exec(ctx, `INSERT INTO credential_ids (credential_id, authenticator_id, registered_at) VALUES ($1, $2, $3)`,
			a.CredentialID, a.ID, n.now)
		if err != nil {
			return dbErr(err, "add authenticator "+a.ID+": credential ID "+a.CredentialID+" (credential IDs are unique forever)")
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO authenticators (`+authCols+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`, n.args...); err != nil {
		return dbErr(err, "add authenticator "+a.ID+explainAuthUnique(err, a))
	}
	if columns.PendingCodeDevice(a, &n.el) {
		// It proves possession first (ActivateCodeDevice).
		return nil
	}
	if err := insertElement(ctx, tx, a.ID, &n.el); err != nil {
		return err
	}
	if isCodeDevice(a.Kind) {
		if _, err := tx.Exec(ctx, `DELETE FROM imports WHERE serial = $1`, a.Serial); err != nil {
			return dbErr(err, "consume the import of serial "+a.Serial)
		}
	}
	return nil
}

// bumpSetVersion raises the authenticator set version of the identity of
// the new authenticator a by one if it is version (any version when
// version < 0), in one conditional UPDATE. It returns an error wrapping
// store.ErrNotFound (no such identity) or store.ErrConflict (the version
// moved).
func bumpSetVersion(ctx context.Context, tx pgx.Tx, a *domain.Authenticator, version int64) error {
	identityID := a.IdentityID
	what := "add authenticator " + a.ID + ": identity " + identityID
	tag, err := tx.Exec(ctx, `UPDATE identities SET authenticators_version = authenticators_version + 1
WHERE id = $1 AND ($2::bigint < 0 OR authenticators_version = $2)`, identityID, version)
	if err != nil {
		return dbErr(err, what)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var have int64
	err = tx.QueryRow(ctx, `SELECT authenticators_version FROM identities WHERE id = $1`, identityID).Scan(&have)
	if err != nil {
		return dbErr(err, what) // pgx.ErrNoRows: store.ErrNotFound
	}
	return fmt.Errorf("postgres: %s: %w: its authenticator set is at version %d, the add was checked at version %d",
		what, store.ErrConflict, have, version)
}

// AuthenticatorSet implements store.Authenticators.
func (s *Store) AuthenticatorSet(ctx context.Context, identityID string) (store.AuthenticatorSet, error) {
	var set store.AuthenticatorSet
	err := s.read(ctx, func(db dbtx) error {
		// The version first: the list read after it is at least as new,
		// so a create the list misses is one the version guard will see.
		var v int64
		if err := db.QueryRow(ctx, `SELECT authenticators_version FROM identities WHERE id = $1`, identityID).Scan(&v); err != nil {
			return err
		}
		ver, err := col.FromI64(v, "authenticator set version")
		if err != nil {
			return err
		}
		list, err := queryAuthenticators(ctx, db, `SELECT `+authCols+` FROM authenticators WHERE identity_id = $1 ORDER BY created_at, id`, identityID)
		if err != nil {
			return err
		}
		set = store.AuthenticatorSet{Version: ver, Authenticators: list}
		return nil
	})
	if err != nil {
		return store.AuthenticatorSet{}, dbErr(err, "identity "+identityID)
	}
	return set, nil
}

// explainAuthUnique names the unique value an INSERT into authenticators
// collided with.
func explainAuthUnique(err error, a *domain.Authenticator) string {
	switch constraint(err) {
	case "authenticators_pkey":
		return ": the ID is taken"
	case "authenticators_serial_in_use":
		return ": serial " + a.Serial + " is in use by another authenticator that is neither pending nor blocked"
	case "authenticators_credential":
		return ": credential ID " + a.CredentialID + " is in use"
	}
	return ""
}

// Authenticator implements store.Authenticators.
func (s *Store) Authenticator(ctx context.Context, id string) (domain.Authenticator, error) {
	var a domain.Authenticator
	err := s.read(ctx, func(db dbtx) error {
		var err error
		a, err = scanAuthenticator(db.QueryRow(ctx, `SELECT `+authCols+` FROM authenticators WHERE id = $1`, id))
		return err
	})
	if err != nil {
		return domain.Authenticator{}, dbErr(err, "authenticator "+id)
	}
	return a, nil
}

// ListAuthenticators implements store.Authenticators.
func (s *Store) ListAuthenticators(ctx context.Context, identityID string) ([]domain.Authenticator, error) {
	return s.queryAuthenticators(ctx, "authenticators of "+identityID,
		`SELECT `+authCols+` FROM authenticators WHERE identity_id = $1 ORDER BY created_at, id`, identityID)
}

// FindAuthenticators implements store.Authenticators.
func (s *Store) FindAuthenticators(ctx context.Context, ref domain.Ref) ([]domain.Authenticator, error) {
	if ref.Serial == "" && ref.CredentialID == "" {
		return nil, nil
	}
	return s.queryAuthenticators(ctx, "find authenticators",
		`SELECT `+authCols+` FROM authenticators
WHERE (serial <> '' AND serial = $1) OR (credential_id <> '' AND credential_id = $2)
ORDER BY created_at, id`, ref.Serial, ref.CredentialID)
}

func (s *Store) queryAuthenticators(ctx context.Context, what, query string, args ...any) ([]domain.Authenticator, error) {
	var out []domain.Authenticator
	err := s.read(ctx, func(db dbtx) error {
		var err error
		out, err = queryAuthenticators(ctx, db, query, args...)
		return err
	})
	if err != nil {
		return nil, dbErr(err, what)
	}
	return out, nil
}

func queryAuthenticators(ctx context.Context, db dbtx, query string, args ...any) ([]domain.Authenticator, error) {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Authenticator
	for rows.Next() {
		a, err := scanAuthenticator(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// UpdateAuthenticator implements store.Authenticators.
func (s *Store) UpdateAuthenticator(ctx context.Context, a domain.Authenticator) error {
	return s.ApplyChange(ctx, domain.Change{Authenticator: a})
}

// ApplyChange implements store.Authenticators. The version check is the
// UPDATE (or DELETE) ... WHERE version = $old itself; the wipe, the
// tombstone, the end of the sessions the authenticator proved and the audit
// events follow in the same transaction.
func (s *Store) ApplyChange(ctx context.Context, c domain.Change) error {
	ac, err := s.prepareChange(c)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error { return s.applyChange(ctx, tx, ac) })
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
func (s *Store) applyChange(ctx context.Context, tx pgx.Tx, ac *appliedChange) error {
	c := &ac.c
	a := &c.Authenticator
	from := int64(a.Version - 1)
	if t := c.Tombstone; t != nil && t.Serial != "" && isCodeDevice(t.Kind) {
		if err := lockSerial(ctx, tx, t.Serial); err != nil {
			return err
		}
	}
	if c.Remove {
		// Before the delete, whose cascade would drop the links.
		if err := endSessionsOf(ctx, tx, a.ID); err != nil {
			return err
		}
	}
	var row pgx.Row
	if c.Remove {
		row = tx.QueryRow(ctx, `DELETE FROM authenticators WHERE id = $1 AND version = $2
RETURNING identity_id, kind, serial, credential_id`, a.ID, from)
	} else {
		ts := ac.ts
		row = tx.QueryRow(ctx, `UPDATE authenticators SET state = $1, label = $2, failures = $3, suspensions = $4,
	activated_at = $5, last_used_at = $6, suspended_at = $7, suspend_reason = $8, blocked_at = $9, block_reason = $10, version = $11
WHERE id = $12 AND version = $13
RETURNING identity_id, kind, serial, credential_id`,
			string(a.State), a.Label, int64(a.Failures), int64(a.Suspensions),
			ts[0], ts[1], ts[2], string(a.SuspendReason), ts[3], string(a.BlockReason), int64(a.Version),
			a.ID, from)
	}
	var identityID, kind, serial, cred string
	err := row.Scan(&identityID, &kind, &serial, &cred)
	if errors.Is(err, pgx.ErrNoRows) {
		return missingOrConflict(ctx, tx, "authenticators", "authenticator", a.ID, a.Version-1)
	}
	if err != nil {
		return dbErr(err, "update authenticator "+a.ID)
	}
	if identityID != a.IdentityID || kind != string(a.Kind) || serial != a.Serial || cred != a.CredentialID {
		return fmt.Errorf("postgres: %w: authenticator %s: the identity, kind and reference cannot change", store.ErrInvalid, a.ID)
	}
	if !c.Remove && a.State != domain.StateActive {
		// After the update, which locks the record: a login that is
		// writing a session this authenticator proves holds a share lock
		// on it (checkProofs), so it has either committed, and its
		// session is deleted here, or it will find the record not active.
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

func scanAuthenticator(sc scanner) (domain.Authenticator, error) {
	var r columns.AuthenticatorRow
	if err := sc.Scan(r.Dest()...); err != nil {
		return domain.Authenticator{}, err
	}
	return col.Authenticator(&r)
}

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// Tombstones.

const tombCols = `authenticator_id, identity_id, kind, serial, credential_id, reason, blocked_at, by_kind, by_id, by_via`

func insertTombstone(ctx context.Context, tx *sql.Tx, t *domain.Tombstone, blockedAt any) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO tombstones (`+tombCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.AuthenticatorID, t.IdentityID, string(t.Kind), t.Serial, t.CredentialID, string(t.Reason), blockedAt,
		string(t.By.Kind), t.By.ID, t.By.Via)
	return dbErr(err, "tombstone of "+t.AuthenticatorID)
}

// PutTombstone implements store.Tombstones.
func (s *Store) PutTombstone(ctx context.Context, t domain.Tombstone) error {
	if t.AuthenticatorID == "" || t.IdentityID == "" || !t.Kind.Valid() {
		return fmt.Errorf("sqlite: %w: a tombstone needs an authenticator, an identity and a kind", store.ErrInvalid)
	}
	at, err := col.Time(t.BlockedAt)
	if err != nil {
		return err
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error { return insertTombstone(ctx, tx, &t, at) })
}

// FindTombstones implements store.Tombstones.
func (s *Store) FindTombstones(ctx context.Context, ref domain.Ref) ([]domain.Tombstone, error) {
	if ref.Serial == "" && ref.CredentialID == "" {
		return nil, nil
	}
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT `+tombCols+` FROM tombstones
WHERE (serial <> '' AND serial = ?) OR (credential_id <> '' AND credential_id = ?)
ORDER BY blocked_at, authenticator_id`, ref.Serial, ref.CredentialID)
	if err != nil {
		return nil, dbErr(err, "find tombstones")
	}
	defer rows.Close()
	var out []domain.Tombstone
	for rows.Next() {
		var (
			t                   domain.Tombstone
			kind, reason        string
			byKind, byID, byVia string
			at                  *int64
		)
		if err := rows.Scan(&t.AuthenticatorID, &t.IdentityID, &kind, &t.Serial, &t.CredentialID, &reason, &at,
			&byKind, &byID, &byVia); err != nil {
			return nil, dbErr(err, "find tombstones")
		}
		t.Kind = device.Kind(kind)
		if !t.Kind.Valid() {
			return nil, fmt.Errorf("sqlite: %w: tombstone of %s has unknown kind %q", store.ErrInvalid, t.AuthenticatorID, kind)
		}
		t.Reason = domain.Reason(reason)
		t.BlockedAt = columns.FromNanos(at)
		t.By = domain.Actor{Kind: domain.ActorKind(byKind), ID: byID, Via: byVia}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "find tombstones")
	}
	return out, nil
}

// Imports.

// PutImport implements store.Imports.
func (s *Store) PutImport(ctx context.Context, im store.Import) error {
	if err := im.Check(); err != nil {
		return err
	}
	at, err := col.Time(im.ImportedAt)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO imports (serial, secret, key_id, digits, period_s, algorithm, imported_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`, im.Serial, im.Secret.Blob, im.Secret.KeyID, im.Digits, int64(im.Period/time.Second),
		int64(im.Algorithm), at)
	return dbErr(err, "import of serial "+im.Serial)
}

const importCols = `serial, secret, key_id, digits, period_s, algorithm, imported_at, failures`

// ReplaceImport implements store.Imports.
func (s *Store) ReplaceImport(ctx context.Context, im store.Import) error {
	if err := im.Check(); err != nil {
		return err
	}
	at, err := col.Time(im.ImportedAt)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO imports (serial, secret, key_id, digits, period_s, algorithm, imported_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (serial) DO UPDATE SET secret = excluded.secret, key_id = excluded.key_id, digits = excluded.digits,
	period_s = excluded.period_s, algorithm = excluded.algorithm, imported_at = excluded.imported_at, failures = 0`,
		im.Serial, im.Secret.Blob, im.Secret.KeyID, im.Digits, int64(im.Period/time.Second), int64(im.Algorithm), at)
	if err != nil {
		return dbErr(err, "replace the import of serial "+im.Serial)
	}
	s.scrub(ctx)
	return nil
}

// Import implements store.Imports.
func (s *Store) Import(ctx context.Context, serial string) (store.Import, error) {
	db, err := s.reader()
	if err != nil {
		return store.Import{}, err
	}
	im, err := scanImport(db.QueryRowContext(ctx, `SELECT `+importCols+` FROM imports WHERE serial = ?`, serial))
	if err != nil {
		return store.Import{}, dbErr(err, "import of serial "+serial)
	}
	return im, nil
}

// TakeImport implements store.Imports.
func (s *Store) TakeImport(ctx context.Context, serial string) (store.Import, error) {
	var im store.Import
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		im, err = scanImport(tx.QueryRowContext(ctx, `DELETE FROM imports WHERE serial = ? RETURNING `+importCols, serial))
		return err
	})
	if err != nil {
		return store.Import{}, dbErr(err, "take the import of serial "+serial)
	}
	s.scrub(ctx)
	return im, nil
}

func scanImport(sc scanner) (store.Import, error) {
	var (
		im                  store.Import
		digits, period, alg int64
		at                  *int64
		failures            int64
	)
	if err := sc.Scan(&im.Serial, &im.Secret.Blob, &im.Secret.KeyID, &digits, &period, &alg, &at, &failures); err != nil {
		return store.Import{}, err
	}
	p, err := columns.OTPParams(digits, period, alg)
	if err != nil {
		return store.Import{}, fmt.Errorf("sqlite: import of serial %s: %w", im.Serial, err)
	}
	im.OTPParams = p
	im.ImportedAt = columns.FromNanos(at)
	im.Failures = int(failures)
	return im, nil
}

// Ceremonies.

// PutCeremony implements store.Ceremonies.
func (s *Store) PutCeremony(ctx context.Context, c store.Ceremony) error {
	if err := c.Check(); err != nil {
		return err
	}
	exp, err := col.Time(c.ExpiresAt)
	if err != nil {
		return err
	}
	data := c.Data
	if data == nil {
		data = []byte{}
	}
	_, err = s.exec(ctx, `INSERT INTO ceremonies (ckey, identity_id, data, expires_at) VALUES (?, ?, ?, ?)`,
		c.Key, c.IdentityID, data, exp)
	return dbErr(err, "ceremony "+c.Key)
}

// TakeCeremony implements store.Ceremonies.
func (s *Store) TakeCeremony(ctx context.Context, key string, now time.Time) (store.Ceremony, error) {
	var (
		c   = store.Ceremony{Key: key}
		exp int64
	)
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `DELETE FROM ceremonies WHERE ckey = ? RETURNING identity_id, data, expires_at`, key).
			Scan(&c.IdentityID, &c.Data, &exp)
	})
	if err != nil {
		return store.Ceremony{}, dbErr(err, "ceremony "+key)
	}
	c.ExpiresAt = time.Unix(0, exp).UTC()
	if !now.Before(c.ExpiresAt) {
		return store.Ceremony{}, fmt.Errorf("sqlite: ceremony %s: %w (expired at %s)", key, store.ErrNotFound, c.ExpiresAt.Format(time.RFC3339))
	}
	return c, nil
}

// SweepCeremonies implements store.Ceremonies.
func (s *Store) SweepCeremonies(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, `DELETE FROM ceremonies WHERE expires_at <= ?`, columns.ClampNanos(now))
	if err != nil {
		return 0, dbErr(err, "sweep ceremonies")
	}
	return int(n), nil
}

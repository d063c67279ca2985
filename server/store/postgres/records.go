package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// Tombstones.

const tombCols = `authenticator_id, identity_id, kind, serial, credential_id, reason, blocked_at, by_kind, by_id, by_via`

func insertTombstone(ctx context.Context, db dbtx, t *domain.Tombstone, blockedAt any) error {
	_, err := db.Exec(ctx, `INSERT INTO tombstones (`+tombCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		t.AuthenticatorID, t.IdentityID, string(t.Kind), t.Serial, t.CredentialID, string(t.Reason), blockedAt,
		string(t.By.Kind), t.By.ID, t.By.Via)
	return dbErr(err, "tombstone of "+t.AuthenticatorID)
}

// PutTombstone implements store.Tombstones.
func (s *Store) PutTombstone(ctx context.Context, t domain.Tombstone) error {
	if t.AuthenticatorID == "" || t.IdentityID == "" || !t.Kind.Valid() {
		return fmt.Errorf("postgres: %w: a tombstone needs an authenticator, an identity and a kind", store.ErrInvalid)
	}
	at, err := col.Time(t.BlockedAt)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if t.Serial != "" && isCodeDevice(t.Kind) {
			if err := lockSerial(ctx, tx, t.Serial); err != nil {
				return err
			}
		}
		return insertTombstone(ctx, tx, &t, at)
	})
}

// FindTombstones implements store.Tombstones.
func (s *Store) FindTombstones(ctx context.Context, ref domain.Ref) ([]domain.Tombstone, error) {
	if ref.Serial == "" && ref.CredentialID == "" {
		return nil, nil
	}
	var out []domain.Tombstone
	err := s.read(ctx, func(db dbtx) error {
		rows, err := db.Query(ctx, `SELECT `+tombCols+` FROM tombstones
WHERE (serial <> '' AND serial = $1) OR (credential_id <> '' AND credential_id = $2)
ORDER BY blocked_at, authenticator_id`, ref.Serial, ref.CredentialID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				t                   domain.Tombstone
				kind, reason        string
				byKind, byID, byVia string
				at                  *int64
			)
			if err := rows.Scan(&t.AuthenticatorID, &t.IdentityID, &kind, &t.Serial, &t.CredentialID, &reason, &at,
				&byKind, &byID, &byVia); err != nil {
				return err
			}
			t.Kind = device.Kind(kind)
			if !t.Kind.Valid() {
				return fmt.Errorf("postgres: %w: tombstone of %s has unknown kind %q", store.ErrInvalid, t.AuthenticatorID, kind)
			}
			t.Reason = domain.Reason(reason)
			t.BlockedAt = columns.FromNanos(at)
			t.By = domain.Actor{Kind: domain.ActorKind(byKind), ID: byID, Via: byVia}
			out = append(out, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, dbErr(err, "find tombstones")
	}
	return out, nil
}

// Imports.

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
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (serial) DO UPDATE SET secret = excluded.secret, key_id = excluded.key_id, digits = excluded.digits,
	period_s = excluded.period_s, algorithm = excluded.algorithm, imported_at = excluded.imported_at, failures = 0`,
		im.Serial, im.Secret.Blob, im.Secret.KeyID, int64(im.Digits), int64(im.Period/time.Second), int64(im.Algorithm), at)
	return dbErr(err, "replace the import of serial "+im.Serial)
}

// PutImport implements store.Imports.
func (s *Store) PutImport(ctx context.Context, im store.Import) error {
	if err := im.Check(); err != nil {
		return err
	}
	at, err := col.Time(im.ImportedAt)
	if err != nil {
		return err
	}
	err = s.read(ctx, func(db dbtx) error {
		_, err := db.Exec(ctx, `INSERT INTO imports (serial, secret, key_id, digits, period_s, algorithm, imported_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			im.Serial, im.Secret.Blob, im.Secret.KeyID, int64(im.Digits), int64(im.Period/time.Second), int64(im.Algorithm), at)
		return err
	})
	return dbErr(err, "import of serial "+im.Serial)
}

// Import implements store.Imports.
func (s *Store) Import(ctx context.Context, serial string) (store.Import, error) {
	var im store.Import
	err := s.read(ctx, func(db dbtx) error {
		var err error
		im, err = scanImport(db.QueryRow(ctx, `SELECT `+importCols+` FROM imports WHERE serial = $1`, serial))
		return err
	})
	if err != nil {
		return store.Import{}, dbErr(err, "import of serial "+serial)
	}
	return im, nil
}

// TakeImport implements store.Imports with one DELETE ... RETURNING: of
// concurrent calls, only the one whose DELETE removed the row gets it.
func (s *Store) TakeImport(ctx context.Context, serial string) (store.Import, error) {
	var im store.Import
	err := s.read(ctx, func(db dbtx) error {
		var err error
		im, err = scanImport(db.QueryRow(ctx, `DELETE FROM imports WHERE serial = $1 RETURNING `+importCols, serial))
		return err
	})
	if err != nil {
		return store.Import{}, dbErr(err, "take the import of serial "+serial)
	}
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
		return store.Import{}, fmt.Errorf("postgres: import of serial %s: %w", im.Serial, err)
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
	err = s.read(ctx, func(db dbtx) error {
		_, err := db.Exec(ctx, `INSERT INTO ceremonies (ckey, identity_id, data, expires_at) VALUES ($1, $2, $3, $4)`,
			c.Key, c.IdentityID, columns.NonNil(c.Data), exp)
		return err
	})
	return dbErr(err, "ceremony "+c.Key)
}

// TakeCeremony implements store.Ceremonies with one DELETE ... RETURNING.
func (s *Store) TakeCeremony(ctx context.Context, key string, now time.Time) (store.Ceremony, error) {
	var (
		c   = store.Ceremony{Key: key}
		exp int64
	)
	err := s.read(ctx, func(db dbtx) error {
		return db.QueryRow(ctx, `DELETE FROM ceremonies WHERE ckey = $1 RETURNING identity_id, data, expires_at`, key).
			Scan(&c.IdentityID, &c.Data, &exp)
	})
	if err != nil {
		return store.Ceremony{}, dbErr(err, "ceremony "+key)
	}
	c.Data = columns.NonNil(c.Data)
	c.ExpiresAt = time.Unix(0, exp).UTC()
	if !now.Before(c.ExpiresAt) {
		return store.Ceremony{}, fmt.Errorf("postgres: ceremony %s: %w (expired at %s)", key, store.ErrNotFound, c.ExpiresAt.Format(time.RFC3339))
	}
	return c, nil
}

// SweepCeremonies implements store.Ceremonies.
func (s *Store) SweepCeremonies(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, `DELETE FROM ceremonies WHERE expires_at <= $1`, columns.ClampNanos(now))
	if err != nil {
		return 0, dbErr(err, "sweep ceremonies")
	}
	return int(n), nil
}

// exec runs one statement outside a transaction and returns how many rows
// it changed.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := s.read(ctx, func(db dbtx) error {
		tag, err := db.Exec(ctx, query, args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

package sqlcore

import (
	"context"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// Tombstones.

// insertTombstone stores t, later where tx can (execLater).
func (s *Store) insertTombstone(ctx context.Context, tx Tx, t *domain.Tombstone, blockedAt any) error {
	return s.execLater(ctx, tx, s.q.tombInsert, s.wrapAs("tombstone of ", t.AuthenticatorID),
		t.AuthenticatorID, t.IdentityID, string(t.Kind), t.Serial, t.CredentialID,
		string(t.Reason), blockedAt, string(t.By.Kind), t.By.ID, t.By.Via)
}

// PutTombstone implements store.Tombstones.
func (s *Store) PutTombstone(ctx context.Context, t domain.Tombstone) error {
	if t.AuthenticatorID == "" || t.IdentityID == "" || !t.Kind.Valid() {
		return s.errf("%w: a tombstone needs an authenticator, an identity and a kind", store.ErrInvalid)
	}
	at, err := s.col.Time(t.BlockedAt)
	if err != nil {
		return err
	}
	return s.write(ctx, 0, func(ctx context.Context, tx Tx) error {
		if t.Serial != "" && isCodeDevice(t.Kind) {
			if err := s.lockSerial(ctx, tx, t.Serial); err != nil {
				return err
			}
		}
		if t.CredentialID != "" {
			// A revoked credential is one ever registered: a create
			// with it then fails on credential_ids, as for a tombstone
			// of ApplyChange, whose credential was registered.
			if _, err := tx.Exec(ctx, s.q.credentialKeep, t.CredentialID, t.AuthenticatorID); err != nil {
				return s.dbErr(err, "register the credential ID of tombstone "+t.AuthenticatorID)
			}
		}
		return s.insertTombstone(ctx, tx, &t, at)
	})
}

// FindTombstones implements store.Tombstones.
func (s *Store) FindTombstones(ctx context.Context, ref domain.Ref) ([]domain.Tombstone, error) {
	if ref.Serial == "" && ref.CredentialID == "" {
		return nil, nil
	}
	var out []domain.Tombstone
	err := s.read(ctx, func(ctx context.Context, tx Tx) error {
		rows, err := tx.Query(ctx, s.q.tombsFind, ref.Serial, ref.CredentialID)
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
				return s.errf("%w: tombstone of %s has unknown kind %q", store.ErrInvalid, t.AuthenticatorID, kind)
			}
			t.Reason = domain.Reason(reason)
			t.BlockedAt = columns.FromNanos(at)
			t.By = domain.Actor{Kind: domain.ActorKind(byKind), ID: byID, Via: byVia}
			out = append(out, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.dbErr(err, "find tombstones")
	}
	return out, nil
}

// Imports.

// importArgs returns the column values of im (serial, secret, key_id,
// digits, period_s, algorithm, imported_at) after checking it.
func (s *Store) importArgs(im *store.Import) ([]any, error) {
	if err := im.Check(); err != nil {
		return nil, err
	}
	at, err := s.col.Time(im.ImportedAt)
	if err != nil {
		return nil, err
	}
	return []any{im.Serial, im.Secret.Blob, im.Secret.KeyID, int64(im.Digits), int64(im.Period / time.Second),
		int64(im.Algorithm), at}, nil
}

// PutImport implements store.Imports.
func (s *Store) PutImport(ctx context.Context, im store.Import) error {
	args, err := s.importArgs(&im)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, 0, s.q.importInsert, args...)
	return s.dbErr(err, "import of serial "+im.Serial)
}

// ReplaceImport implements store.Imports.
func (s *Store) ReplaceImport(ctx context.Context, im store.Import) error {
	args, err := s.importArgs(&im)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, Scrub, s.q.importReplace, args...)
	return s.dbErr(err, "replace the import of serial "+im.Serial)
}

// Import implements store.Imports.
func (s *Store) Import(ctx context.Context, serial string) (store.Import, error) {
	return readRow(ctx, s, "import of serial "+serial, s.scanImport, s.q.importBySerial, serial)
}

// TakeImport implements store.Imports with one DELETE ... RETURNING: of
// concurrent calls, only the one whose DELETE removed the row gets it.
func (s *Store) TakeImport(ctx context.Context, serial string) (store.Import, error) {
	var im store.Import
	err := s.write(ctx, Scrub|Single, func(ctx context.Context, tx Tx) error {
		var err error
		im, err = s.scanImport(tx.QueryRow(ctx, s.q.importTake, serial))
		return err
	})
	if err != nil {
		return store.Import{}, s.dbErr(err, "take the import of serial "+serial)
	}
	return im, nil
}

func (s *Store) scanImport(sc Row) (store.Import, error) {
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
		return store.Import{}, s.errf("import of serial %s: %w", im.Serial, err)
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
	exp, err := s.col.Time(c.ExpiresAt)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, 0, s.q.ceremonyInsert, c.Key, c.IdentityID, columns.NonNil(c.Data), exp)
	return s.dbErr(err, "ceremony "+c.Key)
}

// TakeCeremony implements store.Ceremonies with one DELETE ... RETURNING.
func (s *Store) TakeCeremony(ctx context.Context, key string, now time.Time) (store.Ceremony, error) {
	var (
		c   = store.Ceremony{Key: key}
		exp int64
	)
	err := s.write(ctx, Single, func(ctx context.Context, tx Tx) error {
		return tx.QueryRow(ctx, s.q.ceremonyTake, key).Scan(&c.IdentityID, &c.Data, &exp)
	})
	if err != nil {
		return store.Ceremony{}, s.dbErr(err, "ceremony "+key)
	}
	c.Data = columns.NonNil(c.Data)
	c.ExpiresAt = time.Unix(0, exp).UTC()
	if !now.Before(c.ExpiresAt) {
		return store.Ceremony{}, s.errf("ceremony %s: %w (expired at %s)", key, store.ErrNotFound, c.ExpiresAt.Format(time.RFC3339))
	}
	return c, nil
}

// SweepCeremonies implements store.Ceremonies.
func (s *Store) SweepCeremonies(ctx context.Context, now time.Time) (int, error) {
	return s.sweep(ctx, s.q.ceremoniesSweep, now, "sweep ceremonies")
}

// sweep runs a DELETE ... WHERE expires_at <= now and returns how many
// rows it deleted. A sweep lost in a crash leaves rows that every query
// already ignores as expired.
func (s *Store) sweep(ctx context.Context, q *Stmt, now time.Time, what string) (int, error) {
	n, err := s.exec(ctx, Lapse, q, columns.ClampNanos(now))
	if err != nil {
		return 0, s.dbErr(err, what)
	}
	return int(n), nil
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// insertElement stores el (already checked) for authenticator id.
func insertElement(ctx context.Context, tx pgx.Tx, id string, el *store.Element) error {
	var err error
	switch {
	case el.Chip != nil:
		c := el.Chip
		_, err = tx.Exec(ctx, `INSERT INTO chip_elements
(authenticator_id, public_key, aaguid, sign_count, attestation_format, backup_eligible, backup_state) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			id, c.PublicKey, columns.NilIfEmpty(c.AAGUID), int64(c.SignCount), c.AttestationFormat, c.BackupEligible, c.BackupState)
	case el.Code != nil:
		c := el.Code
		_, err = tx.Exec(ctx, `INSERT INTO code_elements
(authenticator_id, secret, key_id, digits, period_s, algorithm, drift, highest_step) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			id, c.Secret.Blob, c.Secret.KeyID, int64(c.Digits), int64(c.Period/time.Second), int64(c.Algorithm), int64(c.Drift), int64(c.HighestStep))
	case el.App != nil:
		_, err = tx.Exec(ctx, `INSERT INTO app_elements (authenticator_id, public_key, pin_verifier) VALUES ($1, $2, $3)`,
			id, el.App.PublicKey, el.App.PINVerifier)
	case el.Password != nil:
		_, err = tx.Exec(ctx, `INSERT INTO password_elements (authenticator_id, verifier) VALUES ($1, $2)`,
			id, el.Password.Verifier)
	}
	return dbErr(err, "store the element of "+id)
}

// wipeElement deletes the key material of the element of authenticator id
// of kind k, keeping the row (and its non-secret fields). The old row
// version stays in the table file as a dead tuple until VACUUM; see the
// package documentation.
func wipeElement(ctx context.Context, tx pgx.Tx, k device.Kind, id string, now any) error {
	var q string
	switch {
	case k == device.KindChip:
		q = `UPDATE chip_elements SET public_key = NULL, wiped_at = COALESCE(wiped_at, $1) WHERE authenticator_id = $2`
	case isCodeDevice(k):
		q = `UPDATE code_elements SET secret = NULL, key_id = NULL, wiped_at = COALESCE(wiped_at, $1) WHERE authenticator_id = $2`
	case k == device.KindApp:
		q = `UPDATE app_elements SET public_key = NULL, pin_verifier = NULL, wiped_at = COALESCE(wiped_at, $1) WHERE authenticator_id = $2`
	case k == device.KindPassword:
		q = `UPDATE password_elements SET verifier = NULL, wiped_at = COALESCE(wiped_at, $1) WHERE authenticator_id = $2`
	default:
		return fmt.Errorf("postgres: %w: wipe: unknown kind %q", store.ErrInvalid, k)
	}
	_, err := tx.Exec(ctx, q, now, id)
	return dbErr(err, "wipe the element of "+id)
}

// Element implements store.Elements.
func (s *Store) Element(ctx context.Context, authenticatorID string) (store.Element, error) {
	what := "element of " + authenticatorID
	var el store.Element
	err := s.read(ctx, func(db dbtx) error {
		var err error
		el, err = readElement(ctx, db, authenticatorID, what)
		return err
	})
	if err != nil {
		return store.Element{}, dbErr(err, what)
	}
	return el, nil
}

func readElement(ctx context.Context, db dbtx, authenticatorID, what string) (store.Element, error) {
	var kind string
	if err := db.QueryRow(ctx, `SELECT kind FROM authenticators WHERE id = $1`, authenticatorID).Scan(&kind); err != nil {
		return store.Element{}, err
	}
	var (
		el    store.Element
		wiped *int64
		err   error
	)
	k := device.Kind(kind)
	switch {
	case k == device.KindChip:
		var (
			c          store.ChipElement
			count      int64
			pub, aagid []byte
		)
		err = db.QueryRow(ctx, `SELECT public_key, aaguid, sign_count, attestation_format, backup_eligible, backup_state, wiped_at
FROM chip_elements WHERE authenticator_id = $1`, authenticatorID).Scan(&pub, &aagid, &count, &c.AttestationFormat,
			&c.BackupEligible, &c.BackupState, &wiped)
		if err == nil {
			if count < 0 || count > 1<<32-1 {
				return store.Element{}, fmt.Errorf("postgres: %w: %s: sign count %d", store.ErrInvalid, what, count)
			}
			c.PublicKey, c.AAGUID = columns.NilIfEmpty(pub), columns.NilIfEmpty(aagid)
			c.SignCount = uint32(count)
			el.Chip = &c
		}
	case isCodeDevice(k):
		var (
			c                   store.CodeElement
			blob                []byte
			keyID               *string
			digits, period, alg int64
			drift, highest      int64
		)
		err = db.QueryRow(ctx, `SELECT secret, key_id, digits, period_s, algorithm, drift, highest_step, wiped_at
FROM code_elements WHERE authenticator_id = $1`, authenticatorID).Scan(&blob, &keyID, &digits, &period, &alg, &drift, &highest, &wiped)
		if err == nil {
			c.Secret.Blob = columns.NilIfEmpty(blob)
			if keyID != nil {
				c.Secret.KeyID = *keyID
			}
			if c.OTPParams, err = columns.OTPParams(digits, period, alg); err != nil {
				return store.Element{}, fmt.Errorf("postgres: %s: %w", what, err)
			}
			if c.HighestStep, err = col.FromI64(highest, "highest step"); err != nil {
				return store.Element{}, err
			}
			if drift < -(1<<31) || drift > 1<<31-1 {
				return store.Element{}, fmt.Errorf("postgres: %w: %s: drift %d", store.ErrInvalid, what, drift)
			}
			c.Drift = int(drift)
			el.Code = &c
		}
	case k == device.KindApp:
		var (
			c   store.AppElement
			pub []byte
			pin *string
		)
		err = db.QueryRow(ctx, `SELECT public_key, pin_verifier, wiped_at FROM app_elements WHERE authenticator_id = $1`,
			authenticatorID).Scan(&pub, &pin, &wiped)
		c.PublicKey = columns.NilIfEmpty(pub)
		if pin != nil {
			c.PINVerifier = *pin
		}
		el.App = &c
	case k == device.KindPassword:
		var v *string
		err = db.QueryRow(ctx, `SELECT verifier, wiped_at FROM password_elements WHERE authenticator_id = $1`,
			authenticatorID).Scan(&v, &wiped)
		el.Password = &store.PasswordElement{}
		if v != nil {
			el.Password.Verifier = *v
		}
	default:
		return store.Element{}, fmt.Errorf("postgres: %w: %s: unknown kind %q", store.ErrInvalid, what, kind)
	}
	if err != nil {
		return store.Element{}, err
	}
	el.WipedAt = columns.FromNanos(wiped)
	return el, nil
}

const (
	advanceOTP = `UPDATE code_elements SET highest_step = $1, drift = $2
WHERE authenticator_id = $3 AND wiped_at IS NULL AND highest_step < $1`
	liveCode    = `SELECT wiped_at FROM code_elements WHERE authenticator_id = $1`
	advanceSign = `UPDATE chip_elements SET sign_count = $1
WHERE authenticator_id = (SELECT id FROM authenticators WHERE credential_id = $2 AND kind = 'chip')
	AND wiped_at IS NULL AND (sign_count < $1 OR (sign_count = 0 AND $1 = 0))`
	liveChip = `SELECT e.wiped_at FROM chip_elements e JOIN authenticators a ON a.id = e.authenticator_id
WHERE a.credential_id = $1 AND a.kind = 'chip'`
)

// AdvanceOTPStep implements store.Elements with one conditional UPDATE:
// under READ COMMITTED a concurrent UPDATE of the same row waits for the
// first to commit and then re-checks highest_step < step against the
// committed row, so of many replicas raising to one step exactly one
// succeeds.
func (s *Store) AdvanceOTPStep(ctx context.Context, authenticatorID string, step uint64, drift int) (bool, error) {
	st, err := col.U63(step, "time step")
	if err != nil {
		return false, err
	}
	var ok bool
	err = s.read(ctx, func(db dbtx) error {
		tag, err := db.Exec(ctx, advanceOTP, st, int64(drift), authenticatorID)
		if err != nil {
			return dbErr(err, "advance the OTP step of "+authenticatorID)
		}
		if ok = tag.RowsAffected() == 1; ok {
			return nil
		}
		return live(ctx, db, liveCode, authenticatorID, "code device element of "+authenticatorID)
	})
	return ok, err
}

// AdvanceSignCount implements store.Elements with one conditional UPDATE,
// as AdvanceOTPStep.
func (s *Store) AdvanceSignCount(ctx context.Context, credentialID string, count uint32) (bool, error) {
	var ok bool
	err := s.read(ctx, func(db dbtx) error {
		tag, err := db.Exec(ctx, advanceSign, int64(count), credentialID)
		if err != nil {
			return dbErr(err, "advance the sign count of credential "+credentialID)
		}
		if ok = tag.RowsAffected() == 1; ok {
			return nil
		}
		return live(ctx, db, liveChip, credentialID, "chip credential "+credentialID)
	})
	return ok, err
}

// live returns nil when query (selecting wiped_at of one element) finds an
// element that was not wiped, else an error wrapping store.ErrNotFound.
func live(ctx context.Context, db dbtx, query, arg, what string) error {
	var wiped *int64
	err := db.QueryRow(ctx, query, arg).Scan(&wiped)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound)
	case err != nil:
		return dbErr(err, what)
	case wiped != nil:
		return fmt.Errorf("postgres: %s: %w (its key material was wiped)", what, store.ErrNotFound)
	}
	return nil
}

// UpdateSecret implements store.Elements (one conditional UPDATE).
func (s *Store) UpdateSecret(ctx context.Context, authenticatorID string, from, to store.Sealed) error {
	if to.KeyID == "" || len(to.Blob) == 0 {
		return fmt.Errorf("postgres: %w: the new secret of %s needs a key ID and a blob", store.ErrInvalid, authenticatorID)
	}
	what := "code device element of " + authenticatorID
	return s.read(ctx, func(db dbtx) error {
		tag, err := db.Exec(ctx, `UPDATE code_elements SET secret = $1, key_id = $2
WHERE authenticator_id = $3 AND wiped_at IS NULL AND key_id = $4 AND secret = $5`,
			to.Blob, to.KeyID, authenticatorID, from.KeyID, columns.NonNil(from.Blob))
		if err != nil {
			return dbErr(err, "replace the secret of "+authenticatorID)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		if err := live(ctx, db, liveCode, authenticatorID, what); err != nil {
			return err
		}
		return fmt.Errorf("postgres: %s: %w: the stored secret is not the one to replace", what, store.ErrConflict)
	})
}

// UpdateVerifier implements store.Elements (one conditional UPDATE per
// element table).
func (s *Store) UpdateVerifier(ctx context.Context, authenticatorID string, from, to string) error {
	if to == "" {
		return fmt.Errorf("postgres: %w: empty verifier for %s", store.ErrInvalid, authenticatorID)
	}
	what := "verifier of " + authenticatorID
	return s.read(ctx, func(db dbtx) error {
		for _, q := range []string{
			`UPDATE password_elements SET verifier = $1 WHERE authenticator_id = $2 AND wiped_at IS NULL AND verifier = $3`,
			`UPDATE app_elements SET pin_verifier = $1 WHERE authenticator_id = $2 AND wiped_at IS NULL AND pin_verifier = $3`,
		} {
			tag, err := db.Exec(ctx, q, to, authenticatorID, from)
			if err != nil {
				return dbErr(err, "replace the "+what)
			}
			if tag.RowsAffected() == 1 {
				return nil
			}
		}
		var n int
		err := db.QueryRow(ctx, `SELECT
	(SELECT COUNT(*) FROM password_elements WHERE authenticator_id = $1 AND wiped_at IS NULL) +
	(SELECT COUNT(*) FROM app_elements WHERE authenticator_id = $1 AND wiped_at IS NULL)`, authenticatorID).Scan(&n)
		switch {
		case err != nil:
			return dbErr(err, what)
		case n == 0:
			return fmt.Errorf("postgres: %s: %w (no password or app element, or it was wiped)", what, store.ErrNotFound)
		}
		return fmt.Errorf("postgres: %s: %w: the stored verifier is not the one to replace", what, store.ErrConflict)
	})
}

// secretTables are the tables whose rows hold (or held) key material.
var secretTables = []string{"chip_elements", "code_elements", "app_elements", "password_elements", "imports"}

// Vacuum runs VACUUM on the tables that hold key material, so that the
// dead row versions left by wipes, consumed imports, replaced secrets and
// every OTP or counter update are removed from the table files (plain
// VACUUM marks their space free; full also rewrites each table into a new
// file, so no old bytes remain in it, at the cost of an exclusive lock
// while it runs). VACUUM cannot run inside a transaction; autovacuum does
// the plain kind by itself. It returns the database error.
func (s *Store) Vacuum(ctx context.Context, full bool) error {
	q := "VACUUM "
	if full {
		q = "VACUUM (FULL) "
	}
	return s.read(ctx, func(db dbtx) error {
		for _, t := range secretTables {
			if _, err := db.Exec(ctx, q+t); err != nil {
				return fmt.Errorf("postgres: vacuum %s: %w", t, err)
			}
		}
		return nil
	})
}

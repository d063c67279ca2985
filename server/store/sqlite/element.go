package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// insertElement stores el (already checked) for authenticator id.
func insertElement(ctx context.Context, tx *sql.Tx, id string, el *store.Element) error {
	var err error
	switch {
	case el.Chip != nil:
		c := el.Chip
		_, err = tx.ExecContext(ctx, `INSERT INTO chip_elements
(authenticator_id, public_key, aaguid, sign_count, attestation_format, backup_eligible, backup_state) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id, c.PublicKey, columns.NilIfEmpty(c.AAGUID), int64(c.SignCount), c.AttestationFormat, b2i(c.BackupEligible), b2i(c.BackupState))
	case el.Code != nil:
		c := el.Code
		_, err = tx.ExecContext(ctx, `INSERT INTO code_elements
(authenticator_id, secret, key_id, digits, period_s, algorithm, drift, highest_step) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			id, c.Secret.Blob, c.Secret.KeyID, c.Digits, int64(c.Period/time.Second), int64(c.Algorithm), c.Drift, int64(c.HighestStep))
	case el.App != nil:
		_, err = tx.ExecContext(ctx, `INSERT INTO app_elements (authenticator_id, public_key, pin_verifier) VALUES (?, ?, ?)`,
			id, el.App.PublicKey, el.App.PINVerifier)
	case el.Password != nil:
		_, err = tx.ExecContext(ctx, `INSERT INTO password_elements (authenticator_id, verifier) VALUES (?, ?)`,
			id, el.Password.Verifier)
	}
	return dbErr(err, "store the element of "+id)
}

// wipeElement deletes the key material of the element of authenticator id
// of kind k, keeping the row (and its non-secret fields).
func wipeElement(ctx context.Context, tx *sql.Tx, k device.Kind, id string, now any) error {
	var q string
	switch {
	case k == device.KindChip:
		q = `UPDATE chip_elements SET public_key = NULL, wiped_at = COALESCE(wiped_at, ?) WHERE authenticator_id = ?`
	case isCodeDevice(k):
		q = `UPDATE code_elements SET secret = NULL, key_id = NULL, wiped_at = COALESCE(wiped_at, ?) WHERE authenticator_id = ?`
	case k == device.KindApp:
		q = `UPDATE app_elements SET public_key = NULL, pin_verifier = NULL, wiped_at = COALESCE(wiped_at, ?) WHERE authenticator_id = ?`
	case k == device.KindPassword:
		q = `UPDATE password_elements SET verifier = NULL, wiped_at = COALESCE(wiped_at, ?) WHERE authenticator_id = ?`
	default:
		return fmt.Errorf("sqlite: %w: wipe: unknown kind %q", store.ErrInvalid, k)
	}
	_, err := tx.ExecContext(ctx, q, now, id)
	return dbErr(err, "wipe the element of "+id)
}

// Element implements store.Elements.
func (s *Store) Element(ctx context.Context, authenticatorID string) (store.Element, error) {
	db, err := s.reader()
	if err != nil {
		return store.Element{}, err
	}
	what := "element of " + authenticatorID
	var kind string
	if err := db.QueryRowContext(ctx, `SELECT kind FROM authenticators WHERE id = ?`, authenticatorID).Scan(&kind); err != nil {
		return store.Element{}, dbErr(err, what)
	}
	var (
		el    store.Element
		wiped *int64
	)
	k := device.Kind(kind)
	switch {
	case k == device.KindChip:
		var (
			c          store.ChipElement
			count      int64
			be, bs     int64
			pub, aagid []byte
		)
		err = db.QueryRowContext(ctx, `SELECT public_key, aaguid, sign_count, attestation_format, backup_eligible, backup_state, wiped_at
FROM chip_elements WHERE authenticator_id = ?`, authenticatorID).Scan(&pub, &aagid, &count, &c.AttestationFormat, &be, &bs, &wiped)
		if err == nil {
			if count < 0 || count > 1<<32-1 {
				return store.Element{}, fmt.Errorf("sqlite: %w: %s: sign count %d", store.ErrInvalid, what, count)
			}
			c.PublicKey, c.AAGUID = columns.NilIfEmpty(pub), columns.NilIfEmpty(aagid)
			c.SignCount, c.BackupEligible, c.BackupState = uint32(count), be != 0, bs != 0
			el.Chip = &c
		}
	case isCodeDevice(k):
		var (
			c            store.CodeElement
			blob         []byte
			keyID        sql.NullString
			period, alg  int64
			highest      int64
			digits, drft int64
		)
		err = db.QueryRowContext(ctx, `SELECT secret, key_id, digits, period_s, algorithm, drift, highest_step, wiped_at
FROM code_elements WHERE authenticator_id = ?`, authenticatorID).Scan(&blob, &keyID, &digits, &period, &alg, &drft, &highest, &wiped)
		if err == nil {
			c.Secret = store.Sealed{KeyID: keyID.String, Blob: columns.NilIfEmpty(blob)}
			if c.OTPParams, err = columns.OTPParams(digits, period, alg); err != nil {
				return store.Element{}, fmt.Errorf("sqlite: %s: %w", what, err)
			}
			if c.HighestStep, err = col.FromI64(highest, "highest step"); err != nil {
				return store.Element{}, err
			}
			c.Drift = int(drft)
			el.Code = &c
		}
	case k == device.KindApp:
		var (
			c   store.AppElement
			pub []byte
			pin sql.NullString
		)
		err = db.QueryRowContext(ctx, `SELECT public_key, pin_verifier, wiped_at FROM app_elements WHERE authenticator_id = ?`,
			authenticatorID).Scan(&pub, &pin, &wiped)
		c.PublicKey, c.PINVerifier = columns.NilIfEmpty(pub), pin.String
		el.App = &c
	case k == device.KindPassword:
		var v sql.NullString
		err = db.QueryRowContext(ctx, `SELECT verifier, wiped_at FROM password_elements WHERE authenticator_id = ?`,
			authenticatorID).Scan(&v, &wiped)
		el.Password = &store.PasswordElement{Verifier: v.String}
	default:
		return store.Element{}, fmt.Errorf("sqlite: %w: %s: unknown kind %q", store.ErrInvalid, what, kind)
	}
	if err != nil {
		return store.Element{}, dbErr(err, what)
	}
	el.WipedAt = columns.FromNanos(wiped)
	return el, nil
}

// AdvanceOTPStep implements store.Elements.
func (s *Store) AdvanceOTPStep(ctx context.Context, authenticatorID string, step uint64, drift int) (bool, error) {
	st, err := col.U63(step, "time step")
	if err != nil {
		return false, err
	}
	what := "code device element of " + authenticatorID
	var ok bool
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE code_elements SET highest_step = ?, drift = ?
WHERE authenticator_id = ? AND wiped_at IS NULL AND highest_step < ?`, st, drift, authenticatorID, st)
		if err != nil {
			return dbErr(err, "advance the OTP step of "+authenticatorID)
		}
		if ok, err = changedOne(res); ok || err != nil {
			return err
		}
		return live(ctx, tx, `SELECT wiped_at FROM code_elements WHERE authenticator_id = ?`, authenticatorID, what)
	})
	return ok, err
}

// AdvanceSignCount implements store.Elements.
func (s *Store) AdvanceSignCount(ctx context.Context, credentialID string, count uint32) (bool, error) {
	c := int64(count)
	var ok bool
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE chip_elements SET sign_count = ?
WHERE authenticator_id = (SELECT id FROM authenticators WHERE credential_id = ? AND kind = 'chip')
	AND wiped_at IS NULL AND (sign_count < ? OR (sign_count = 0 AND ? = 0))`, c, credentialID, c, c)
		if err != nil {
			return dbErr(err, "advance the sign count of credential "+credentialID)
		}
		if ok, err = changedOne(res); ok || err != nil {
			return err
		}
		return live(ctx, tx, `SELECT e.wiped_at FROM chip_elements e JOIN authenticators a ON a.id = e.authenticator_id
WHERE a.credential_id = ? AND a.kind = 'chip'`, credentialID, "chip credential "+credentialID)
	})
	return ok, err
}

// changedOne reports whether res changed exactly one row.
func changedOne(res sql.Result) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: %w", err)
	}
	return n == 1, nil
}

// live returns nil when query (selecting wiped_at of one element) finds an
// element that was not wiped, else an error wrapping store.ErrNotFound.
func live(ctx context.Context, tx *sql.Tx, query, arg, what string) error {
	var wiped *int64
	err := tx.QueryRowContext(ctx, query, arg).Scan(&wiped)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
	case err != nil:
		return dbErr(err, what)
	case wiped != nil:
		return fmt.Errorf("sqlite: %s: %w (its key material was wiped)", what, store.ErrNotFound)
	}
	return nil
}

// UpdateSecret implements store.Elements.
func (s *Store) UpdateSecret(ctx context.Context, authenticatorID string, from, to store.Sealed) error {
	if to.KeyID == "" || len(to.Blob) == 0 {
		return fmt.Errorf("sqlite: %w: the new secret of %s needs a key ID and a blob", store.ErrInvalid, authenticatorID)
	}
	what := "code device element of " + authenticatorID
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE code_elements SET secret = ?, key_id = ?
WHERE authenticator_id = ? AND wiped_at IS NULL AND key_id = ? AND secret = ?`,
			to.Blob, to.KeyID, authenticatorID, from.KeyID, from.Blob)
		if err != nil {
			return dbErr(err, "replace the secret of "+authenticatorID)
		}
		if ok, err := changedOne(res); ok || err != nil {
			return err
		}
		if err := live(ctx, tx, `SELECT wiped_at FROM code_elements WHERE authenticator_id = ?`, authenticatorID, what); err != nil {
			return err
		}
		return fmt.Errorf("sqlite: %s: %w: the stored secret is not the one to replace", what, store.ErrConflict)
	})
	if err == nil {
		s.scrub(ctx)
	}
	return err
}

// UpdateVerifier implements store.Elements.
func (s *Store) UpdateVerifier(ctx context.Context, authenticatorID string, from, to string) error {
	if to == "" {
		return fmt.Errorf("sqlite: %w: empty verifier for %s", store.ErrInvalid, authenticatorID)
	}
	what := "verifier of " + authenticatorID
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, q := range []string{
			`UPDATE password_elements SET verifier = ? WHERE authenticator_id = ? AND wiped_at IS NULL AND verifier = ?`,
			`UPDATE app_elements SET pin_verifier = ? WHERE authenticator_id = ? AND wiped_at IS NULL AND pin_verifier = ?`,
		} {
			res, err := tx.ExecContext(ctx, q, to, authenticatorID, from)
			if err != nil {
				return dbErr(err, "replace the "+what)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				return nil
			}
		}
		var live int
		err := tx.QueryRowContext(ctx, `SELECT
	(SELECT COUNT(*) FROM password_elements WHERE authenticator_id = ? AND wiped_at IS NULL) +
	(SELECT COUNT(*) FROM app_elements WHERE authenticator_id = ? AND wiped_at IS NULL)`, authenticatorID, authenticatorID).Scan(&live)
		switch {
		case err != nil:
			return dbErr(err, what)
		case live == 0:
			return fmt.Errorf("sqlite: %s: %w (no password or app element, or it was wiped)", what, store.ErrNotFound)
		}
		return fmt.Errorf("sqlite: %s: %w: the stored verifier is not the one to replace", what, store.ErrConflict)
	})
	if err == nil {
		s.scrub(ctx)
	}
	return err
}

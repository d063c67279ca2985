package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// The writes of a successful check, in one transaction (store.Logins): the
// end of the attempt's reservation, the replay guard of the security
// element (the OTP watermark of RFC 6238 §5.2, or the signature counter of
// WebAuthn Level 2 §6.1.1), the authenticator's record (consecutive
// failures back to zero, last use, the EventLoginSucceeded audit event)
// and the session. Written one by one they would cost one group commit
// each; here they are one op, so one commit (and, alone, one fsync) per
// login.

// errGuard undoes a login op whose replay guard did not move.
var errGuard = errors.New("sqlite: replay guard not advanced")

// CommitLogin implements store.Logins.
func (s *Store) CommitLogin(ctx context.Context, l store.Login) (bool, error) {
	ts, sts, err := col.Login(&l)
	if err != nil {
		return false, err
	}
	var step, count int64
	var spentExp any
	switch {
	case l.OTP != nil:
		if step, err = col.U63(l.OTP.Step, "time step"); err != nil {
			return false, err
		}
	case l.Chip != nil:
		if err := l.Chip.Spent.Check(); err != nil {
			return false, err
		}
		if spentExp, err = col.Time(l.Chip.Spent.ExpiresAt); err != nil {
			return false, err
		}
		count = int64(l.Chip.Count)
	}
	ac := &appliedChange{c: l.Change, ts: ts}
	a := &l.Change.Authenticator
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		switch {
		case l.OTP != nil:
			res, err := tx.ExecContext(ctx, `UPDATE code_elements SET highest_step = ?, drift = ?
WHERE authenticator_id = ? AND wiped_at IS NULL AND highest_step < ?`, step, l.OTP.Drift, a.ID, step)
			if err != nil {
				return dbErr(err, "advance the OTP step of "+a.ID)
			}
			if ok, err := changedOne(res); !ok || err != nil {
				return guardErr(err, live(ctx, tx, `SELECT wiped_at FROM code_elements WHERE authenticator_id = ?`, a.ID, "code device element of "+a.ID))
			}
		case l.Chip != nil:
			sp := &l.Chip.Spent
			if _, err := tx.ExecContext(ctx, `INSERT INTO ceremonies (ckey, identity_id, data, expires_at) VALUES (?, ?, ?, ?)`,
				sp.Key, sp.IdentityID, columns.NonNil(sp.Data), spentExp); err != nil {
				return dbErr(err, "ceremony "+sp.Key)
			}
			cred := a.CredentialID
			res, err := tx.ExecContext(ctx, `UPDATE chip_elements SET sign_count = ?
WHERE authenticator_id = (SELECT id FROM authenticators WHERE credential_id = ? AND kind = 'chip')
	AND wiped_at IS NULL AND (sign_count < ? OR (sign_count = 0 AND ? = 0))`, count, cred, count, count)
			if err != nil {
				return dbErr(err, "advance the sign count of credential "+cred)
			}
			if ok, err := changedOne(res); !ok || err != nil {
				return guardErr(err, live(ctx, tx, `SELECT e.wiped_at FROM chip_elements e JOIN authenticators a ON a.id = e.authenticator_id
WHERE a.credential_id = ? AND a.kind = 'chip'`, cred, "chip credential "+cred))
			}
		}
		if l.Attempt != "" {
			if _, err := tx.ExecContext(ctx, `DELETE FROM attempts WHERE id = ?`, l.Attempt); err != nil {
				return dbErr(err, "end attempt "+l.Attempt)
			}
		}
		if l.Session != nil {
			if err := checkProofs(ctx, tx, l.Session); err != nil {
				return err
			}
		}
		if err := s.applyChange(ctx, tx, ac); err != nil {
			return err
		}
		if l.Session != nil {
			return insertSession(ctx, tx, l.Session, sts)
		}
		return nil
	})
	if errors.Is(err, errGuard) {
		return false, nil
	}
	return err == nil, err
}

// guardErr is the error of a replay guard that did not move: err when the
// statement failed, else the error of live (the element is gone), else
// errGuard (the code was used, or the counter did not increase).
func guardErr(err, live error) error {
	switch {
	case err != nil:
		return err
	case live != nil:
		return live
	}
	return errGuard
}

// ActivateCodeDevice implements store.Logins.
func (s *Store) ActivateCodeDevice(ctx context.Context, act store.CodeActivation) error {
	ac, err := s.prepareChange(act.Change)
	if err != nil {
		return err
	}
	a := &act.Change.Authenticator
	if !isCodeDevice(a.Kind) {
		return fmt.Errorf("sqlite: %w: authenticator %s is not a code device", store.ErrInvalid, a.ID)
	}
	if err := act.Element.Check(a.Kind); err != nil {
		return err
	}
	im := &act.Import
	if im.Serial != a.Serial {
		return fmt.Errorf("sqlite: %w: the import of serial %s is not for authenticator %s (serial %s)", store.ErrInvalid, im.Serial, a.ID, a.Serial)
	}
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM imports WHERE serial = ? AND key_id = ? AND secret = ?`,
			im.Serial, im.Secret.KeyID, im.Secret.Blob)
		if err != nil {
			return dbErr(err, "take the import of serial "+im.Serial)
		}
		if ok, err := changedOne(res); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("sqlite: activate %s: the import of serial %s: %w (taken by another activation, or replaced)", a.ID, im.Serial, store.ErrNotFound)
		}
		if act.Attempt != "" {
			if _, err := tx.ExecContext(ctx, `DELETE FROM attempts WHERE id = ?`, act.Attempt); err != nil {
				return dbErr(err, "end attempt "+act.Attempt)
			}
		}
		if err := insertElement(ctx, tx, a.ID, &act.Element); err != nil {
			return err
		}
		return s.applyChange(ctx, tx, ac)
	})
	if err == nil {
		s.scrub(ctx)
	}
	return err
}

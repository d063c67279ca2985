package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// The writes of a successful check, in one transaction (store.Logins): the
// replay guard of the security element (the OTP watermark of RFC 6238
// §5.2, or the signature counter of WebAuthn Level 2 §6.1.1), the end of
// the attempt's reservation, the authenticator's record with its
// EventLoginSucceeded audit event, and the session; they mirror the SQLite
// store's. The session's proofs are checked (and share-locked) before the
// record is updated and the audit head is locked, so that every
// transaction takes the audit head last.

// errGuard undoes a login transaction whose replay guard did not move.
var errGuard = errors.New("postgres: replay guard not advanced")

// CommitLogin implements store.Logins.
func (s *Store) CommitLogin(ctx context.Context, l store.Login) (bool, error) {
	ts, sts, err := col.Login(&l)
	if err != nil {
		return false, err
	}
	var step int64
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
	}
	ac := &appliedChange{c: l.Change, ts: ts}
	a := &l.Change.Authenticator
	err = s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		switch {
		case l.OTP != nil:
			tag, err := tx.Exec(ctx, advanceOTP, step, int64(l.OTP.Drift), a.ID)
			if err != nil {
				return dbErr(err, "advance the OTP step of "+a.ID)
			}
			if tag.RowsAffected() != 1 {
				return guardErr(live(ctx, tx, liveCode, a.ID, "code device element of "+a.ID))
			}
		case l.Chip != nil:
			sp := &l.Chip.Spent
			if _, err := tx.Exec(ctx, `INSERT INTO ceremonies (ckey, identity_id, data, expires_at) VALUES ($1, $2, $3, $4)`,
				sp.Key, sp.IdentityID, columns.NonNil(sp.Data), spentExp); err != nil {
				return dbErr(err, "ceremony "+sp.Key)
			}
			cred := a.CredentialID
			tag, err := tx.Exec(ctx, advanceSign, int64(l.Chip.Count), cred)
			if err != nil {
				return dbErr(err, "advance the sign count of credential "+cred)
			}
			if tag.RowsAffected() != 1 {
				return guardErr(live(ctx, tx, liveChip, cred, "chip credential "+cred))
			}
		}
		if l.Session != nil {
			if err := checkProofs(ctx, tx, l.Session); err != nil {
				return err
			}
		}
		if l.Attempt != "" {
			if _, err := tx.Exec(ctx, `DELETE FROM attempts WHERE id = $1`, l.Attempt); err != nil {
				return dbErr(err, "end attempt "+l.Attempt)
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

// guardErr is the error of a replay guard that did not move: the error of
// live (the element is gone), else errGuard (the code was used, or the
// counter did not increase).
func guardErr(live error) error {
	if live != nil {
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
		return fmt.Errorf("postgres: %w: authenticator %s is not a code device", store.ErrInvalid, a.ID)
	}
	if err := act.Element.Check(a.Kind); err != nil {
		return err
	}
	im := &act.Import
	if im.Serial != a.Serial {
		return fmt.Errorf("postgres: %w: the import of serial %s is not for authenticator %s (serial %s)", store.ErrInvalid, im.Serial, a.ID, a.Serial)
	}
	return s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := lockSerial(ctx, tx, a.Serial); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM imports WHERE serial = $1 AND key_id = $2 AND secret = $3`,
			im.Serial, im.Secret.KeyID, im.Secret.Blob)
		if err != nil {
			return dbErr(err, "take the import of serial "+im.Serial)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("postgres: activate %s: the import of serial %s: %w (taken by another activation, or replaced)", a.ID, im.Serial, store.ErrNotFound)
		}
		if act.Attempt != "" {
			if _, err := tx.Exec(ctx, `DELETE FROM attempts WHERE id = $1`, act.Attempt); err != nil {
				return dbErr(err, "end attempt "+act.Attempt)
			}
		}
		if err := insertElement(ctx, tx, a.ID, &act.Element); err != nil {
			return err
		}
		return s.applyChange(ctx, tx, ac)
	})
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// The writes of a successful login, in one transaction. A login that
// succeeds changes three things: the replay guard of the security element
// (the OTP watermark of RFC 6238 §5.2, or the signature counter of WebAuthn
// Level 2 §6.1.1), the authenticator's record (consecutive failures back to
// zero, last use, the EventLoginSucceeded audit event) and a new session.
// Written one by one they cost one group commit each; CommitOTPLogin and
// CommitChipLogin write them as one op, so one commit (and, alone, one
// fsync) per login. They are optional abilities beyond store.Store, found by
// type assertion (server/service declares the interface it uses).

// errGuard undoes a login op whose replay guard did not move.
var errGuard = errors.New("sqlite: replay guard not advanced")

// CommitOTPLogin stores a successful code-device login atomically: it
// raises the OTP watermark of c.Authenticator to step with drift exactly as
// AdvanceOTPStep does, applies c as ApplyChange does, and inserts sess as
// PutSession does. When the watermark is already at or above step (the code
// was used, perhaps a moment ago by another replica) it writes nothing and
// returns false. c must be a plain update (no Remove, WipeSecret or
// Tombstone). It returns the errors of AdvanceOTPStep, ApplyChange
// (store.ErrConflict: reload, recompute and call again) and PutSession;
// nothing is written when it returns an error.
func (s *Store) CommitOTPLogin(ctx context.Context, c domain.Change, sess store.Session, step uint64, drift int) (bool, error) {
	st, err := col.U63(step, "time step")
	if err != nil {
		return false, err
	}
	aid := c.Authenticator.ID
	return s.commitLogin(ctx, c, sess, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE code_elements SET highest_step = ?, drift = ?
WHERE authenticator_id = ? AND wiped_at IS NULL AND highest_step < ?`, st, drift, aid, st)
		if err != nil {
			return dbErr(err, "advance the OTP step of "+aid)
		}
		if ok, err := changedOne(res); ok || err != nil {
			return err
		}
		if err := live(ctx, tx, `SELECT wiped_at FROM code_elements WHERE authenticator_id = ?`, aid, "code device element of "+aid); err != nil {
			return err
		}
		return errGuard
	})
}

// CommitChipLogin stores a successful chip login atomically: it inserts
// spent (a ceremony record marking a stateless login challenge as used; its
// key must be new), advances the signature counter of the credential of
// c.Authenticator to count exactly as AdvanceSignCount does, applies c as
// ApplyChange does, and inserts sess as PutSession does. When the counter
// rule refuses count (a possible clone) it writes nothing, not even spent,
// and returns false. c must be a plain update (no Remove, WipeSecret or
// Tombstone). It returns an error wrapping store.ErrDuplicate when spent's
// key is taken (the challenge was used), or the errors of
// AdvanceSignCount, ApplyChange (store.ErrConflict: reload, recompute and
// call again) and PutSession; nothing is written when it returns an error.
func (s *Store) CommitChipLogin(ctx context.Context, c domain.Change, sess store.Session, spent store.Ceremony, count uint32) (bool, error) {
	if err := spent.Check(); err != nil {
		return false, err
	}
	exp, err := col.Time(spent.ExpiresAt)
	if err != nil {
		return false, err
	}
	data := spent.Data
	if data == nil {
		data = []byte{}
	}
	cred := c.Authenticator.CredentialID
	n := int64(count)
	return s.commitLogin(ctx, c, sess, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO ceremonies (ckey, identity_id, data, expires_at) VALUES (?, ?, ?, ?)`,
			spent.Key, spent.IdentityID, data, exp)
		if err != nil {
			return dbErr(err, "ceremony "+spent.Key)
		}
		res, err := tx.ExecContext(ctx, `UPDATE chip_elements SET sign_count = ?
WHERE authenticator_id = (SELECT id FROM authenticators WHERE credential_id = ? AND kind = 'chip')
	AND wiped_at IS NULL AND (sign_count < ? OR (sign_count = 0 AND ? = 0))`, n, cred, n, n)
		if err != nil {
			return dbErr(err, "advance the sign count of credential "+cred)
		}
		if ok, err := changedOne(res); ok || err != nil {
			return err
		}
		if err := live(ctx, tx, `SELECT e.wiped_at FROM chip_elements e JOIN authenticators a ON a.id = e.authenticator_id
WHERE a.credential_id = ? AND a.kind = 'chip'`, cred, "chip credential "+cred); err != nil {
			return err
		}
		return errGuard
	})
}

// commitLogin runs guard, the update of c and the insert of sess as one
// write op. errGuard from guard becomes (false, nil).
func (s *Store) commitLogin(ctx context.Context, c domain.Change, sess store.Session, guard func(context.Context, *sql.Tx) error) (bool, error) {
	ts, sts, err := col.LoginChange(&c, &sess)
	if err != nil {
		return false, err
	}
	a := &c.Authenticator
	from := int64(a.Version - 1)
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := guard(ctx, tx); err != nil {
			return err
		}
		var identityID, kind, serial, cred string
		err := tx.QueryRowContext(ctx, `UPDATE authenticators SET state = ?, label = ?, failures = ?, suspensions = ?,
	activated_at = ?, last_used_at = ?, suspended_at = ?, suspend_reason = ?, blocked_at = ?, block_reason = ?, version = ?
WHERE id = ? AND version = ?
RETURNING identity_id, kind, serial, credential_id`,
			string(a.State), a.Label, a.Failures, a.Suspensions,
			ts[0], ts[1], ts[2], string(a.SuspendReason), ts[3], string(a.BlockReason), int64(a.Version),
			a.ID, from).Scan(&identityID, &kind, &serial, &cred)
		if errors.Is(err, sql.ErrNoRows) {
			return missingOrConflict(ctx, tx, a.ID, a.Version-1)
		}
		if err != nil {
			return dbErr(err, "update authenticator "+a.ID)
		}
		if identityID != a.IdentityID || kind != string(a.Kind) || serial != a.Serial || cred != a.CredentialID {
			return fmt.Errorf("sqlite: %w: authenticator %s: the identity, kind and reference cannot change", store.ErrInvalid, a.ID)
		}
		if identityID != sess.IdentityID {
			return fmt.Errorf("sqlite: %w: the session of %s is not for the identity of authenticator %s", store.ErrInvalid, sess.IdentityID, a.ID)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, identity_id, via, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			sess.TokenHash, sess.IdentityID, sess.Via, sts[0], sts[1]); err != nil {
			return dbErr(err, "session of "+sess.IdentityID)
		}
		return s.appendAudit(ctx, tx, c.Events)
	})
	if errors.Is(err, errGuard) {
		return false, nil
	}
	return err == nil, err
}

package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// The writes of a successful login, in one transaction: the replay guard
// of the security element (the OTP watermark of RFC 6238 §5.2, or the
// signature counter of WebAuthn Level 2 §6.1.1), the authenticator's
// record with its EventLoginSucceeded audit event, and a new session.
// CommitOTPLogin and CommitChipLogin are optional abilities beyond
// store.Store, found by type assertion (server/service declares the
// interface); they mirror the SQLite store's.

// errGuard undoes a login transaction whose replay guard did not move.
var errGuard = errors.New("postgres: replay guard not advanced")

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
	return s.commitLogin(ctx, c, sess, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, advanceOTP, st, int64(drift), aid)
		if err != nil {
			return dbErr(err, "advance the OTP step of "+aid)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		if err := live(ctx, tx, liveCode, aid, "code device element of "+aid); err != nil {
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
	cred := c.Authenticator.CredentialID
	return s.commitLogin(ctx, c, sess, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO ceremonies (ckey, identity_id, data, expires_at) VALUES ($1, $2, $3, $4)`,
			spent.Key, spent.IdentityID, columns.NonNil(spent.Data), exp)
		if err != nil {
			return dbErr(err, "ceremony "+spent.Key)
		}
		tag, err := tx.Exec(ctx, advanceSign, int64(count), cred)
		if err != nil {
			return dbErr(err, "advance the sign count of credential "+cred)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		if err := live(ctx, tx, liveChip, cred, "chip credential "+cred); err != nil {
			return err
		}
		return errGuard
	})
}

// commitLogin runs guard, the update of c and the insert of sess in one
// transaction. errGuard from guard becomes (false, nil).
func (s *Store) commitLogin(ctx context.Context, c domain.Change, sess store.Session, guard func(context.Context, pgx.Tx) error) (bool, error) {
	ts, sts, err := col.LoginChange(&c, &sess)
	if err != nil {
		return false, err
	}
	a := &c.Authenticator
	from := int64(a.Version - 1)
	err = s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := guard(ctx, tx); err != nil {
			return err
		}
		var identityID, kind, serial, cred string
		err := tx.QueryRow(ctx, `UPDATE authenticators SET state = $1, label = $2, failures = $3, suspensions = $4,
	activated_at = $5, last_used_at = $6, suspended_at = $7, suspend_reason = $8, blocked_at = $9, block_reason = $10, version = $11
WHERE id = $12 AND version = $13
RETURNING identity_id, kind, serial, credential_id`,
			string(a.State), a.Label, int64(a.Failures), int64(a.Suspensions),
			ts[0], ts[1], ts[2], string(a.SuspendReason), ts[3], string(a.BlockReason), int64(a.Version),
			a.ID, from).Scan(&identityID, &kind, &serial, &cred)
		if errors.Is(err, pgx.ErrNoRows) {
			return missingOrConflict(ctx, tx, "authenticators", "authenticator", a.ID, a.Version-1)
		}
		if err != nil {
			return dbErr(err, "update authenticator "+a.ID)
		}
		if identityID != a.IdentityID || kind != string(a.Kind) || serial != a.Serial || cred != a.CredentialID {
			return fmt.Errorf("postgres: %w: authenticator %s: the identity, kind and reference cannot change", store.ErrInvalid, a.ID)
		}
		if identityID != sess.IdentityID {
			return fmt.Errorf("postgres: %w: the session of %s is not for the identity of authenticator %s", store.ErrInvalid, sess.IdentityID, a.ID)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO sessions (token_hash, identity_id, via, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
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

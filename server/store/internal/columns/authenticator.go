package columns

import (
	"fmt"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// AuthenticatorArgs returns the values of the authenticator columns (id,
// identity_id, kind, state, serial, credential_id, label, failures,
// suspensions, created_at, activated_at, last_used_at, suspended_at,
// suspend_reason, blocked_at, block_reason, version) for a, in order. It
// returns an error wrapping store.ErrInvalid for a value out of range.
func (c Codec) AuthenticatorArgs(a *domain.Authenticator) ([]any, error) {
	ts, err := c.Times(a.CreatedAt, a.ActivatedAt, a.LastUsedAt, a.SuspendedAt, a.BlockedAt)
	if err != nil {
		return nil, err
	}
	v, err := c.U63(a.Version, "version")
	if err != nil {
		return nil, err
	}
	return []any{a.ID, a.IdentityID, string(a.Kind), string(a.State), a.Serial, a.CredentialID, a.Label,
		int64(a.Failures), int64(a.Suspensions), ts[0], ts[1], ts[2], ts[3], string(a.SuspendReason), ts[4], string(a.BlockReason),
		v}, nil
}

// AuthenticatorRow receives an authenticator row, in the column order of
// AuthenticatorArgs.
type AuthenticatorRow struct {
	A                                           domain.Authenticator
	Kind, State, SuspendReason, BlockReason     string
	Created, Activated, Used, Suspended, Blockd *int64
	Failures, Suspensions, Version              int64
}

// Dest returns the scan destinations of r, in column order.
func (r *AuthenticatorRow) Dest() []any {
	a := &r.A
	return []any{&a.ID, &a.IdentityID, &r.Kind, &r.State, &a.Serial, &a.CredentialID, &a.Label, &r.Failures, &r.Suspensions,
		&r.Created, &r.Activated, &r.Used, &r.Suspended, &r.SuspendReason, &r.Blockd, &r.BlockReason, &r.Version}
}

// Authenticator decodes a scanned row. It returns an error wrapping
// store.ErrInvalid for a stored value that is not a valid authenticator.
func (c Codec) Authenticator(r *AuthenticatorRow) (domain.Authenticator, error) {
	ver, err := c.FromI64(r.Version, "version")
	if err != nil {
		return domain.Authenticator{}, err
	}
	a := r.A
	if c.Int32Counters && (r.Failures < 0 || r.Failures > 1<<31-1 || r.Suspensions < 0 || r.Suspensions > 1<<31-1) {
		return domain.Authenticator{}, fmt.Errorf("%s: %w: authenticator %s: counters out of range", c.Name, store.ErrInvalid, a.ID)
	}
	a.Kind = device.Kind(r.Kind)
	a.State = domain.State(r.State)
	a.Failures = int(r.Failures)
	a.Suspensions = int(r.Suspensions)
	a.CreatedAt = FromNanos(r.Created)
	a.ActivatedAt = FromNanos(r.Activated)
	a.LastUsedAt = FromNanos(r.Used)
	a.SuspendedAt = FromNanos(r.Suspended)
	a.SuspendReason = domain.Reason(r.SuspendReason)
	a.BlockedAt = FromNanos(r.Blockd)
	a.BlockReason = domain.Reason(r.BlockReason)
	a.Version = ver
	if err := a.Validate(); err != nil {
		return domain.Authenticator{}, fmt.Errorf("%s: %w: stored %w", c.Name, store.ErrInvalid, err)
	}
	return a, nil
}

// NewAuthenticator checks the change ch that creates an authenticator with
// element el (store.CheckChange, no removal, wipe or tombstone, the element
// fits the kind) and returns the values of its authenticator columns. The
// errors wrap store.ErrInvalid.
func (c Codec) NewAuthenticator(ch *domain.Change, el *store.Element) ([]any, error) {
	if err := store.CheckChange(ch); err != nil {
		return nil, err
	}
	a := &ch.Authenticator
	if ch.Remove || ch.WipeSecret || ch.Tombstone != nil {
		return nil, fmt.Errorf("%s: %w: authenticator %s: a new authenticator cannot be removed, wiped or tombstoned", c.Name, store.ErrInvalid, a.ID)
	}
	if err := el.Check(a.Kind); err != nil {
		return nil, err
	}
	return c.AuthenticatorArgs(a)
}

// Change checks the change ch of a stored authenticator (store.CheckChange,
// version 2 or more) and returns the column values of its activated_at,
// last_used_at, suspended_at and blocked_at, in that order. The errors wrap
// store.ErrInvalid.
func (c Codec) Change(ch *domain.Change) ([]any, error) {
	if err := store.CheckChange(ch); err != nil {
		return nil, err
	}
	a := &ch.Authenticator
	if a.Version < 2 {
		return nil, fmt.Errorf("%s: %w: authenticator %s: a change needs version 2 or more, not %d", c.Name, store.ErrInvalid, a.ID, a.Version)
	}
	return c.Times(a.ActivatedAt, a.LastUsedAt, a.SuspendedAt, a.BlockedAt)
}

// LoginChange is Change for the change ch of a login, which only updates
// the record (no removal, wipe or tombstone), with the session sess it
// opens (store.Session.Check). It also returns the column values of the
// session's created_at and expires_at.
func (c Codec) LoginChange(ch *domain.Change, sess *store.Session) (ts, sts []any, err error) {
	if err := store.CheckChange(ch); err != nil {
		return nil, nil, err
	}
	a := &ch.Authenticator
	if ch.Remove || ch.WipeSecret || ch.Tombstone != nil {
		return nil, nil, fmt.Errorf("%s: %w: authenticator %s: a login change only updates the record", c.Name, store.ErrInvalid, a.ID)
	}
	if a.Version < 2 {
		return nil, nil, fmt.Errorf("%s: %w: authenticator %s: a change needs version 2 or more, not %d", c.Name, store.ErrInvalid, a.ID, a.Version)
	}
	if err := sess.Check(); err != nil {
		return nil, nil, err
	}
	if ts, err = c.Times(a.ActivatedAt, a.LastUsedAt, a.SuspendedAt, a.BlockedAt); err != nil {
		return nil, nil, err
	}
	if sts, err = c.Times(sess.CreatedAt, sess.ExpiresAt); err != nil {
		return nil, nil, err
	}
	return ts, sts, nil
}

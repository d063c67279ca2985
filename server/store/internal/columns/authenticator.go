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
	if err := el.Check(a.Kind); err != nil && !PendingCodeDevice(a, el) {
		return nil, err
	}
	return c.AuthenticatorArgs(a)
}

// PendingCodeDevice reports whether a is a pending code device added
// without an element: it gets one when it is activated
// (store.Logins.ActivateCodeDevice).
func PendingCodeDevice(a *domain.Authenticator, el *store.Element) bool {
	return a.State == domain.StatePending && (a.Kind == device.KindCodeDisplay || a.Kind == device.KindAudioCodeReader) &&
		el.Chip == nil && el.Code == nil && el.App == nil && el.Password == nil
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

// Login checks the login l (its change is a plain update of version 2 or
// more; its session, when set, passes store.Session.Check and belongs to
// the identity of the authenticator changed) and returns the column values
// of the change's activated_at, last_used_at, suspended_at and blocked_at,
// then of the session's created_at and expires_at (nil when there is no
// session).
func (c Codec) Login(l *store.Login) (ts, sts []any, err error) {
	ch := &l.Change
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
	if l.OTP != nil && l.Chip != nil {
		return nil, nil, fmt.Errorf("%s: %w: a login has one replay guard at most", c.Name, store.ErrInvalid)
	}
	if ts, err = c.Times(a.ActivatedAt, a.LastUsedAt, a.SuspendedAt, a.BlockedAt); err != nil {
		return nil, nil, err
	}
	if se := l.Session; se != nil {
		if err := se.Check(); err != nil {
			return nil, nil, err
		}
		if se.IdentityID != a.IdentityID {
			return nil, nil, fmt.Errorf("%s: %w: the session of %s is not for the identity of authenticator %s", c.Name, store.ErrInvalid, se.IdentityID, a.ID)
		}
		if sts, err = c.Times(se.CreatedAt, se.ExpiresAt); err != nil {
			return nil, nil, err
		}
	}
	return ts, sts, nil
}

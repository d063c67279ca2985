package domain

import (
	"time"

	"github.com/authbench/authbench/device"
)

// The defaults of Policy (DESIGN §1).
const (
	DefaultMaxFailures    = 3 // consecutive failures that suspend
	DefaultMaxSuspensions = 3 // failure suspensions that block for good
	DefaultMaxApps        = 3 // apps pending, active or suspended
	DefaultMaxCodeDevices = 1 // code displays and audio code readers together
	DefaultMaxChips       = 1 // chips
	DefaultMaxPasswords   = 1 // passwords

	// DefaultPendingExpiry is how long an added authenticator waits for
	// its activation.
	DefaultPendingExpiry = 24 * time.Hour
	// DefaultMaxActivationFailures is how many wrong activation codes a
	// code device serial takes, from everybody together, before it is
	// locked (Policy.MaxActivationFailures).
	DefaultMaxActivationFailures = DefaultMaxFailures * DefaultMaxSuspensions
)

// Policy holds every number the lifecycle rules use. The zero value is the
// default (DefaultPolicy): a field left at zero takes its default, and a
// negative count means "no limit". The transitions are methods of Policy so
// that each rule reads its numbers from one place.
type Policy struct {
	// MaxFailures is the number of consecutive failed attempts (wrong PIN,
	// password or one-time code, bad signature, sign-counter regression)
	// whose last one suspends the authenticator. Default 3.
	MaxFailures int `json:"max_failures,omitzero"`
	// MaxSuspensions is the number of failure-caused suspensions whose last
	// one blocks the authenticator permanently instead (reason
	// "escalation"). Default 3.
	MaxSuspensions int `json:"max_suspensions,omitzero"`
	// MaxApps limits the MitID apps of one identity. Default 3.
	MaxApps int `json:"max_apps,omitzero"`
	// MaxCodeDevices limits code displays and audio code readers of one
	// identity, counted together. Default 1.
	MaxCodeDevices int `json:"max_code_devices,omitzero"`
	// MaxChips limits the chips of one identity. Default 1.
	MaxChips int `json:"max_chips,omitzero"`
	// MaxPasswords limits the passwords of one identity. Default 1.
	MaxPasswords int `json:"max_passwords,omitzero"`
	// SuspensionExpiry is how long a suspension caused by failed attempts
	// lasts before it lifts by itself. 0 (the default) means never: MitID
	// temporarily suspended authenticators stay suspended until they are
	// reactivated (self-service or support). Suspensions imposed by support
	// or the system never expire.
	SuspensionExpiry time.Duration `json:"suspension_expiry,omitzero"`
	// ActivationDelay is how long after it was added a pending
	// authenticator can first be activated. 0 (the default) means at once.
	ActivationDelay time.Duration `json:"activation_delay,omitzero"`
	// PendingExpiry is how long a pending authenticator (added, not yet
	// activated) can be activated, from the time it could first be
	// (ActivationDelay after it was added); after it, activation is refused with
	// ErrExpired and the pending add is only good for Cancel. Default 24 h;
	// negative means never.
	PendingExpiry time.Duration `json:"pending_expiry,omitzero"`
	// MaxActivationFailures is the number of wrong activation codes a code
	// device serial takes, counted over every identity that adds it,
	// before its imported secret is locked and only a new import by
	// support unlocks it. Whoever adds a serial must prove possession with
	// a current code; this bounds how many codes anybody can guess.
	// Default 9 (MaxFailures × MaxSuspensions).
	MaxActivationFailures int `json:"max_activation_failures,omitzero"`
	// CountReplays makes a replayed one-time code (CauseReplayedCode) count
	// as a failed attempt. By default it is audited but not counted: a
	// replay can never succeed, and counting it would suspend the owner's
	// device when a client or two replicas submit one code twice.
	CountReplays bool `json:"count_replays,omitzero"`
}

// DefaultPolicy returns the policy DESIGN §1 describes, with every field
// spelled out.
func DefaultPolicy() Policy {
	return Policy{
		MaxFailures:    DefaultMaxFailures,
		MaxSuspensions: DefaultMaxSuspensions,
		MaxApps:        DefaultMaxApps,
		MaxCodeDevices: DefaultMaxCodeDevices,
		MaxChips:       DefaultMaxChips,
		MaxPasswords:   DefaultMaxPasswords,
		PendingExpiry:  DefaultPendingExpiry,

		MaxActivationFailures: DefaultMaxActivationFailures,
	}
}

// limit returns v, or def when v is zero, or -1 (no limit) when v < 0.
func limit(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return -1
	}
	return v
}

func (p Policy) maxFailures() int    { return limit(p.MaxFailures, DefaultMaxFailures) }
func (p Policy) maxSuspensions() int { return limit(p.MaxSuspensions, DefaultMaxSuspensions) }

// Failures returns the number of consecutive failed attempts that suspends
// an authenticator (Policy.MaxFailures with its default), or -1 for no
// limit.
func (p Policy) Failures() int { return p.maxFailures() }

// ActivationFailures returns the number of wrong activation codes that
// locks a code device serial (Policy.MaxActivationFailures with its
// default), or -1 for no limit.
func (p Policy) ActivationFailures() int {
	return limit(p.MaxActivationFailures, DefaultMaxActivationFailures)
}

func (p Policy) pendingExpiry() time.Duration {
	if p.PendingExpiry == 0 {
		return DefaultPendingExpiry
	}
	return p.PendingExpiry
}

// PendingExpired reports whether a is a pending authenticator whose
// activation window has closed at now: Policy.PendingExpiry after it could
// first be activated (its creation plus Policy.ActivationDelay).
func (p Policy) PendingExpired(a Authenticator, now time.Time) bool {
	e := p.pendingExpiry()
	return a.State == StatePending && e > 0 && !a.CreatedAt.IsZero() &&
		!now.Before(a.CreatedAt.Add(max(p.ActivationDelay, 0)+e))
}

// Quota returns how many authenticators of kind k (counted with the kinds
// that share its quota) one identity may hold, or -1 for no limit, or 0 for
// an unknown kind.
func (p Policy) Quota(k device.Kind) int {
	switch k {
	case device.KindApp:
		return limit(p.MaxApps, DefaultMaxApps)
	case device.KindCodeDisplay, device.KindAudioCodeReader:
		return limit(p.MaxCodeDevices, DefaultMaxCodeDevices)
	case device.KindChip:
		return limit(p.MaxChips, DefaultMaxChips)
	case device.KindPassword:
		return limit(p.MaxPasswords, DefaultMaxPasswords)
	}
	return 0
}

// counts reports whether a failure with cause c counts toward MaxFailures.
func (p Policy) counts(c Cause) bool {
	return c != CauseReplayedCode || p.CountReplays
}

// expired reports whether a's suspension has lifted by itself at now.
func (p Policy) expired(a *Authenticator, now time.Time) bool {
	return a.State == StateSuspended && a.SuspendReason == ReasonFailures &&
		p.SuspensionExpiry > 0 && !now.Before(a.SuspendedAt.Add(p.SuspensionExpiry))
}

// sameQuota reports whether kinds a and b share one quota (DESIGN §1: one
// code device, display or audio reader).
func sameQuota(a, b device.Kind) bool {
	return a == b || isCodeDevice(a) && isCodeDevice(b)
}

func isCodeDevice(k device.Kind) bool {
	return k == device.KindCodeDisplay || k == device.KindAudioCodeReader
}

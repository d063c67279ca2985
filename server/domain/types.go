package domain

import (
	"fmt"
	"strings"
	"time"

	"github.com/authbench/authbench/device"
)

// State is the lifecycle state of one authenticator (DESIGN §1).
type State string

// The states of an authenticator.
const (
	StatePending   State = "pending"   // added, not yet activated
	StateActive    State = "active"    // usable
	StateSuspended State = "suspended" // temporarily blocked; can be reactivated
	StateBlocked   State = "blocked"   // permanently blocked; terminal
)

// States lists every authenticator state in lifecycle order.
var States = []State{StatePending, StateActive, StateSuspended, StateBlocked}

// Valid reports whether s is one of States.
func (s State) Valid() bool {
	switch s {
	case StatePending, StateActive, StateSuspended, StateBlocked:
		return true
	}
	return false
}

// ParseState returns the State named s. It returns an error wrapping
// ErrInvalid when s names no state.
func ParseState(s string) (State, error) {
	if st := State(s); st.Valid() {
		return st, nil
	}
	return "", fmt.Errorf("domain: %w: unknown authenticator state %q", ErrInvalid, s)
}

// IdentityState is the state of a whole identity (DESIGN §1).
type IdentityState string

// The states of an identity.
const (
	IdentityActive  IdentityState = "active"
	IdentityBlocked IdentityState = "temporarily-blocked" // on suspected misuse; only support lifts it
)

// Valid reports whether s is IdentityActive or IdentityBlocked.
func (s IdentityState) Valid() bool { return s == IdentityActive || s == IdentityBlocked }

// ParseIdentityState returns the IdentityState named s. It returns an error
// wrapping ErrInvalid when s names no state.
func ParseIdentityState(s string) (IdentityState, error) {
	if st := IdentityState(s); st.Valid() {
		return st, nil
	}
	return "", fmt.Errorf("domain: %w: unknown identity state %q", ErrInvalid, s)
}

// Reason says why an authenticator was suspended or blocked, or why an
// identity was blocked. Callers may use their own words; the constants are
// the ones this package sets or recognises.
type Reason string

// Reasons. ReasonFailures and ReasonEscalation are reserved for the
// automatic transitions of RecordFailure; Suspend and Block refuse them.
const (
	ReasonFailures    Reason = "failures"    // too many consecutive failed attempts
	ReasonEscalation  Reason = "escalation"  // the last allowed suspension; permanent
	ReasonLost        Reason = "lost"        // the owner lost the device
	ReasonCompromised Reason = "compromised" // the owner suspects abuse
	ReasonMisuse      Reason = "misuse"      // support or the system suspects misuse
)

// Ref names what a permanent block revokes: the physical device and the
// security element. Which fields a kind needs (CheckAdd enforces it):
//
//	chip                CredentialID (required), Serial (optional)
//	code-display        Serial (required)
//	audio-code-reader   Serial (required)
//	app                 CredentialID: the app key's ID (required)
//	password            neither
//
// CredentialID is text so that values compare exactly; for a chip it is the
// credential ID in unpadded base64url, as WebAuthn JSON carries it
// (EncodeCredentialID).
type Ref struct {
	Serial       string `json:"serial,omitempty"`
	CredentialID string `json:"credential_id,omitempty"`
}

// Identity is a person as the server knows them.
type Identity struct {
	ID            string        `json:"id"`
	State         IdentityState `json:"state"`
	BlockedReason Reason        `json:"blocked_reason,omitempty"`
	BlockedAt     time.Time     `json:"blocked_at,omitzero"`
	BlockedBy     Actor         `json:"blocked_by,omitzero"`
	CreatedAt     time.Time     `json:"created_at,omitzero"`
	// Version grows by one with every change, for optimistic locking.
	Version uint64 `json:"version"`
}

// Validate reports whether id is a well-formed record. It returns an error
// wrapping ErrInvalid when it is not.
func (id *Identity) Validate() error {
	switch {
	case id.ID == "":
		return fmt.Errorf("domain: %w: identity without an ID", ErrInvalid)
	case !id.State.Valid():
		return fmt.Errorf("domain: %w: identity %s has unknown state %q", ErrInvalid, id.ID, id.State)
	}
	return nil
}

// Authenticator is one authenticator of an identity and where it is in its
// lifecycle. The security element itself (keys, secrets, counters) is kept
// by the store, next to it.
type Authenticator struct {
	ID         string      `json:"id"`
	IdentityID string      `json:"identity_id"`
	Kind       device.Kind `json:"kind"`
	State      State       `json:"state"`
	Ref
	Label string `json:"label,omitempty"`
	// Failures counts consecutive failed attempts since the last success
	// or reactivation.
	Failures int `json:"failures"`
	// Suspensions counts the suspensions caused by failed attempts over the
	// authenticator's life; it is never reset.
	Suspensions   int       `json:"suspensions"`
	CreatedAt     time.Time `json:"created_at,omitzero"`
	ActivatedAt   time.Time `json:"activated_at,omitzero"`
	LastUsedAt    time.Time `json:"last_used_at,omitzero"`
	SuspendedAt   time.Time `json:"suspended_at,omitzero"`
	SuspendReason Reason    `json:"suspend_reason,omitempty"`
	BlockedAt     time.Time `json:"blocked_at,omitzero"`
	BlockReason   Reason    `json:"block_reason,omitempty"`
	// Version grows by one with every change, for optimistic locking.
	Version uint64 `json:"version"`
}

// Validate reports whether a is a well-formed record. It returns an error
// wrapping ErrInvalid when it is not.
func (a *Authenticator) Validate() error {
	switch {
	case a.ID == "":
		return fmt.Errorf("domain: %w: authenticator without an ID", ErrInvalid)
	case a.IdentityID == "":
		return fmt.Errorf("domain: %w: authenticator %s belongs to no identity", ErrInvalid, a.ID)
	case !a.Kind.Valid():
		return fmt.Errorf("domain: %w: authenticator %s has unknown kind %q", ErrInvalid, a.ID, a.Kind)
	case !a.State.Valid():
		return fmt.Errorf("domain: %w: authenticator %s has unknown state %q", ErrInvalid, a.ID, a.State)
	case a.Failures < 0 || a.Suspensions < 0:
		return fmt.Errorf("domain: %w: authenticator %s has negative counters", ErrInvalid, a.ID)
	}
	return nil
}

// Tombstone is what remains of an authenticator after a permanent block,
// once its security element is wiped: enough to refuse its serial number or
// credential forever and to explain why.
type Tombstone struct {
	IdentityID      string      `json:"identity_id"`
	AuthenticatorID string      `json:"authenticator_id"`
	Kind            device.Kind `json:"kind"`
	Ref
	Reason    Reason    `json:"reason"`
	BlockedAt time.Time `json:"blocked_at"`
	By        Actor     `json:"by"`
}

// RevokesSerial reports whether t makes its serial number unusable: true for
// code displays and audio code readers, whose secret cannot be renewed. A
// chip's serial is not revoked: the chip can hold a new credential.
func (t *Tombstone) RevokesSerial() bool { return isCodeDevice(t.Kind) && t.Serial != "" }

// ActorKind says in which role someone acts.
type ActorKind string

// The roles.
const (
	ActorOwner   ActorKind = "owner"   // the person, through a session of their own (self-service)
	ActorSupport ActorKind = "support" // a support operator, with a support credential
	ActorSystem  ActorKind = "system"  // the server itself (login counting, expiry, misuse detection)
)

// Actor says who made a change and how. For the owner, ID is the identity
// ID and Via the IDs of the authenticators their session was proven with,
// joined by ViaSep ("pw-1+kv-2"); for support, ID is the operator's ID; for
// the system, ID names the component.
type Actor struct {
	Kind ActorKind `json:"kind"`
	ID   string    `json:"id,omitempty"`
	Via  string    `json:"via,omitempty"`
}

// ViaSep separates the authenticator IDs in Actor.Via. Authenticator IDs
// never contain it.
const ViaSep = "+"

// Owner returns the actor for the person of identity identityID acting
// through a session proven with the authenticators via (one, or the two
// factors of a login).
func Owner(identityID string, via ...string) Actor {
	return Actor{Kind: ActorOwner, ID: identityID, Via: strings.Join(via, ViaSep)}
}

// Proofs returns the authenticator IDs of a.Via, nil when it is empty.
func (a Actor) Proofs() []string {
	if a.Via == "" {
		return nil
	}
	return strings.Split(a.Via, ViaSep)
}

// Support returns the actor for support operator operatorID.
func Support(operatorID string) Actor { return Actor{Kind: ActorSupport, ID: operatorID} }

// System returns the actor for a component of the server itself.
func System(component string) Actor { return Actor{Kind: ActorSystem, ID: component} }

// loginActor is the actor of RecordSuccess, RecordFailure and Expire.
var loginActor = System("login")

// String returns "kind:id", with " via ID" when Via is set.
func (a Actor) String() string {
	s := string(a.Kind) + ":" + a.ID
	if a.Via != "" {
		s += " via " + a.Via
	}
	return s
}

// Cause says why an attempt failed.
type Cause string

// Causes of failed attempts.
const (
	CauseWrongPIN      Cause = "wrong-pin"      // MitID app PIN
	CauseWrongPassword Cause = "wrong-password" // MitID password
	CauseWrongCode     Cause = "wrong-code"     // one-time code of a code device
	CauseBadSignature  Cause = "bad-signature"  // chip or app signature did not verify
	CauseSignCount     Cause = "sign-count"     // chip counter did not increase (possible clone)
	CauseReplayedCode  Cause = "replayed-code"  // one-time code already used (RFC 6238 §5.2)
)

// Failure describes one failed attempt for RecordFailure. Details are copied
// into the audit event.
type Failure struct {
	Cause   Cause
	Details map[string]string
	// Anonymous marks an attempt whose caller had proven no other factor of
	// the identity first: a password, which anybody who knows the
	// identity's ID can type. It counts toward suspension like any other,
	// but the suspension it causes does not count toward a permanent block
	// (see RecordFailure): an anonymous caller can make the password
	// unavailable for a while, never destroy it. Second factors (a code,
	// a chip assertion) are only asked for after the right password, and
	// an app's PIN only after a valid signature of the app's key, so their
	// failures are not anonymous.
	Anonymous bool
}

// Change is the result of an authenticator transition: the new value to
// store, the events to append to the audit log, and what the store must do
// besides.
type Change struct {
	Authenticator Authenticator
	Events        []Event
	// WipeSecret asks the store to delete the security element (key
	// material, secret, verifier) now, in the same transaction.
	WipeSecret bool
	// Tombstone, when set, is to be stored: the authenticator was blocked
	// for good.
	Tombstone *Tombstone
	// Remove asks the store to delete the authenticator record: a pending
	// authenticator was cancelled.
	Remove bool
}

// IdentityChange is the result of an identity transition.
type IdentityChange struct {
	Identity Identity
	Events   []Event
}

package store

import (
	"context"
	"errors"
	"iter"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
)

// Sentinel errors. Every error a Store returns for one of these conditions
// wraps the sentinel (errors.Is), with the record named in the message.
var (
	// ErrNotFound: no such record (or an expired ceremony or session, or
	// a security element whose key material was wiped).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the stored record is not at the version the change was
	// computed from (optimistic locking). Reload, re-run the domain
	// transition, and apply it again.
	ErrConflict = errors.New("version conflict")
	// ErrDuplicate: a unique value is taken: an ID, a credential ID (unique
	// forever, also after a permanent block), a code-device serial in use
	// or revoked, a ceremony key, a session token.
	ErrDuplicate = errors.New("already exists")
	// ErrInvalid: a malformed argument (empty ID, a version that cannot
	// follow a stored one, an element that does not fit the kind, a value
	// out of range), or a malformed row read back from the database.
	ErrInvalid = errors.New("invalid record")
	// ErrExhausted: no attempt can be reserved (Attempts.ReserveAttempt):
	// the authenticator is not in a state that takes attempts, or its
	// failures and the attempts in flight already reach the limit.
	ErrExhausted = errors.New("no attempt left")
	// ErrSpent: the single-use ceremony a write was to mark as used was
	// marked so already (Authenticators.CreateRegistered).
	ErrSpent = errors.New("the ceremony was used already")
)

// Store is the server's persistence boundary. It is grouped by aggregate;
// a consumer that needs only part of it declares the smaller interface
// (Identities, Authenticators, ...). Implementations are safe for
// concurrent use by many goroutines and, where the database allows it, by
// several processes; see the package documentation.
type Store interface {
	Identities
	Authenticators
	Elements
	Tombstones
	Imports
	Ceremonies
	Sessions
	AuditLog
	AuditCheckpoints
	Attempts
	Logins
	Sealing
	// Close releases the database. Calls made after Close fail.
	Close() error
}

// Identities keeps domain.Identity records.
type Identities interface {
	// CreateIdentity stores the new identity c.Identity and appends
	// c.Events to the audit log, and then stores each of the identity's
	// first authenticators as CreateAuthenticator does (raising the
	// identity's AuthenticatorSet.Version once per authenticator, with the
	// same uniqueness checks) and appends its events, in order; all in one
	// transaction, so that a crash or an error leaves either all of it or
	// nothing. It returns an error wrapping ErrInvalid (no ID, unknown
	// state, Version 0; an authenticator of another identity, or one
	// CreateAuthenticator would refuse as invalid) or ErrDuplicate (the
	// identity ID is taken, or a unique value of an authenticator is, as
	// for CreateAuthenticator), or the error of the Chainer.
	CreateIdentity(ctx context.Context, c domain.IdentityChange, first ...NewAuthenticator) error
	// Identity returns the identity with ID id, or an error wrapping
	// ErrNotFound.
	Identity(ctx context.Context, id string) (domain.Identity, error)
	// UpdateIdentity stores c.Identity in place of the stored identity whose
	// Version is c.Identity.Version-1, and appends c.Events, atomically. It
	// returns an error wrapping ErrConflict (the stored Version differs),
	// ErrNotFound or ErrInvalid.
	UpdateIdentity(ctx context.Context, c domain.IdentityChange) error
}

// NewAuthenticator is an authenticator to create together with its
// identity (Identities.CreateIdentity): Change is the change of
// domain.Policy.Add (possibly followed by Activate) and Element its
// security element, as for Authenticators.CreateAuthenticator.
type NewAuthenticator struct {
	Change  domain.Change
	Element Element
}

// Authenticators keeps domain.Authenticator records together with their
// security elements.
type Authenticators interface {
	// CreateAuthenticator stores the new authenticator c.Authenticator (the
	// Change of domain.Policy.Add) with its security element el, appends
	// c.Events, and, for a code device with an element, consumes the
	// pending Import of its serial if there is one; all in one transaction.
	// el must fit the kind (Element.Check), except that a pending code
	// device has no element yet (the zero Element): it gets one when
	// ActivateCodeDevice proves possession. It returns an error wrapping ErrNotFound (no such
	// identity), ErrInvalid, or ErrDuplicate: the authenticator ID is
	// taken, the credential ID was ever registered before (credential IDs
	// are unique forever), the serial is in use by another authenticator of
	// the same quota that is neither pending nor blocked, or a tombstone
	// revokes the code device serial. Several identities may hold pending
	// adds of one serial; the first to activate it takes it. Call domain.Policy.CheckAdd first for the person's
	// error message; these checks are what keeps concurrent adds honest.
	//
	// CreateAuthenticator does not guard the quotas (it raises the
	// identity's AuthenticatorSet.Version all the same); adding on behalf
	// of a person goes through CreateAuthenticatorAt.
	CreateAuthenticator(ctx context.Context, c domain.Change, el Element) error
	// CreateAuthenticatorAt is CreateAuthenticator guarded by the version
	// of the identity's authenticator set that c was computed from
	// (AuthenticatorSet.Version): it stores nothing and returns an error
	// wrapping ErrConflict when another authenticator was created for the
	// identity since. This keeps the quotas of domain.Policy.CheckAdd exact
	// under concurrent adds, also across replicas: of two adds computed
	// from one version, at most one is stored; the other reloads the set
	// with AuthenticatorSet, re-runs domain.Policy.Add, and tries again.
	// It returns the errors of CreateAuthenticator too.
	CreateAuthenticatorAt(ctx context.Context, c domain.Change, el Element, version uint64) error
	// CreateRegistered is CreateAuthenticatorAt for an authenticator
	// registered through a single-use ceremony that the server keeps no
	// record of (a sealed token): it also stores spent, the ceremony's
	// mark of use (a Ceremony keyed by its challenge, kept until the
	// token expires), in the same transaction, so that the registration
	// and the end of its ceremony are one durable write. When a ceremony
	// with spent.Key is stored already it stores nothing and returns an
	// error wrapping ErrSpent; it returns the errors of
	// CreateAuthenticatorAt and PutCeremony too.
	CreateRegistered(ctx context.Context, c domain.Change, el Element, version uint64, spent Ceremony) error
	// AuthenticatorSet returns identity identityID with its
	// authenticators (as ListAuthenticators) and the version of the set,
	// the value CreateAuthenticatorAt checks, all read at once (one
	// snapshot): what an add needs, in one read. It returns an error
	// wrapping ErrNotFound (no such identity).
	AuthenticatorSet(ctx context.Context, identityID string) (AuthenticatorSet, error)
	// AuthenticatorSetWithPasswords is AuthenticatorSet with the elements
	// of the identity's passwords, in the same read (one snapshot): what
	// the first step of a password login needs. The elements are in the
	// order of the set: elements[i] is the element of
	// set.Authenticators[i] when that is a password with an element, nil
	// otherwise.
	AuthenticatorSetWithPasswords(ctx context.Context, identityID string) (set AuthenticatorSet, elements []*Element, err error)
	// Authenticator returns the authenticator with ID id, or an error
	// wrapping ErrNotFound.
	Authenticator(ctx context.Context, id string) (domain.Authenticator, error)
	// AuthenticatorWithIdentity returns the authenticator with ID id and
	// its identity, read together (one statement: a login needs both), or
	// an error wrapping ErrNotFound.
	AuthenticatorWithIdentity(ctx context.Context, id string) (domain.Identity, domain.Authenticator, error)
	// ListAuthenticators returns the authenticators of identity identityID
	// in the order they were created (all states; none is not an error).
	ListAuthenticators(ctx context.Context, identityID string) ([]domain.Authenticator, error)
	// FindAuthenticators returns the authenticators of any identity whose
	// Serial equals ref.Serial or whose CredentialID equals
	// ref.CredentialID (empty fields match nothing), blocked ones included:
	// what domain.Policy.CheckAdd needs besides the identity's own.
	FindAuthenticators(ctx context.Context, ref domain.Ref) ([]domain.Authenticator, error)
	// UpdateAuthenticator stores a in place of the stored authenticator
	// whose Version is a.Version-1: ApplyChange with no events and no
	// effects. The identity, kind, reference and creation time are fixed
	// at creation and not changed. It returns the errors of ApplyChange.
	UpdateAuthenticator(ctx context.Context, a domain.Authenticator) error
	// ApplyChange persists the result of a domain transition in one
	// transaction: it stores c.Authenticator if the stored Version is
	// c.Authenticator.Version-1 (or deletes the record when c.Remove),
	// wipes the key material of the security element when c.WipeSecret,
	// inserts c.Tombstone when set, ends every session the authenticator
	// proved when it is no longer active (suspended, blocked, removed), and
	// appends c.Events. Either all of it happens or none. It returns an
	// error wrapping ErrConflict (the stored
	// Version differs: reload and retry), ErrNotFound, ErrInvalid (the
	// tombstone names another authenticator), ErrDuplicate (a tombstone for
	// it exists), or the error of the Chainer.
	ApplyChange(ctx context.Context, c domain.Change) error
}

// Elements reads and guards the security elements (DESIGN §1, the table of
// kinds). The guards are single atomic statements.
type Elements interface {
	// Element returns the security element of authenticator
	// authenticatorID; after a wipe, its key material is nil and WipedAt
	// is set. It returns an error wrapping ErrNotFound.
	Element(ctx context.Context, authenticatorID string) (Element, error)
	// ElementOfKind is Element for an authenticator whose kind the caller
	// has read already (kinds never change): one read fewer.
	ElementOfKind(ctx context.Context, authenticatorID string, kind device.Kind) (Element, error)
	// AuthenticatorWithElement returns authenticator id, its identity and,
	// when the authenticator is of kind and has one, its element, in one
	// read (nil when it has none or is of another kind). It returns an
	// error wrapping ErrNotFound when there is no such authenticator.
	AuthenticatorWithElement(ctx context.Context, id string, kind device.Kind) (domain.Identity, domain.Authenticator, *Element, error)
	// AdvanceOTPStep records that a one-time code of time step step was
	// accepted for the code device authenticatorID, with the clock drift
	// measured (in steps), if and only if step is above the highest step
	// used so far (RFC 6238 §5.2): UPDATE ... WHERE highest_step < step.
	// Accept the code only when it returns true; false means the code (or
	// a later one) was already used, also when another replica accepted it
	// a moment ago. It returns an error wrapping ErrNotFound (no code
	// device element, or it was wiped) or ErrInvalid (step above 2^63-1).
	AdvanceOTPStep(ctx context.Context, authenticatorID string, step uint64, drift int) (bool, error)
	// AdvanceSignCount records the signature counter count of an
	// assertion made with chip credential credentialID, following the rule
	// of WebAuthn Level 2 §6.1.1 and §7.2 step 21: it returns true and
	// stores count when count is above the stored counter, and true when
	// both are zero (the chip keeps no counter, CTAP 2.1 §6.1 allows a
	// constant 0). It returns false, changing nothing, when count is not
	// above a non-zero stored counter or is zero after a non-zero one: the
	// signal of a cloned chip (domain.CheckSignCount, CauseSignCount). Two
	// assertions carrying one non-zero counter value can thus never both
	// pass. For a chip without a counter nothing orders assertions: replay
	// protection then rests on ceremony challenges being taken once. It
	// returns an error wrapping ErrNotFound (no such chip credential, or its
	// element was wiped).
	AdvanceSignCount(ctx context.Context, credentialID string, count uint32) (bool, error)
	// UpdateSecret replaces the sealed OTP secret of code device
	// authenticatorID by to, if it is still from (key rotation with
	// server/secrets, compare-and-swap). It returns an error wrapping
	// ErrConflict (the stored secret is not from), ErrNotFound (no code
	// device element, or wiped) or ErrInvalid.
	UpdateSecret(ctx context.Context, authenticatorID string, from, to Sealed) error
	// UpdateVerifier replaces the argon2id verifier of a password, or the
	// PIN verifier of an app, by to if it is still from (a rehash with new
	// parameters, a new PIN; compare-and-swap). It returns an error
	// wrapping ErrConflict, ErrNotFound (no password or app element, or
	// wiped) or ErrInvalid (to is empty).
	UpdateVerifier(ctx context.Context, authenticatorID string, from, to string) error
}

// Sealing tells what the store holds sealed under master keys
// (server/secrets), so that a server can check before it serves that its
// keyring opens it (DESIGN §5, "Secrets at rest").
type Sealing interface {
	// SealedKeys returns, for each master key ID that sealed values in
	// the store name, how many values name it and one of them, in key ID
	// order: the OTP secrets of code devices (not wiped) and the secrets of
	// PSKC imports. An empty result means the store holds nothing sealed.
	SealedKeys(ctx context.Context) ([]SealedKey, error)
}

// Tombstones keeps what remains of permanently blocked authenticators. They
// are never deleted.
type Tombstones interface {
	// PutTombstone stores t. ApplyChange stores the tombstones of domain
	// transitions; this is for imports and repairs. A credential ID it
	// names counts as registered from then on, as that of a tombstone of
	// ApplyChange: CreateAuthenticator refuses it. It returns an error
	// wrapping ErrInvalid (no authenticator ID) or ErrDuplicate (a tombstone
	// for the authenticator exists).
	PutTombstone(ctx context.Context, t domain.Tombstone) error
	// FindTombstones returns the tombstones whose Serial equals ref.Serial
	// or whose CredentialID equals ref.CredentialID (empty fields match
	// nothing), oldest first, for domain.Policy.CheckAdd.
	FindTombstones(ctx context.Context, ref domain.Ref) ([]domain.Tombstone, error)
}

// Imports keeps code-device secrets imported from PSKC documents (RFC 6030)
// until the device is added to an identity.
type Imports interface {
	// PutImport stores im. It returns an error wrapping ErrInvalid or
	// ErrDuplicate (an import for the serial is waiting).
	PutImport(ctx context.Context, im Import) error
	// Import returns the import waiting for serial, or an error wrapping
	// ErrNotFound.
	Import(ctx context.Context, serial string) (Import, error)
	// TakeImport deletes the import waiting for serial and returns it, or
	// returns an error wrapping ErrNotFound. Of concurrent calls for one
	// serial exactly one succeeds.
	TakeImport(ctx context.Context, serial string) (Import, error)
	// ReplaceImport stores im in place of the import waiting for its
	// serial, with Failures back to zero (support unlocking a serial that
	// took too many wrong activation codes), or stores it when none waits.
	// It returns an error wrapping ErrInvalid.
	ReplaceImport(ctx context.Context, im Import) error
}

// Ceremonies keeps the state of two-step ceremonies between Begin and
// Finish (STYLE 17): WebAuthn challenges, login sessions.
type Ceremonies interface {
	// PutCeremony stores c until c.ExpiresAt. It returns an error wrapping
	// ErrInvalid (no key, no expiry) or ErrDuplicate (the key is taken).
	PutCeremony(ctx context.Context, c Ceremony) error
	// TakeCeremony deletes the ceremony with key key and returns it if it
	// has not expired at now, so that a challenge is used at most once: of
	// concurrent calls exactly one succeeds. It returns an error wrapping
	// ErrNotFound (unknown, already taken, or expired; an expired one is
	// deleted too).
	TakeCeremony(ctx context.Context, key string, now time.Time) (Ceremony, error)
	// SweepCeremonies deletes the ceremonies expired at now and returns how
	// many.
	SweepCeremonies(ctx context.Context, now time.Time) (int, error)
}

// Sessions keeps self-service sessions, by the hash of their bearer token.
// A session records the authenticators that proved it and lives only while
// they do (DESIGN §1): it ends at logout (DeleteSession, EndSession), at
// expiry, when any of them stops being active (ApplyChange and the login
// writes delete it in the transaction that changes the authenticator's
// state) and when the identity is blocked (UpdateIdentity). Session checks
// all of it again at every use, in the query that finds the session, so
// it holds across replicas whatever the order of the writes.
type Sessions interface {
	// PutSession stores s if its identity is active and every
	// authenticator in s.Authenticators belongs to it and is active. It
	// returns an error wrapping ErrInvalid (malformed, or an authenticator
	// of another identity), ErrNotFound (no such identity or
	// authenticator), ErrConflict (the identity or an authenticator is not
	// active) or ErrDuplicate (the token hash is taken, or the ID by
	// another session of the identity).
	PutSession(ctx context.Context, s Session) error
	// Session returns the session whose token hash is tokenHash if, at
	// now, it has not expired, its identity is active and every
	// authenticator that proved it is active; otherwise an error wrapping
	// ErrNotFound.
	Session(ctx context.Context, tokenHash []byte, now time.Time) (Session, error)
	// ListSessions returns the sessions of identity identityID that
	// Session would return at now, oldest first.
	ListSessions(ctx context.Context, identityID string, now time.Time) ([]Session, error)
	// EndSession ends the session with ID id of identity identityID. It
	// returns an error wrapping ErrNotFound when the identity has no such
	// session.
	EndSession(ctx context.Context, identityID, id string) error
	// DeleteSession ends the session (logout). Deleting an unknown session
	// is not an error.
	DeleteSession(ctx context.Context, tokenHash []byte) error
	// SweepSessions deletes the sessions expired at now and returns how many.
	SweepSessions(ctx context.Context, now time.Time) (int, error)
}

// Attempts reserves the right to check a guess before it is checked, as a
// smart card decrements its retry counter before comparing a PIN (DESIGN
// §1): of any number of guesses that arrive at once, on any number of
// replicas, at most the remaining count (the limit minus the failures
// recorded) are ever in flight, so at most that many are checked. A
// reservation ends with the outcome of its check (EndAttempt,
// FailImportAttempt, the Logins writes), or lapses at its expiry when the
// process checking it died.
type Attempts interface {
	// ReserveAttempt records attempt a as in flight if its subject takes
	// one more: an authenticator (a.AuthenticatorID) must be active, a
	// code device serial's import (a.Serial) must exist; and the subject's
	// failures plus its attempts in flight that have not expired at now
	// must be below max. It returns an error wrapping ErrExhausted when
	// the subject takes no more (reload it to see why), ErrNotFound (no
	// such authenticator or import), ErrInvalid or ErrDuplicate (the
	// attempt ID is taken).
	ReserveAttempt(ctx context.Context, a Attempt, max int, now time.Time) error
	// EndAttempt ends attempt id and applies c, when not nil, as
	// ApplyChange does (the failure, or a reset, that the check ended
	// with), in one transaction. An attempt that lapsed meanwhile is not
	// an error. It returns the errors of ApplyChange; nothing is written
	// when it returns an error.
	EndAttempt(ctx context.Context, id string, c *domain.Change) error
	// FailImportAttempt ends attempt id, counts one more wrong activation
	// code against the import of serial and appends events, in one
	// transaction, and returns the import's failures now. It returns an
	// error wrapping ErrNotFound when the import is gone.
	FailImportAttempt(ctx context.Context, id, serial string, events []domain.Event) (int, error)
	// SweepAttempts deletes the attempts lapsed at now and returns how
	// many.
	SweepAttempts(ctx context.Context, now time.Time) (int, error)
}

// AuditLog keeps the append-only, hash-chained audit log (DESIGN §5): one
// chain per identity, named by the identity ID, and one chain (named "")
// for events of no identity. Appends to different chains never wait for
// each other, in one process or across replicas.
type AuditLog interface {
	// AppendAudit appends events, in order, each to the chain of its
	// IdentityID, atomically: the events of one chain get consecutive
	// sequence numbers after the chain's head. It returns the error of the
	// Chainer, or an error wrapping ErrInvalid (the Chainer broke the
	// chain).
	AppendAudit(ctx context.Context, events ...domain.Event) error
	// ListAudit returns up to limit records of the chain of identity
	// identityID with Seq above after, in Seq order: pass the last Seq
	// seen to page on. limit <= 0 means 100.
	ListAudit(ctx context.Context, identityID string, after uint64, limit int) ([]AuditRecord, error)
	// AuditRecords yields every record, chain by chain (in byte order of
	// the identity ID, "" first), each chain in Seq order, for verifying
	// the chains. It reads in pages and holds no database resources
	// between yields, so the loop body may use the store. It stops at the
	// first error.
	AuditRecords(ctx context.Context) iter.Seq2[AuditRecord, error]
	// AuditHeads returns the head (last record) of every chain, in byte
	// order of the identity ID, as the appends recorded it: what a
	// checkpoint seals. The heads are one consistent snapshot.
	AuditHeads(ctx context.Context) ([]AuditHead, error)
}

// AuditCheckpoints keeps the numbered, MACed checkpoints of the audit
// chains' heads (server/audit makes and checks them; the store keeps them
// as opaque bytes). They are never changed or deleted.
type AuditCheckpoints interface {
	// PutAuditCheckpoint stores c. It returns an error wrapping
	// ErrDuplicate when a checkpoint with c.Seq exists (another replica
	// wrote it first), or ErrInvalid (Seq 0 or above 2^63-1, no body or
	// MAC).
	PutAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error
	// AuditCheckpoints yields the checkpoints with Seq at or above from,
	// in Seq order, reading in pages like AuditRecords. It stops at the
	// first error.
	AuditCheckpoints(ctx context.Context, from uint64) iter.Seq2[AuditCheckpoint, error]
	// LastAuditCheckpoint returns the checkpoint with the highest Seq, or
	// a zero AuditCheckpoint (Seq 0) when there is none.
	LastAuditCheckpoint(ctx context.Context) (AuditCheckpoint, error)
}

// Logins writes what a successful check proves, in one transaction each:
// the replay guard, the success transition with its audit event, the end
// of the attempt's reservation, and the session. Doing them apart would
// let a crash or a racing replica leave a counter moved without a login,
// count failures around a success, or leave a session whose proof is gone.
type Logins interface {
	// CommitLogin writes l: it ends l.Attempt, raises the replay guard of
	// l.OTP or l.Chip (as AdvanceOTPStep and AdvanceSignCount do; a chip
	// guard also inserts its spent ceremony, whose key must be new),
	// applies l.Change as ApplyChange does (a plain update: no Remove,
	// WipeSecret or Tombstone), and inserts l.Session, when set, as
	// PutSession does. When a guard does not move (the code was used, or
	// the counter did not increase: a possible clone) it writes nothing,
	// and the attempt stays reserved, and returns false. It returns an
	// error wrapping ErrDuplicate when the spent ceremony's key is taken
	// (the challenge was used), or the errors of the guards, ApplyChange
	// (ErrConflict: reload, recompute and call again) and PutSession;
	// nothing is written when it returns an error.
	CommitLogin(ctx context.Context, l Login) (bool, error)
	// ActivateCodeDevice activates a pending code device that proved
	// possession with a right code: it takes the import a.Import (only if
	// it is still the one the code was checked against), stores a.Element
	// as the device's security element, applies a.Change (the activation)
	// as ApplyChange does, and ends a.Attempt, in one transaction. It
	// returns an error wrapping ErrNotFound when the import is gone or was
	// replaced (another identity activated the serial, or support
	// re-imported it), ErrDuplicate when another authenticator uses the
	// serial, or the errors of ApplyChange.
	ActivateCodeDevice(ctx context.Context, a CodeActivation) error
}

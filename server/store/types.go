package store

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/domain"
)

// Sealed is a secret sealed by server/secrets: the ID of the master key and
// the AEAD blob. The store keeps both as opaque values.
type Sealed struct {
	KeyID string
	Blob  []byte
}

// IsZero reports whether s holds nothing (a wiped secret).
func (s Sealed) IsZero() bool { return s.KeyID == "" && len(s.Blob) == 0 }

// Equal reports whether s and o are the same sealed value.
func (s Sealed) Equal(o Sealed) bool { return s.KeyID == o.KeyID && bytes.Equal(s.Blob, o.Blob) }

func (s Sealed) check(what string) error {
	if s.KeyID == "" || len(s.Blob) == 0 {
		return fmt.Errorf("store: %w: %s needs a key ID and a sealed blob", ErrInvalid, what)
	}
	return nil
}

// SealedKey is what the store holds sealed under one master key
// (Sealing.SealedKeys): how many values, and one of them with the record
// it belongs to (its associated data names that record).
type SealedKey struct {
	KeyID string
	Count int
	// Sample is one of the values: the OTP secret of code device
	// AuthenticatorID, or else the secret of the PSKC import of Serial.
	Sample          Sealed
	AuthenticatorID string
	Serial          string
}

// MergeSealedKeys adds the counts of b to a by key ID (the sample of a
// comes first) and returns them in key ID order: a store that counts per
// table combines its answers with it.
func MergeSealedKeys(a, b []SealedKey) []SealedKey {
	out := append([]SealedKey(nil), a...)
	for _, k := range b {
		i := slices.IndexFunc(out, func(o SealedKey) bool { return o.KeyID == k.KeyID })
		if i < 0 {
			out = append(out, k)
			continue
		}
		out[i].Count += k.Count
	}
	slices.SortFunc(out, func(x, y SealedKey) int { return strings.Compare(x.KeyID, y.KeyID) })
	return out
}

// OTPParams are the parameters of a code device's TOTP generator (RFC 6238
// §4), as in otp.TOTP: a zero field means the default (6 digits, 30 s,
// SHA-1).
type OTPParams struct {
	Digits    int           // 6..8, or 0
	Period    time.Duration // a whole number of seconds, or 0
	Algorithm otp.Algorithm // a valid algorithm, or 0
}

// Check returns an error wrapping ErrInvalid when p is out of range.
func (p OTPParams) Check() error {
	switch {
	case p.Digits != 0 && (p.Digits < 6 || p.Digits > 8):
		return fmt.Errorf("store: %w: %d OTP digits (want 6..8)", ErrInvalid, p.Digits)
	case p.Period < 0 || p.Period%time.Second != 0 || p.Period > 1<<16*time.Second:
		return fmt.Errorf("store: %w: OTP period %v (want whole seconds up to 65536 s)", ErrInvalid, p.Period)
	case p.Algorithm != 0 && !p.Algorithm.Valid():
		return fmt.Errorf("store: %w: OTP algorithm %v", ErrInvalid, p.Algorithm)
	}
	return nil
}

// Element is the security element the server holds for one authenticator
// (DESIGN §1). Exactly one of the kind fields is set, the one that fits the
// authenticator's kind. The reference (a chip's credential ID and serial, a
// code device's serial, an app key's ID) is domain.Authenticator.Ref.
type Element struct {
	Chip     *ChipElement     // kind chip
	Code     *CodeElement     // kinds code-display and audio-code-reader
	App      *AppElement      // kind app
	Password *PasswordElement // kind password
	// WipedAt is when the key material was wiped (Change.WipeSecret); zero
	// while it is kept.
	WipedAt time.Time
}

// ChipElement is the registered FIDO credential of a chip (WebAuthn Level 2
// §6.5.1 attested credential data, §6.1 authenticator data flags).
type ChipElement struct {
	// PublicKey is the credential public key as a COSE_Key (CTAP 2.1
	// §6.5.6); nil after a wipe.
	PublicKey []byte
	// AAGUID is the authenticator model (16 bytes), or nil (U2F chips).
	AAGUID []byte
	// SignCount is the highest signature counter seen (AdvanceSignCount).
	SignCount uint32
	// AttestationFormat is the attestation statement format at
	// registration ("packed", "fido-u2f", "none").
	AttestationFormat string
	// BackupEligible and BackupState are the BE and BS flags seen at
	// registration (WebAuthn Level 3 §6.1).
	BackupEligible bool
	BackupState    bool
}

// CodeElement is the OTP secret of a code display or audio code reader.
type CodeElement struct {
	// Secret is the sealed OTP secret; zero after a wipe.
	Secret Sealed
	OTPParams
	// Drift is the clock drift last measured, in time steps (RFC 6238 §6).
	Drift int
	// HighestStep is the highest time step accepted so far (RFC 6238
	// §5.2); 0 when none was.
	HighestStep uint64
}

// AppElement is what the server holds for a MitID app: the device key and
// the PIN verifier.
type AppElement struct {
	// PublicKey is the app's device public key (its encoding is the
	// app's); nil after a wipe.
	PublicKey []byte
	// PINVerifier is the argon2id verifier of the PIN (server/secrets);
	// empty after a wipe.
	PINVerifier string
}

// PasswordElement is the argon2id verifier of a password; Verifier is
// empty after a wipe.
type PasswordElement struct {
	Verifier string
}

// Check reports whether e is a complete, unwiped element for an
// authenticator of kind k. It returns an error wrapping ErrInvalid when it
// is not.
func (e *Element) Check(k device.Kind) error {
	n := 0
	for _, set := range []bool{e.Chip != nil, e.Code != nil, e.App != nil, e.Password != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("store: %w: an element sets exactly one kind, not %d", ErrInvalid, n)
	}
	bad := func(what string) error {
		return fmt.Errorf("store: %w: %s element: %s", ErrInvalid, k, what)
	}
	switch k {
	case device.KindChip:
		switch c := e.Chip; {
		case c == nil:
			return bad("no chip credential")
		case len(c.PublicKey) == 0:
			return bad("no public key")
		case len(c.AAGUID) != 0 && len(c.AAGUID) != 16:
			return bad(fmt.Sprintf("AAGUID of %d bytes (want 16)", len(c.AAGUID)))
		}
	case device.KindCodeDisplay, device.KindAudioCodeReader:
		if e.Code == nil {
			return bad("no OTP secret")
		}
		if err := e.Code.Secret.check("the OTP secret"); err != nil {
			return err
		}
		if err := e.Code.OTPParams.Check(); err != nil {
			return err
		}
		if e.Code.HighestStep > maxInt63 {
			return bad("highest step out of range")
		}
	case device.KindApp:
		switch a := e.App; {
		case a == nil:
			return bad("no app key")
		case len(a.PublicKey) == 0:
			return bad("no public key")
		case a.PINVerifier == "":
			return bad("no PIN verifier")
		}
	case device.KindPassword:
		if e.Password == nil || e.Password.Verifier == "" {
			return bad("no verifier")
		}
	default:
		return fmt.Errorf("store: %w: unknown kind %q", ErrInvalid, k)
	}
	return nil
}

const maxInt63 = 1<<63 - 1

// AuthenticatorSet is what domain.Policy.CheckAdd counts for one identity:
// its authenticators, and the version that CreateAuthenticatorAt checks.
//
// Version counts the authenticators ever created for the identity (0 for a
// new identity); it is raised by CreateAuthenticator and
// CreateAuthenticatorAt in the transaction that stores the authenticator.
// Nothing else changes it, because no other change can break a quota:
// every other transition keeps an authenticator within its quota (pending,
// active and suspended all count, DESIGN §1) or takes it out for good
// (blocked is terminal; a cancelled one is deleted). An add computed from
// a set that is older only by such changes counted too many, never too
// few, so storing it keeps the quota.
//
// Identity is the identity itself, read with the set (one snapshot), so
// that an add needs no read of its own.
type AuthenticatorSet struct {
	Identity       domain.Identity
	Version        uint64
	Authenticators []domain.Authenticator
}

// Import is a code-device secret imported from a PSKC document (RFC 6030
// §4 KeyPackage), waiting for the device to be added to an identity.
type Import struct {
	Serial string // the device serial (PSKC DeviceInfo/SerialNo)
	Secret Sealed // the sealed secret (PSKC Data/Secret, after the MAC check)
	OTPParams
	ImportedAt time.Time
	// Failures counts the wrong activation codes sent for the serial, by
	// anybody (Attempts.FailImportAttempt); PutImport and ReplaceImport
	// store it as zero.
	Failures int
}

// Check returns an error wrapping ErrInvalid when im lacks a serial or a
// secret or has parameters out of range.
func (im *Import) Check() error {
	if im.Serial == "" {
		return fmt.Errorf("store: %w: an import needs a serial", ErrInvalid)
	}
	if err := im.Secret.check("an import"); err != nil {
		return err
	}
	return im.OTPParams.Check()
}

// Ceremony is the server-side state of a ceremony between Begin and Finish
// (STYLE 17), for example a WebAuthn challenge with its session data.
type Ceremony struct {
	// Key finds the ceremony again: the challenge in base64url, or a
	// ceremony ID given to the client.
	Key string
	// IdentityID is the identity the ceremony is for; empty when not yet
	// known (a discoverable-credential login).
	IdentityID string
	// Data is opaque to the store (e.g. go-webauthn SessionData as JSON).
	Data []byte
	// ExpiresAt is when the ceremony can no longer be finished.
	ExpiresAt time.Time
}

// Check returns an error wrapping ErrInvalid when c has no key or no expiry.
func (c *Ceremony) Check() error {
	if c.Key == "" || c.ExpiresAt.IsZero() {
		return fmt.Errorf("store: %w: a ceremony needs a key and an expiry", ErrInvalid)
	}
	return nil
}

// Session is a self-service session of an identity, created by a
// successful login (DESIGN §5). The store keeps only a key derived from
// the bearer token (secrets.TokenKey: its creation milliseconds and its
// SHA-256, or the SHA-256 alone for a token of the untimed form), never
// the token.
type Session struct {
	// TokenHash is the key the session is found by (secrets.TokenKey).
	TokenHash []byte
	// ID names the session to its owner (to list and end sessions); it is
	// not a credential.
	ID         string
	IdentityID string
	// Level says how strong the proof was: LevelTwoFactor for MitID's
	// logins (password and a second factor, or the app).
	Level string
	// Authenticators are the authenticators that proved the login, in the
	// order they were checked: the via of domain.Owner. A login proves
	// with one (the app) or two (a password and a second factor); the
	// session ends when any of them stops being active.
	Authenticators []string
	CreatedAt      time.Time
	ExpiresAt      time.Time
}

// Session levels.
const (
	LevelTwoFactor = "two-factor"
	LevelOneFactor = "one-factor"
)

// maxProofs bounds Session.Authenticators: the factors of a login. The
// stores keep them in the session's row, in a column each.
const maxProofs = 2

// Check returns an error wrapping ErrInvalid when s lacks a token hash, an
// ID, an identity, a level, an expiry or its proving authenticators.
func (s *Session) Check() error {
	if len(s.TokenHash) == 0 || s.ID == "" || s.IdentityID == "" || s.Level == "" || s.ExpiresAt.IsZero() {
		return fmt.Errorf("store: %w: a session needs a token hash, an ID, an identity, a level and an expiry", ErrInvalid)
	}
	if len(s.Authenticators) == 0 || len(s.Authenticators) > maxProofs {
		return fmt.Errorf("store: %w: a session is proven by 1 to %d authenticators, not %d", ErrInvalid, maxProofs, len(s.Authenticators))
	}
	seen := map[string]bool{}
	for _, a := range s.Authenticators {
		if a == "" || seen[a] || strings.Contains(a, domain.ViaSep) {
			return fmt.Errorf("store: %w: the proving authenticators of a session are distinct IDs", ErrInvalid)
		}
		seen[a] = true
	}
	return nil
}

// Attempt is a reservation of one check against an authenticator or
// against the imported secret of a code device serial (Attempts).
type Attempt struct {
	// ID names the reservation (chosen by the caller, unique).
	ID string
	// AuthenticatorID, or Serial: what the attempt is against.
	AuthenticatorID string
	Serial          string
	// ExpiresAt is when the reservation lapses if nobody ends it.
	ExpiresAt time.Time
}

// Check returns an error wrapping ErrInvalid when a lacks an ID or an
// expiry, or names not exactly one subject.
func (a *Attempt) Check() error {
	if a.ID == "" || a.ExpiresAt.IsZero() || (a.AuthenticatorID == "") == (a.Serial == "") {
		return fmt.Errorf("store: %w: an attempt needs an ID, an expiry and one subject (an authenticator or a serial)", ErrInvalid)
	}
	return nil
}

// OTPGuard is the replay guard of a code-device login (RFC 6238 §5.2): the
// time step the code matched and the drift measured.
type OTPGuard struct {
	Step  uint64
	Drift int
}

// ChipGuard is the replay guard of a chip login: the assertion's signature
// counter (WebAuthn Level 2 §6.1.1) and the ceremony record that marks its
// challenge as used.
type ChipGuard struct {
	Count uint32
	Spent Ceremony
}

// The Details keys of the one audit record of a two-factor login
// (Login.Prior): the authenticator proven first and its kind.
const (
	DetailFirstFactor     = "first_factor"
	DetailFirstFactorKind = "first_factor_kind"
)

// Login is what a successful check writes (Logins.CommitLogin).
type Login struct {
	// Attempt is the reservation of the check; it ends with the login.
	Attempt string
	// Change is the success transition of the authenticator checked
	// (domain.Policy.RecordSuccess).
	Change domain.Change
	// Prior, when set, is the success transition of a factor proven
	// earlier in the same login whose success was not written then (the
	// password, when it had nothing to reset): written in the same
	// transaction, versioned like Change, its events before Change's.
	// When PriorPlain is set and Prior's events are only its
	// EventLoginSucceeded, it and Change's are audited as one record:
	// Change's, with DetailFirstFactor and DetailFirstFactorKind naming
	// Prior's authenticator.
	Prior *domain.Change
	// PriorPlain says Prior's success ends nothing: the factor had no
	// failures when the login read it last. A success that resets
	// failures (wrong passwords sent between the two steps, say) stays
	// a record of its own, so the factor's own audit trail shows its
	// count go back to zero.
	PriorPlain bool
	// Session is the session the login opens; nil for a step that opens
	// none (the password, before the second factor).
	Session *Session
	// OTP or Chip is the replay guard of a code device or chip.
	OTP  *OTPGuard
	Chip *ChipGuard
}

// CodeActivation is the activation of a pending code device
// (Logins.ActivateCodeDevice).
type CodeActivation struct {
	// Attempt is the reservation the code was checked under (against the
	// serial's import).
	Attempt string
	// Change activates the authenticator (domain.Policy.Activate).
	Change domain.Change
	// Element is its security element: the secret sealed for the
	// authenticator, with the matched time step as HighestStep.
	Element Element
	// Import is the import the code was checked against, as read.
	Import Import
}

// AuditRecord is one record of the audit log. Seq, PrevHash, Hash and Body
// come from the Chainer; the other fields repeat the event's for finding
// records (ListAudit) without decoding Body. The record belongs to the
// chain of IdentityID ("" for an event of no identity).
type AuditRecord struct {
	Seq             uint64 // the place in the chain: 1, 2, 3, ... without gaps
	At              time.Time
	Type            domain.EventType
	IdentityID      string // the chain
	AuthenticatorID string
	PrevHash        []byte // the Hash of record Seq-1 of the chain (the Chainer's genesis value for the first)
	Hash            []byte // the hash over PrevHash and Body, as the Chainer defines it
	Body            []byte // the event in the Chainer's canonical encoding
}

// AuditHead is the last record of one audit chain: what a checkpoint
// seals.
type AuditHead struct {
	IdentityID string // the chain ("" for events of no identity)
	Seq        uint64
	Hash       []byte
}

// AuditCheckpoint is a checkpoint of the audit chains' heads as the store
// keeps it: Body and MAC are opaque (server/audit's Checkpoint, and its
// MAC under the key KeyID names).
type AuditCheckpoint struct {
	Seq   uint64 // 1, 2, 3, ...
	At    time.Time
	KeyID string
	Body  []byte
	MAC   []byte
}

// Check returns an error wrapping ErrInvalid when c cannot be stored.
func (c *AuditCheckpoint) Check() error {
	if c.Seq == 0 || c.Seq > maxInt63 || len(c.Body) == 0 || len(c.MAC) == 0 {
		return fmt.Errorf("store: %w: an audit checkpoint needs a seq from 1 to 2^63-1, a body and a MAC", ErrInvalid)
	}
	return nil
}

// Chainer turns audit events into hash-chained records; server/audit
// provides the real one. A store calls it inside the transaction that
// appends, with the current head of the event's chain (the identity's), so
// every chain has a single head.
type Chainer interface {
	// Link returns the record for e that follows prev, the head of the
	// chain of e.IdentityID (nil for the first record of the chain): Seq
	// prev.Seq+1 (1 for the first), PrevHash equal to prev.Hash (the
	// genesis value for the first), and Hash and Body. Of prev, only Seq,
	// Hash and IdentityID are set. An error makes the whole write fail.
	Link(prev *AuditRecord, e domain.Event) (AuditRecord, error)
}

// Link calls c.Link and checks that the record it returns follows prev;
// it fills the index fields (At, Type, IdentityID, AuthenticatorID) from e.
// Implementations of Store use it. It returns the Chainer's error, or one
// wrapping ErrInvalid when the record does not follow prev.
func Link(c Chainer, prev *AuditRecord, e domain.Event) (AuditRecord, error) {
	if c == nil {
		return AuditRecord{}, fmt.Errorf("store: %w: no audit Chainer configured", ErrInvalid)
	}
	r, err := c.Link(prev, e)
	if err != nil {
		return AuditRecord{}, fmt.Errorf("store: audit: %w", err)
	}
	want := uint64(1)
	if prev != nil {
		want = prev.Seq + 1
	}
	switch {
	case r.Seq != want:
		return AuditRecord{}, fmt.Errorf("store: %w: the audit chainer returned seq %d after %d", ErrInvalid, r.Seq, want-1)
	case prev != nil && !bytes.Equal(r.PrevHash, prev.Hash):
		return AuditRecord{}, fmt.Errorf("store: %w: the audit chainer's record %d does not follow the hash of %d", ErrInvalid, r.Seq, prev.Seq)
	case len(r.Hash) == 0 || len(r.Body) == 0:
		return AuditRecord{}, fmt.Errorf("store: %w: the audit chainer returned record %d without hash or body", ErrInvalid, r.Seq)
	case r.Seq > maxInt63:
		return AuditRecord{}, fmt.Errorf("store: %w: audit seq out of range", ErrInvalid)
	case prev != nil && prev.IdentityID != e.IdentityID:
		return AuditRecord{}, fmt.Errorf("store: %w: an event of identity %q linked to the chain of %q", ErrInvalid, e.IdentityID, prev.IdentityID)
	}
	r.At = e.At
	r.Type = e.Type
	r.IdentityID = e.IdentityID
	r.AuthenticatorID = e.AuthenticatorID
	return r, nil
}

// CheckIdentityChange returns an error wrapping ErrInvalid when c cannot be
// stored: a malformed identity or Version 0.
func CheckIdentityChange(c *domain.IdentityChange) error {
	if err := c.Identity.Validate(); err != nil {
		return fmt.Errorf("store: %w: %w", ErrInvalid, err)
	}
	if c.Identity.Version == 0 || c.Identity.Version > maxInt63 {
		return fmt.Errorf("store: %w: identity %s has version %d", ErrInvalid, c.Identity.ID, c.Identity.Version)
	}
	return nil
}

// CheckChange returns an error wrapping ErrInvalid when c cannot be stored:
// a malformed authenticator, Version 0, or a tombstone of another
// authenticator.
func CheckChange(c *domain.Change) error {
	a := &c.Authenticator
	if err := a.Validate(); err != nil {
		return fmt.Errorf("store: %w: %w", ErrInvalid, err)
	}
	if a.Version == 0 || a.Version > maxInt63 {
		return fmt.Errorf("store: %w: authenticator %s has version %d", ErrInvalid, a.ID, a.Version)
	}
	if t := c.Tombstone; t != nil && (t.AuthenticatorID != a.ID || t.IdentityID != a.IdentityID) {
		return fmt.Errorf("store: %w: the tombstone of %s is not for authenticator %s", ErrInvalid, t.AuthenticatorID, a.ID)
	}
	return nil
}

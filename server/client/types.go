package client

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Bytes is binary data, written in JSON as unpadded base64url (RFC 4648
// §5), as the API contract and WebAuthn JSON (Level 3 §5.1) ask. Decoding
// also accepts padding.
type Bytes []byte

// MarshalJSON writes b as an unpadded base64url string.
func (b Bytes) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.RawURLEncoding.EncodeToString(b))
}

// UnmarshalJSON reads an unpadded (or padded) base64url string; it returns
// an error for any other JSON value or for characters outside the
// base64url alphabet.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("client: base64url value: %w", err)
	}
	v, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return fmt.Errorf("client: base64url value: %w", err)
	}
	*b = v
	return nil
}

// String returns the unpadded base64url form.
func (b Bytes) String() string { return base64.RawURLEncoding.EncodeToString(b) }

// Authenticator states of the contract (see server/domain).
const (
	StatePending   = "pending"
	StateActive    = "active"
	StateSuspended = "suspended"
	StateBlocked   = "blocked"
)

// Block reasons an owner or support gives.
const (
	ReasonLost        = "lost"
	ReasonCompromised = "compromised"
)

// Authenticator is one of a person's authenticators, as the server shows it
// (contract "Types: Authenticator"). It never holds secrets.
type Authenticator struct {
	ID            string     `json:"id"`
	IdentityID    string     `json:"identity_id"`
	Kind          string     `json:"kind"`  // "chip", "code-display", "audio-code-reader", "app", "password"
	State         string     `json:"state"` // StatePending, StateActive, StateSuspended, StateBlocked
	Label         string     `json:"label"`
	Serial        string     `json:"serial,omitempty"`
	CredentialID  string     `json:"credential_id,omitempty"` // base64url, chips
	Failures      int        `json:"failures"`
	Suspensions   int        `json:"suspensions"`
	CreatedAt     time.Time  `json:"created_at"`
	ActivatedAt   *time.Time `json:"activated_at,omitempty"`
	SuspendedAt   *time.Time `json:"suspended_at,omitempty"`
	SuspendReason string     `json:"suspend_reason,omitempty"`
	BlockedAt     *time.Time `json:"blocked_at,omitempty"`
	BlockReason   string     `json:"block_reason,omitempty"`
	Version       int64      `json:"version"`
	Element       Element    `json:"element"`
}

// Element is the summary of the security element the server holds for an
// authenticator. Which fields are filled depends on the kind: chips fill
// AAGUID to ChipSerial, code devices Digits to LastStep, apps PublicKeyAlg;
// a permanently blocked authenticator has only Wiped.
type Element struct {
	// Chip.
	AAGUID             string `json:"aaguid,omitempty"`
	SignCount          uint32 `json:"sign_count,omitempty"`
	AttestationFormat  string `json:"attestation_format,omitempty"`
	AttestationTrusted *bool  `json:"attestation_trusted,omitempty"` // nil when not a chip
	ChipSerial         string `json:"chip_serial,omitempty"`
	// Code display and audio code reader.
	Digits        int    `json:"digits,omitempty"`
	PeriodSeconds int    `json:"period_seconds,omitempty"`
	Algorithm     string `json:"algorithm,omitempty"`
	DriftSteps    int    `json:"drift_steps,omitempty"`
	LastStep      uint64 `json:"last_step,omitempty"`
	// App.
	PublicKeyAlg string `json:"public_key_alg,omitempty"`
	// Wiped: the element was deleted by a permanent block.
	Wiped bool `json:"wiped,omitempty"`
}

// Identity is a person with their authenticators (contract "Types:
// Identity").
type Identity struct {
	ID             string          `json:"id"`
	State          string          `json:"state"` // "active" or "temporarily-blocked"
	BlockedReason  string          `json:"blocked_reason,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	Version        int64           `json:"version"`
	Authenticators []Authenticator `json:"authenticators"`
}

// Authenticator returns the authenticator with the given ID, or nil.
func (id *Identity) Authenticator(aid string) *Authenticator {
	for i := range id.Authenticators {
		if id.Authenticators[i].ID == aid {
			return &id.Authenticators[i]
		}
	}
	return nil
}

// Actor is who caused an audit event.
type Actor struct {
	Kind string `json:"kind"` // "owner", "support" or "system"
	ID   string `json:"id"`
	Via  string `json:"via,omitempty"` // e.g. the authenticator a session came from
}

// Event is one record of the audit chain (contract "Types: Event"): each
// carries the hash of the one before it.
type Event struct {
	Version         int            `json:"version"`
	Seq             uint64         `json:"seq"`
	Time            time.Time      `json:"time"`
	Type            string         `json:"type"`
	IdentityID      string         `json:"identity_id"`
	AuthenticatorID string         `json:"authenticator_id,omitempty"`
	Actor           Actor          `json:"actor"`
	Reason          string         `json:"reason,omitempty"`
	Details         map[string]any `json:"details,omitempty"`
	Hash            string         `json:"hash"`
	PrevHash        string         `json:"prev_hash"`
}

// AuditPage is one page of an identity's audit events. Next is the seq to
// pass as "after" for the next page, nil on the last page.
type AuditPage struct {
	Events []Event `json:"events"`
	Next   *uint64 `json:"next,omitempty"`
}

// AuditVerification is the answer of GET /v1/audit/verify.
type AuditVerification struct {
	OK             bool             `json:"ok"`
	Records        int64            `json:"records"`
	Chains         int64            `json:"chains"`
	Legacy         int64            `json:"legacy"`
	Checkpoints    int64            `json:"checkpoints"`
	LastCheckpoint *AuditCheckpoint `json:"last_checkpoint,omitempty"`
	Unsealed       int64            `json:"unsealed"`
	Break          *AuditBreak      `json:"break,omitempty"`
	Problems       []AuditBreak     `json:"problems,omitempty"`
	More           int64            `json:"more,omitempty"`
}

// AuditCheckpoint describes the newest checkpoint of the audit chains.
type AuditCheckpoint struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	KeyID  string    `json:"key_id"`
	Chains uint64    `json:"chains"`
	Hash   string    `json:"hash"`
}

// AuditBreak is one problem the verification found: record Seq of the
// chain of IdentityID (of the version 1 chain when Legacy), or checkpoint
// Checkpoint.
type AuditBreak struct {
	Kind       string `json:"kind"`
	IdentityID string `json:"identity_id"`
	Legacy     bool   `json:"legacy,omitempty"`
	Seq        uint64 `json:"seq"`
	Checkpoint uint64 `json:"checkpoint,omitempty"`
	Problem    string `json:"problem"`
}

// PSKCImport is the answer of POST /v1/pskc.
type PSKCImport struct {
	Imported int      `json:"imported"`
	Serials  []string `json:"serials"`
}

// CreateIdentityRequest is the body of POST /v1/identities. Both fields
// are optional: the server makes up an ID, and a Password adds an active
// password authenticator.
type CreateIdentityRequest struct {
	ID       string `json:"id,omitempty"`
	Password string `json:"password,omitempty"`
}

// AddRequest is the body of POST /v1/identities/{id}/authenticators.
type AddRequest struct {
	Kind      string `json:"kind"`
	Label     string `json:"label,omitempty"`
	Serial    string `json:"serial,omitempty"`     // code devices: required
	PublicKey Bytes  `json:"public_key,omitempty"` // app: SubjectPublicKeyInfo DER
	PIN       string `json:"pin,omitempty"`        // app: six digits
	Password  string `json:"password,omitempty"`   // password: required
}

// Added is the answer of adding an authenticator: the new (pending, or for
// a password already active) authenticator and what its activation needs.
type Added struct {
	Authenticator Authenticator `json:"authenticator"`
	Activation    Activation    `json:"activation"`
}

// Activation says how to activate a new authenticator: a chip gets a
// Ceremony and WebAuthn creation options, a code device Needs "code", an
// app a Ceremony and a Challenge to sign; a password needs nothing.
type Activation struct {
	Ceremony  string           `json:"ceremony,omitempty"`
	PublicKey *CreationOptions `json:"publicKey,omitempty"`
	Needs     string           `json:"needs,omitempty"`
	Challenge Bytes            `json:"challenge,omitempty"`
}

// ActivateRequest is the body of POST .../activate. Fill the fields of the
// authenticator's kind: chip Ceremony and Credential; code device Code; app
// Ceremony and Signature.
type ActivateRequest struct {
	Ceremony   string                `json:"ceremony,omitempty"`
	Credential *RegistrationResponse `json:"credential,omitempty"`
	Code       string                `json:"code,omitempty"`
	Signature  Bytes                 `json:"signature,omitempty"`
}

// SecondFactor is a chip or code device that can be the second factor of
// a password login, as the answer to a right password lists them.
type SecondFactor struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	State  string `json:"state"` // StateActive or StateSuspended
	Label  string `json:"label,omitempty"`
	Serial string `json:"serial,omitempty"`
}

// PasswordStep is the answer to a right password: the ceremony for
// choosing a second factor, the identity's second factors, and Next, the
// ceremony of the second factor when one was chosen with the password.
type PasswordStep struct {
	Ceremony      string           `json:"ceremony"`
	ExpiresAt     time.Time        `json:"expires_at"`
	SecondFactors []SecondFactor   `json:"second_factors"`
	Next          *FactorChallenge `json:"next,omitempty"`
}

// FactorChallenge is the ceremony of the proof FinishLogin takes next:
// WebAuthn request options for a chip, a challenge to sign for an app,
// nothing more for a code device.
type FactorChallenge struct {
	Ceremony      string          `json:"ceremony"`
	ExpiresAt     time.Time       `json:"expires_at"`
	Authenticator string          `json:"authenticator"`
	Kind          string          `json:"kind"`
	PublicKey     *RequestOptions `json:"publicKey,omitempty"`
	Challenge     Bytes           `json:"challenge,omitempty"`
}

// FinishLoginRequest is the body of POST .../login/finish: Ceremony
// always; then a chip's Credential, a code device's Code, or an app's PIN
// and Signature.
type FinishLoginRequest struct {
	Ceremony   string                  `json:"ceremony"`
	Credential *AuthenticationResponse `json:"credential,omitempty"`
	Code       string                  `json:"code,omitempty"`
	PIN        string                  `json:"pin,omitempty"`
	Signature  Bytes                   `json:"signature,omitempty"`
}

// Session levels.
const LevelTwoFactor = "two-factor"

// Session is a successful login: a two-factor self-service session token
// acting for the identity (use it with Client.WithToken), its ID (to list
// and end sessions), when it ends, the authenticators that proved it, and
// the one checked last as it is now.
type Session struct {
	Token          string        `json:"session"`
	ID             string        `json:"session_id"`
	Level          string        `json:"level"`
	ExpiresAt      time.Time     `json:"expires_at"`
	Authenticators []string      `json:"authenticators"`
	Authenticator  Authenticator `json:"authenticator"`
}

// SessionInfo is a session as its owner sees it (never its token).
type SessionInfo struct {
	ID             string    `json:"id"`
	Level          string    `json:"level"`
	Authenticators []string  `json:"authenticators"`
	CreatedAt      time.Time `json:"created_at"`
	ExpiresAt      time.Time `json:"expires_at"`
	Current        bool      `json:"current,omitempty"`
}

package webauthn

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on with errors.Is. Every refusal of the
// relying party is an *Error that unwraps to one of them.
var (
	// ErrInvalid: a malformed response or options: a missing or badly
	// encoded member, client data that is not a JSON object, an
	// attestation object or authenticator data that does not parse, a
	// value of the wrong size. Nothing about the authenticator was learnt.
	ErrInvalid = errors.New("malformed WebAuthn data")
	// ErrMismatch: a well-formed response that fails one of the ceremony's
	// checks (Error.Check names it): the client data's type, challenge or
	// origin, the RP ID hash, user presence, the backup flags, or the
	// signature.
	ErrMismatch = errors.New("the WebAuthn response does not match the ceremony")
	// ErrUntrusted: a registration whose attestation is not acceptable: a
	// statement that does not verify, a format that is not accepted, an
	// attestation that chains to no trusted root (unless untrusted ones are
	// allowed), a backup-eligible credential (unless allowed), or one the
	// metadata service reports as compromised.
	ErrUntrusted = errors.New("the attestation is not trusted")
)

// Names of the checks an *Error with ErrMismatch reports (Error.Check), in
// the order of WebAuthn Level 3 §7.1 (registration) and §7.2
// (authentication).
const (
	CheckType           = "client_data_type" // CollectedClientData.type
	CheckChallenge      = "challenge"        // CollectedClientData.challenge
	CheckOrigin         = "origin"           // CollectedClientData.origin
	CheckCrossOrigin    = "cross_origin"     // CollectedClientData.crossOrigin
	CheckTopOrigin      = "top_origin"       // CollectedClientData.topOrigin
	CheckRPID           = "rp_id"            // rpIdHash of the authenticator data
	CheckUserPresence   = "user_presence"    // the UP flag
	CheckBackupEligible = "backup_eligible"  // the BE flag, against the stored credential
	CheckBackupState    = "backup_state"     // the BS flag without BE (§6.1.3)
	CheckSignature      = "signature"        // the assertion signature
	// CheckLibrary is a check that go-webauthn failed after this
	// package's own passed (they disagree; Reason has go-webauthn's words).
	CheckLibrary = "go-webauthn"
)

var _ error = (*Error)(nil)

// Error is a response the relying party refused. Err is ErrInvalid,
// ErrMismatch or ErrUntrusted; Check names the failed check of an
// ErrMismatch (Check* constants); Reason says what was wrong, in a sentence
// for a person.
//
// The errors of go-webauthn are not wrapped (its *protocol.Error values are
// copies, which errors.Is cannot match): their description is kept in
// Reason and their kind decides Err.
type Error struct {
	Err    error
	Check  string
	Reason string
}

// Error returns "webauthn: <what> (<check>): <reason>".
func (e *Error) Error() string {
	if e.Check != "" {
		return fmt.Sprintf("webauthn: %v (%s): %s", e.Err, e.Check, e.Reason)
	}
	return fmt.Sprintf("webauthn: %v: %s", e.Err, e.Reason)
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func invalidf(format string, args ...any) error {
	return &Error{Err: ErrInvalid, Reason: fmt.Sprintf(format, args...)}
}

func untrustedf(format string, args ...any) error {
	return &Error{Err: ErrUntrusted, Reason: fmt.Sprintf(format, args...)}
}

func mismatch(check, format string, args ...any) error {
	return &Error{Err: ErrMismatch, Check: check, Reason: fmt.Sprintf(format, args...)}
}

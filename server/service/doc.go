// Package service runs the authbench server's use cases: creating
// identities, adding and activating authenticators, logging in with each
// kind, blocking, reactivating, auditing and importing code-device secrets
// (DESIGN §1, §5).
//
// It sits between the HTTP API (server/api), which turns requests into
// calls of this package, and the lower layers it orchestrates: the pure
// lifecycle rules of server/domain, the persistence of server/store, the
// secret handling of server/secrets, the audit chains and checkpoints of
// server/audit and the PSKC reader of server/pskc. The package does no
// network I/O of its own.
//
// # Changes
//
// Every state change follows one pattern: load the records, compute the
// pure domain transition, and hand the resulting domain.Change to
// store.ApplyChange, which stores it only if nobody changed the record in
// between (its Version). On store.ErrConflict the service reloads and
// recomputes, up to Options.MaxRetries times. Because the transition is
// recomputed from the stored state each time, failure counts stay exact
// however many attempts run at once: of 64 concurrent wrong PINs, exactly
// the third suspends the app and the rest are refused as suspended.
//
// # Authenticators
//
//   - chip (WebAuthn Level 3 §7.1, §7.2): registration returns
//     PublicKeyCredentialCreationOptions; activation verifies the
//     attestation object (packed with an x5c chain to
//     Options.AttestationRoots, fido-u2f likewise; "none" and self
//     attestation only with Options.AllowNoneAttestation), refuses a
//     backup-eligible credential (a MitID chip is not a synced passkey),
//     requires user presence, and refuses a credential ID that was ever
//     registered. A pending chip is not stored until its attestation is
//     verified, because the credential ID, which identifies it, exists only
//     then. Chips are told apart by that credential ID alone (unique
//     forever): the AAGUID and the attestation name only the model, since
//     attestation certificates are batch certificates shared by many chips
//     (FIDO's privacy rules), and a serial number in one is not recorded;
//     people tell their chips apart by the label they give. Login verifies the assertion and the signature counter
//     (WebAuthn Level 2 §6.1.1): a non-zero counter that does not increase
//     is a failed attempt and is audited.
//   - code-display and audio-code-reader (RFC 6238): the secret comes from a
//     PSKC import (RFC 6030); a code is accepted within ±1 time step and
//     only above the highest step used (§5.2), which the store raises
//     atomically; the drift is recorded (§6).
//   - app: a P-256 device key and a 6-digit PIN; login needs an ECDSA
//     signature over SHA-256 of the challenge and the right PIN.
//   - password: an argon2id verifier (RFC 9106).
//
// # Secrets
//
// OTP secrets are sealed under the master keyring bound to their
// authenticator; PINs and passwords are argon2id verifiers; session tokens
// are kept as SHA-256 hashes. No secret is put into an error, an audit
// event or a log line.
//
// Passwords are Unicode text compared in Normalization Form C (NIST SP
// 800-63B §5.1.1.2); one that is not valid UTF-8 is refused with
// ErrInvalid, before any attempt is counted. Every method that hashes a
// password or PIN (CreateIdentity, AddAuthenticator, FinishLogin) may
// return a *BusyError (ErrBusy) when the process's argon2id memory budget
// stays taken (secrets.Limiter); nothing is checked, counted or stored
// then.
//
// A server checks with CheckKeyring, before it serves, that its master
// keyring opens what the store holds sealed.
package service

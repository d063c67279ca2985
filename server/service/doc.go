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
// recomputes, up to Options.MaxRetries times. Authorization, the
// lifecycle rules (quotas, revoked serials and credentials) and rate
// limits come before any costly work: a password or PIN is hashed with
// argon2id only once the add is allowed. Every store error is translated
// into an error of this package (see errors.go), so the HTTP layer needs
// only this package and server/domain.
//
// # Logins and sessions
//
// MitID's combinations (DESIGN §1), in one ceremony: the password, then a
// second factor (a code device's code or the chip's assertion), asked for
// only after the right password (LoginPassword, BeginSecondFactor,
// FinishLogin); or the app alone, whose device key and PIN are two
// factors (BeginApp, FinishLogin). The ceremony is a sealed token that
// carries the proven password between the steps, so any replica can
// finish it. Every login yields a two-factor session that records the
// authenticators that proved it; the store keeps it valid only while
// they are all active and the identity is, so it ends on every replica at
// once when one of them is suspended or blocked (Authenticate). A person
// lists and ends their sessions (Sessions, EndSession, Logout).
//
// Each kind does its own adding, activating and checking in its own file
// (password.go, app.go, chip.go, code.go) behind the small kind interface
// (kind.go); authenticator.go and login.go keep the shared load → rule →
// store loop, attempt.go the reservation of attempts.
//
// # Attempts and lockout
//
// A guess is evaluated only after the store reserved it
// (store.Attempts.ReserveAttempt): failures recorded plus attempts in
// flight never pass the limit, so of any number of concurrent guesses on
// any number of replicas at most the remaining count is evaluated; the
// others wait for the outcome and, once the authenticator is suspended,
// all get the same answer. Rate limits key on the resolved identity and
// authenticator (Options.LoginLimit), after the lookup, so made-up IDs
// cost the owner nothing; the HTTP layer adds one per source. Wrong
// passwords are anonymous (domain.Failure.Anonymous): they suspend the
// password but never count toward a permanent block.
//
// # Authenticators
//
//   - chip (WebAuthn Level 3 §7.1, §7.2, checked by device/webauthn on
//     go-webauthn): registration returns
//     PublicKeyCredentialCreationOptions; activation verifies the
//     attestation object (packed with an x5c chain to
//     Options.AttestationRoots or to the roots of the chip's entry in
//     Options.AttestationMetadata, fido-u2f likewise; "none" and self
//     attestation only with Options.AllowNoneAttestation), refuses a
//     backup-eligible credential (a MitID chip is not a synced passkey),
//     requires user presence, and refuses a credential ID that was ever
//     registered (the service's own check, against the store). A pending chip is not stored until its attestation is
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
//   - code devices are added by serial and stay pending, holding nothing,
//     until a right code from the device activates them (proof of
//     possession); wrong activation codes count against the serial's
//     import (domain.Policy.MaxActivationFailures) and are rate limited;
//     a pending add expires (domain.Policy.PendingExpiry) or is cancelled
//     (Cancel) without revoking the serial.
//   - app: a P-256 device key and a 6-digit PIN; login needs an ECDSA
//     signature over SHA-256 of the challenge and the right PIN. A
//     signature that does not verify is refused without counting (it
//     proves nothing about the PIN); a wrong PIN after a valid signature
//     counts against the app.
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

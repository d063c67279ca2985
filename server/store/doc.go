// Package store is the persistence boundary of the authbench server: the
// Store interface, the records it keeps next to the domain values, and the
// sentinel errors every implementation returns.
//
// It sits between the pure lifecycle package (server/domain, which decides
// what changes) and the databases (server/store/sqlite, the embedded
// default; a PostgreSQL implementation for several replicas, DESIGN §5).
// The HTTP API and the ceremonies load records through a Store, call
// domain, and hand the resulting domain.Change back to the Store, which
// persists it atomically together with its audit events. The package has no
// I/O of its own; server/store/storetest is the conformance suite every
// implementation passes.
//
// # Concurrency
//
// Every method is one atomic statement or one short transaction, so the
// rules hold with several goroutines and several replicas on one database
// (DESIGN §5 "no lost update, no double-accepted code"):
//
//   - Identities and authenticators carry a Version. An update names the
//     new value, whose Version must be exactly one more than the stored one
//     (domain transitions increment it); otherwise the store changes nothing
//     and returns ErrConflict. The caller then reloads, re-runs the pure
//     domain transition and applies it again.
//   - Quotas (DESIGN §1: three apps, one code device, one chip) are
//     domain.Policy's numbers, checked by domain.Policy.CheckAdd against
//     an AuthenticatorSet; Authenticators.CreateAuthenticatorAt stores the
//     new authenticator only if no other was created for the identity
//     since that set was read (ErrConflict otherwise), so concurrent adds
//     never overrun a quota.
//   - One-time codes are single use (RFC 6238 §5.2): Elements.AdvanceOTPStep
//     raises the highest used time step only if the new step is higher, in
//     one statement; the code is accepted only when it returns true.
//   - The chip signature counter (WebAuthn Level 2 §6.1.1, CTAP 2.1 §6.1
//     "signCount") is raised by Elements.AdvanceSignCount with the same kind
//     of guard.
//   - Attempts are reserved before they are checked (DESIGN §1):
//     Attempts.ReserveAttempt stores a reservation only while the failures
//     recorded plus the unexpired reservations in flight stay below the
//     limit, in one transaction (PostgreSQL locks the authenticator's or
//     the import's row first), and returns ErrExhausted otherwise.
//     Logins.CommitLogin ends the reservation in the transaction that
//     records the outcome; EndAttempt gives one back; a replica that dies
//     holding one loses it when it expires.
//   - Sessions end with what proved them: a session row names the
//     authenticators that proved it (one, or the two factors of a login),
//     Sessions.Session accepts a token only while all of them and the
//     identity are active, and the transaction that takes one of them out
//     of the active state or deletes it (ApplyChange) or blocks the
//     identity (UpdateIdentity) deletes the sessions it proved.
//   - A pending code device holds no secret: Logins.ActivateCodeDevice
//     moves the serial's imported secret to it in the transaction that
//     activates it, only if no other identity's authenticator holds that
//     serial active.
//   - Ceremony challenges are taken once (delete-returning).
//   - Audit records form one hash chain per identity (and one for events of
//     no identity), each with a single head: appends to one chain are
//     serialised, appends to different chains are not, and (identity, seq)
//     is unique, so no chain has gaps or forks. Checkpoints of the heads
//     (AuditCheckpoints) are numbered and kept forever.
//
// # Secrets
//
// The store never sees plaintext secrets. OTP secrets arrive sealed by
// server/secrets (Sealed: key ID plus opaque blob); PINs and passwords
// arrive as argon2id verifier strings; chip and app keys are public keys.
// Change.WipeSecret makes the store delete the key material of the security
// element in the same transaction that records the permanent block (DESIGN
// §1: "permanent block deletes the server's security element"); the
// non-secret reference (credential ID, serial) stays for the tombstone.
//
// # Time
//
// Times are kept with nanosecond precision in UTC; a zero time.Time means
// "not set" and comes back as the zero time.Time. Implementations return
// times in UTC, so compare them with time.Time.Equal. Methods whose answer
// depends on the current time (expiry) take it as an argument, like the
// domain package does.
package store

// Package storetest is the conformance suite of server/store (STYLE 8: one
// suite, many targets): Run checks every method of a store.Store, its
// sentinel errors, its optimistic locking and its atomic guards under
// concurrency, against a fresh store per test. The SQLite store runs it in
// memory and on a file; the PostgreSQL store runs the same function.
//
// The suite drives the store with real domain transitions (server/domain)
// and verifies the audit chains with server/audit, so every store under
// test must be built with Chain (server/audit's chainer, which can be made
// to fail).
//
// What it checks, by DESIGN §1 and §5:
//
//   - Identities and authenticators: create, read, list, find; updates with
//     a version check, and of concurrent updates from one version exactly
//     one wins (ErrConflict for the others).
//   - ApplyChange: a permanent block wipes the key material, stores the
//     tombstone and the audit events in one transaction, and a failure in
//     any step (an injected audit failure, a duplicate tombstone, a changed
//     reference) leaves everything as it was.
//   - Quotas: every create raises the version of the identity's
//     authenticator set (AuthenticatorSet); CreateAuthenticatorAt refuses a
//     stale version with ErrConflict, so of concurrent creates from one
//     version exactly one is stored, and the read-check-create-retry loop
//     of a server stores exactly the quota of domain.Policy when 100
//     goroutines add at once.
//   - Uniqueness: credential IDs are unique forever (also after a block or
//     a cancel), a code device serial is unique while in use and revoked
//     forever after a block.
//   - Guards: AdvanceOTPStep accepts one time step once, also when 100
//     goroutines try at once (RFC 6238 §5.2); AdvanceSignCount follows
//     WebAuthn Level 2 §6.1.1, including chips without a counter.
//   - Ceremonies and imports are taken once under concurrency; sessions and
//     ceremonies expire.
//   - The audit log stays one gap-free hash chain per identity under
//     concurrent appends to one identity and to many; checkpoints are kept
//     and read back; server/audit's Sealer and VerifyLog work on the store.
//
// RunTamper is the second suite: with a Tamperer that edits the database
// behind the store's back, it deletes the newest three records of a chain,
// alters a record and recomputes the hashes after it, alters one without,
// deletes a whole chain, and checks that audit.VerifyLog names each (and
// that a valid history passes). CheckMigrated checks a store opened on a
// database that held LegacyLog, the single chain of before per-identity
// chains.
package storetest

// Package domain holds the lifecycle rules of the authbench server: what
// state an identity and each of its authenticators are in, which changes
// are allowed, who may make them, and what has to be audited and wiped when
// they happen.
//
// It sits at the bottom of the server (DESIGN §2, §5): the store, the HTTP
// API and the ceremonies load records, call the functions here, and persist
// what they return. The package itself has no I/O, no clock, no database and
// no cryptography: every function takes the current time as an argument,
// returns new values instead of changing its inputs, and leaves the storing,
// wiping and verifying to its callers.
//
// # States
//
// An authenticator (DESIGN §1) is pending (added, not yet activated),
// active, suspended (temporarily blocked) or blocked (permanently; terminal):
//
//	           Activate             3rd failure, Suspend
//	pending ─────────────▶ active ───────────────────────▶ suspended
//	   │                   │  ▲                                │
//	   │                   │  └───── Reactivate, Expire ───────┤
//	   │ Block             │ Block, 3rd suspension             │ Block
//	   ▼                   ▼                                   │
//	blocked ◀──────────────┴───────────────────────────────────┘
//
// Cancel withdraws a pending authenticator that was never activated; it
// leaves no tombstone. A pending authenticator that is not activated within
// Policy.PendingExpiry (24 h) expires: Activate refuses it with ErrExpired
// and only Cancel remains. An identity is active or temporarily-blocked.
//
// # Rules
//
// The rules come from the seed (a MitID help page on blocked
// authenticators, seeds/000_5f6beac26bdcaf3a.txt) and DESIGN §1. Every number
// is a field of Policy; the zero Policy is DefaultPolicy.
//
//   - "If you enter your PIN code or password incorrect too many times, your
//     MitID app or password can be temporarily blocked": the MaxFailures-th
//     (3rd) consecutive failure suspends the authenticator (RecordFailure).
//     A success resets the consecutive count (RecordSuccess).
//   - "A temporarily suspended app can be reactivated on MitID.dk or you can
//     contact MitID support": Reactivate by the owner (self-service, proven
//     with other active authenticators of the same identity: the session
//     they logged in with) or by a
//     support operator. Self-service only undoes suspensions caused by
//     failed attempts; a suspension that support or the system imposed is
//     lifted by support. MitID suspensions do not lift by themselves, so
//     Policy.SuspensionExpiry is 0 (never) by default; when it is set,
//     Expire (and the login functions, on the fly) lift a failure
//     suspension once it has lasted that long.
//   - "finally blocked if a wrong PIN code is continuously being entered":
//     the MaxSuspensions-th (3rd) suspension caused by failures becomes a
//     permanent block with reason "escalation". The suspension count is kept
//     for the life of the authenticator; a success does not reset it
//     (DESIGN §1: "continued failures escalate").
//   - Escalation counts only suspensions caused by attempts whose caller
//     had proven another factor of the identity first (a code or chip
//     after the right password, an app PIN after the app key's valid
//     signature). Wrong passwords are anonymous (Failure.Anonymous):
//     anybody who knows the identity ID can send them, so they suspend the
//     password (the seed's "temporarily blocked") but never make the block
//     permanent. The seed itself reserves "finally blocked" for the PIN.
//     The trade-off: an anonymous guesser gets MaxFailures guesses per
//     reactivation of the password instead of MaxFailures × MaxSuspensions
//     over its life; rate limits and the owner's reactivation (which needs
//     another two factors, or support) bound them.
//   - "Always block your authenticator if you suspect it has been
//     compromised": Block, by the owner, support or the system, is
//     permanent.
//   - "If your MitID chip is permanently blocked, then the security element
//     in the MitID solution is deleted": every permanent block returns
//     Change.WipeSecret and a Tombstone; the store wipes the key material
//     and keeps the tombstone.
//   - "If your MitID app or password are permanently blocked ... You have to
//     get a new MitID app or password": a new app registration (a new app
//     key) or a new password may be added; the revoked app key is refused
//     forever (ErrCredentialRevoked). Whether a new password equals the old
//     one cannot be decided here (it would need the verifier); the store may
//     check it.
//   - "If your MitID code display or your MitID audio code reader is
//     blocked, you will not be able to use it again. You are required to
//     order a new authenticator": the serial number is revoked forever
//     (ErrSerialRevoked), for every identity.
//   - "When the same MitID chip is added again, then a new security element
//     is created": a chip whose element was blocked may be added again with
//     a new credential; the old credential ID stays refused forever
//     (ErrCredentialRevoked).
//   - Quotas (DESIGN §1): at most 3 apps, 1 code device (a code display or
//     an audio code reader, counted together), 1 chip and 1 password. An
//     authenticator counts toward its quota while it is pending, active or
//     suspended: a pending one becomes active without another check and a
//     suspended one by reactivation, so counting them when one is added
//     means no later transition can exceed a quota. To replace a device,
//     block the old one (or Cancel a pending one) first.
//   - The whole identity can be temporarily blocked on suspected misuse
//     (BlockIdentity). While it is, no login succeeds (CanLogin) and
//     self-service is refused; only support lifts it (UnblockIdentity).
//   - Cloned-chip signal (WebAuthn Level 2 §6.1.1 "Signature Counter
//     Considerations", §7.2 step 21): a non-zero signature counter that does
//     not increase is refused by CheckSignCount and counts as a failed
//     attempt (CauseSignCount), so it is audited.
//   - One-time codes are single use (RFC 6238 §5.2): CheckOTPStep refuses a
//     code whose time step is at or below the highest step already used.
//     The store applies the check and raises the watermark in one atomic
//     statement, so two replicas cannot both accept one code.
//
// # Results
//
// Authenticator transitions return a Change: the new Authenticator (its
// Version one higher, for optimistic locking in the store), the audit
// Events to append, and the effects the store must carry out (WipeSecret,
// Tombstone, Remove). Identity transitions return an IdentityChange. A
// refused transition returns a *TransitionError that unwraps to one of the
// sentinel errors (ErrSuspended, ErrBlocked, ...) and whose Audit method
// gives the event to record for the refusal.
package domain

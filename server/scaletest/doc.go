// Package scaletest holds the multi-replica and crash-safety tests of the
// authbench server, against its targets: lockout exact under 3 replicas ×
// 64 concurrent wrong attempts; the same OTP sent 100× at once accepted
// exactly once; kill -9 mid-load loses no acknowledged change.
//
// The tests build the real binary (go build ./cmd/authbench) once and run
// `authbench serve` processes on loopback ports that share one master key
// file, one support-token file and one database:
//
//   - an SQLite file behind one server, and a fresh PostgreSQL database
//     behind three replicas (when AUTHBENCH_POSTGRES_URL is set and the
//     PostgreSQL store is in the tree);
//   - concurrent wrong codes, PINs and passwords against one authenticator:
//     exactly Policy.MaxFailures (3) are counted, the rest are answered
//     authenticator_suspended (DESIGN §1, the third consecutive failure
//     suspends);
//   - one valid one-time code sent 100 times at once: accepted exactly once
//     (RFC 6238 §5.2, single use across replicas);
//   - chip logins whose signature counters do not increase (one assertion
//     replayed, or cloned chips with the same counter): at most one is
//     accepted (WebAuthn Level 3 §6.1.1, signature counter);
//   - a server killed with SIGKILL in the middle of a load of state changes
//     and restarted on the same database: every acknowledged change is
//     there, no transition is half applied (state, wiped element and audit
//     events agree), and the audit chain verifies.
//
// Every request the tests send and every answer the servers give is
// checked against the API's OpenAPI document on the client's side
// (apitest.Validator.Transport, in each cluster's transports): a server
// answering anything the contract does not describe fails the test.
// Benchmarks skip the check, so that it does not weigh on their figures.
//
// The package has no library code: everything is in its _test.go files.
// Run it with -v to see the figures (attempts, answers by code, kills
// survived, acknowledged changes verified).
package scaletest

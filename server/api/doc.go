// Package api is the authbench server's HTTP JSON API, version 1 (DESIGN
// §5): the handlers of every /v1 endpoint, the OpenAPI 3.1 document that
// describes them (served at /v1/openapi.json), /healthz and /metrics.
//
// The OpenAPI document (openapi.json) is the contract: every status each
// route answers, every error code, and the formats an integrator needs
// (bearer tokens, PSKC protections, the TOTP window and replay rule, the
// PIN policy, the app's signature, the audit events and their hashes).
// The tests check every request they send and every answer they get
// against it with server/api/apitest, so a route that answers anything
// the document does not describe fails them.
//
// It sits on top of server/service: each handler checks the request
// (method, content type, size, strict JSON, path parameters, credential),
// calls one service method and writes its answer. The Go client in
// server/client speaks the same contract.
//
// # Requests and errors
//
// Bodies are JSON objects, decoded strictly: unknown fields, trailing
// data, wrong types and bodies over Options.MaxBody (64 KiB; PSKC imports
// 4 MiB) are refused. Every error, including unknown routes (404), wrong
// methods (405, with Allow) and panics (500), is answered as
//
//	{"error":{"code":"snake_case_code","message":"...","details":{...}}}
//
// with a stable code (see the table in errors.go). Bad input is always a
// 4xx; a 500 means a bug or a broken store and is logged. A JSON body
// must be UTF-8 (RFC 8259 §8.1): other bytes are refused with 400 rather
// than read as U+FFFD, so that no two byte strings become one password.
//
// Password and PIN hashes (argon2id) share a memory budget
// (secrets.Limiter): a request that finds it taken for longer than the
// limiter's wait is answered 503 busy with Retry-After (RFC 9110
// §10.2.3), having checked, counted and stored nothing, so that many
// concurrent password requests cannot grow the server's memory.
//
// # Credentials
//
// "Authorization: Bearer TOKEN" carries either a support token (compared
// in constant time with every configured one) or a self-service session
// token returned by a login, which acts for its identity only. Every
// session is two-factor (MitID's logins: the password and a chip or code
// device, or the app alone); it ends at logout (/v1/logout), at expiry,
// when an authenticator that proved it stops being active, and when the
// identity is blocked. The intermediate ceremony of a right password is
// not a session.
//
// # Rate limiting, lockout and denial of service
//
// The lifecycle rules stop guessing: the third wrong PIN, password or code
// suspends the authenticator, and attempts are reserved before they are
// checked, so that however many guesses arrive at once only the attempts
// left are evaluated (the service's rule). Those same rules could let
// anybody who knows an identity ID lock its owner out, so:
//
//   - the second factor is asked for only after the right password, and an
//     app's PIN only after its key's valid signature: without them nobody
//     can make a code device, a chip or an app fail;
//   - wrong passwords, which anybody can send, suspend the password but
//     never block it for good (domain.Failure.Anonymous);
//   - the per-source limit (default: bursts of 60, then 10 per second)
//     applies here, before anything is looked up; the limit per identity
//     and authenticator (default: bursts of 30, then 5 per second) is the
//     service's, applied once they are found and only to attempts that
//     reach a secret, so requests with made-up IDs cost the owner nothing
//     and are answered like real ones.
//
// An exhausted bucket answers 429 rate_limited with Retry-After, before
// any credential is checked: a rate-limited attempt is not a failed
// attempt and cannot suspend anything. Buckets live in memory per replica.
//
// # Metrics
//
// /metrics serves the Prometheus text format with
// github.com/prometheus/client_golang: requests by route and status,
// request durations, login outcomes by kind, suspensions, blocks, the
// guesses evaluated against a secret (authbench_verifier_checks_total,
// each after its attempt was reserved), store call latencies, the
// argon2id memory budget (in use, running, waiting, refused busy), and the
// go_* and process_* families; Metrics implements service.Metrics.
package api

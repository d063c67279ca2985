// Package api is the authbench server's HTTP JSON API, version 1 (DESIGN
// §5): the handlers of every /v1 endpoint, the OpenAPI 3.1 document that
// describes them (served at /v1/openapi.json), /healthz and /metrics.
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
// token returned by a login, which acts for its identity only.
//
// # Rate limiting, lockout and denial of service
//
// The lifecycle rules already stop guessing: the third wrong PIN, password
// or code suspends the authenticator, and the third suspension blocks it
// for good. That same rule lets anyone who knows an identity and
// authenticator ID suspend it on purpose (a denial of service against the
// owner, who must then reactivate it). The login endpoints are therefore
// rate limited with token buckets, per source address and per identity:
//
//   - per source (default: bursts of 60, then 10 per second) slows one
//     client that sprays many identities, and bounds the argon2id work it
//     can cause;
//   - per identity (default: bursts of 30, then 5 per second) slows a
//     distributed attack on one person.
//
// An exhausted bucket answers 429 rate_limited with Retry-After, before
// any credential is checked: a rate-limited attempt is not a failed
// attempt and cannot suspend anything. Hitting the per-identity limit only
// delays the owner for a moment, whereas a failed attempt counts toward a
// lockout that lasts until reactivation; so the limits are set above what
// a person or a test needs and well below what would make lockouts cheap
// to cause at scale. Buckets live in memory per replica.
//
// # Metrics
//
// /metrics writes the Prometheus text format (version 0.0.4) by hand:
// requests by route and status, request durations, login outcomes by kind,
// suspensions, blocks, and store call latencies (Metrics.InstrumentStore).
package api

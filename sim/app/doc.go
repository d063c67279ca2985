// Package app simulates the MitID app for tests and the demo: a device key
// pair (ECDSA P-256) and a six-digit PIN, in software only.
//
// It sits beside sim/chip and sim/code (see the README's layout) but has no wire
// protocol: the app talks to the server over HTTP, so server/client drives
// it directly. The server keeps the app's public key (SubjectPublicKeyInfo,
// RFC 5280 §4.1.2.7) and an argon2id verifier of the PIN; the app proves
// possession of its key by signing the SHA-256 hash of a server challenge
// with ECDSA (FIPS 186-5 §6.4, signature DER-encoded as in RFC 3279
// §2.2.3), and the person proves knowledge by typing the PIN.
//
// Determinism: the key pair and the default PIN are derived from
// Options.Seed with HKDF-SHA256 (RFC 5869), so the same seed gives the same
// app in every run. Signatures are randomised ECDSA and differ each time.
package app

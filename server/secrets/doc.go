// Package secrets protects the server's secrets at rest: it seals security
// elements (OTP secrets, app keys) under a master key, hashes PINs and
// passwords into argon2id verifiers, and issues self-service session tokens
// of which the store keeps only a hash (DESIGN §1 table, §5 "Secrets at
// rest").
//
// It sits beside server/domain, under the HTTP API and the ceremonies, and
// above server/store, which keeps what this package produces (Sealed blobs,
// verifier strings, token hashes) as opaque values. Apart from the key file
// functions (Load, LoadFile, Create, WriteFile) it does no I/O.
//
// # Sealing
//
// A Keyring holds one or more 32-byte master keys, each named by a key ID;
// one of them is current. Seal encrypts with XChaCha20-Poly1305
// (draft-irtf-cfrg-xchacha-03 §2, over RFC 8439 ChaCha20-Poly1305) under the
// current key and records its ID in the Sealed value, so that a key can be
// rotated while blobs sealed under older keys still open. The blob is
//
//	version (1 byte, 0x01) | nonce (24 random bytes) | ciphertext | tag (16 bytes)
//
// The associated data binds a blob to the row it belongs to: seal an OTP
// secret with AssociatedData("otp-secret", authenticatorID), and a copy of
// the blob pasted into another authenticator's row does not open.
//
// Rotation across replicas happens in two steps: first give every replica
// the new key as a non-current key (AddKey), then make it current
// (SetCurrent or Rotate), then Reseal the stored blobs, and only then
// remove the old key.
//
// # Key files
//
// A key file (or the AUTHBENCH_MASTER_KEY environment variable) holds
// either a single key, as 64 hex digits or as base64 (standard or URL
// alphabet, padded or not) of 32 bytes, or a JSON keyring:
//
//	{"current": "k2", "keys": {"k1": "<hex or base64>", "k2": "<hex or base64>"}}
//
// A single key is named by its fingerprint, "k-" and 8 hex digits of a
// SHA-256 over the key (see KeyID): the fingerprint reveals nothing useful
// about the key and is what logs show. Create writes a new JSON key file
// with mode 0600 and logs a warning that the new key must be backed up;
// losing it makes every sealed secret unreadable. A server creates a key
// only for a store that holds nothing sealed, and refuses to start when its
// keyring does not open what is sealed (service.CheckKeyring).
//
// # Verifiers
//
// PINs and passwords are stored as argon2id verifiers (RFC 9106) in the PHC
// string format:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// with salt and hash in unpadded standard base64. DefaultParams follow the
// OWASP Password Storage Cheat Sheet's first argon2id setting (19 MiB, two
// passes, one lane). Passwords are hashed in Unicode Normalization Form C,
// and refused when they are not valid UTF-8 text (NormalizePassword, as
// NIST SP 800-63B §5.1.1.2 asks).
//
// Every argon2id computation runs under the process-wide Limiter, a
// semaphore weighted by memory cost: at most its budget of argon2id memory
// is in use at once (by default two DefaultParams computations per CPU, at
// least 64 MiB); a computation that finds no room within the limiter's wait
// fails with a *BusyError (ErrBusy), which the HTTP API answers with 503
// and Retry-After, instead of the process growing with the number of
// requests.
// FastParams are for tests and the demo only. ParseVerifier refuses
// parameters above MaxParams, so a tampered database cannot make the server
// spend gigabytes or minutes on one login.
//
// A 6-digit PIN has only a million values: its verifier slows down an
// attacker who has the database but cannot stop one. Stores that may leak
// without the master key should seal PIN verifiers as well (Seal with
// AssociatedData("pin-verifier", authenticatorID)); online guessing is
// stopped by the lifecycle rules (the 3rd wrong PIN suspends the app).
//
// # Printing
//
// Keyring and Verifier never print their secrets: String, GoString, Format
// and LogValue show key IDs and parameters only, and encoding/json refuses
// them.
package secrets

// Package otp computes and checks one-time codes: HOTP (RFC 4226) and TOTP
// (RFC 6238) with HMAC-SHA-1, HMAC-SHA-256 or HMAC-SHA-512.
//
// It sits at the bottom of the code-device stack: simulated code displays and
// audio code readers (sim/code) call it to show a code, and the server calls
// it to check a code a person typed in. It is pure computation: no I/O, no
// clock of its own (every function takes the time as an argument).
//
// What it implements:
//   - RFC 4226 §5.3: the HOTP value and dynamic truncation (HOTP).
//   - RFC 4226 §7.4: look-ahead resynchronisation window (VerifyHOTP).
//   - RFC 6238 §4: time steps from T0 and X (TOTP.Step, TOTP.At).
//   - RFC 6238 §5.2: validation with a window of steps for clock drift, and
//     refusal of a code whose time step was already used (TOTP.Verify returns
//     the matched step and its drift, and takes the highest step used so far).
//
// Codes are compared in constant time (crypto/subtle) and every candidate
// step is checked, with no early exit on a match.
//
// Secrets are secrets: the types here never print a secret. TOTP formats
// itself with the secret redacted (for every fmt verb and for log/slog), and
// its Secret field is left out of encoding/json. Store secrets sealed, on
// their own.
package otp

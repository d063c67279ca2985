// Package ctap2 is the authenticator API of FIDO CTAP 2.1 (Client to
// Authenticator Protocol, Proposed Standard) for both sides of the wire, with
// the WebAuthn structures it carries.
//
// It sits between the transports (device/ctaphid for USB HID, device/apdu for
// ISO 7816 / NFC) and whatever uses a chip: the host side is Client, a
// device.Chip over a one-method Messenger; the device side is Handler, which
// serves any Authenticator (a simulator, or a Client, which makes a proxy).
// The package is pure: it does no I/O of its own and does not import package
// device (device imports it).
//
// What it implements:
//   - CTAP 2.1 §6 (Authenticator API): authenticatorMakeCredential (§6.1),
//     authenticatorGetAssertion (§6.2), authenticatorGetNextAssertion (§6.3),
//     authenticatorGetInfo (§6.4), authenticatorReset (§6.6) and
//     authenticatorSelection (§6.9): typed messages, strict decoders,
//     canonical encoders.
//   - CTAP 2.1 §8 (Message encoding): the CTAP2 canonical CBOR encoding form,
//     written with github.com/fxamacker/cbor/v2 and CTAP2EncOptions.
//     Decoding is strict: input must be one canonical item (shortest
//     arguments, sorted unique map keys, definite lengths, no tags, nothing
//     after it), null and undefined are refused, a value of the wrong type is
//     CTAP2_ERR_CBOR_UNEXPECTED_TYPE, a missing required parameter
//     CTAP2_ERR_MISSING_PARAMETER. Unknown map keys are ignored, for forward
//     compatibility, and are not kept: re-encoding a decoded message drops
//     them, along with optional fields sent with their zero value.
//   - CTAP 2.1 §8.2 (Status codes): every code as a constant, *StatusError,
//     and sentinels that match by code under errors.Is.
//   - CTAP 2.1 §11.2.9.2.1 / §11.3.4 keepalive statuses, passed between
//     transports and authenticators through the context (WithKeepalive,
//     Keepalive).
//   - WebAuthn Level 3 §6.1 and §6.5.1 (authenticator data and attested
//     credential data): AuthData, ParseAuthData, AuthData.Encode.
//   - RFC 9052 §7 / RFC 9053 §7 (COSE_Key) for ES256 (P-256) and EdDSA
//     (Ed25519) credential public keys, and assertion signature checks
//     (WebAuthn §7.2).
package ctap2

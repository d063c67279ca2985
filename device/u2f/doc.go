// Package u2f implements FIDO U2F (CTAP1): the raw messages of
// "FIDO U2F Raw Message Formats" v1.2 (U2F_REGISTER, U2F_AUTHENTICATE,
// U2F_VERSION), their status words, a host-side Client and a device-side
// Handler.
//
// Where it sits: below it, the U2F request and response APDUs are carried by
// CTAPHID_MSG over USB HID (CTAP 2.1 §11.2.9.1.1, package ctaphid) or sent
// as ISO 7816-4 APDUs after selecting the FIDO applet over NFC or a contact
// reader (CTAP 2.1 §11.3, package apdu). Both transports offer the
// one-method Messenger that Client needs, and both call a Handler's ServeU2F
// on the device side. Above it, every host transport drives a chip that
// speaks only U2F through Chip, the one place of the CTAP 2.1 §10
// translation (makeCredential and getAssertion to U2F_REGISTER and
// U2F_AUTHENTICATE, "fido-u2f" attestation, authenticator data built from
// the U2F responses): driver/usb for a key without CBOR in its CTAPHID_INIT
// capabilities, driver/pcsc for a "U2F_V2" card that refuses getInfo, and
// in-process hosts of a simulated U2F-only chip. Simulators implement
// Authenticator and serve it with NewHandler.
//
// What it implements, by section of the Raw Message Formats:
//   - §3 message framing: requests are ISO 7816-4 extended-length APDUs with
//     CLA 00, responses are data followed by SW1 SW2 (package apdu encodes);
//     the status words of §3.3 become *StatusError.
//   - §4 registration: RegisterRequest (§4.1), the test-of-user-presence
//     error (§4.2), RegisterResponse and the data the attestation key signs
//     (§4.3).
//   - §5 authentication: AuthenticateRequest with its control byte (§5.1),
//     the presence and bad-key-handle errors (§5.2, §5.3),
//     AuthenticateResponse and the data the credential key signs (§5.4).
//   - §6.1 U2F_VERSION, answered with "U2F_V2".
//
// The worked examples of the specification's Examples section are kept in
// testdata/u2f and checked byte for byte.
//
// Only P-256 keys and ECDSA-SHA256 signatures exist in U2F.
package u2f

// Package apdu speaks ISO/IEC 7816-4 APDUs and CTAP over ISO 7816 / NFC
// (CTAP 2.1 §11.3), on both sides of the wire.
//
// It sits between the PC/SC driver (driver/pcsc, which owns the *scard.Card)
// or a virtual card (vpcd), and the message layers device/ctap2 and device/u2f.
// It is pure: all I/O goes through the one-method Transmitter, which
// *scard.Card has as it is.
//
//   - Command and Response encode and parse APDUs, short and extended, in the
//     four cases of ISO/IEC 7816-4 §5.1; StatusError turns status words
//     (§5.6) into errors that unwrap to the device sentinels.
//   - Client is the host side: SELECT of the FIDO applet (CTAP 2.1 §11.3.3),
//     command chaining with CLA|0x10 in pieces of at most 250 bytes
//     (§11.3.5, ISO/IEC 7816-4 §5.4.1), 61xx + GET RESPONSE and 6Cxx, and
//     NFCCTAP_MSG / NFCCTAP_GETRESPONSE with 9100 status updates (§11.3.4),
//     reported through ctap2.Keepalive. It implements the ctap2 and u2f
//     messengers (CBOR and APDU methods).
//   - Card is the device side: it takes APDU bytes from a virtual card
//     reader or from an in-process Client (Card is itself a Transmitter) and
//     serves a Handler (ServeCTAP2, ServeU2F), so a simulator is device logic
//     only.
//
// Package apdutest has record and playback fakes of a Transmitter.
package apdu

// Package pcsc is the PC/SC driver for MitID chips: FIDO authenticators
// reached as smart cards (contact cards, NFC tokens on CCID readers, and
// simulated cards behind pcscd's vpcd driver).
//
// Where it sits: this is the only package that touches libpcsclite (through
// cgo and github.com/ebfe/scard). It opens the OS resource and hands bytes to
// the pure protocol packages: device/apdu speaks CTAP over ISO 7816 (CTAP 2.1
// §11.3: SELECT, command chaining, 61xx / GET RESPONSE, NFCCTAP_MSG with 9100
// keepalives), device/ctap2 the authenticator API (CTAP 2.1 §6), device/u2f
// the U2F raw messages. Above it, anything that takes a device.Chip.
//
//	Open                 SCardEstablishContext
//	Context.Readers      SCardListReaders + SCardGetStatusChange
//	Context.Wait / Diff  SCardGetStatusChange in short slices, SCardCancel on ctx end
//	Context.OpenChip     SCardConnect (shared, T=0|T=1), SELECT A0000006472F0001
//	Chip (device.Chip)   every command inside a PC/SC transaction (SCardBeginTransaction ..
//	                     SCardEndTransaction) around all of its APDUs, shared by
//	                     a burst of commands (Options.TxLinger); none if Exclusive
//
// Deadlines: every method takes a context and returns when it ends, even
// though PC/SC calls cannot be interrupted: the calls run on a goroutine per
// Context or Chip, and a caller that gives up leaves its call to finish there
// (see Chip for what this means for the card). Nothing is left running after
// Close unless pcscd itself never returns; Close then gives up after
// Options.CloseWait and says so.
//
// Errors: PC/SC return codes become *Error{Op, Reader, Code}, which unwraps
// to device.ErrRemoved (card removed or reset), device.ErrNotFound (no such
// reader, no card), ErrNoService (pcscd not running), device.ErrBusy,
// device.ErrTimeout or device.ErrProtocol. A card without a FIDO applet
// (SELECT answers 6A82) gives an error wrapping device.ErrNotFound that says
// "card in READER is not a FIDO authenticator".
//
// U2F-only cards (CTAP 2.1 §10): a card whose applet answers "U2F_V2" and
// refuses authenticatorGetInfo is driven through U2F_REGISTER and
// U2F_AUTHENTICATE, and still looks like a device.Chip ("fido-u2f"
// attestation); Chip.U2F gives the raw U2F client.
//
// The seam: everything taken from libpcsclite is in seam.go (five context
// calls, six card calls) and implemented in scard_cgo.go. A build without
// cgo compiles, and Open then returns an error wrapping
// device.ErrNotSupported: "PC/SC support was not compiled in".
//
// Tests run against a private pcscd with vpcd (internal/pcscdtest) and the
// simulated chip (sim/chip behind apdu.NewCard and sim/vicc); logic tests
// use a fake seam and need no pcscd.
package pcsc

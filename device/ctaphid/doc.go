// Package ctaphid implements CTAPHID, the USB HID transport of FIDO
// authenticators (CTAP 2.1 §11.2, "USB Human Interface Device"), on both
// sides of the wire.
//
// It sits between a report transport and the CTAP2 / U2F message layers:
//
//	host:   ctap2.Client, u2f.Client -> Conn (CBOR, APDU) -> report transport
//	device: report transport -> Serve -> Handler (ctap2.Handler + u2f.Handler)
//
// where the report transport is a gousb endpoint pair (driver/usb), a UDP
// socket, or the in-memory Pipe.
//
// A report transport is an io.ReadWriter that moves one whole 64-byte report
// per Read or Write, without a leading report-ID byte (that is how libusb
// interrupt endpoints and UDP datagrams behave). The package does no I/O of
// its own beyond that interface.
//
// What is implemented, by spec section:
//
//   - §11.2.4 message and packet structure: [Packet], [ParsePacket],
//     [Fragment] and [Reassembler] (initialization packets CID | CMD|0x80 |
//     BCNT | 57 data bytes, continuation packets CID | SEQ | 59 data bytes, at
//     most 7609 bytes per message).
//   - §11.2.3 channels and §11.2.5 arbitration (busy channels, transaction
//     timeout, abort and resynchronization, packet sequencing): in the
//     Reassembler and in [Serve].
//   - §11.2.9.1 the mandatory commands MSG, CBOR, INIT, PING, CANCEL, ERROR and
//     KEEPALIVE, and §11.2.9.2.1 WINK, on the host side ([Conn], opened with
//     [Open]) and on the device side ([Serve], which hands CTAP2 and U2F
//     requests to a [Handler]). The optional LOCK command (§11.2.9.2.2) is not
//     offered: Serve answers it with ERR_INVALID_CMD.
//
// [NewPipe] and [NewHub] are in-memory report transports for simulators and
// tests; the record/playback and fault-injection fakes are in package
// ctaphidtest.
package ctaphid

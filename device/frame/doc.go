// Package frame speaks CDP/1, the serial protocol of code displays
// (kodevisere) and audio code readers (kodeoplæsere), on both sides of the
// wire, as specified in docs/cdp1.md.
//
// It sits between a byte stream (a UART through go.bug.st/serial in
// driver/serial, or a pty in simulation) and the device vocabulary: Host
// implements device.CodeDevice, and Serve lets a simulator (sim/code) be
// device logic only. It is pure: all I/O goes through the io.ReadWriter it is
// given, and it never imports a serial library.
//
//   - Frame, ParseFrame and CRC16: the frame layout A5 | LEN | SEQ | CMD |
//     PAYLOAD | CRC with CRC-16/CCITT-FALSE (§4 "Frame").
//   - Parser: finds frames in a stream, resynchronising after noise, false
//     A5 bytes and bad CRCs, which it drops silently and counts (§4 "A
//     receiver skips bytes until A5 and a frame whose CRC checks").
//   - Identity, PressResponse, Display, AudioRequest, Settings,
//     DeviceStatus, ProvisionRequest, ProvisionResponse, SetClock: the
//     payloads of the §4 command table, each with ParseXxx and Encode;
//     Status and StatusError: the §4 status table. ProvisionKey, SealSecret
//     and ProvisionResponse.Open: the PROVISION key agreement and sealing.
//   - Host: numbers requests with SEQ, resends on timeout with the same SEQ,
//     ignores stale answers (§4 "a frame with a bad CRC is dropped silently
//     (the host times out and resends)").
//   - Server and Serve: answer with CMD|0x80, the same SEQ and the status
//     first, replay the cached answer to a repeated request, never speak
//     first (§4 "A repeated SEQ gets the cached response again").
//
// Package frametest has record and playback fakes of the byte stream, an
// in-memory pipe and a fault injector.
package frame

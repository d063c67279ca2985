// Package serial is the driver for code displays (kodevisere) and audio
// code readers (kodeoplæsere) on a serial port: the test UART of
// CDP/1 §1 (docs/cdp1.md: 115200 8N1, no flow control), a USB serial adapter, or a
// pseudo-terminal that a simulator (sim/code ServePTY) serves.
//
// Where it sits: it opens the OS resource with go.bug.st/serial and hands
// the bytes to device/frame, which speaks CDP/1 (docs/cdp1.md); for audio
// readers it hands the spoken PCM to device/voice. Open returns a
// *CodeDevice, which implements device.CodeDevice (Identify, Press) for
// the conformance suites and the server's enrolment ceremonies; Host gives
// the remaining CDP/1 commands (DISPLAY, AUDIO, SETTINGS, STATUS,
// PROVISION, SET_CLOCK, SEAL). List and Probe find devices for
// `authbench devices`.
//
// What it adds to device/frame:
//
//   - The port: 115200 baud, 8 data bits, no parity, one stop bit, raw
//     mode, no RTS/CTS; it never sets DTR or RTS, whose ioctls ptys refuse.
//     Reads are bounded by the port's read timeout, so a device that stops
//     answering gives device.ErrTimeout after (1+Retries)×Timeout, or the
//     caller's deadline, whichever comes first.
//   - Errors of the port: a port that closes or whose device goes away
//     (go.bug.st/serial PortClosed, EIO, ENXIO, ENODEV) wraps
//     device.ErrRemoved; a path with no port wraps device.ErrNotFound; a
//     port where no CDP/1 device answers IDENTIFY is a *NoDeviceError.
//   - Audio readers: Press fetches the speech (CDP/1 AUDIO) into
//     Code.Audio and checks with voice.Decoder.Check (Options.Voice: the
//     prompts learnt from that reader with voice.Learn; by default
//     voice.DefaultDecoder, which knows the simulated reader's own voice;
//     none with Options.NoVoiceCheck) that every repetition says the code
//     of the PRESS answer, or returns an *AudioMismatchError that carries
//     the code and the recording (SaveWAV keeps it as a WAV file).
//
// The package builds without cgo: go.bug.st/serial is pure Go on Linux.
package serial

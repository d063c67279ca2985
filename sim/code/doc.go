// Package code simulates the MitID code devices : the code
// display (kodeviser), a TOTP token that shows a code when its button is
// pressed, and the audio code reader (kodeoplæser), the same token speaking
// the digits. Both speak CDP/1, the serial code-device protocol of
// CDP/1 (docs/cdp1.md), exactly as a real device on its test UART would.
//
// Where it sits: a Device is device logic only. It answers CDP/1 commands
// through the device side of device/frame, which does the framing, the CRC
// and the repeated-SEQ cache; every transport reuses that:
//
//   - in-process, Device implements device.CodeDevice directly (Identify,
//     Press) by running each call through its CDP/1 command handler;
//   - Pipe connects a device/frame host to the device over an in-memory
//     byte stream (net.Pipe) that carries real CDP/1 frames;
//   - ServePTY gives the device a pseudo-terminal, so that driver/serial
//     (go.bug.st/serial) opens it like a real UART.
//
// A device is deterministic: its serial, OTP secret, X25519 key and
// PROVISION nonces are derived from Options.Seed, its clock is
// Options.Now plus an offset (set by SET_CLOCK) plus an optional drift, and
// the audio reader's speech (sim/code/voice) depends only on the code, the
// settings and its voice (Options.Voice: its own, prompts from a folder,
// or an espeak-ng voice).
//
// What it implements of CDP/1, command by command:
//
//   - IDENTIFY: every TLV (kind, serial, model, firmware, protocol version 1,
//     digits, period, algorithm).
//   - PRESS: the RFC 6238 §4 code of the device clock's time step, the
//     seconds left in that step (rounded up), and on an audio reader the
//     sample rate and length of the speech. Every successful press counts.
//     A code display then shows the code until its step ends.
//   - DISPLAY: the code shown, or nothing once its step has ended.
//   - AUDIO: slices of the last speech, s16le mono PCM; status 0x06 before
//     the first press. At most min(max, frame.MaxData) bytes come back; an
//     offset at or past the end gives none (as frame.AudioRequest says);
//     max 0 is status 0x02.
//   - SETTINGS: language "da" or "en" (one the voice speaks), speed 50 to
//     200 %, volume 0 to 100 %; anything else is status 0x02. The new
//     settings apply from the next press.
//   - STATUS: battery, device clock, presses, factory mode.
//   - PROVISION, SET_CLOCK, SEAL: factory mode only. PROVISION uses
//     frame.SealSecret; OpenSealedSecret is the station's side.
//
// Decisions where §4 leaves room:
//
//   - A command a kind of device lacks is status 0x01 (unknown command):
//     a code display has no speaker, so AUDIO and SETTINGS are unknown to
//     it; an audio reader has no display, so DISPLAY is unknown to it. A
//     host can tell "not this kind of device" (0x01) from "bad value"
//     (0x02) that way.
//   - Factory commands on a device that was never in factory mode are 0x03
//     (not in factory mode); after SEAL they are 0x07 (sealed), for good.
//   - A request with a payload where none is expected, or of the wrong
//     length, is 0x02. The factory-mode check comes first.
//   - PRESS with the battery below LowBattery percent is 0x05 and consumes
//     no code; so is a press while Faults.Busy is set (0x04).
//   - Before any SET_CLOCK the device clock is Now + Drift.Offset, running
//     at 1 + Drift.PPM/1e6 of Now's rate from New; SET_CLOCK restarts it at
//     the given second with the same rate error.
package code

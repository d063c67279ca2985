// Package faults holds no code: its tests are the cross-transport tables of
// what a host sees when a simulated device or its wire misbehaves (GitHub
// issue "Simulators", item 4). Each table row names a fault, what the host
// does, and what it must see; every row asserts.
//
// The hosts are the real ones, talking to the real simulators through the
// fault wrappers of the transport fakes:
//
//   - CTAPHID (CTAP 2.1 §11.2): ctap2.Client over ctaphid.Conn, over
//     ctaphidtest.Faulty, over ctaphid.NewPipe, to ctaphid.Serve and a
//     sim/chip Chip. Lost, repeated, damaged, swapped, misaddressed and late
//     reports (§11.2.4 packet sequencing, §11.2.5 arbitration and
//     timeouts), and a button that is never pressed (§11.2.9.1.7 KEEPALIVE).
//   - CDP/1 (docs/cdp1.md): frame.Host over frametest.Faults, over
//     frametest.Pipe, to frame.Server and a sim/code Device. Lost, repeated,
//     damaged, swapped and late frames, wrong SEQ and bad CRC (resend with
//     the same SEQ, the device's cache of its last answer), a pulled cable,
//     a drifting clock (RFC 6238 §6) and a low battery.
//   - CTAP over ISO 7816 (CTAP 2.1 §11.3): ctap2.Client over apdu.Client to
//     apdu.Card and a sim/chip Chip: storms of 61xx (ISO/IEC 7816-4 §7.6.1)
//     and 9100 (§11.3.4), a card removed mid-command, a garbled answer, a
//     button that is never pressed.
//   - PC/SC: driver/pcsc through a private pcscd with vpcd (needs root and
//     cgo; internal/pcscdtest) to sim/vicc with its Fault options: a card
//     pulled mid-command, answers that are late, garbled or cut short.
//
// `authbench sim --fault` offers these faults on the command line (see
// `authbench help sim`), and `authbench check` reports what a bench sees.
package faults

// Package vicc connects a simulated smart card to pcscd through
// vsmartcard-vpcd, so that every PC/SC program on the machine (pcsc_scan,
// python-fido2, our own driver/pcsc) sees the simulation as a card in the
// reader "Virtual PCD 00 00" (port 35963) or "Virtual PCD 00 01" (35964).
//
// The vpcd protocol is small: pcscd's vpcd driver listens on TCP, the virtual
// card (vicc) connects to it, and both sides exchange messages framed by a
// two-byte big-endian length. A one-byte message from vpcd is a control
// command — 0x00 power off, 0x01 power on, 0x02 reset, 0x04 get ATR (answered
// with the ATR) — and anything longer is a command APDU, answered with the
// response APDU. Power and reset get no answer.
//
// Pitfalls handled here: TCP_QUICKACK is set before every
// read, or each APDU costs a delayed-ACK round of about 45 ms; pcscd polls the
// card with "get ATR" at any time, also between APDUs; and a card that left
// is reported present until pcscd polls again, so a new connection counts as
// ready only after vpcd's first message arrived. When pcscd goes away the
// card reconnects until its context ends.
//
// For tests of PC/SC hosts, Options.Fault makes the card misbehave on chosen
// APDUs: leave mid-command (FaultRemove), never answer (FaultMute), answer
// late (FaultDelay), answer noise (FaultGarbage) or a response cut inside
// its status word (FaultTruncate). Package sim/faults shows what
// driver/pcsc reports for each.
package vicc

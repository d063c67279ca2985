package frame

import (
	"encoding/binary"
	"fmt"

	"github.com/authbench/authbench/device"
)

// Framing constants (CDP/1 §2, docs/cdp1.md).
const (
	SOF        = 0xA5 // first byte of every frame
	MaxPayload = 1024 // largest PAYLOAD (LEN) a frame may carry
	HeaderLen  = 5    // SOF, LEN (2), SEQ, CMD
	Overhead   = 7    // HeaderLen + CRC (2)
	MaxFrame   = MaxPayload + Overhead

	// ResponseBit is set in CMD on every response (CMD|0x80).
	ResponseBit = 0x80
	// MaxData is the most a response can carry after its status byte.
	MaxData = MaxPayload - 1
)

// Commands (CDP/1 §4).
const (
	CmdIdentify  byte = 0x01 // who are you: TLVs
	CmdPress     byte = 0x02 // press the button: the code
	CmdDisplay   byte = 0x03 // what the display shows now
	CmdAudio     byte = 0x04 // fetch PCM of the last spoken code
	CmdSettings  byte = 0x05 // audio reader language, speed, volume
	CmdStatus    byte = 0x06 // battery, clock, presses, factory mode
	CmdProvision byte = 0x10 // factory: X25519 exchange, sealed OTP secret
	CmdSetClock  byte = 0x11 // factory: set the clock (unix s)
	CmdSeal      byte = 0x12 // factory: leave factory mode for good
)

var cmdNames = map[byte]string{
	CmdIdentify:  "IDENTIFY",
	CmdPress:     "PRESS",
	CmdDisplay:   "DISPLAY",
	CmdAudio:     "AUDIO",
	CmdSettings:  "SETTINGS",
	CmdStatus:    "STATUS",
	CmdProvision: "PROVISION",
	CmdSetClock:  "SET_CLOCK",
	CmdSeal:      "SEAL",
}

// CmdName returns the CDP/1 name of a command ("PRESS"), with " response"
// appended when the response bit is set, or "CMD 0x42" for an unknown one.
func CmdName(cmd byte) string {
	suffix := ""
	if cmd&ResponseBit != 0 {
		suffix = " response"
	}
	if s, ok := cmdNames[cmd&^ResponseBit]; ok {
		return s + suffix
	}
	return fmt.Sprintf("CMD 0x%02X", cmd)
}

// Frame is one CDP/1 frame: A5 | LEN (u16 BE) | SEQ | CMD | PAYLOAD | CRC
// (u16 BE). A response has CMD|ResponseBit, the SEQ of its request, and its
// status in Payload[0].
type Frame struct {
	Seq     byte
	Cmd     byte
	Payload []byte
}

// IsResponse reports whether f carries the response bit.
func (f *Frame) IsResponse() bool { return f.Cmd&ResponseBit != 0 }

// Encode returns the frame's bytes on the wire. It fails with an error
// wrapping device.ErrMessageTooLarge when the payload exceeds MaxPayload.
func (f *Frame) Encode() ([]byte, error) {
	return f.AppendEncode(make([]byte, 0, len(f.Payload)+Overhead))
}

// AppendEncode appends the frame's bytes to dst, like Encode.
func (f *Frame) AppendEncode(dst []byte) ([]byte, error) {
	if len(f.Payload) > MaxPayload {
		return dst, fmt.Errorf("frame: %s payload of %d bytes, at most %d fit: %w",
			CmdName(f.Cmd), len(f.Payload), MaxPayload, device.ErrMessageTooLarge)
	}
	start := len(dst)
	dst = append(dst, SOF, byte(len(f.Payload)>>8), byte(len(f.Payload)), f.Seq, f.Cmd)
	dst = append(dst, f.Payload...)
	return binary.BigEndian.AppendUint16(dst, CRC16(dst[start+1:])), nil
}

// ErrChecksum is wrapped by ParseFrame when the CRC does not match. It
// wraps device.ErrProtocol.
var ErrChecksum = fmt.Errorf("frame: CRC mismatch: %w", device.ErrProtocol)

// ParseFrame parses b as exactly one frame: no bytes before or after it. It
// returns an error wrapping ErrChecksum on a bad CRC, device.ErrMessageTooLarge
// when LEN exceeds MaxPayload, and device.ErrProtocol for anything else that
// is not a frame. The Payload of the result is a copy.
//
// To find frames in a byte stream, with resynchronisation, use Parser.
func ParseFrame(b []byte) (*Frame, error) {
	if len(b) < Overhead {
		return nil, fmt.Errorf("frame: %d bytes, a frame has at least %d: %w", len(b), Overhead, device.ErrProtocol)
	}
	if b[0] != SOF {
		return nil, fmt.Errorf("frame: starts with 0x%02X, want 0x%02X: %w", b[0], SOF, device.ErrProtocol)
	}
	n := int(binary.BigEndian.Uint16(b[1:3]))
	if n > MaxPayload {
		return nil, fmt.Errorf("frame: LEN %d exceeds %d: %w", n, MaxPayload, device.ErrMessageTooLarge)
	}
	if len(b) != n+Overhead {
		return nil, fmt.Errorf("frame: LEN %d needs %d bytes, have %d: %w", n, n+Overhead, len(b), device.ErrProtocol)
	}
	if got, want := binary.BigEndian.Uint16(b[len(b)-2:]), CRC16(b[1:len(b)-2]); got != want {
		return nil, fmt.Errorf("frame: CRC 0x%04X, computed 0x%04X: %w", got, want, ErrChecksum)
	}
	return &Frame{Seq: b[3], Cmd: b[4], Payload: append([]byte{}, b[HeaderLen:HeaderLen+n]...)}, nil
}

// CRC16 returns the CRC-16/CCITT-FALSE of b (polynomial 0x1021, initial
// value 0xFFFF, no reflection, no final XOR), which CDP/1 computes over LEN,
// SEQ, CMD and PAYLOAD. Its check value, over "123456789", is 0x29B1.
func CRC16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^c]
	}
	return crc
}

var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

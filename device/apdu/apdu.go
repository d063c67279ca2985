package apdu

import (
	"encoding/binary"
	"fmt"

	"github.com/authbench/authbench/device"
)

// Size limits of the two APDU encodings (ISO/IEC 7816-4 §5.1).
const (
	MaxShortData    = 255   // Nc of a short command
	MaxShortNe      = 256   // Ne of a short command (Le = 00)
	MaxExtendedData = 65535 // Nc of an extended command
	MaxExtendedNe   = 65536 // Ne of an extended command (Le = 00 00)
)

// Command is a command APDU (ISO/IEC 7816-4 §5.1): a four-byte header, the
// command data (Nc = len(Data) bytes, carried in the Lc field) and Ne, the
// maximum number of response bytes expected (carried in the Le field).
//
// Ne = 0 means "no Le field". Otherwise Ne runs from 1 to 256 in the short
// encoding, where Le = 00 stands for 256, and from 1 to 65536 in the extended
// encoding, where Le = 00 00 stands for 65536.
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	Ne               int
}

// FormatError reports bytes that are not a well-formed APDU, or a Command
// that cannot be encoded. It unwraps to device.ErrProtocol.
type FormatError struct {
	What   string // "command" or "response"
	Len    int    // number of bytes examined (or the Nc of the command)
	Reason string // what is wrong, for people
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("apdu: malformed %s APDU (%d bytes): %s", e.What, e.Len, e.Reason)
}

// Unwrap returns device.ErrProtocol.
func (e *FormatError) Unwrap() error { return device.ErrProtocol }

func (c *Command) check() error {
	if len(c.Data) > MaxExtendedData {
		return fmt.Errorf("apdu: command data of %d bytes exceeds %d: %w",
			len(c.Data), MaxExtendedData, device.ErrMessageTooLarge)
	}
	if c.Ne < 0 || c.Ne > MaxExtendedNe {
		return &FormatError{What: "command", Len: len(c.Data), Reason: fmt.Sprintf("Ne %d outside 0..%d", c.Ne, MaxExtendedNe)}
	}
	return nil
}

// Short reports whether c fits the short encoding (Nc ≤ 255, Ne ≤ 256).
func (c *Command) Short() bool {
	return len(c.Data) <= MaxShortData && c.Ne <= MaxShortNe
}

// Encode returns c in the short encoding when it fits (ISO/IEC 7816-4 §5.1,
// cases 1, 2S, 3S, 4S) and in the extended encoding otherwise (cases 2E, 3E,
// 4E). It returns an error wrapping device.ErrMessageTooLarge when Data is
// longer than 65535 bytes, and a *FormatError when Ne is outside 0..65536.
func (c *Command) Encode() ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if !c.Short() {
		return c.encodeExtended(), nil
	}
	b := make([]byte, 0, 4+1+len(c.Data)+1)
	b = append(b, c.CLA, c.INS, c.P1, c.P2)
	if len(c.Data) > 0 {
		b = append(b, byte(len(c.Data)))
		b = append(b, c.Data...)
	}
	if c.Ne > 0 {
		b = append(b, byte(c.Ne)) // 256 becomes 00
	}
	return b, nil
}

// EncodeExtended returns c in the extended encoding (ISO/IEC 7816-4 §5.1,
// cases 2E, 3E, 4E) even when the short one would do; a case 1 command (no
// data, no Le) has no length fields and is the same in both. It returns the
// same errors as Encode.
func (c *Command) EncodeExtended() ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	return c.encodeExtended(), nil
}

func (c *Command) encodeExtended() []byte {
	b := make([]byte, 0, 4+3+len(c.Data)+2)
	b = append(b, c.CLA, c.INS, c.P1, c.P2)
	if len(c.Data) > 0 {
		b = append(b, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.Data)))
		b = append(b, c.Data...)
	}
	if c.Ne > 0 {
		if len(c.Data) == 0 {
			b = append(b, 0)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(c.Ne)) // 65536 becomes 00 00
	}
	return b
}

// ParseCommand decodes a command APDU in any of the four cases of ISO/IEC
// 7816-4 §5.1, short or extended. Parsing is strict: the Lc field must match
// the number of data bytes that follow, an extended Lc may not be zero, and
// nothing may trail the Le field.
//
// One deviation is accepted because U2F hosts send it (FIDO U2F Raw Message
// Formats §3.1.1, an extended request with empty data): `00 00 00 Le1 Le2`
// after the header is read as case 2E with Ne from Le1 Le2. Encode writes the
// canonical form `00 Le1 Le2` back.
//
// The returned Command owns a copy of the data. ParseCommand returns a
// *FormatError for anything else.
func ParseCommand(b []byte) (*Command, error) {
	bad := func(reason string) (*Command, error) {
		return nil, &FormatError{What: "command", Len: len(b), Reason: reason}
	}
	if len(b) < 4 {
		return bad("shorter than the 4-byte header")
	}
	c := &Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3]}
	body := b[4:]
	n := len(body)
	switch {
	case n == 0: // case 1
	case n == 1: // case 2S
		c.Ne = shortNe(body[0])
	case body[0] != 0: // case 3S or 4S
		lc := int(body[0])
		switch n {
		case 1 + lc:
		case 2 + lc:
			c.Ne = shortNe(body[n-1])
		default:
			return bad(fmt.Sprintf("short Lc says %d data bytes, %d bytes follow it", lc, n-1))
		}
		c.Data = append([]byte(nil), body[1:1+lc]...)
	case n == 2:
		return bad("extended length field is truncated")
	case n == 3: // case 2E
		c.Ne = extendedNe(body[1:3])
	default: // case 3E or 4E
		lc := int(binary.BigEndian.Uint16(body[1:3]))
		if lc == 0 {
			if n == 5 { // U2F hosts: empty extended Lc, then Le
				c.Ne = extendedNe(body[3:5])
				return c, nil
			}
			return bad("extended Lc is zero")
		}
		switch n {
		case 3 + lc:
		case 5 + lc:
			c.Ne = extendedNe(body[n-2:])
		default:
			return bad(fmt.Sprintf("extended Lc says %d data bytes, %d bytes follow it", lc, n-3))
		}
		c.Data = append([]byte(nil), body[3:3+lc]...)
	}
	return c, nil
}

func shortNe(le byte) int {
	if le == 0 {
		return MaxShortNe
	}
	return int(le)
}

func extendedNe(le []byte) int {
	v := int(binary.BigEndian.Uint16(le))
	if v == 0 {
		return MaxExtendedNe
	}
	return v
}

// String returns the command as hex, for logs and test failures.
func (c *Command) String() string {
	b, err := c.Encode()
	if err != nil {
		return fmt.Sprintf("%02X %02X %02X %02X (unencodable: %v)", c.CLA, c.INS, c.P1, c.P2, err)
	}
	return fmt.Sprintf("%X", b)
}

// Response is a response APDU (ISO/IEC 7816-4 §5.1): response data followed by
// the status word SW1 SW2.
type Response struct {
	Data []byte
	SW   uint16
}

// ParseResponse decodes a response APDU. It returns a *FormatError when b is
// shorter than the two status bytes. The returned Response owns a copy of the
// data.
func ParseResponse(b []byte) (*Response, error) {
	if len(b) < 2 {
		return nil, &FormatError{What: "response", Len: len(b), Reason: "shorter than the 2-byte status word"}
	}
	n := len(b) - 2
	return &Response{
		Data: append([]byte(nil), b[:n]...),
		SW:   binary.BigEndian.Uint16(b[n:]),
	}, nil
}

// Encode returns the response data followed by SW1 SW2.
func (r *Response) Encode() []byte {
	b := make([]byte, 0, len(r.Data)+2)
	b = append(b, r.Data...)
	return binary.BigEndian.AppendUint16(b, r.SW)
}

// SW1 returns the first status byte.
func (r *Response) SW1() byte { return byte(r.SW >> 8) }

// SW2 returns the second status byte.
func (r *Response) SW2() byte { return byte(r.SW) }

// Err returns nil when the status word is 9000 and a *StatusError otherwise.
func (r *Response) Err() error {
	if r.SW == SWOK {
		return nil
	}
	return &StatusError{SW: r.SW}
}

package ctaphid

import (
	"encoding/binary"
	"fmt"

	"github.com/authbench/authbench/device"
)

// Sizes of the CTAPHID framing (CTAP 2.1 §11.2.4). Reports are always
// ReportSize bytes: the FIDO HID report descriptor fixes both the input and
// the output report at 64 bytes (§11.2.8.2).
const (
	ReportSize     = 64                                     // bytes in one HID report
	InitDataSize   = ReportSize - 7                         // payload bytes in an initialization packet (57)
	ContDataSize   = ReportSize - 5                         // payload bytes in a continuation packet (59)
	MaxSeq         = 0x7F                                   // highest continuation sequence number
	MaxMessageSize = InitDataSize + (MaxSeq+1)*ContDataSize // 7609 bytes
)

// BroadcastCID is the channel on which CTAPHID_INIT allocates a channel
// (CTAP 2.1 §11.2.3). The value 0 is reserved and never allocated.
const BroadcastCID uint32 = 0xFFFFFFFF

// ProtocolVersion is the CTAPHID protocol version this package speaks and
// reports in the INIT response (CTAP 2.1 §11.2.9.1.3).
const ProtocolVersion byte = 2

// Command is a CTAPHID command, without the 0x80 bit that marks an
// initialization packet (CTAP 2.1 §11.2.9).
type Command byte

// CTAPHID commands (CTAP 2.1 §11.2.9.1 mandatory, §11.2.9.2 optional).
const (
	CmdPing      Command = 0x01 // §11.2.9.1.4 echo
	CmdMsg       Command = 0x03 // §11.2.9.1.1 CTAP1/U2F request APDU
	CmdLock      Command = 0x04 // §11.2.9.2.2 channel lock (optional)
	CmdInit      Command = 0x06 // §11.2.9.1.3 channel allocation and resync
	CmdWink      Command = 0x08 // §11.2.9.2.1 identify the device (optional)
	CmdCBOR      Command = 0x10 // §11.2.9.1.2 CTAP2 CBOR request
	CmdCancel    Command = 0x11 // §11.2.9.1.5 cancel the outstanding request
	CmdKeepalive Command = 0x3B // §11.2.9.1.7 processing / waiting for the user
	CmdError     Command = 0x3F // §11.2.9.1.6 error response
)

var commandNames = map[Command]string{
	CmdPing: "PING", CmdMsg: "MSG", CmdLock: "LOCK", CmdInit: "INIT",
	CmdWink: "WINK", CmdCBOR: "CBOR", CmdCancel: "CANCEL",
	CmdKeepalive: "KEEPALIVE", CmdError: "ERROR",
}

// String returns the spec name without the CTAPHID_ prefix, e.g. "CBOR".
func (c Command) String() string {
	if s, ok := commandNames[c]; ok {
		return s
	}
	return fmt.Sprintf("Command(0x%02X)", byte(c))
}

// ErrorCode is the one data byte of a CTAPHID_ERROR response
// (CTAP 2.1 §11.2.9.1.6).
type ErrorCode byte

// CTAPHID error codes (CTAP 2.1 §11.2.9.1.6).
const (
	CodeInvalidCmd     ErrorCode = 0x01 // the command is unknown or not offered
	CodeInvalidPar     ErrorCode = 0x02 // a parameter in the request is invalid
	CodeInvalidLen     ErrorCode = 0x03 // BCNT is invalid for the command
	CodeInvalidSeq     ErrorCode = 0x04 // a continuation packet came out of order
	CodeMsgTimeout     ErrorCode = 0x05 // the message was not completed in time
	CodeChannelBusy    ErrorCode = 0x06 // the device is busy with another channel
	CodeLockRequired   ErrorCode = 0x0A // the command requires a channel lock
	CodeInvalidChannel ErrorCode = 0x0B // the CID is not allocated
	CodeOther          ErrorCode = 0x7F // unspecified error
)

var codeNames = map[ErrorCode]string{
	CodeInvalidCmd: "ERR_INVALID_CMD", CodeInvalidPar: "ERR_INVALID_PAR",
	CodeInvalidLen: "ERR_INVALID_LEN", CodeInvalidSeq: "ERR_INVALID_SEQ",
	CodeMsgTimeout: "ERR_MSG_TIMEOUT", CodeChannelBusy: "ERR_CHANNEL_BUSY",
	CodeLockRequired: "ERR_LOCK_REQUIRED", CodeInvalidChannel: "ERR_INVALID_CHANNEL",
	CodeOther: "ERR_OTHER",
}

// String returns the spec name without the CTAP1_ prefix, e.g.
// "ERR_CHANNEL_BUSY".
func (c ErrorCode) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("ErrorCode(0x%02X)", byte(c))
}

// Capabilities are the capability flags of the INIT response
// (CTAP 2.1 §11.2.9.1.3).
type Capabilities byte

// Capability flags.
const (
	CapWink Capabilities = 0x01 // the device answers WINK
	CapCBOR Capabilities = 0x04 // the device answers CBOR (CTAP2)
	CapNMSG Capabilities = 0x08 // the device does NOT answer MSG (no CTAP1/U2F)
)

// Has reports whether every flag in f is set in c.
func (c Capabilities) Has(f Capabilities) bool { return c&f == f }

// String lists the flags that are set, e.g. "WINK|CBOR".
func (c Capabilities) String() string {
	s := ""
	add := func(name string) {
		if s != "" {
			s += "|"
		}
		s += name
	}
	for _, f := range []struct {
		flag Capabilities
		name string
	}{{CapWink, "WINK"}, {CapCBOR, "CBOR"}, {CapNMSG, "NMSG"}} {
		if c.Has(f.flag) {
			add(f.name)
		}
	}
	if rest := c &^ (CapWink | CapCBOR | CapNMSG); rest != 0 {
		add(fmt.Sprintf("0x%02X", byte(rest)))
	}
	if s == "" {
		return "0"
	}
	return s
}

// Error is a CTAPHID_ERROR (CTAP 2.1 §11.2.9.1.6). On the host side it is
// what the device answered on channel CID; on the device side the
// Reassembler returns it to say which error to send back on which channel.
//
// Error unwraps to a sentinel of package device: ERR_CHANNEL_BUSY and
// ERR_LOCK_REQUIRED to device.ErrBusy, ERR_MSG_TIMEOUT to device.ErrTimeout,
// ERR_INVALID_CMD to device.ErrNotSupported, and every other code to
// device.ErrProtocol.
type Error struct {
	CID  uint32
	Code ErrorCode
}

func (e *Error) Error() string {
	return fmt.Sprintf("ctaphid: %s (0x%02X) on channel %08X", e.Code, byte(e.Code), e.CID)
}

// Unwrap returns the device sentinel that matches e.Code.
func (e *Error) Unwrap() error {
	switch e.Code {
	case CodeChannelBusy, CodeLockRequired:
		return device.ErrBusy
	case CodeMsgTimeout:
		return device.ErrTimeout
	case CodeInvalidCmd:
		return device.ErrNotSupported
	}
	return device.ErrProtocol
}

// TooLargeError reports a message longer than a CTAPHID message can be
// (CTAP 2.1 §11.2.4: 57 + 128·59 = 7609 bytes). It unwraps to
// device.ErrMessageTooLarge.
type TooLargeError struct {
	Size int // bytes in the message
	Max  int // the limit it exceeded
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("ctaphid: message of %d bytes exceeds the %d-byte limit", e.Size, e.Max)
}

// Unwrap returns device.ErrMessageTooLarge.
func (e *TooLargeError) Unwrap() error { return device.ErrMessageTooLarge }

// Packet is one HID report decoded as a CTAPHID packet (CTAP 2.1 §11.2.4).
//
// An initialization packet (Init true) carries Cmd and the total message
// length Len (BCNT); a continuation packet carries Seq. Data is the whole
// payload area of the report, padding included: InitDataSize bytes for an
// initialization packet, ContDataSize bytes for a continuation packet.
type Packet struct {
	CID  uint32
	Init bool
	Cmd  Command // initialization packets only
	Len  uint16  // BCNT, initialization packets only
	Seq  byte    // continuation packets only, 0..MaxSeq
	Data []byte
}

// ParsePacket decodes one report. It fails, with an error wrapping
// device.ErrProtocol, only when b is not exactly ReportSize bytes long; every
// 64-byte report is some packet. The returned packet does not alias b.
func ParsePacket(b []byte) (*Packet, error) {
	if len(b) != ReportSize {
		return nil, fmt.Errorf("ctaphid: %w: report of %d bytes, want %d", device.ErrProtocol, len(b), ReportSize)
	}
	p := &Packet{CID: binary.BigEndian.Uint32(b[0:4])}
	if b[4]&0x80 != 0 {
		p.Init = true
		p.Cmd = Command(b[4] & 0x7F)
		p.Len = binary.BigEndian.Uint16(b[5:7])
		p.Data = append([]byte(nil), b[7:]...)
	} else {
		p.Seq = b[4]
		p.Data = append([]byte(nil), b[5:]...)
	}
	return p, nil
}

// Encode returns the ReportSize-byte report for p, with Data zero-padded to
// the payload size. It returns an error wrapping device.ErrProtocol when Cmd
// or Seq does not fit in 7 bits or Data is longer than the payload area.
func (p *Packet) Encode() ([]byte, error) {
	b := make([]byte, ReportSize)
	binary.BigEndian.PutUint32(b[0:4], p.CID)
	var area []byte
	if p.Init {
		if p.Cmd > 0x7F {
			return nil, fmt.Errorf("ctaphid: %w: command 0x%02X does not fit in 7 bits", device.ErrProtocol, byte(p.Cmd))
		}
		b[4] = 0x80 | byte(p.Cmd)
		binary.BigEndian.PutUint16(b[5:7], p.Len)
		area = b[7:]
	} else {
		if p.Seq > MaxSeq {
			return nil, fmt.Errorf("ctaphid: %w: sequence number %d above %d", device.ErrProtocol, p.Seq, MaxSeq)
		}
		b[4] = p.Seq
		area = b[5:]
	}
	if len(p.Data) > len(area) {
		return nil, fmt.Errorf("ctaphid: %w: %d data bytes do not fit in a %d-byte payload", device.ErrProtocol, len(p.Data), len(area))
	}
	copy(area, p.Data)
	return b, nil
}

// Message is one complete CTAPHID request or response: a command and its
// BCNT bytes of data on channel CID.
type Message struct {
	CID  uint32
	Cmd  Command
	Data []byte
}

// Fragment splits a message into reports (CTAP 2.1 §11.2.4): one
// initialization packet and as many continuation packets as needed, numbered
// from 0, the last one zero-padded. A message longer than MaxMessageSize
// gives a *TooLargeError (errors.Is device.ErrMessageTooLarge); a command
// above 0x7F gives an error wrapping device.ErrProtocol.
func Fragment(cid uint32, cmd Command, data []byte) ([][]byte, error) {
	if len(data) > MaxMessageSize {
		return nil, &TooLargeError{Size: len(data), Max: MaxMessageSize}
	}
	if cmd > 0x7F {
		return nil, fmt.Errorf("ctaphid: %w: command 0x%02X does not fit in 7 bits", device.ErrProtocol, byte(cmd))
	}
	n := 1
	if len(data) > InitDataSize {
		n += (len(data) - InitDataSize + ContDataSize - 1) / ContDataSize
	}
	reports := make([][]byte, 0, n)
	buf := make([]byte, n*ReportSize) // one allocation for all reports
	first := buf[:ReportSize:ReportSize]
	binary.BigEndian.PutUint32(first[0:4], cid)
	first[4] = 0x80 | byte(cmd)
	binary.BigEndian.PutUint16(first[5:7], uint16(len(data)))
	rest := data[copy(first[7:], data):]
	reports = append(reports, first)
	for seq := 0; len(rest) > 0; seq++ {
		r := buf[(seq+1)*ReportSize : (seq+2)*ReportSize : (seq+2)*ReportSize]
		binary.BigEndian.PutUint32(r[0:4], cid)
		r[4] = byte(seq)
		rest = rest[copy(r[5:], rest):]
		reports = append(reports, r)
	}
	return reports, nil
}

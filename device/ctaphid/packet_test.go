package ctaphid_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctaphid"
)

func TestSizes(t *testing.T) {
	// CTAP 2.1 §11.2.4: 64-byte reports, 57 + 128·59 = 7609 bytes at most.
	if ctaphid.ReportSize != 64 || ctaphid.InitDataSize != 57 || ctaphid.ContDataSize != 59 || ctaphid.MaxMessageSize != 7609 {
		t.Fatalf("sizes %d %d %d %d", ctaphid.ReportSize, ctaphid.InitDataSize, ctaphid.ContDataSize, ctaphid.MaxMessageSize)
	}
}

func TestParsePacket(t *testing.T) {
	tests := []struct {
		file string
		want ctaphid.Packet // Data is compared by prefix
	}{
		{"init_request.hex", ctaphid.Packet{CID: ctaphid.BroadcastCID, Init: true, Cmd: ctaphid.CmdInit, Len: 8, Data: []byte{0, 1, 2, 3, 4, 5, 6, 7}}},
		{"ping_short.hex", ctaphid.Packet{CID: 1, Init: true, Cmd: ctaphid.CmdPing, Len: 5, Data: []byte("hello")}},
		{"cbor_first.hex", ctaphid.Packet{CID: 1, Init: true, Cmd: ctaphid.CmdCBOR, Len: 100, Data: []byte{0x04}}},
		{"cont_seq0.hex", ctaphid.Packet{CID: 1, Seq: 0, Data: []byte{1, 2, 3}}},
		{"cont_seq127.hex", ctaphid.Packet{CID: 0x12345678, Seq: 127, Data: []byte{0xAA}}},
		{"keepalive_upneeded.hex", ctaphid.Packet{CID: 1, Init: true, Cmd: ctaphid.CmdKeepalive, Len: 1, Data: []byte{2}}},
		{"error_channel_busy.hex", ctaphid.Packet{CID: 2, Init: true, Cmd: ctaphid.CmdError, Len: 1, Data: []byte{0x06}}},
		{"cancel.hex", ctaphid.Packet{CID: 1, Init: true, Cmd: ctaphid.CmdCancel}},
		{"bcnt_too_long.hex", ctaphid.Packet{CID: 1, Init: true, Cmd: ctaphid.CmdCBOR, Len: 7610}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b := readHex(t, "../../testdata/ctaphid/packets/"+tt.file)
			p, err := ctaphid.ParsePacket(b)
			if err != nil {
				t.Fatal(err)
			}
			wantLen := ctaphid.ContDataSize
			if tt.want.Init {
				wantLen = ctaphid.InitDataSize
			}
			if p.CID != tt.want.CID || p.Init != tt.want.Init || p.Cmd != tt.want.Cmd || p.Len != tt.want.Len || p.Seq != tt.want.Seq ||
				len(p.Data) != wantLen || !bytes.HasPrefix(p.Data, tt.want.Data) {
				t.Errorf("got %+v, want %+v", p, tt.want)
			}
			again, err := p.Encode()
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("Encode = %x, %v; want %x", again, err, b)
			}
		})
	}
}

func TestParsePacketRejectsWrongSize(t *testing.T) {
	for _, n := range []int{0, 1, 63, 65, 128} {
		p, err := ctaphid.ParsePacket(make([]byte, n))
		if p != nil || !errors.Is(err, device.ErrProtocol) {
			t.Errorf("%d bytes: got %v, %v; want nil and device.ErrProtocol", n, p, err)
		}
	}
}

func TestPacketEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		p    ctaphid.Packet
	}{
		{"command above 0x7F", ctaphid.Packet{Init: true, Cmd: 0x80}},
		{"sequence above 127", ctaphid.Packet{Seq: 128}},
		{"init data too long", ctaphid.Packet{Init: true, Data: make([]byte, 58)}},
		{"continuation data too long", ctaphid.Packet{Data: make([]byte, 60)}},
	}
	for _, tt := range tests {
		if b, err := tt.p.Encode(); b != nil || !errors.Is(err, device.ErrProtocol) {
			t.Errorf("%s: got %x, %v; want device.ErrProtocol", tt.name, b, err)
		}
	}
}

func TestFragment(t *testing.T) {
	tests := []struct {
		size, reports int
	}{
		{0, 1}, {1, 1}, {57, 1}, {58, 2}, {57 + 59, 2}, {57 + 59 + 1, 3}, {1024, 18}, {7609, 129},
	}
	for _, tt := range tests {
		data := make([]byte, tt.size)
		for i := range data {
			data[i] = byte(i*7 + 3)
		}
		reports, err := ctaphid.Fragment(0x01020304, ctaphid.CmdCBOR, data)
		if err != nil {
			t.Fatalf("%d bytes: %v", tt.size, err)
		}
		if len(reports) != tt.reports {
			t.Errorf("%d bytes: %d reports, want %d", tt.size, len(reports), tt.reports)
		}
		var ra ctaphid.Reassembler
		var got *ctaphid.Message
		for i, r := range reports {
			if len(r) != ctaphid.ReportSize {
				t.Fatalf("report %d is %d bytes", i, len(r))
			}
			if !bytes.Equal(r[:4], []byte{1, 2, 3, 4}) {
				t.Errorf("report %d has CID %x", i, r[:4])
			}
			if i > 0 && r[4] != byte(i-1) {
				t.Errorf("report %d has SEQ %d", i, r[4])
			}
			p, _ := ctaphid.ParsePacket(r)
			m, err := ra.Add(p, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if m != nil && i != len(reports)-1 {
				t.Fatalf("message complete after report %d of %d", i+1, len(reports))
			}
			got = m
		}
		if got == nil || got.CID != 0x01020304 || got.Cmd != ctaphid.CmdCBOR || !bytes.Equal(got.Data, data) {
			t.Errorf("%d bytes: reassembled %+v", tt.size, got)
		}
	}
}

func TestFragmentTooLarge(t *testing.T) {
	_, err := ctaphid.Fragment(1, ctaphid.CmdCBOR, make([]byte, 7610))
	var tl *ctaphid.TooLargeError
	if !errors.As(err, &tl) || tl.Size != 7610 || tl.Max != 7609 || !errors.Is(err, device.ErrMessageTooLarge) {
		t.Errorf("got %v, want *TooLargeError{7610, 7609} that is device.ErrMessageTooLarge", err)
	}
	if _, err := ctaphid.Fragment(1, 0x80, nil); !errors.Is(err, device.ErrProtocol) {
		t.Errorf("command 0x80: got %v, want device.ErrProtocol", err)
	}
}

func TestErrorCodes(t *testing.T) {
	tests := []struct {
		code ctaphid.ErrorCode
		b    byte
		name string
		is   error
	}{
		{ctaphid.CodeInvalidCmd, 0x01, "ERR_INVALID_CMD", device.ErrNotSupported},
		{ctaphid.CodeInvalidPar, 0x02, "ERR_INVALID_PAR", device.ErrProtocol},
		{ctaphid.CodeInvalidLen, 0x03, "ERR_INVALID_LEN", device.ErrProtocol},
		{ctaphid.CodeInvalidSeq, 0x04, "ERR_INVALID_SEQ", device.ErrProtocol},
		{ctaphid.CodeMsgTimeout, 0x05, "ERR_MSG_TIMEOUT", device.ErrTimeout},
		{ctaphid.CodeChannelBusy, 0x06, "ERR_CHANNEL_BUSY", device.ErrBusy},
		{ctaphid.CodeLockRequired, 0x0A, "ERR_LOCK_REQUIRED", device.ErrBusy},
		{ctaphid.CodeInvalidChannel, 0x0B, "ERR_INVALID_CHANNEL", device.ErrProtocol},
		{ctaphid.CodeOther, 0x7F, "ERR_OTHER", device.ErrProtocol},
		{0x42, 0x42, "ErrorCode(0x42)", device.ErrProtocol},
	}
	for _, tt := range tests {
		if byte(tt.code) != tt.b || tt.code.String() != tt.name {
			t.Errorf("code 0x%02X: value 0x%02X, name %q; want %q", tt.b, byte(tt.code), tt.code.String(), tt.name)
		}
		var err error = &ctaphid.Error{CID: 7, Code: tt.code}
		wrapped := fmt.Errorf("context: %w", err)
		var e *ctaphid.Error
		if !errors.Is(wrapped, tt.is) || !errors.As(wrapped, &e) || e.Code != tt.code {
			t.Errorf("%s: errors.Is(%v) = false or As failed", tt.name, tt.is)
		}
		if want := fmt.Sprintf("ctaphid: %s (0x%02X) on channel 00000007", tt.name, tt.b); err.Error() != want {
			t.Errorf("Error() = %q, want %q", err.Error(), want)
		}
	}
}

func TestCommandsAndCapabilities(t *testing.T) {
	cmds := []struct {
		c    ctaphid.Command
		b    byte
		name string
	}{
		{ctaphid.CmdPing, 0x01, "PING"}, {ctaphid.CmdMsg, 0x03, "MSG"}, {ctaphid.CmdLock, 0x04, "LOCK"},
		{ctaphid.CmdInit, 0x06, "INIT"}, {ctaphid.CmdWink, 0x08, "WINK"}, {ctaphid.CmdCBOR, 0x10, "CBOR"},
		{ctaphid.CmdCancel, 0x11, "CANCEL"}, {ctaphid.CmdKeepalive, 0x3B, "KEEPALIVE"}, {ctaphid.CmdError, 0x3F, "ERROR"},
		{0x55, 0x55, "Command(0x55)"},
	}
	for _, tt := range cmds {
		if byte(tt.c) != tt.b || tt.c.String() != tt.name {
			t.Errorf("command 0x%02X: %q, want %q", tt.b, tt.c.String(), tt.name)
		}
	}
	caps := []struct {
		c    ctaphid.Capabilities
		name string
	}{
		{0, "0"}, {ctaphid.CapWink, "WINK"}, {0x04, "CBOR"}, {0x08, "NMSG"}, {0x05, "WINK|CBOR"}, {0x0D, "WINK|CBOR|NMSG"}, {0x14, "CBOR|0x10"},
	}
	for _, tt := range caps {
		if tt.c.String() != tt.name {
			t.Errorf("capabilities 0x%02X: %q, want %q", byte(tt.c), tt.c.String(), tt.name)
		}
	}
	if !ctaphid.Capabilities(0x05).Has(ctaphid.CapCBOR) || ctaphid.Capabilities(0x05).Has(ctaphid.CapNMSG) {
		t.Error("Has")
	}
}

func TestInitResponse(t *testing.T) {
	b := readHex(t, "../../testdata/ctaphid/packets/init_response.hex")
	p, _ := ctaphid.ParsePacket(b)
	data := p.Data[:p.Len]
	r, err := ctaphid.ParseInitResponse(data)
	if err != nil {
		t.Fatal(err)
	}
	want := ctaphid.InitResponse{
		Nonce: [8]byte{0, 1, 2, 3, 4, 5, 6, 7}, CID: 1,
		DeviceInfo: ctaphid.DeviceInfo{ProtocolVersion: 2, Major: 1, Minor: 2, Build: 3, Capabilities: ctaphid.CapWink | ctaphid.CapCBOR},
	}
	if *r != want {
		t.Errorf("got %+v, want %+v", r, want)
	}
	if !bytes.Equal(r.Encode(), data) {
		t.Errorf("Encode = %x, want %x", r.Encode(), data)
	}
	for _, n := range []int{0, 16, 18} {
		if r, err := ctaphid.ParseInitResponse(make([]byte, n)); r != nil || !errors.Is(err, device.ErrProtocol) {
			t.Errorf("%d bytes: %v, %v", n, r, err)
		}
	}
}

// pkt builds a packet for reassembler tables.
func initPkt(cid uint32, cmd ctaphid.Command, bcnt int, data ...byte) *ctaphid.Packet {
	d := make([]byte, ctaphid.InitDataSize)
	copy(d, data)
	return &ctaphid.Packet{CID: cid, Init: true, Cmd: cmd, Len: uint16(bcnt), Data: d}
}

func contPkt(cid uint32, seq byte, data ...byte) *ctaphid.Packet {
	d := make([]byte, ctaphid.ContDataSize)
	copy(d, data)
	return &ctaphid.Packet{CID: cid, Seq: seq, Data: d}
}

func TestReassembler(t *testing.T) {
	type want struct {
		msg  string // "CID/CMD/len" of a completed message, "" for none
		code ctaphid.ErrorCode
		cid  uint32 // channel of the error
	}
	const X, Y = 1, 2
	tests := []struct {
		name  string
		feed  []*ctaphid.Packet
		wants []want // one per packet
	}{
		{"single packet", []*ctaphid.Packet{initPkt(X, ctaphid.CmdPing, 3, 'a', 'b', 'c')},
			[]want{{msg: "1/PING/3"}}},
		{"two packets", []*ctaphid.Packet{initPkt(X, ctaphid.CmdCBOR, 60), contPkt(X, 0)},
			[]want{{}, {msg: "1/CBOR/60"}}},
		{"BCNT above 7609", []*ctaphid.Packet{initPkt(X, ctaphid.CmdCBOR, 7610)},
			[]want{{code: ctaphid.CodeInvalidLen, cid: X}}},
		{"stray continuation ignored", []*ctaphid.Packet{contPkt(X, 0), initPkt(X, ctaphid.CmdPing, 0)},
			[]want{{}, {msg: "1/PING/0"}}},
		{"out-of-order SEQ", []*ctaphid.Packet{initPkt(X, ctaphid.CmdCBOR, 200), contPkt(X, 1), contPkt(X, 0)},
			[]want{{}, {code: ctaphid.CodeInvalidSeq, cid: X}, {}}},
		{"repeated SEQ", []*ctaphid.Packet{initPkt(X, ctaphid.CmdCBOR, 200), contPkt(X, 0), contPkt(X, 0)},
			[]want{{}, {}, {code: ctaphid.CodeInvalidSeq, cid: X}}},
		{"other channel mid-message is busy", []*ctaphid.Packet{initPkt(X, ctaphid.CmdCBOR, 60), initPkt(Y, ctaphid.CmdPing, 1), contPkt(Y, 0), contPkt(X, 0)},
			[]want{{}, {code: ctaphid.CodeChannelBusy, cid: Y}, {}, {msg: "1/CBOR/60"}}},
		{"INIT from another channel mid-message passes", []*ctaphid.Packet{initPkt(X, ctaphid.CmdCBOR, 60), initPkt(ctaphid.BroadcastCID, ctaphid.CmdInit, 8), contPkt(X, 0)},
			[]want{{}, {msg: "FFFFFFFF/INIT/8"}, {msg: "1/CBOR/60"}}},
		{"CANCEL from another channel mid-message passes", []*ctaphid.Packet{initPkt(X, ctaphid.CmdCBOR, 60), initPkt(Y, ctaphid.CmdCancel, 0), contPkt(X, 0)},
			[]want{{}, {msg: "2/CANCEL/0"}, {msg: "1/CBOR/60"}}},
		{"new request on the same channel mid-message", []*ctaphid.Packet{initPkt(X, ctaphid.CmdCBOR, 60), initPkt(X, ctaphid.CmdPing, 1), contPkt(X, 0)},
			[]want{{}, {code: ctaphid.CodeInvalidSeq, cid: X}, {}}},
		{"INIT on the same channel mid-message resyncs", []*ctaphid.Packet{initPkt(X, ctaphid.CmdCBOR, 60), initPkt(X, ctaphid.CmdInit, 8), contPkt(X, 0)},
			[]want{{}, {msg: "1/INIT/8"}, {}}},
		{"CANCEL on the same channel mid-message drops it", []*ctaphid.Packet{initPkt(X, ctaphid.CmdCBOR, 60), initPkt(X, ctaphid.CmdCancel, 0), contPkt(X, 0)},
			[]want{{}, {msg: "1/CANCEL/0"}, {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ra ctaphid.Reassembler
			for i, p := range tt.feed {
				m, err := ra.Add(p, time.Unix(0, 0))
				var got want
				if m != nil {
					got.msg = fmt.Sprintf("%X/%s/%d", m.CID, m.Cmd, len(m.Data))
				}
				if err != nil {
					var e *ctaphid.Error
					if !errors.As(err, &e) {
						t.Fatalf("packet %d: error %v is not an *Error", i, err)
					}
					got.code, got.cid = e.Code, e.CID
				}
				if got != tt.wants[i] {
					t.Errorf("packet %d: got %+v, want %+v", i, got, tt.wants[i])
				}
			}
		})
	}
}

func TestReassemblerTimeout(t *testing.T) {
	ra := ctaphid.Reassembler{Timeout: time.Second}
	t0 := time.Unix(1000, 0)
	if m, err := ra.Add(initPkt(5, ctaphid.CmdCBOR, 200), t0); m != nil || err != nil {
		t.Fatal(m, err)
	}
	if dl, ok := ra.Deadline(); !ok || !dl.Equal(t0.Add(time.Second)) {
		t.Errorf("Deadline = %v, %v", dl, ok)
	}
	if cid, ok := ra.Pending(); !ok || cid != 5 {
		t.Errorf("Pending = %v, %v", cid, ok)
	}
	// A packet in time moves the deadline.
	ra.Add(contPkt(5, 0), t0.Add(900*time.Millisecond))
	if err := ra.Expire(t0.Add(1500 * time.Millisecond)); err != nil {
		t.Errorf("expired early: %v", err)
	}
	err := ra.Expire(t0.Add(1900 * time.Millisecond))
	var e *ctaphid.Error
	if !errors.As(err, &e) || e.Code != ctaphid.CodeMsgTimeout || e.CID != 5 || !errors.Is(err, device.ErrTimeout) {
		t.Fatalf("Expire = %v, want ERR_MSG_TIMEOUT on 5", err)
	}
	if _, ok := ra.Pending(); ok {
		t.Error("still pending after Expire")
	}
	// A late packet without Expire is dropped quietly with the message.
	ra.Add(initPkt(5, ctaphid.CmdCBOR, 200), t0)
	if m, err := ra.Add(contPkt(5, 0), t0.Add(time.Hour)); m != nil || err != nil {
		t.Errorf("late continuation: %v, %v", m, err)
	}
	if _, ok := ra.Pending(); ok {
		t.Error("late message still pending")
	}
}

func FuzzParsePacket(f *testing.F) {
	for _, s := range packetSeeds(f) {
		f.Add(s)
	}
	f.Add(make([]byte, 64))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ctaphid.ParsePacket(b)
		if err != nil {
			if p != nil {
				t.Fatal("packet and error")
			}
			return
		}
		again, err := p.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x, %v; want %x", again, err, b)
		}
	})
}

func FuzzParseInitResponse(f *testing.F) {
	b := readHex(f, "../../testdata/ctaphid/packets/init_response.hex")
	f.Add(b[7 : 7+17])
	f.Add(make([]byte, 17))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ctaphid.ParseInitResponse(b)
		if err != nil {
			if r != nil {
				t.Fatal("response and error")
			}
			return
		}
		if !bytes.Equal(r.Encode(), b) {
			t.Fatalf("round trip: %x, want %x", r.Encode(), b)
		}
	})
}

// FuzzReassembler feeds arbitrary report sequences, with arbitrary gaps in
// time, and checks that the Reassembler never panics, that every message it
// returns is consistent with the packets, and that every error is an *Error.
func FuzzReassembler(f *testing.F) {
	for _, s := range transcriptWrites(f) {
		f.Add(s, []byte{0})
	}
	var all []byte
	for _, s := range packetSeeds(f) {
		all = append(all, s...)
		f.Add(s, []byte{})
	}
	f.Add(all, []byte{1, 200, 3})
	f.Fuzz(func(t *testing.T, stream, gaps []byte) {
		ra := ctaphid.Reassembler{Timeout: 100 * time.Millisecond}
		now := time.Unix(0, 0)
		for i := 0; len(stream) >= ctaphid.ReportSize; i++ {
			p, err := ctaphid.ParsePacket(stream[:ctaphid.ReportSize])
			stream = stream[ctaphid.ReportSize:]
			if err != nil {
				t.Fatal(err)
			}
			if i < len(gaps) {
				now = now.Add(time.Duration(gaps[i]) * time.Millisecond)
			}
			if err := ra.Expire(now); err != nil {
				var e *ctaphid.Error
				if !errors.As(err, &e) || e.Code != ctaphid.CodeMsgTimeout {
					t.Fatalf("Expire: %v", err)
				}
			}
			m, err := ra.Add(p, now)
			if err != nil {
				var e *ctaphid.Error
				if m != nil || !errors.As(err, &e) {
					t.Fatalf("Add: %v, %v", m, err)
				}
				continue
			}
			if m != nil && len(m.Data) > ctaphid.MaxMessageSize {
				t.Fatalf("message of %d bytes", len(m.Data))
			}
			if m != nil && m.CID != p.CID {
				t.Fatalf("message on %X completed by a packet on %X", m.CID, p.CID)
			}
		}
	})
}

// FuzzFragmentRoundTrip checks that fragmenting a message and reassembling
// its reports gives the message back exactly.
func FuzzFragmentRoundTrip(f *testing.F) {
	f.Add(uint32(1), byte(0x10), []byte{0x04})
	f.Add(uint32(0xFFFFFFFF), byte(0x06), []byte("12345678"))
	f.Add(uint32(7), byte(0x01), bytes.Repeat([]byte{0xAB}, 7609))
	f.Add(uint32(7), byte(0x01), bytes.Repeat([]byte{0xAB}, 7610))
	f.Fuzz(func(t *testing.T, cid uint32, cmd byte, data []byte) {
		reports, err := ctaphid.Fragment(cid, ctaphid.Command(cmd), data)
		if err != nil {
			if len(data) <= ctaphid.MaxMessageSize && cmd <= 0x7F {
				t.Fatalf("Fragment refused %d bytes, command 0x%02X: %v", len(data), cmd, err)
			}
			return
		}
		var ra ctaphid.Reassembler
		for i, r := range reports {
			p, err := ctaphid.ParsePacket(r)
			if err != nil {
				t.Fatal(err)
			}
			m, err := ra.Add(p, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if (m != nil) != (i == len(reports)-1) {
				t.Fatalf("message after report %d of %d: %v", i+1, len(reports), m)
			}
			if m != nil && (m.CID != cid || m.Cmd != ctaphid.Command(cmd) || !bytes.Equal(m.Data, data)) {
				t.Fatalf("got %X/%s/%s", m.CID, m.Cmd, hex.EncodeToString(m.Data))
			}
		}
	})
}

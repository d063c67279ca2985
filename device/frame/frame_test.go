package frame

import (
	"bytes"
	"errors"
	"testing"

	"github.com/authbench/authbench/device"
)

func TestCRC16(t *testing.T) {
	// Vectors cross-checked with Python's binascii.crc_hqx(data, 0xFFFF).
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, tc := range []struct {
		in   []byte
		want uint16
	}{
		{[]byte("123456789"), 0x29B1}, // the catalogue check value of CRC-16/CCITT-FALSE
		{nil, 0xFFFF},
		{[]byte("A"), 0xB915},
		{all, 0x3FBD},
	} {
		if got := CRC16(tc.in); got != tc.want {
			t.Errorf("CRC16(%q) = 0x%04X, want 0x%04X", tc.in, got, tc.want)
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 100, MaxPayload} {
		f := &Frame{Seq: 0xFE, Cmd: CmdAudio | ResponseBit, Payload: bytes.Repeat([]byte{SOF}, n)}
		wire, err := f.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if len(wire) != n+Overhead {
			t.Fatalf("len %d, want %d", len(wire), n+Overhead)
		}
		g, err := ParseFrame(wire)
		if err != nil {
			t.Fatal(err)
		}
		if g.Seq != f.Seq || g.Cmd != f.Cmd || !bytes.Equal(g.Payload, f.Payload) {
			t.Fatalf("got %+v", g)
		}
	}
	if _, err := (&Frame{Payload: make([]byte, MaxPayload+1)}).Encode(); !errors.Is(err, device.ErrMessageTooLarge) {
		t.Fatalf("oversized payload: %v", err)
	}
}

func TestParseFrameErrors(t *testing.T) {
	good := mustEnc((&Frame{Seq: 1, Cmd: CmdPress}).Encode())
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0x40; return b }
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, device.ErrProtocol},
		{"short", good[:6], device.ErrProtocol},
		{"no SOF", flip(0), device.ErrProtocol},
		{"LEN too big", []byte{SOF, 0x04, 0x01, 0, 0, 0, 0}, device.ErrMessageTooLarge},
		{"LEN longer than bytes", flip(2), device.ErrProtocol},
		{"trailing byte", append(bytes.Clone(good), 0), device.ErrProtocol},
		{"bad CRC", flip(6), ErrChecksum},
		{"bad SEQ", flip(3), ErrChecksum},
	} {
		f, err := ParseFrame(tc.in)
		if f != nil || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.name, f, err, tc.want)
		}
	}
}

func TestCmdName(t *testing.T) {
	for cmd, want := range map[byte]string{
		CmdIdentify: "IDENTIFY", CmdPress | ResponseBit: "PRESS response", CmdSetClock: "SET_CLOCK",
		0x42: "CMD 0x42", 0xC2: "CMD 0xC2",
	} {
		if got := CmdName(cmd); got != want {
			t.Errorf("CmdName(0x%02X) = %q, want %q", cmd, got, want)
		}
	}
}

func TestStatusError(t *testing.T) {
	for _, tc := range []struct {
		st   Status
		msg  string
		is   error // nil: unwraps to nothing
		text string
	}{
		{StatusUnknownCommand, "frame: PRESS: device status 0x01 unknown command", device.ErrNotSupported, "unknown command"},
		{StatusBadRequest, "frame: PRESS: device status 0x02 bad length or parameter", nil, "bad length or parameter"},
		{StatusNotFactory, "frame: PRESS: device status 0x03 not in factory mode", nil, "not in factory mode"},
		{StatusBusy, "frame: PRESS: device status 0x04 busy", device.ErrBusy, "busy"},
		{StatusBatteryLow, "frame: PRESS: device status 0x05 battery low", nil, "battery low"},
		{StatusNoCode, "frame: PRESS: device status 0x06 no code to read", device.ErrNoCode, "no code to read"},
		{StatusSealed, "frame: PRESS: device status 0x07 sealed", nil, "sealed"},
		{0x99, "frame: PRESS: device status 0x99 unknown status", nil, "unknown status"},
	} {
		if tc.st.String() != tc.text {
			t.Errorf("%d: String %q", tc.st, tc.st.String())
		}
		err := tc.st.Err(CmdPress | ResponseBit)
		var se *StatusError
		if !errors.As(err, &se) || se.Status != tc.st || se.Cmd != CmdPress {
			t.Fatalf("%v: %#v", tc.st, err)
		}
		if err.Error() != tc.msg {
			t.Errorf("message %q, want %q", err.Error(), tc.msg)
		}
		if got := errors.Unwrap(err); got != tc.is {
			t.Errorf("%v unwraps to %v, want %v", tc.st, got, tc.is)
		}
	}
	if StatusOK.Err(CmdPress) != nil {
		t.Error("StatusOK is an error")
	}
}

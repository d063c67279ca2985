package apdu_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func sameCommand(a, b *apdu.Command) bool {
	return a.CLA == b.CLA && a.INS == b.INS && a.P1 == b.P1 && a.P2 == b.P2 &&
		bytes.Equal(a.Data, b.Data) && a.Ne == b.Ne
}

// ISO/IEC 7816-4 §5.1: the four cases, short and extended.
func TestCommandCases(t *testing.T) {
	data := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}
	hexData := func(n int) string { return hex.EncodeToString(data(n)) }
	tests := []struct {
		name     string
		cmd      apdu.Command
		short    string // Encode; "" when it must be extended
		extended string // EncodeExtended
	}{
		{"case 1", apdu.Command{CLA: 0x00, INS: 0xA4, P1: 4}, "00a40400", "00a40400"},
		{"case 2 Ne=1", apdu.Command{INS: 0xB0, Ne: 1}, "00b0000001", "00b00000000001"},
		{"case 2 Ne=255", apdu.Command{INS: 0xB0, Ne: 255}, "00b00000ff", "00b000000000ff"},
		{"case 2 Ne=256 (Le 00)", apdu.Command{INS: 0xB0, Ne: 256}, "00b0000000", "00b00000000100"},
		{"case 2E Ne=257", apdu.Command{INS: 0xB0, Ne: 257}, "", "00b00000000101"},
		{"case 2E Ne=65535", apdu.Command{INS: 0xB0, Ne: 65535}, "", "00b0000000ffff"},
		{"case 2E Ne=65536 (Le 0000)", apdu.Command{INS: 0xB0, Ne: 65536}, "", "00b00000000000"},
		{"case 3 SELECT FIDO", apdu.Command{INS: 0xA4, P1: 4, Data: unhex(t, "a0000006472f0001")},
			"00a4040008a0000006472f0001", "00a4040000 0008 a0000006472f0001"},
		{"case 3 Nc=255", apdu.Command{CLA: 0x80, INS: 0x10, Data: data(255)},
			"80100000ff" + hexData(255), "801000000000ff" + hexData(255)},
		{"case 3E Nc=256", apdu.Command{CLA: 0x80, INS: 0x10, Data: data(256)}, "", "80100000000100" + hexData(256)},
		{"case 4 getInfo (python-fido2)", apdu.Command{CLA: 0x80, INS: 0x10, P1: 0x80, Data: []byte{4}, Ne: 256},
			"80108000010400", "8010800000000104 0100"},
		{"case 4 Ne=16", apdu.Command{INS: 0x02, P1: 3, Data: data(3), Ne: 16}, "0002030003" + hexData(3) + "10",
			"0002030000 0003" + hexData(3) + "0010"},
		{"case 4E Ne=65536", apdu.Command{INS: 0x01, P1: 3, Data: data(64), Ne: 65536}, "",
			"0001030000 0040" + hexData(64) + "0000"},
		{"case 4E Nc=300 Ne=1", apdu.Command{INS: 0x02, Data: data(300), Ne: 1}, "",
			"0002000000012c" + hexData(300) + "0001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantExt := unhex(t, tt.extended)
			want := wantExt
			if tt.short != "" {
				want = unhex(t, tt.short)
			}
			got, err := tt.cmd.Encode()
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("Encode = %x, %v; want %x", got, err, want)
			}
			if short := tt.short != ""; tt.cmd.Short() != short {
				t.Errorf("Short() = %v, want %v", !short, short)
			}
			got, err = tt.cmd.EncodeExtended()
			if err != nil || !bytes.Equal(got, wantExt) {
				t.Errorf("EncodeExtended = %x, %v; want %x", got, err, wantExt)
			}
			for _, enc := range [][]byte{want, wantExt} {
				c, err := apdu.ParseCommand(enc)
				if err != nil {
					t.Fatalf("ParseCommand(%x): %v", enc, err)
				}
				if !sameCommand(c, &tt.cmd) {
					t.Errorf("ParseCommand(%x) = %+v, want %+v", enc, c, tt.cmd)
				}
			}
		})
	}
}

// U2F hosts send an extended request with no data as `00 00 00 Le1 Le2`
// (an Lc of zero), e.g. python-fido2 for U2F_VERSION.
func TestParseCommandU2FEmptyLc(t *testing.T) {
	c, err := apdu.ParseCommand(unhex(t, "00030000 000000 0000"))
	if err != nil {
		t.Fatal(err)
	}
	want := &apdu.Command{INS: 0x03, Ne: 65536}
	if !sameCommand(c, want) {
		t.Fatalf("got %+v, want %+v", c, want)
	}
	enc, _ := c.Encode()
	if !bytes.Equal(enc, unhex(t, "00030000 000000")) {
		t.Errorf("canonical form %x", enc)
	}
	c, err = apdu.ParseCommand(unhex(t, "00030000 000000 0100"))
	if err != nil || c.Ne != 256 {
		t.Errorf("Le 0100: %+v, %v", c, err)
	}
}

func TestParseCommandErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"1 byte", "00"},
		{"3 bytes", "00a404"},
		{"short Lc too big", "00a40400 08 a0000006472f00"},
		{"short Lc too small", "00a40400 02 a0000006472f0001"},
		{"short trailing after Le", "00a40400 01 a0 00 00"},
		{"extended length truncated", "00b00000 0001"},
		{"extended Lc zero, no Le", "00b00000 000000 00"},
		{"extended Lc zero, long", "00b00000 000000 000000"},
		{"extended Lc too big", "80100000 000005 0102"},
		{"extended one byte of Le", "80100000 000002 0102 00"},
		{"extended trailing", "80100000 000002 0102 000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := apdu.ParseCommand(unhex(t, tt.in))
			if c != nil || err == nil {
				t.Fatalf("got %+v, %v; want nil and an error", c, err)
			}
			var fe *apdu.FormatError
			if !errors.As(err, &fe) || !errors.Is(err, device.ErrProtocol) {
				t.Errorf("error %v (%T) is not a *FormatError wrapping ErrProtocol", err, err)
			}
			if !strings.HasPrefix(err.Error(), "apdu: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		cmd  apdu.Command
		want error
	}{
		{"negative Ne", apdu.Command{Ne: -1}, device.ErrProtocol},
		{"Ne too big", apdu.Command{Ne: 65537}, device.ErrProtocol},
		{"data too long", apdu.Command{Data: make([]byte, 65536)}, device.ErrMessageTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := tt.cmd.Encode(); b != nil || !errors.Is(err, tt.want) {
				t.Errorf("Encode = %x, %v; want %v", b, err, tt.want)
			}
			if b, err := tt.cmd.EncodeExtended(); b != nil || !errors.Is(err, tt.want) {
				t.Errorf("EncodeExtended = %x, %v; want %v", b, err, tt.want)
			}
		})
	}
}

func TestResponse(t *testing.T) {
	tests := []struct {
		in   string
		data string
		sw   uint16
	}{
		{"9000", "", 0x9000},
		{"4649444f5f325f30 9000", "4649444f5f325f30", 0x9000},
		{"02 9100", "02", 0x9100},
		{"6a82", "", 0x6A82},
		{"0102 6110", "0102", 0x6110},
	}
	for _, tt := range tests {
		in := unhex(t, tt.in)
		r, err := apdu.ParseResponse(in)
		if err != nil {
			t.Fatalf("ParseResponse(%x): %v", in, err)
		}
		if !bytes.Equal(r.Data, unhex(t, tt.data)) || r.SW != tt.sw {
			t.Errorf("ParseResponse(%x) = %x %04X", in, r.Data, r.SW)
		}
		if r.SW1() != byte(tt.sw>>8) || r.SW2() != byte(tt.sw) {
			t.Errorf("SW1 SW2 = %02X %02X", r.SW1(), r.SW2())
		}
		if got := r.Encode(); !bytes.Equal(got, in) {
			t.Errorf("Encode = %x, want %x", got, in)
		}
		if (r.Err() == nil) != (tt.sw == 0x9000) {
			t.Errorf("Err() = %v for %04X", r.Err(), tt.sw)
		}
	}
	for _, in := range []string{"", "90"} {
		r, err := apdu.ParseResponse(unhex(t, in))
		if r != nil || !errors.Is(err, device.ErrProtocol) {
			t.Errorf("ParseResponse(%q) = %v, %v", in, r, err)
		}
	}
}

func TestStatusError(t *testing.T) {
	tests := []struct {
		sw   uint16
		text string
		is   error // nil: unwraps to nothing
	}{
		{apdu.SWFileNotFound, "6A82 (file or application not found)", device.ErrNotFound},
		{apdu.SWINSNotSupported, "6D00 (instruction not supported)", device.ErrNotSupported},
		{apdu.SWCLANotSupported, "6E00 (class not supported)", device.ErrNotSupported},
		{apdu.SWFuncNotSupported, "6A81", device.ErrNotSupported},
		{apdu.SWChainingNotSupported, "6884", device.ErrNotSupported},
		{apdu.SWWrongLength, "6700 (wrong length)", device.ErrProtocol},
		{apdu.SWIncorrectP1P2, "6A86", device.ErrProtocol},
		{apdu.SWWrongP1P2, "6B00", device.ErrProtocol},
		{apdu.SWLastCommandExpected, "6883", device.ErrProtocol},
		{0x6C10, "6C10 (wrong Le, 16 bytes available)", device.ErrProtocol},
		{apdu.SWConditionsNotSatisfied, "6985 (conditions of use not satisfied)", nil},
		{apdu.SWSecurityNotSatisfied, "6982", nil},
		{apdu.SWWrongData, "6A80 (incorrect data)", nil},
		{apdu.SWUnknown, "6F00 (no precise diagnosis)", nil},
		{0x6110, "6110 (16 response bytes remain)", nil},
		{0x6100, "6100 (256 or more response bytes remain)", nil},
		{0x6283, "apdu: card answered 6283", nil},
	}
	sentinels := []error{device.ErrNotFound, device.ErrNotSupported, device.ErrProtocol, device.ErrTimeout}
	for _, tt := range tests {
		err := error(&apdu.StatusError{SW: tt.sw})
		if !strings.HasPrefix(err.Error(), "apdu: card answered ") || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%04X: message %q, want it to contain %q", tt.sw, err, tt.text)
		}
		for _, s := range sentinels {
			if got := errors.Is(err, s); got != (s == tt.is) {
				t.Errorf("%04X: errors.Is(%v) = %v", tt.sw, s, got)
			}
		}
		var se *apdu.StatusError
		if !errors.As(err, &se) || se.SW != tt.sw {
			t.Errorf("%04X: errors.As failed", tt.sw)
		}
	}
}

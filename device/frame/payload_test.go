package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
)

func wantPayloadErr(t *testing.T, name string, err error) {
	t.Helper()
	var pe *PayloadError
	if !errors.As(err, &pe) || !errors.Is(err, device.ErrProtocol) || !strings.HasPrefix(err.Error(), "frame: bad ") {
		t.Errorf("%s: error %v, want a *PayloadError", name, err)
	}
}

func tlv(tag byte, v ...byte) []byte { return append([]byte{tag, byte(len(v))}, v...) }

func TestIdentity(t *testing.T) {
	base := [][]byte{
		tlv(TagKind, 2), tlv(TagSerial, []byte("AR1")...), tlv(TagVersion, 1),
		tlv(TagDigits, 6), tlv(TagPeriod, 0, 30), tlv(TagAlgorithm, 3),
	}
	id, err := ParseIdentity(cat(base...))
	if err != nil {
		t.Fatal(err)
	}
	want := Identity{Kind: KindAudioReader, Serial: "AR1", ProtocolVersion: 1, Digits: 6, Period: 30, Algorithm: otp.SHA512}
	if *id != want {
		t.Fatalf("got %+v", id)
	}
	info := id.Info()
	if info.Kind != device.KindAudioCodeReader || info.Period != 30*time.Second || info.Algorithm != otp.SHA512 || info.ProtocolVersion != 1 {
		t.Fatalf("info %+v", info)
	}
	with := func(extra ...[]byte) []byte { return cat(append(slices.Clone(base), extra...)...) }
	without := func(tag byte) []byte {
		var out [][]byte
		for _, b := range base {
			if b[0] != tag {
				out = append(out, b)
			}
		}
		return cat(out...)
	}
	replace := func(tag byte, v ...byte) []byte { return cat(without(tag), tlv(tag, v...)) }
	// Unknown tags are skipped, even zero-length ones and tag 0.
	for _, b := range [][]byte{with(tlv(0x09)), with(tlv(0xFF, 1, 2, 3)), cat(tlv(0x00, 5), cat(base...))} {
		if got, err := ParseIdentity(b); err != nil || *got != want {
			t.Errorf("with unknown tag %x: %+v, %v", b, got, err)
		}
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"truncated header", with([]byte{0x09})},
		{"truncated value", with([]byte{0x09, 5, 1})},
		{"repeated tag", with(tlv(TagDigits, 6))},
		{"kind missing", without(TagKind)},
		{"serial missing", without(TagSerial)},
		{"version missing", without(TagVersion)},
		{"digits missing", without(TagDigits)},
		{"period missing", without(TagPeriod)},
		{"algorithm missing", without(TagAlgorithm)},
		{"kind 3", replace(TagKind, 3)},
		{"kind 2 bytes", replace(TagKind, 1, 1)},
		{"empty serial", replace(TagSerial)},
		{"serial with control byte", replace(TagSerial, 'A', '\n')},
		{"model not UTF-8", with(tlv(TagModel, 0xFF))},
		{"firmware with control", with(tlv(TagFirmware, 'v', 0x07))},
		{"version 0", replace(TagVersion, 0)},
		{"5 digits", replace(TagDigits, 5)},
		{"11 digits", replace(TagDigits, 11)},
		{"period 0", replace(TagPeriod, 0, 0)},
		{"period 1 byte", replace(TagPeriod, 30)},
		{"algorithm 4", replace(TagAlgorithm, 4)},
	} {
		id, err := ParseIdentity(tc.in)
		if id != nil {
			t.Errorf("%s: got %+v", tc.name, id)
		}
		wantPayloadErr(t, tc.name, err)
	}
	bad := want
	bad.Serial = strings.Repeat("x", 256)
	_, err = bad.Encode()
	wantPayloadErr(t, "encode long serial", err)
}

func TestPress(t *testing.T) {
	head := binary.BigEndian.AppendUint64(nil, 37037036)
	head = binary.BigEndian.AppendUint16(head, 29)
	suffix := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 16000), 96000)
	for _, tc := range []struct {
		in   []byte
		want *PressResponse
	}{
		{cat(head, []byte("081804")), &PressResponse{Step: 37037036, SecondsLeft: 29, Digits: "081804"}},
		{cat(head, []byte("0123456789")), &PressResponse{Step: 37037036, SecondsLeft: 29, Digits: "0123456789"}},
		{cat(head, []byte("081804"), suffix), &PressResponse{Step: 37037036, SecondsLeft: 29, Digits: "081804", Audio: &AudioFormat{16000, 96000}}},
		{cat(head, []byte("07081804"), suffix), &PressResponse{Step: 37037036, SecondsLeft: 29, Digits: "07081804", Audio: &AudioFormat{16000, 96000}}},
		// A suffix of ASCII digits is still a suffix: the length decides.
		{cat(head, []byte("123456"), []byte("00000000")), &PressResponse{Step: 37037036, SecondsLeft: 29, Digits: "123456", Audio: &AudioFormat{0x30303030, 0x30303030}}},
	} {
		got, err := ParsePress(tc.in)
		if err != nil {
			t.Fatalf("%x: %v", tc.in, err)
		}
		if got.Step != tc.want.Step || got.SecondsLeft != tc.want.SecondsLeft || got.Digits != tc.want.Digits ||
			(got.Audio == nil) != (tc.want.Audio == nil) || (got.Audio != nil && *got.Audio != *tc.want.Audio) {
			t.Errorf("%x: %+v, want %+v", tc.in, got, tc.want)
		}
		if b, err := got.Encode(); err != nil || !bytes.Equal(b, tc.in) {
			t.Errorf("re-encode %x, %v", b, err)
		}
		if c := got.Code(); c.Digits != tc.want.Digits || c.Step != tc.want.Step || c.ValidFor != 29*time.Second {
			t.Errorf("code %+v", c)
		}
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"5 digits", cat(head, []byte("12345"))},
		{"11 digits", cat(head, []byte("01234567890"))},
		{"13 bytes", cat(head, []byte("12345"), suffix)},
		{"19 bytes", cat(head, []byte("01234567890"), suffix)},
		{"not digits", cat(head, []byte("12a456"))},
		{"not digits with audio", cat(head, []byte("12 456"), suffix)},
		{"sample rate 0", cat(head, []byte("123456"), make([]byte, 8))},
		{"odd audio length", cat(head, []byte("123456"), []byte{0, 0, 0x3E, 0x80, 0, 0, 0, 1})},
	} {
		r, err := ParsePress(tc.in)
		if r != nil {
			t.Errorf("%s: %+v", tc.name, r)
		}
		wantPayloadErr(t, tc.name, err)
	}
}

func TestSmallPayloads(t *testing.T) {
	type codec struct {
		name string
		good [][]byte
		bad  [][]byte
		rt   func([]byte) ([]byte, error)
	}
	rt := func(parse func([]byte) (interface{ Encode() ([]byte, error) }, error)) func([]byte) ([]byte, error) {
		return func(b []byte) ([]byte, error) {
			v, err := parse(b)
			if err != nil {
				return nil, err
			}
			return v.Encode()
		}
	}
	status := func(battery, factory byte) []byte {
		b := []byte{battery}
		b = binary.BigEndian.AppendUint64(b, 1700000000)
		b = binary.BigEndian.AppendUint32(b, 7)
		return append(b, factory)
	}
	for _, c := range []codec{
		{"display", [][]byte{nil, []byte("287082"), []byte("Lo bAtt"), bytes.Repeat([]byte("8"), MaxData)},
			[][]byte{{0x07}, []byte("caf\xc3\xa9"), bytes.Repeat([]byte("8"), MaxData+1)},
			rt(func(b []byte) (interface{ Encode() ([]byte, error) }, error) { return ParseDisplay(b) })},
		{"audio request", [][]byte{{0, 0, 0, 0, 0x03, 0xFF}, {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
			[][]byte{nil, {0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 1}, {0, 0, 0, 0, 0, 1, 0}},
			rt(func(b []byte) (interface{ Encode() ([]byte, error) }, error) { return ParseAudioRequest(b) })},
		{"settings", [][]byte{{'d', 'a', 100, 80}, {'e', 'n', 0, 255}},
			[][]byte{nil, {'d', 'a', 100}, {'D', 'A', 100, 80}, {'d', '1', 1, 1}, {'d', 'a', 1, 1, 1}},
			rt(func(b []byte) (interface{ Encode() ([]byte, error) }, error) { return ParseSettings(b) })},
		{"status", [][]byte{status(0, 0), status(100, 1)},
			[][]byte{nil, status(101, 0), status(50, 2), status(50, 0)[:13], append(status(50, 0), 0)},
			rt(func(b []byte) (interface{ Encode() ([]byte, error) }, error) { return ParseStatus(b) })},
		{"provision request", [][]byte{bytes.Repeat([]byte{9}, 32)},
			[][]byte{nil, make([]byte, 31), make([]byte, 33)},
			rt(func(b []byte) (interface{ Encode() ([]byte, error) }, error) { return ParseProvisionRequest(b) })},
		{"provision response", [][]byte{make([]byte, 44+16), make([]byte, MaxData)},
			[][]byte{nil, make([]byte, 44+15), make([]byte, MaxData+1)},
			rt(func(b []byte) (interface{ Encode() ([]byte, error) }, error) { return ParseProvisionResponse(b) })},
		{"set clock", [][]byte{make([]byte, 8), {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
			[][]byte{nil, make([]byte, 7), make([]byte, 9)},
			rt(func(b []byte) (interface{ Encode() ([]byte, error) }, error) { return ParseSetClock(b) })},
	} {
		for _, b := range c.good {
			got, err := c.rt(b)
			if err != nil || !bytes.Equal(got, b) {
				t.Errorf("%s %x: round trip %x, %v", c.name, b, got, err)
			}
		}
		for _, b := range c.bad {
			_, err := c.rt(b)
			wantPayloadErr(t, c.name+" "+string(b), err)
		}
	}
	s, _ := ParseStatus(status(50, 1))
	if !s.FactoryMode || s.Time() != time.Unix(1700000000, 0) || s.Presses != 7 {
		t.Errorf("status %+v", s)
	}
	if _, err := (&AudioRequest{Offset: 1}).Encode(); err == nil {
		t.Error("AUDIO max 0 encoded")
	}
	if _, err := (&ProvisionResponse{}).Encode(); err == nil {
		t.Error("PROVISION without sealed secret encoded")
	}
}

func TestProvisionCrypto(t *testing.T) {
	req := stationRequest()
	r, err := SealSecret(devicePriv, req, "CD0000001", testNonce, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Open(stationPriv, "CD0000001")
	if err != nil || !bytes.Equal(got, testSecret) {
		t.Fatalf("Open: %q, %v", got, err)
	}
	// Both sides derive the same key.
	k1, _ := ProvisionKey(devicePriv, req.StationKey, "s")
	k2, _ := ProvisionKey(stationPriv, r.DeviceKey, "s")
	if !bytes.Equal(k1, k2) || len(k1) != 32 {
		t.Fatalf("keys differ: %x %x", k1, k2)
	}
	for name, f := range map[string]func() ([]byte, error){
		"wrong serial": func() ([]byte, error) { return r.Open(stationPriv, "CD0000002") },
		"wrong key":    func() ([]byte, error) { return r.Open(devicePriv, "CD0000001") },
		"altered": func() ([]byte, error) {
			r2 := *r
			r2.Sealed = bytes.Clone(r.Sealed)
			r2.Sealed[0] ^= 1
			return r2.Open(stationPriv, "CD0000001")
		},
		"low-order peer key": func() ([]byte, error) {
			r2 := *r
			r2.DeviceKey = [32]byte{} // the all-zero point: X25519 gives all zeros
			return r2.Open(stationPriv, "CD0000001")
		},
	} {
		if b, err := f(); b != nil || !errors.Is(err, device.ErrProtocol) {
			t.Errorf("%s: %q, %v", name, b, err)
		}
	}
	if _, err := SealSecret(devicePriv, req, "s", testNonce, make([]byte, MaxData)); err == nil {
		t.Error("oversized secret sealed")
	}
}

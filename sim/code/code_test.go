package code

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/sim/code/voice"
)

// fakeClock is a virtual clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(unix int64) *fakeClock { return &fakeClock{t: time.Unix(unix, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newDev(t testing.TB, o Options) *Device {
	t.Helper()
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func do(d *Device, cmd byte, req ...byte) (frame.Status, []byte) {
	return d.HandleFrame(context.Background(), cmd, req)
}

func mustOK(t testing.TB, d *Device, cmd byte, req ...byte) []byte {
	t.Helper()
	st, data := do(d, cmd, req...)
	if st != frame.StatusOK {
		t.Fatalf("%s: status %v", frame.CmdName(cmd), st)
	}
	return data
}

func press(t testing.TB, d *Device) *frame.PressResponse {
	t.Helper()
	r, err := frame.ParsePress(mustOK(t, d, frame.CmdPress))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func status(t testing.TB, d *Device) *frame.DeviceStatus {
	t.Helper()
	s, err := frame.ParseStatus(mustOK(t, d, frame.CmdStatus))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func TestIdentify(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want frame.Identity
	}{
		{"zero options", Options{Seed: []byte("a")}, frame.Identity{
			Kind: frame.KindCodeDisplay, Model: DefaultModelDisplay, Firmware: DefaultFirmware,
			ProtocolVersion: 1, Digits: 6, Period: 30, Algorithm: otp.SHA1}},
		{"audio reader", Options{Kind: device.KindAudioCodeReader, Seed: []byte("a")}, frame.Identity{
			Kind: frame.KindAudioReader, Model: DefaultModelAudio, Firmware: DefaultFirmware,
			ProtocolVersion: 1, Digits: 6, Period: 30, Algorithm: otp.SHA1}},
		{"everything set", Options{
			Kind: device.KindCodeDisplay, Serial: "KV-000042", Model: "Kodeviser æøå", Firmware: "2.3.4",
			Digits: 8, Period: 60 * time.Second, Algorithm: otp.SHA512,
		}, frame.Identity{
			Kind: frame.KindCodeDisplay, Serial: "KV-000042", Model: "Kodeviser æøå", Firmware: "2.3.4",
			ProtocolVersion: 1, Digits: 8, Period: 60, Algorithm: otp.SHA512}},
		{"sha256 7 digits", Options{Kind: device.KindAudioCodeReader, Serial: "1", Digits: 7, Algorithm: otp.SHA256, Period: 65535 * time.Second}, frame.Identity{
			Kind: frame.KindAudioReader, Serial: "1", Model: DefaultModelAudio, Firmware: DefaultFirmware,
			ProtocolVersion: 1, Digits: 7, Period: 65535, Algorithm: otp.SHA256}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDev(t, tc.opts)
			id, err := frame.ParseIdentity(mustOK(t, d, frame.CmdIdentify))
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want.Serial == "" {
				want.Serial = d.Serial()
				if len(want.Serial) != 10 || strings.Trim(want.Serial, "0123456789") != "" {
					t.Errorf("default serial %q is not 10 digits", want.Serial)
				}
			}
			if *id != want {
				t.Errorf("identity %+v\nwant     %+v", *id, want)
			}
			// The raw answer carries every tag of §4 once, in order.
			raw := mustOK(t, d, frame.CmdIdentify)
			var tags []byte
			for b := raw; len(b) >= 2; b = b[2+int(b[1]):] {
				tags = append(tags, b[0])
			}
			if !bytes.Equal(tags, []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
				t.Errorf("tags % x", tags)
			}
			info, err := d.Identify(context.Background())
			if err != nil || info.Kind != d.Kind() || info.Serial != want.Serial || info.Period != time.Duration(want.Period)*time.Second {
				t.Errorf("Identify: %+v, %v", info, err)
			}
		})
	}
}

func TestSeedDeterminism(t *testing.T) {
	a := newDev(t, Options{Seed: []byte("seed 1")})
	b := newDev(t, Options{Seed: []byte("seed 1"), Kind: device.KindAudioCodeReader})
	c := newDev(t, Options{Seed: []byte("seed 2")})
	if a.Serial() != b.Serial() || !bytes.Equal(a.TOTP().Secret, b.TOTP().Secret) || !bytes.Equal(a.PublicKey(), b.PublicKey()) {
		t.Error("same seed, different device")
	}
	if a.Serial() == c.Serial() || bytes.Equal(a.TOTP().Secret, c.TOTP().Secret) || bytes.Equal(a.PublicKey(), c.PublicKey()) {
		t.Error("different seeds, same serial, secret or key")
	}
	for alg, n := range map[otp.Algorithm]int{otp.SHA1: 20, otp.SHA256: 32, otp.SHA512: 64} {
		if got := len(newDev(t, Options{Algorithm: alg}).TOTP().Secret); got != n {
			t.Errorf("%v: secret of %d bytes, want %d", alg, got, n)
		}
	}
	// TOTP returns a copy.
	s := a.TOTP()
	s.Secret[0] ^= 0xFF
	if bytes.Equal(s.Secret, a.TOTP().Secret) {
		t.Error("TOTP shares the secret")
	}
}

func TestNewErrors(t *testing.T) {
	for name, o := range map[string]Options{
		"chip kind":        {Kind: device.KindChip},
		"5 digits":         {Digits: 5},
		"9 digits":         {Digits: 9},
		"half seconds":     {Period: 1500 * time.Millisecond},
		"long period":      {Period: 65536 * time.Second},
		"negative period":  {Period: -time.Second},
		"bad algorithm":    {Algorithm: 4},
		"battery 101":      {Battery: 101},
		"battery -1":       {Battery: -1},
		"serial control":   {Serial: "12\n34"},
		"serial too long":  {Serial: strings.Repeat("1", 256)},
		"model too long":   {Model: strings.Repeat("m", 256)},
		"firmware control": {Firmware: "1\x00"},
		"language":         {Language: "fr"},
		"speed":            {Speed: 201},
		"volume":           {Volume: 101},
		"repeat":           {Repeat: 9},
		"drift":            {Drift: Drift{PPM: -1e6}},
		"huge secret":      {Secret: make([]byte, 1000)},
	} {
		if d, err := New(o); err == nil || d != nil {
			t.Errorf("%s: New gave %v, %v; want an error", name, d, err)
		} else if !strings.HasPrefix(err.Error(), "code: ") {
			t.Errorf("%s: %q lacks the package prefix", name, err)
		}
	}
}

func TestPressMatchesTOTP(t *testing.T) {
	for _, kind := range []device.Kind{device.KindCodeDisplay, device.KindAudioCodeReader} {
		clk := newClock(1_700_000_007)
		d := newDev(t, Options{Kind: kind, Seed: []byte("press"), Now: clk.Now, Algorithm: otp.SHA256, Digits: 7})
		p := d.TOTP()
		for i := 0; i < 5; i++ {
			r := press(t, d)
			code, step, err := p.At(clk.Now())
			if err != nil {
				t.Fatal(err)
			}
			if r.Digits != code || r.Step != step {
				t.Errorf("%s at %v: %s step %d, want %s step %d", kind, clk.Now().Unix(), r.Digits, r.Step, code, step)
			}
			left := p.Expires(step).Sub(clk.Now())
			if want := uint16((left + time.Second - 1) / time.Second); r.SecondsLeft != want {
				t.Errorf("seconds left %d, want %d", r.SecondsLeft, want)
			}
			if (r.Audio != nil) != (kind == device.KindAudioCodeReader) {
				t.Errorf("%s: audio suffix %v", kind, r.Audio)
			}
			clk.Add(17*time.Second + 300*time.Millisecond)
		}
	}
}

// TestRFC6238 runs every vector of RFC 6238 Appendix B through a factory
// device: SET_CLOCK to the vector's time, then PRESS.
func TestRFC6238(t *testing.T) {
	f, err := os.Open("../../testdata/otp/rfc6238.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 19 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, row := range rows[1:] { // unix_time,utc,step_hex,totp,algorithm,secret_ascii
		unix, _ := strconv.ParseUint(row[0], 10, 64)
		step, _ := strconv.ParseUint(row[2], 16, 64)
		alg, err := otp.ParseAlgorithm(row[4])
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range []device.Kind{device.KindCodeDisplay, device.KindAudioCodeReader} {
			d := newDev(t, Options{Kind: kind, Secret: []byte(row[5]), Digits: 8, Algorithm: alg, Factory: true, Now: newClock(1_800_000_000).Now})
			mustOK(t, d, frame.CmdSetClock, u64(unix)...)
			r := press(t, d)
			if r.Step != step || r.Digits != row[3] {
				t.Errorf("%s %s at %d: step %d code %s, want step %d code %s", kind, row[4], unix, r.Step, r.Digits, step, row[3])
			}
		}
	}
	// The one the brief names, spelled out.
	d := newDev(t, Options{Secret: []byte("12345678901234567890"), Digits: 8, Factory: true})
	mustOK(t, d, frame.CmdSetClock, u64(59)...)
	if r := press(t, d); r.Step != 1 || r.Digits != "94287082" || r.SecondsLeft != 1 {
		t.Errorf("RFC 6238 T=59: %+v", r)
	}
}

func TestOneCodePerPress(t *testing.T) {
	clk := newClock(1_000_000_000)
	d := newDev(t, Options{Now: clk.Now})
	for i := uint32(1); i <= 3; i++ {
		press(t, d)
		if s := status(t, d); s.Presses != i || d.Presses() != i {
			t.Fatalf("after %d presses: STATUS %d, Presses %d", i, s.Presses, d.Presses())
		}
	}
	// Refused presses consume nothing.
	d.SetBattery(1)
	if st, _ := do(d, frame.CmdPress); st != frame.StatusBatteryLow {
		t.Fatalf("status %v", st)
	}
	if d.Presses() != 3 {
		t.Fatalf("a refused press counted")
	}
}

// TestResentPress sends the same PRESS frame (same SEQ) twice over a byte
// stream: the device answers both with the same bytes and counts one press.
func TestResentPress(t *testing.T) {
	clk := newClock(1_000_000_000)
	d := newDev(t, Options{Now: clk.Now, Kind: device.KindAudioCodeReader})
	p := Pipe(d, nil)
	defer p.Close()
	ctx := context.Background()
	// A frame host picks its own SEQs; to resend one by hand, write raw
	// frames to a second pipe.
	hostEnd, devEnd := netPipe(t)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- frame.Serve(sctx, devEnd, d) }()
	req, _ := (&frame.Frame{Seq: 42, Cmd: frame.CmdPress}).Encode()
	var answers [][]byte
	var parser frame.Parser
	buf := make([]byte, frame.MaxFrame)
	for i := 0; i < 2; i++ {
		clk.Add(31 * time.Second) // a new step: a second press would give another code
		if _, err := hostEnd.Write(req); err != nil {
			t.Fatal(err)
		}
		for {
			f, ok := parser.Next()
			if ok {
				if f.Seq != 42 || f.Cmd != frame.CmdPress|frame.ResponseBit {
					t.Fatalf("answer SEQ %d CMD %02x", f.Seq, f.Cmd)
				}
				answers = append(answers, f.Payload)
				break
			}
			n, err := hostEnd.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			parser.Write(buf[:n])
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(answers[0], answers[1]) {
		t.Errorf("resent PRESS answered differently:\n% x\n% x", answers[0], answers[1])
	}
	if d.Presses() != 1 {
		t.Errorf("presses %d, want 1", d.Presses())
	}
	// A new SEQ is a new press.
	if _, err := p.Press(ctx); err != nil {
		t.Fatal(err)
	}
	if d.Presses() != 2 {
		t.Errorf("presses %d, want 2", d.Presses())
	}
}

func TestDisplay(t *testing.T) {
	start := time.Unix(1_000_000_020/30*30, 0) // the start of a 30 s step
	clk := &fakeClock{t: start.Add(12 * time.Second)}
	d := newDev(t, Options{Now: clk.Now})
	if got := mustOK(t, d, frame.CmdDisplay); len(got) != 0 {
		t.Fatalf("display before any press: %q", got)
	}
	r := press(t, d)
	if r.SecondsLeft != 18 {
		t.Errorf("seconds left %d, want 18", r.SecondsLeft)
	}
	for _, tc := range []struct {
		at   time.Duration // since the start of the step
		want string
	}{
		{12 * time.Second, r.Digits},
		{29*time.Second + 999*time.Millisecond, r.Digits},
		{30 * time.Second, ""},
		{31 * time.Second, ""},
		{29 * time.Second, ""}, // the clock going back does not light it again
	} {
		clk.mu.Lock()
		clk.t = start.Add(tc.at)
		clk.mu.Unlock()
		if got := string(mustOK(t, d, frame.CmdDisplay)); got != tc.want {
			t.Errorf("at +%v: display %q, want %q", tc.at, got, tc.want)
		}
	}
	// Over the wire too.
	p := Pipe(d, nil)
	defer p.Close()
	clk.Add(time.Minute)
	c, err := p.Press(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s, err := p.Display(context.Background()); err != nil || s != c.Digits {
		t.Errorf("Display: %q, %v; want %q", s, err, c.Digits)
	}
}

func TestFactoryCommands(t *testing.T) {
	station, _ := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{9}, 32))
	pub := station.PublicKey().Bytes()
	type step struct {
		cmd  byte
		req  []byte
		want frame.Status
	}
	for _, tc := range []struct {
		name    string
		factory bool
		steps   []step
	}{
		{"never factory", false, []step{
			{frame.CmdProvision, pub, frame.StatusNotFactory},
			{frame.CmdSetClock, u64(59), frame.StatusNotFactory},
			{frame.CmdSeal, nil, frame.StatusNotFactory},
			{frame.CmdSetClock, []byte{1}, frame.StatusNotFactory}, // mode first, then length
		}},
		{"factory then sealed", true, []step{
			{frame.CmdSetClock, u64(59), frame.StatusOK},
			{frame.CmdSetClock, []byte{0, 59}, frame.StatusBadRequest},
			{frame.CmdSetClock, u64(maxClock + 1), frame.StatusBadRequest},
			{frame.CmdProvision, pub, frame.StatusOK},
			{frame.CmdProvision, pub[:31], frame.StatusBadRequest},
			{frame.CmdProvision, make([]byte, 32), frame.StatusBadRequest}, // low-order point
			{frame.CmdSeal, []byte{0}, frame.StatusBadRequest},
			{frame.CmdSeal, nil, frame.StatusOK},
			{frame.CmdSeal, nil, frame.StatusSealed},
			{frame.CmdSetClock, u64(59), frame.StatusSealed},
			{frame.CmdProvision, pub, frame.StatusSealed},
			{frame.CmdPress, nil, frame.StatusOK}, // a sealed device still works
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDev(t, Options{Factory: tc.factory, Now: newClock(1_000_000_000).Now})
			if s := status(t, d); s.FactoryMode != tc.factory {
				t.Errorf("STATUS factory %v", s.FactoryMode)
			}
			for i, s := range tc.steps {
				if st, data := do(d, s.cmd, s.req...); st != s.want || (st != frame.StatusOK && len(data) != 0) {
					t.Errorf("step %d %s: status %v with %d bytes, want %v", i, frame.CmdName(s.cmd), st, len(data), s.want)
				}
			}
			if s := status(t, d); s.FactoryMode {
				t.Error("still in factory mode")
			}
		})
	}
}

func TestSetClock(t *testing.T) {
	clk := newClock(1_000_000_000)
	d := newDev(t, Options{Factory: true, Now: clk.Now})
	mustOK(t, d, frame.CmdSetClock, u64(1_234_567_890)...)
	clk.Add(90 * time.Second)
	if got := status(t, d).Clock; got != 1_234_567_980 {
		t.Errorf("clock %d, want 1234567980", got)
	}
	if got := d.Clock().Unix(); got != 1_234_567_980 {
		t.Errorf("Clock %d", got)
	}
}

func TestDrift(t *testing.T) {
	clk := newClock(2_000_000_000)
	for _, tc := range []struct {
		drift Drift
		after time.Duration
		want  int64 // device clock - real clock, in seconds
	}{
		{Drift{}, time.Hour, 0},
		{Drift{Offset: 45 * time.Second}, 0, 45},
		{Drift{Offset: -2 * time.Minute}, time.Hour, -120},
		{Drift{PPM: 1000}, 1000 * time.Second, 1},  // 0.1 % fast
		{Drift{PPM: -500}, 4000 * time.Second, -2}, // 0.05 % slow
		{Drift{Offset: time.Second, PPM: 100}, 10 * time.Hour, 1 + 3},
	} {
		d := newDev(t, Options{Now: clk.Now, Drift: tc.drift, Factory: true})
		clk.Add(tc.after)
		got := int64(status(t, d).Clock) - clk.Now().Unix()
		if got != tc.want {
			t.Errorf("%+v after %v: device clock off by %d s, want %d", tc.drift, tc.after, got, tc.want)
		}
		// The code follows the device clock, not the real one.
		p := d.TOTP()
		if r := press(t, d); r.Step != p.Step(d.Clock()) {
			t.Errorf("%+v: step %d, device clock step %d", tc.drift, r.Step, p.Step(d.Clock()))
		}
	}
	// SET_CLOCK keeps the rate error.
	d := newDev(t, Options{Now: clk.Now, Drift: Drift{PPM: 1000}, Factory: true})
	mustOK(t, d, frame.CmdSetClock, u64(1_000_000_000)...)
	clk.Add(2000 * time.Second)
	if got := status(t, d).Clock; got != 1_000_002_002 {
		t.Errorf("after SET_CLOCK: %d, want 1000002002", got)
	}
}

func TestLowBattery(t *testing.T) {
	for _, tc := range []struct {
		battery int
		want    frame.Status
	}{
		{0, frame.StatusOK}, // 0 means full
		{100, frame.StatusOK},
		{LowBattery, frame.StatusOK},
		{LowBattery - 1, frame.StatusBatteryLow},
		{1, frame.StatusBatteryLow},
	} {
		d := newDev(t, Options{Battery: tc.battery})
		if st, data := do(d, frame.CmdPress); st != tc.want || (st != frame.StatusOK && data != nil) {
			t.Errorf("battery %d: status %v, want %v", tc.battery, st, tc.want)
		}
		if want := max(tc.battery, 0); want != 0 && int(status(t, d).Battery) != want {
			t.Errorf("battery %d: STATUS says %d", tc.battery, status(t, d).Battery)
		}
	}
	d := newDev(t, Options{})
	d.SetBattery(3)
	_, err := d.Press(context.Background())
	var se *frame.StatusError
	if !errors.As(err, &se) || se.Status != frame.StatusBatteryLow {
		t.Errorf("Press on a low battery: %v", err)
	}
	d.SetBattery(0)
	if status(t, d).Battery != 0 {
		t.Error("SetBattery(0)")
	}
}

func TestFaults(t *testing.T) {
	clk := newClock(1_500_000_000)
	d := newDev(t, Options{Now: clk.Now, Kind: device.KindAudioCodeReader, Faults: Faults{WrongCode: true}})
	p := d.TOTP()
	r := press(t, d)
	right, step, _ := p.At(clk.Now())
	next, _ := p.Code(step + 1)
	if r.Step != step || r.Digits != next || r.Digits == right {
		t.Errorf("WrongCode: %s step %d; right %s, next step %s", r.Digits, r.Step, right, next)
	}

	d.SetFaults(Faults{Busy: true})
	_, err := d.Press(context.Background())
	if !errors.Is(err, device.ErrBusy) || d.Presses() != 1 {
		t.Errorf("Busy: %v, presses %d", err, d.Presses())
	}

	d.SetFaults(Faults{CorruptAudio: true})
	c, err := d.Press(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	clean, _ := voice.Speak(c.Digits, voice.DefaultSettings())
	if len(c.Audio.PCM) != len(clean) || bytes.Equal(c.Audio.PCM, clean) {
		t.Errorf("CorruptAudio: %d bytes, clean %d, equal %v", len(c.Audio.PCM), len(clean), bytes.Equal(c.Audio.PCM, clean))
	}
	n := len(clean)
	if !bytes.Equal(c.Audio.PCM[:n/3], clean[:n/3]) || !bytes.Equal(c.Audio.PCM[2*n/3:], clean[2*n/3:]) {
		t.Error("CorruptAudio changed more than the middle third")
	}
}

func TestAudio(t *testing.T) {
	clk := newClock(1_600_000_000)
	d := newDev(t, Options{Kind: device.KindAudioCodeReader, Now: clk.Now, Seed: []byte("audio")})
	if st, _ := do(d, frame.CmdAudio, 0, 0, 0, 0, 0, 1); st != frame.StatusNoCode {
		t.Fatalf("AUDIO before a press: %v", st)
	}
	r := press(t, d)
	want, err := voice.Speak(r.Digits, voice.DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	if r.Audio == nil || r.Audio.SampleRate != voice.SampleRate || int(r.Audio.Length) != len(want) {
		t.Fatalf("PRESS audio %+v, want %d bytes at %d Hz", r.Audio, len(want), voice.SampleRate)
	}
	// Fetch it by hand in odd pieces.
	var got []byte
	for len(got) < len(want) {
		req := binary.BigEndian.AppendUint32(nil, uint32(len(got)))
		req = binary.BigEndian.AppendUint16(req, 777)
		got = append(got, mustOK(t, d, frame.CmdAudio, req...)...)
	}
	if !bytes.Equal(got, want) {
		t.Error("AUDIO bytes differ from the speech")
	}
	for _, tc := range []struct {
		off  uint32
		max  uint16
		want frame.Status
		n    int
	}{
		{0, 65535, frame.StatusOK, frame.MaxData},
		{0, 1, frame.StatusOK, 1},
		{uint32(len(want) - 3), 100, frame.StatusOK, 3},
		{uint32(len(want)), 100, frame.StatusOK, 0},
		{1 << 31, 100, frame.StatusOK, 0},
		{0, 0, frame.StatusBadRequest, 0},
	} {
		req := binary.BigEndian.AppendUint32(nil, tc.off)
		req = binary.BigEndian.AppendUint16(req, tc.max)
		if st, data := do(d, frame.CmdAudio, req...); st != tc.want || len(data) != tc.n {
			t.Errorf("AUDIO %d/%d: %v with %d bytes, want %v with %d", tc.off, tc.max, st, len(data), tc.want, tc.n)
		}
	}
	if st, _ := do(d, frame.CmdAudio, 0, 0, 0, 0, 1); st != frame.StatusBadRequest {
		t.Errorf("short AUDIO: %v", st)
	}

	// Deterministic: the same seed and clock say the same thing, and
	// the host fetches exactly that.
	d2 := newDev(t, Options{Kind: device.KindAudioCodeReader, Now: clk.Now, Seed: []byte("audio")})
	p := Pipe(d2, nil)
	defer p.Close()
	c, err := p.Press(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Digits != r.Digits || c.Audio == nil || !bytes.Equal(c.Audio.PCM, want) || c.Audio.SampleRate != voice.SampleRate {
		t.Errorf("over the pipe: %s, %d bytes", c.Digits, len(c.Audio.PCM))
	}
	if c.Audio.Duration() < time.Second || c.Audio.Duration() > 6*time.Second {
		t.Errorf("speech of %v for 6 digits", c.Audio.Duration())
	}
}

func TestSettings(t *testing.T) {
	clk := newClock(1_600_000_000)
	d := newDev(t, Options{Kind: device.KindAudioCodeReader, Now: clk.Now})
	base := press(t, d)
	for _, tc := range []struct {
		req  string
		want frame.Status
	}{
		{"da\x64\x64", frame.StatusOK},
		{"en\x32\x00", frame.StatusOK},
		{"en\xc8\x64", frame.StatusOK},
		{"da\x31\x64", frame.StatusBadRequest}, // speed 49
		{"da\xc9\x64", frame.StatusBadRequest}, // speed 201
		{"da\x64\x65", frame.StatusBadRequest}, // volume 101
		{"fr\x64\x64", frame.StatusBadRequest},
		{"DA\x64\x64", frame.StatusBadRequest},
		{"d\x00\x64\x64", frame.StatusBadRequest},
		{"da\x64", frame.StatusBadRequest},
		{"da\x64\x64\x00", frame.StatusBadRequest},
		{"", frame.StatusBadRequest},
	} {
		if st, _ := do(d, frame.CmdSettings, []byte(tc.req)...); st != tc.want {
			t.Errorf("SETTINGS %q: %v, want %v", tc.req, st, tc.want)
		}
	}
	// The last good settings (en, 200 %, 100 %) apply from the next press.
	r := press(t, d)
	want, _ := voice.Speak(r.Digits, voice.Settings{Language: "en", Speed: 200, Volume: 100, Repeat: 1})
	if int(r.Audio.Length) != len(want) || r.Audio.Length >= base.Audio.Length {
		t.Errorf("after SETTINGS: %d bytes, want %d (was %d)", r.Audio.Length, len(want), base.Audio.Length)
	}
	// Options set the start values.
	d = newDev(t, Options{Kind: device.KindAudioCodeReader, Now: clk.Now, Language: "en", Speed: 150, Volume: 40, Repeat: 2})
	r = press(t, d)
	want, _ = voice.Speak(r.Digits, voice.Settings{Language: "en", Speed: 150, Volume: 40, Repeat: 2})
	if int(r.Audio.Length) != len(want) {
		t.Errorf("options: %d bytes, want %d", r.Audio.Length, len(want))
	}
}

func TestUnknownCommands(t *testing.T) {
	for _, tc := range []struct {
		kind device.Kind
		cmd  byte
		req  []byte
		want frame.Status
	}{
		{device.KindCodeDisplay, frame.CmdAudio, []byte{0, 0, 0, 0, 0, 1}, frame.StatusUnknownCommand},
		{device.KindCodeDisplay, frame.CmdSettings, []byte("da\x64\x64"), frame.StatusUnknownCommand},
		{device.KindAudioCodeReader, frame.CmdDisplay, nil, frame.StatusUnknownCommand},
		{device.KindCodeDisplay, 0x00, nil, frame.StatusUnknownCommand},
		{device.KindCodeDisplay, 0x07, nil, frame.StatusUnknownCommand},
		{device.KindAudioCodeReader, 0x13, nil, frame.StatusUnknownCommand},
		{device.KindAudioCodeReader, 0x7F, []byte{1, 2}, frame.StatusUnknownCommand},
		{device.KindCodeDisplay, frame.CmdIdentify, []byte{0}, frame.StatusBadRequest},
		{device.KindCodeDisplay, frame.CmdPress, []byte{0}, frame.StatusBadRequest},
		{device.KindCodeDisplay, frame.CmdDisplay, []byte{0}, frame.StatusBadRequest},
		{device.KindAudioCodeReader, frame.CmdStatus, []byte{0}, frame.StatusBadRequest},
	} {
		d := newDev(t, Options{Kind: tc.kind})
		if st, data := do(d, tc.cmd, tc.req...); st != tc.want || data != nil {
			t.Errorf("%s %s: %v, want %v", tc.kind, frame.CmdName(tc.cmd), st, tc.want)
		}
	}
	// Over the wire, StatusUnknownCommand is device.ErrNotSupported.
	p := Pipe(newDev(t, Options{Kind: device.KindAudioCodeReader}), nil)
	defer p.Close()
	if _, err := p.Display(context.Background()); !errors.Is(err, device.ErrNotSupported) {
		t.Errorf("DISPLAY on an audio reader: %v", err)
	}
}

func TestProvision(t *testing.T) {
	ctx := context.Background()
	station, err := ecdh.X25519().GenerateKey(constReader(3))
	if err != nil {
		t.Fatal(err)
	}
	d := newDev(t, Options{Seed: []byte("provision"), Factory: true})
	p := Pipe(d, nil)
	defer p.Close()
	info, err := p.Identify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := &frame.ProvisionRequest{}
	copy(req.StationKey[:], station.PublicKey().Bytes())
	r1, err := p.Provision(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r1.DeviceKey[:], d.PublicKey()) {
		t.Error("PROVISION sent another device key")
	}
	secret, err := OpenSealedSecret(station, r1.DeviceKey[:], info.Serial, r1.Nonce[:], r1.Sealed)
	if err != nil || !bytes.Equal(secret, d.TOTP().Secret) {
		t.Fatalf("OpenSealedSecret: %x, %v", secret, err)
	}
	// A second PROVISION seals under a fresh nonce.
	r2, err := p.Provision(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Nonce == r1.Nonce || bytes.Equal(r2.Sealed, r1.Sealed) {
		t.Error("nonce reused")
	}
	// A twin from the same seed gives the same first answer.
	twin := newDev(t, Options{Seed: []byte("provision"), Factory: true})
	st, data := do(twin, frame.CmdProvision, req.StationKey[:]...)
	if want, _ := r1.Encode(); st != frame.StatusOK || !bytes.Equal(data, want) {
		t.Error("PROVISION is not deterministic")
	}
	// Wrong inputs fail to open.
	other, _ := ecdh.X25519().GenerateKey(constReader(4))
	for name, f := range map[string]func() ([]byte, error){
		"serial": func() ([]byte, error) {
			return OpenSealedSecret(station, r1.DeviceKey[:], info.Serial+"0", r1.Nonce[:], r1.Sealed)
		},
		"station key": func() ([]byte, error) {
			return OpenSealedSecret(other, r1.DeviceKey[:], info.Serial, r1.Nonce[:], r1.Sealed)
		},
		"nonce": func() ([]byte, error) {
			return OpenSealedSecret(station, r1.DeviceKey[:], info.Serial, r2.Nonce[:], r1.Sealed)
		},
		"short key": func() ([]byte, error) {
			return OpenSealedSecret(station, r1.DeviceKey[:31], info.Serial, r1.Nonce[:], r1.Sealed)
		},
		"short nonce": func() ([]byte, error) {
			return OpenSealedSecret(station, r1.DeviceKey[:], info.Serial, r1.Nonce[:11], r1.Sealed)
		},
	} {
		if s, err := f(); !errors.Is(err, device.ErrProtocol) || s != nil {
			t.Errorf("%s: %x, %v; want ErrProtocol", name, s, err)
		}
	}
	if _, err := OpenSealedSecret(nil, r1.DeviceKey[:], info.Serial, r1.Nonce[:], r1.Sealed); err == nil {
		t.Error("nil station key opened")
	}
	// Then seal: provisioning is over.
	if err := p.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = p.Provision(ctx, req)
	var se *frame.StatusError
	if !errors.As(err, &se) || se.Status != frame.StatusSealed {
		t.Errorf("PROVISION after SEAL: %v", err)
	}
}

// TestProvisionVector opens a PROVISION answer computed independently
// (testdata/code/README.md).
func TestProvisionVector(t *testing.T) {
	raw := readHex(t, "../../testdata/code/provision/station01-device02.hex")
	r, err := frame.ParseProvisionResponse(raw)
	if err != nil {
		t.Fatal(err)
	}
	station, _ := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{1}, 32))
	secret, err := OpenSealedSecret(station, r.DeviceKey[:], "0123456789", r.Nonce[:], r.Sealed)
	if err != nil || string(secret) != "12345678901234567890" {
		t.Fatalf("%q, %v", secret, err)
	}
	dev, _ := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{2}, 32))
	req := &frame.ProvisionRequest{}
	copy(req.StationKey[:], station.PublicKey().Bytes())
	again, err := frame.SealSecret(dev, req, "0123456789", r.Nonce, secret)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := again.Encode(); !bytes.Equal(b, raw) {
		t.Error("sealing again differs from the vector")
	}
}

func readHex(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(strings.Join(strings.Fields(string(b)), ""))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return raw
}

// constReader is an endless stream of one byte, for deterministic keys.
type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

// FuzzHandleFrame throws arbitrary requests at a device in every state: it
// must not panic, must answer a known status, never more than MaxData
// bytes, nothing after a failure status, and still identify itself.
func FuzzHandleFrame(f *testing.F) {
	seeds, _ := filepath.Glob("../../testdata/code/requests/*.hex")
	if len(seeds) == 0 {
		f.Fatal("no seeds in testdata/code/requests")
	}
	for _, p := range seeds {
		raw := readHex(f, p)
		f.Add(raw[0], raw[1:], uint8(0))
		f.Add(raw[0], raw[1:], uint8(3))
	}
	f.Add(byte(frame.CmdAudio), []byte{0, 0, 0, 0, 0xFF, 0xFF}, uint8(1))
	f.Fuzz(func(t *testing.T, cmd byte, req []byte, state uint8) {
		clk := newClock(1_700_000_000)
		o := Options{Now: clk.Now, Factory: state&1 != 0}
		if state&2 != 0 {
			o.Kind = device.KindAudioCodeReader
		}
		d := newDev(t, o)
		if state&4 != 0 {
			do(d, frame.CmdPress)
		}
		for i := 0; i < 2; i++ {
			st, data := do(d, cmd, req...)
			if st > frame.StatusSealed || len(data) > frame.MaxData || (st != frame.StatusOK && len(data) != 0) {
				t.Fatalf("%s: status %v with %d bytes", frame.CmdName(cmd), st, len(data))
			}
			clk.Add(time.Duration(state) * time.Second)
		}
		if _, err := frame.ParseIdentity(mustOK(t, d, frame.CmdIdentify)); err != nil {
			t.Fatal(err)
		}
		mustOK(t, d, frame.CmdStatus)
	})
}

// FuzzServeStream feeds an arbitrary byte stream (noise, broken and good
// frames) to a device behind frame.Serve: no panic, every answer is a
// well-formed response frame, and the device still identifies itself.
func FuzzServeStream(f *testing.F) {
	seeds, _ := filepath.Glob("../../testdata/code/requests/*.hex")
	var all []byte
	for i, p := range seeds {
		raw := readHex(f, p)
		w, err := (&frame.Frame{Seq: byte(i), Cmd: raw[0], Payload: raw[1:]}).Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(w)
		all = append(all, w...)
		all = append(all, w...) // a resend
	}
	f.Add(all)
	f.Add([]byte{frame.SOF, 0xFF, 0xFF, frame.SOF, 0, 0, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := newDev(t, Options{Kind: device.KindAudioCodeReader, Factory: true, Now: newClock(1_700_000_000).Now})
		var out bytes.Buffer
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(b), &out}
		srv := &frame.Server{Handler: d, IdleTimeout: time.Millisecond}
		if err := srv.Serve(context.Background(), rw); err != nil {
			t.Fatal(err)
		}
		var p frame.Parser
		p.Write(out.Bytes())
		for {
			r, ok := p.Next()
			if !ok {
				break
			}
			if !r.IsResponse() || len(r.Payload) == 0 || r.Payload[0] > byte(frame.StatusSealed) {
				t.Fatalf("bad answer %+v", r)
			}
		}
		if p.Buffered() != 0 || p.Stats().Skipped != 0 {
			t.Fatalf("answers hold %d stray bytes", p.Buffered()+int(p.Stats().Skipped))
		}
		if _, err := frame.ParseIdentity(mustOK(t, d, frame.CmdIdentify)); err != nil {
			t.Fatal(err)
		}
	})
}

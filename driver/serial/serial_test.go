package serial

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/device/voice"
	"github.com/authbench/authbench/sim/code"
	simvoice "github.com/authbench/authbench/sim/code/voice"
)

func open(t *testing.T, path string, opts Options) *CodeDevice {
	t.Helper()
	d, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestCodeDisplay(t *testing.T) {
	checkGoroutines(t)
	sim, p := simPTY(t, code.Options{Seed: []byte("display")})
	d := open(t, p.Path, Options{})

	info := d.Info()
	want := device.Info{Kind: device.KindCodeDisplay, Transport: "serial", Path: p.Path,
		Serial: sim.Serial(), Model: code.DefaultModelDisplay, Firmware: code.DefaultFirmware}
	if info != want {
		t.Errorf("Info() = %+v, want %+v", info, want)
	}
	ctx := context.Background()
	id, err := d.Identify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.Kind != device.KindCodeDisplay || id.Serial != sim.Serial() || id.Digits != 6 || id.Period != 30*time.Second || id.Algorithm != otp.SHA1 {
		t.Errorf("Identify() = %+v", id)
	}

	c, err := d.Press(ctx)
	if err != nil {
		t.Fatal(err)
	}
	totp := sim.TOTP()
	wantCode, step, err := totp.At(fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if c.Digits != wantCode || c.Step != step || c.Audio != nil || c.ValidFor <= 0 || c.ValidFor > 30*time.Second {
		t.Errorf("Press() = %+v, want %s at step %d", c, wantCode, step)
	}
	if shown, err := d.Host().Display(ctx); err != nil || shown != wantCode {
		t.Errorf("Display() = %q, %v", shown, err)
	}
	if sim.Presses() != 1 {
		t.Errorf("device counted %d presses", sim.Presses())
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := d.Press(ctx); !errors.Is(err, device.ErrClosed) {
		t.Errorf("Press after Close: %v, want ErrClosed", err)
	}
}

func TestAudioReader(t *testing.T) {
	checkGoroutines(t)
	sim, p := simPTY(t, code.Options{Kind: device.KindAudioCodeReader, Seed: []byte("audio"), Digits: 8})
	d := open(t, p.Path, Options{}) // voice.DefaultDecoder checks the speech
	if d.Info().Kind != device.KindAudioCodeReader {
		t.Fatalf("Info() = %+v", d.Info())
	}
	ctx := context.Background()
	totp := sim.TOTP()
	wantCode, _, _ := totp.At(fixedNow)
	for _, s := range []*frame.Settings{
		nil, // the defaults: Danish, 100 %, 100 %
		{Language: "en", Speed: 200, Volume: 10},
		{Language: "da", Speed: 70, Volume: 60},
	} {
		name := "default"
		if s != nil {
			name = fmt.Sprintf("%s/%d/%d", s.Language, s.Speed, s.Volume)
		}
		t.Run(name, func(t *testing.T) {
			if s != nil {
				if err := d.Host().Settings(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			c, err := d.Press(ctx) // which checks the speech with the default decoder
			if err != nil {
				t.Fatalf("Press: %v", err)
			}
			if c.Digits != wantCode || c.Audio == nil || c.Audio.SampleRate != simvoice.SampleRate {
				t.Fatalf("Press() = %+v, want %s with audio", c, wantCode)
			}
			// The audio is what the simulator says, byte for byte.
			set := simvoice.DefaultSettings()
			if s != nil {
				set.Language, set.Speed, set.Volume = s.Language, int(s.Speed), int(s.Volume)
			}
			want, _ := simvoice.Speak(wantCode, set)
			if !bytes.Equal(c.Audio.PCM, want) {
				t.Errorf("audio of %d bytes differs from the %d the simulator speaks", len(c.Audio.PCM), len(want))
			}
		})
	}
}

func TestAudioUnchecked(t *testing.T) {
	_, p := simPTY(t, code.Options{Kind: device.KindAudioCodeReader, Faults: code.Faults{CorruptAudio: true}})
	// NoVoiceCheck wins over Voice.
	d := open(t, p.Path, Options{Voice: testVoice(t), NoVoiceCheck: true})
	c, err := d.Press(context.Background())
	if err != nil || c.Audio == nil {
		t.Fatalf("Press with NoVoiceCheck: %+v, %v; want the code and its audio", c, err)
	}
}

func TestAudioCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func() Options
	}{
		{"default decoder", func() Options { return Options{} }},
		{"own decoder", func() Options { return Options{Voice: testVoice(t)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			_, p := simPTY(t, code.Options{Kind: device.KindAudioCodeReader, Faults: code.Faults{CorruptAudio: true}})
			d := open(t, p.Path, tc.opts())
			c, err := d.Press(context.Background())
			var me *AudioMismatchError
			if c != nil || !errors.As(err, &me) || !errors.Is(err, ErrAudioMismatch) || !errors.Is(err, voice.ErrUnrecognised) {
				t.Fatalf("Press of corrupt audio: %+v, %v; want an *AudioMismatchError wrapping voice.ErrUnrecognised", c, err)
			}
			if me.Code == nil || me.Code.Audio == nil || me.Returned != me.Code.Digits || me.Spoken != "" {
				t.Errorf("error carries %+v", me)
			}
			t.Log(err)
		})
	}
}

// mismatched is an audio reader whose speech says other digits than its
// PRESS answer, and which can be told to stop answering.
type mismatched struct {
	mu     sync.Mutex
	silent chan struct{} // while not nil, requests wait for it to close
	said   []byte
}

// hush makes the device stop answering until speak.
func (m *mismatched) hush() {
	m.mu.Lock()
	m.silent = make(chan struct{})
	m.mu.Unlock()
}

func (m *mismatched) speak() {
	m.mu.Lock()
	close(m.silent)
	m.silent = nil
	m.mu.Unlock()
}

func (m *mismatched) HandleFrame(ctx context.Context, cmd byte, payload []byte) (frame.Status, []byte) {
	m.mu.Lock()
	silent := m.silent
	m.mu.Unlock()
	if silent != nil {
		select { // hold the answer
		case <-silent:
		case <-ctx.Done():
		}
		return frame.StatusBusy, nil
	}
	switch cmd {
	case frame.CmdIdentify:
		b, _ := (&frame.Identity{Kind: frame.KindAudioReader, Serial: "MISMATCH1", ProtocolVersion: 1,
			Digits: 6, Period: 30, Algorithm: otp.SHA1}).Encode()
		return frame.StatusOK, b
	case frame.CmdPress:
		b, _ := (&frame.PressResponse{Step: 7, SecondsLeft: 12, Digits: "111111",
			Audio: &frame.AudioFormat{SampleRate: simvoice.SampleRate, Length: uint32(len(m.said))}}).Encode()
		return frame.StatusOK, b
	case frame.CmdAudio:
		r, err := frame.ParseAudioRequest(payload)
		if err != nil || int(r.Offset) > len(m.said) {
			return frame.StatusBadRequest, nil
		}
		rest := m.said[r.Offset:]
		return frame.StatusOK, rest[:min(len(rest), int(r.Max), frame.MaxData)]
	}
	return frame.StatusUnknownCommand, nil
}

func TestAudioMismatch(t *testing.T) {
	checkGoroutines(t)
	said, err := simvoice.Speak("111711", simvoice.Settings{Language: "en", Speed: 100, Volume: 100, Repeat: 2})
	if err != nil {
		t.Fatal(err)
	}
	r := newRawPTY(t)
	r.Serve(&mismatched{said: said})
	d := open(t, r.Path, Options{Voice: testVoice(t)})
	_, err = d.Press(context.Background())
	var me *AudioMismatchError
	if !errors.As(err, &me) || me.Err != nil {
		t.Fatalf("Press: %v, want an *AudioMismatchError", err)
	}
	if me.Returned != "111111" || me.Spoken != "111711 111711" || me.Path != r.Path {
		t.Errorf("error %+v", me)
	}
	if !strings.Contains(err.Error(), `said "111711 111711"`) {
		t.Errorf("message %q", err)
	}
}

func TestStopsAnswering(t *testing.T) {
	checkGoroutines(t)
	m := &mismatched{said: []byte{0, 0}}
	r := newRawPTY(t)
	r.Serve(m)
	d := open(t, r.Path, Options{Timeout: 20 * time.Millisecond, Retries: 2})
	m.hush()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a failure guard only
	defer cancel()
	_, err := d.Identify(ctx)
	if !errors.Is(err, device.ErrTimeout) || ctx.Err() != nil {
		t.Fatalf("Identify of a silent device: %v, want ErrTimeout", err)
	}
	d.Close()

	// The caller's deadline wins when it is shorter than the tries.
	m.speak()
	slow := open(t, r.Path, Options{Timeout: time.Hour, Retries: -1})
	m.hush()
	short, cancel2 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel2()
	if _, err := slow.Press(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Press with a short deadline: %v, want DeadlineExceeded", err)
	}
}

func TestNoDevice(t *testing.T) {
	checkGoroutines(t)
	r := newRawPTY(t) // nobody answers
	ctx := context.Background()
	_, err := Open(ctx, r.Path, Options{Timeout: 20 * time.Millisecond, Retries: 1})
	var nd *NoDeviceError
	if !errors.As(err, &nd) || !errors.Is(err, device.ErrNotFound) || !errors.Is(err, device.ErrTimeout) {
		t.Fatalf("Open(silent pty): %v, want a *NoDeviceError wrapping ErrNotFound and ErrTimeout", err)
	}
	if want := "no CDP/1 device answered on " + r.Path; !strings.Contains(err.Error(), want) {
		t.Errorf("message %q lacks %q", err, want)
	}
	if _, err := Probe(ctx, r.Path, 20*time.Millisecond); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("Probe(silent pty): %v, want ErrNotFound", err)
	}
	for _, path := range []string{"/dev/authbench-no-such-port", "/dev/null"} {
		if _, err := Open(ctx, path, Options{}); !errors.Is(err, device.ErrNotFound) {
			t.Errorf("Open(%s): %v, want ErrNotFound", path, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Open(cctx, r.Path, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open(canceled): %v, want context.Canceled", err)
	}
}

// blocking holds PRESS until the test lets go, to close the pty under a
// command.
type blocking struct {
	pressed chan struct{}
}

func (b *blocking) HandleFrame(ctx context.Context, cmd byte, payload []byte) (frame.Status, []byte) {
	switch cmd {
	case frame.CmdIdentify:
		id, _ := (&frame.Identity{Kind: frame.KindCodeDisplay, Serial: "BLOCK1", ProtocolVersion: 1,
			Digits: 6, Period: 30, Algorithm: otp.SHA1}).Encode()
		return frame.StatusOK, id
	case frame.CmdPress:
		close(b.pressed)
		<-ctx.Done()
		return frame.StatusBusy, nil
	}
	return frame.StatusUnknownCommand, nil
}

func TestRemovedMidCommand(t *testing.T) {
	checkGoroutines(t)
	r := newRawPTY(t)
	b := &blocking{pressed: make(chan struct{})}
	r.Serve(b)
	d := open(t, r.Path, Options{Timeout: time.Hour}) // no resend: the read must end by itself
	errc := make(chan error, 1)
	go func() {
		_, err := d.Press(context.Background())
		errc <- err
	}()
	<-b.pressed
	r.HangUp() // the device goes away while PRESS waits for its answer
	select {
	case err := <-errc:
		if !errors.Is(err, device.ErrRemoved) {
			t.Fatalf("Press: %v, want ErrRemoved", err)
		}
		t.Log(err)
	case <-time.After(10 * time.Second): // a failure guard only
		t.Fatal("Press did not return after the pty closed")
	}
	if _, err := d.Identify(context.Background()); !errors.Is(err, device.ErrRemoved) {
		t.Errorf("Identify after removal: %v, want ErrRemoved", err)
	}
}

func TestSimRemoved(t *testing.T) {
	checkGoroutines(t)
	_, p := simPTY(t, code.Options{})
	d := open(t, p.Path, Options{Timeout: 50 * time.Millisecond, Retries: 1})
	if _, err := d.Press(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := d.Press(context.Background()); !errors.Is(err, device.ErrRemoved) {
		t.Fatalf("Press after the simulator closed its pty: %v, want ErrRemoved", err)
	}
}

func TestProbe(t *testing.T) {
	checkGoroutines(t)
	sim, p := simPTY(t, code.Options{Kind: device.KindAudioCodeReader, Seed: []byte("probe")})
	info, err := Probe(context.Background(), p.Path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != device.KindAudioCodeReader || info.Serial != sim.Serial() || info.ProtocolVersion != 1 {
		t.Errorf("Probe() = %+v", info)
	}
	// The port is free again.
	open(t, p.Path, Options{})
}

func TestBusyDevice(t *testing.T) {
	_, p := simPTY(t, code.Options{Faults: code.Faults{Busy: true}})
	d := open(t, p.Path, Options{})
	if _, err := d.Press(context.Background()); !errors.Is(err, device.ErrBusy) {
		t.Errorf("Press of a busy device: %v, want ErrBusy", err)
	}
}

func TestSaveWAV(t *testing.T) {
	pcm, _ := simvoice.Speak("42", simvoice.DefaultSettings())
	a := &device.Audio{SampleRate: simvoice.SampleRate, PCM: pcm}
	var buf bytes.Buffer
	if err := SaveWAV(&buf, a); err != nil {
		t.Fatal(err)
	}
	got, err := voice.ParseWAV(buf.Bytes())
	if err != nil || got.SampleRate != a.SampleRate || !bytes.Equal(got.PCM, pcm) {
		t.Errorf("SaveWAV wrote %d bytes that parse to %v, %v", buf.Len(), got, err)
	}
	if err := SaveWAV(&buf, &device.Audio{}); !errors.Is(err, voice.ErrFormat) {
		t.Errorf("SaveWAV(no rate): %v", err)
	}
}

func TestList(t *testing.T) {
	ports, err := List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, p := range ports {
		if p.Path == "" || (!p.USB && (p.VendorID != 0 || p.ProductID != 0)) {
			t.Errorf("port %+v", p)
		}
		t.Logf("%+v", p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := List(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("List(canceled): %v", err)
	}
}

func TestParseID(t *testing.T) {
	for in, want := range map[string]uint16{"0403": 0x0403, "6001": 0x6001, "FFFF": 0xFFFF, "": 0, "xyz": 0, "10000": 0} {
		if got := parseID(in); got != want {
			t.Errorf("parseID(%q) = %#x, want %#x", in, got, want)
		}
	}
}

func BenchmarkPress(b *testing.B) {
	_, p := simPTY(b, code.Options{})
	d, err := Open(context.Background(), p.Path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	for b.Loop() {
		if _, err := d.Press(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

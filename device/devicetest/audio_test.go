package devicetest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/devicetest"
	"github.com/authbench/authbench/device/voice"
	"github.com/authbench/authbench/sim/code"
)

// pressCounter is a code device that counts its presses and the codes it
// gave.
type pressCounter struct {
	d     *code.Device
	mu    sync.Mutex
	codes []string
}

func (p *pressCounter) Identify(ctx context.Context) (*device.CodeDeviceInfo, error) {
	return p.d.Identify(ctx)
}

func (p *pressCounter) Press(ctx context.Context) (*device.Code, error) {
	c, err := p.d.Press(ctx)
	if err == nil {
		p.mu.Lock()
		p.codes = append(p.codes, c.Digits)
		p.mu.Unlock()
	}
	return c, err
}

func (p *pressCounter) pressed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.codes)
}

// unsure is what the decoder says of a word it cannot tell apart.
func unsure(code string) error {
	return &voice.DecodeError{Start: 11360, End: 14400, Reason: "a word is ambiguous (5 at 2.7 dB, 9 at 3.1 dB)",
		Partial: code[:len(code)-1] + "?", Err: voice.ErrUnrecognised}
}

// scriptedDecoder answers the audio check's CheckAudio from a script: the
// n-th call gets the n-th answer (the last one repeats), nil meaning the
// speech says the code. It notes the codes it was asked about.
type scriptedDecoder struct {
	answers []func(code string) error
	mu      sync.Mutex
	asked   []string
}

func (s *scriptedDecoder) check(ctx context.Context, a *device.Audio, code string) (string, error) {
	s.mu.Lock()
	n := len(s.asked)
	s.asked = append(s.asked, code)
	s.mu.Unlock()
	if a == nil || len(a.PCM) == 0 {
		return "", errors.New("no audio given")
	}
	f := s.answers[min(n, len(s.answers)-1)]
	if f == nil {
		return code, nil
	}
	err := f(code)
	if errors.Is(err, voice.ErrMismatch) {
		return "123456", err
	}
	return "", err
}

func (s *scriptedDecoder) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.asked)
}

// audioReader returns a simulated audio code reader with a one-second
// period on the wall clock, so that the audio check's waits for the next
// code are short, or on now when not nil.
func audioReader(t *testing.T, period time.Duration, now func() time.Time) *pressCounter {
	t.Helper()
	d, err := code.New(code.Options{Kind: device.KindAudioCodeReader, Seed: []byte("devicetest audio tries"), Period: period, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return &pressCounter{d: d}
}

func runAudio(t *testing.T, dev *pressCounter, dec *scriptedDecoder, tries int, timeout time.Duration) devicetest.Result {
	t.Helper()
	opts := devicetest.CodeOptions{CheckAudio: dec.check, AudioTries: tries}
	rep := devicetest.RunSuite(t.Context(), devicetest.CodeDeviceSuite(opts), dev, devicetest.RunOptions{
		Timeout: timeout, Select: func(n string) bool { return n == "audio.digits" }})
	r := rep.Result("audio.digits")
	t.Logf("%s %q", r.Status, r.Message)
	for _, l := range r.Log {
		t.Logf("  %s", l)
	}
	return *r
}

func artifactNames(r devicetest.Result) []string {
	var names []string
	for _, a := range r.Artifacts {
		names = append(names, a.Name)
	}
	return names
}

// TestAudioUnsureThenHeard: a decode refused as unsure is no verdict; the
// check waits for the next code, presses again and passes on a sure one.
func TestAudioUnsureThenHeard(t *testing.T) {
	dev := audioReader(t, time.Second, nil)
	dec := &scriptedDecoder{answers: []func(string) error{unsure, nil}}
	r := runAudio(t, dev, dec, 3, 0)
	if r.Status != devicetest.Pass {
		t.Fatalf("audio.digits %s %q, want pass", r.Status, r.Message)
	}
	codes := dev.pressed()
	if len(codes) != 2 || codes[0] == codes[1] || !slices.Equal(dec.calls(), codes) {
		t.Errorf("pressed %q, decoded %q: want two different codes, each decoded", codes, dec.calls())
	}
	log := strings.Join(r.Log, "\n")
	for _, want := range []string{"code " + codes[0] + " not recognised for sure", "a word is ambiguous", "pressing again (try 2 of 3)", `heard "` + codes[1] + `"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}
	if names := artifactNames(r); len(names) != 2 {
		t.Errorf("recordings kept %q, want both", names)
	}
}

// TestAudioMismatchFailsAtOnce: other digits heard for sure fail the check
// without a second press.
func TestAudioMismatchFailsAtOnce(t *testing.T) {
	dev := audioReader(t, time.Second, nil)
	dec := &scriptedDecoder{answers: []func(string) error{func(c string) error {
		return &voice.MismatchError{Code: c, Heard: []string{"123456"}}
	}, nil}}
	r := runAudio(t, dev, dec, 3, 0)
	if r.Status != devicetest.Fail || !strings.Contains(r.Message, "the reader said 123456") {
		t.Fatalf("audio.digits %s %q, want a failure saying what was heard", r.Status, r.Message)
	}
	if codes := dev.pressed(); len(codes) != 1 {
		t.Errorf("pressed %d times (%q), want once", len(codes), codes)
	}
}

// TestAudioAlwaysUnsure: when every code heard is refused as unsure the
// check fails after AudioTries codes, saying why each was refused and
// keeping every recording.
func TestAudioAlwaysUnsure(t *testing.T) {
	const tries = 3
	dev := audioReader(t, time.Second, nil)
	dec := &scriptedDecoder{answers: []func(string) error{unsure}}
	r := runAudio(t, dev, dec, tries, 0)
	if r.Status != devicetest.Fail {
		t.Fatalf("audio.digits %s %q, want fail", r.Status, r.Message)
	}
	codes := dev.pressed()
	if len(codes) != tries || !slices.Equal(dec.calls(), codes) {
		t.Fatalf("pressed %q, decoded %q: want %d codes, each decoded", codes, dec.calls(), tries)
	}
	if !strings.Contains(r.Message, fmt.Sprintf("any of the %d codes heard", tries)) {
		t.Errorf("the message does not say how many codes were heard: %q", r.Message)
	}
	for _, c := range codes {
		for _, want := range []string{"code " + c + ": voice: samples 11360 to 14400: a word is ambiguous", "(recording code-" + c + ".wav)"} {
			if !strings.Contains(r.Message, want) {
				t.Errorf("the message does not say %q", want)
			}
		}
	}
	if names := artifactNames(r); len(names) != tries {
		t.Errorf("recordings kept %q, want %d", names, tries)
	}
}

// TestAudioSameCodeAgain: a device whose next press gives the same code
// (its clock stands still) gives no new speech, and the check stops.
func TestAudioSameCodeAgain(t *testing.T) {
	dev := audioReader(t, time.Second, virtualNow)
	dec := &scriptedDecoder{answers: []func(string) error{unsure, nil}}
	r := runAudio(t, dev, dec, 5, 0)
	if r.Status != devicetest.Fail || !strings.Contains(r.Message, "same code again") || !strings.Contains(r.Message, "the one code heard") {
		t.Fatalf("audio.digits %s %q, want a failure saying the same code came again", r.Status, r.Message)
	}
	if codes, calls := dev.pressed(), dec.calls(); len(codes) != 2 || len(calls) != 1 {
		t.Errorf("pressed %q and decoded %q: want two presses, one decode", codes, calls)
	}
}

// TestAudioTriesWithinDeadline: the check does not wait for a next code
// that comes after its deadline; it reports the unsure decode instead of
// timing out.
func TestAudioTriesWithinDeadline(t *testing.T) {
	dev := audioReader(t, 30*time.Second, virtualNow) // the code has 5 s left
	dec := &scriptedDecoder{answers: []func(string) error{unsure}}
	r := runAudio(t, dev, dec, 3, 2*time.Second)
	if r.Status != devicetest.Fail || !strings.Contains(r.Message, "after the check's deadline") {
		t.Fatalf("audio.digits %s %q, want a failure saying the next code comes too late", r.Status, r.Message)
	}
	if codes := dev.pressed(); len(codes) != 1 {
		t.Errorf("pressed %q, want once", codes)
	}
}

// TestAudioOneTry: by default the check hears one code, as a suite on a
// virtual clock needs.
func TestAudioOneTry(t *testing.T) {
	dev := audioReader(t, time.Second, nil)
	dec := &scriptedDecoder{answers: []func(string) error{unsure, nil}}
	r := runAudio(t, dev, dec, 0, 0)
	if r.Status != devicetest.Fail || !strings.Contains(r.Message, "the one code heard") {
		t.Fatalf("audio.digits %s %q, want fail", r.Status, r.Message)
	}
	if codes := dev.pressed(); len(codes) != 1 {
		t.Errorf("pressed %q, want once", codes)
	}
}

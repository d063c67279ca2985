package voice_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/voice"
	"github.com/authbench/authbench/sim/code"
	simvoice "github.com/authbench/authbench/sim/code/voice"
)

// fakeClock is a clock that moves only when a test waits on it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Wait(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

// simReader is the simulated reader in-process, as voice.Learn needs it:
// SETTINGS goes through its CDP/1 handler.
type simReader struct{ *code.Device }

func (r simReader) SetSpeech(ctx context.Context, lang string, speed, volume int) error {
	b, err := (&frame.Settings{Language: lang, Speed: uint8(speed), Volume: uint8(volume)}).Encode()
	if err != nil {
		return err
	}
	st, _ := r.HandleFrame(ctx, frame.CmdSettings, b)
	return st.Err(frame.CmdSettings)
}

func newSimReader(t *testing.T, clk *fakeClock, v simvoice.Voice, lang string) simReader {
	t.Helper()
	d, err := code.New(code.Options{Kind: device.KindAudioCodeReader, Seed: []byte("learn " + lang), Now: clk.Now, Voice: v, Language: lang})
	if err != nil {
		t.Fatal(err)
	}
	return simReader{d}
}

// TestLearn: the simulated reader speaking an espeak-ng voice is learnt
// at two speeds through its own commands (SETTINGS, PRESS, waiting for
// each new code), within 20 codes per speed; the prompts then check the
// reader's next codes at both speeds, saved and loaded again too, and
// name the reader.
func TestLearn(t *testing.T) {
	needEspeak(t)
	ctx := context.Background()
	clk := &fakeClock{t: time.Unix(1_750_000_000, 0)}
	r := newSimReader(t, clk, &simvoice.Espeak{Voice: "da+klatt"}, "da")
	speeds := []int{100, 130}
	if raceEnabled {
		speeds = speeds[:1] // calibration is some thirty times slower
	}
	var progress []voice.LearnProgress
	p, rep, err := voice.Learn(ctx, r, &voice.LearnOptions{
		Speeds:   speeds,
		Progress: func(pr voice.LearnProgress) { progress = append(progress, pr) },
		Wait:     clk.Wait, Now: clk.Now,
	})
	if err != nil {
		t.Fatalf("Learn: %v (report %+v)", err, rep)
	}
	if p.Reader.Serial != r.Serial() || p.Reader.Model != code.DefaultModelAudio || p.Reader.Learnt.IsZero() {
		t.Errorf("prompts name reader %+v, want serial %s", p.Reader, r.Serial())
	}
	if len(p.Sets) != len(speeds) || p.Set("da", 100) == nil || len(speeds) > 1 && p.Set("da", 130) == nil {
		t.Fatalf("sets %+v", p.Sets)
	}
	for _, s := range rep.Sets {
		t.Logf("%s at %d %%: %d codes, %d used, examples %v, check %d/%d/%d", s.Language, s.Speed, s.Recordings, s.Used, s.Examples, s.Right, s.Refused, s.Wrong)
		if s.Recordings > voice.DefaultMaxPresses || s.Wrong > 0 {
			t.Errorf("%s at %d %%: %d codes, %d decoded wrong", s.Language, s.Speed, s.Recordings, s.Wrong)
		}
	}
	// Progress: every code new, missing counts only going down to none,
	// a wait before every code but the first of each speed.
	waits, last := 0, map[int][10]int{}
	for _, pr := range progress {
		if pr.Wait > 0 {
			waits++
			continue
		}
		if prev, ok := last[pr.Speed]; ok {
			for d := range prev {
				if pr.Missing[d] > prev[d] {
					t.Errorf("missing went up: %v after %v", pr.Missing, prev)
				}
			}
		}
		last[pr.Speed] = pr.Missing
	}
	for sp, m := range last {
		if m != ([10]int{}) {
			t.Errorf("at %d %%: still missing %v at the end", sp, m)
		}
	}
	if waits < len(progress)/2-2 {
		t.Errorf("%d waits in %d progress reports: it did not wait for new codes", waits, len(progress))
	}

	files, err := p.Files()
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	for _, f := range files {
		fsys[f.Name] = &fstest.MapFile{Data: f.Data}
	}
	loaded, err := voice.LoadPrompts(fsys)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range []*voice.Prompts{p, loaded} {
		d, err := voice.NewDecoder(pr, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, speed := range speeds {
			if err := r.SetSpeech(ctx, "da", speed, 100); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				clk.Wait(ctx, 30*time.Second)
				c, err := r.Press(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if res, err := d.Check(ctx, c.Audio, c.Digits); err != nil {
					t.Errorf("at %d %%: code %s: %v (%+v)", speed, c.Digits, err, res)
				}
			}
		}
	}
}

// TestLearnErrors: a code display cannot be learnt, too few presses end
// in ErrTooFewExamples, and a cancelled context stops learning.
func TestLearnErrors(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: time.Unix(1_750_000_000, 0)}
	disp, err := code.New(code.Options{Kind: device.KindCodeDisplay, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := voice.Learn(ctx, simReader{disp}, &voice.LearnOptions{Wait: clk.Wait, Now: clk.Now}); !errors.Is(err, device.ErrNotSupported) {
		t.Errorf("Learn(code display): %v, want ErrNotSupported", err)
	}
	r := newSimReader(t, clk, nil, "da") // the simulator's own voice
	_, rep, err := voice.Learn(ctx, r, &voice.LearnOptions{MaxPresses: 2, Wait: clk.Wait, Now: clk.Now})
	if !errors.Is(err, voice.ErrTooFewExamples) || rep == nil || rep.Sets[0].Recordings != 2 {
		t.Errorf("Learn(2 presses): %v, report %+v; want ErrTooFewExamples after 2 codes", err, rep)
	}
	if _, _, err := voice.Learn(ctx, r, &voice.LearnOptions{Speeds: []int{300}}); err == nil {
		t.Error("Learn(speed 300 %): no error")
	}
	var se *frame.StatusError
	if _, _, err := voice.Learn(ctx, r, &voice.LearnOptions{Languages: []string{"fr"}, Wait: clk.Wait, Now: clk.Now}); !errors.As(err, &se) || se.Status != frame.StatusBadRequest {
		t.Errorf("Learn(fr): %v, want the reader's refusal (status 0x02)", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	n := 0
	_, _, err = voice.Learn(cctx, r, &voice.LearnOptions{Wait: clk.Wait, Now: clk.Now, Progress: func(voice.LearnProgress) {
		if n++; n == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Learn, cancelled: %v", err)
	}
}

// TestCalibratorSetsAside: a recording that says something else than its
// code is set aside, and the prompts are learnt from the others.
func TestCalibratorSetsAside(t *testing.T) {
	skipRace(t)
	ctx := context.Background()
	cal := voice.NewCalibrator(nil)
	cs := codes(16, 5)
	for i, c := range cs {
		said := c
		if i == 3 {
			said = "555555" // the reader says another code
		}
		pcm, err := simvoice.Speak(said, simvoice.Settings{Language: "en", Speed: 100, Volume: 100, Repeat: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := cal.Add("en", 100, 100, c, &device.Audio{SampleRate: simvoice.SampleRate, PCM: pcm}); err != nil {
			t.Fatal(err)
		}
	}
	if h := cal.Heard("en", 100); slices.Max(h[:]) == 0 {
		t.Fatalf("Heard %v", h)
	}
	p, rep, err := cal.Prompts(ctx, voice.ReaderInfo{Serial: "x"})
	if err != nil {
		t.Fatalf("Prompts: %v (%+v)", err, rep)
	}
	s := rep.Sets[0]
	t.Logf("used %d of %d, set aside %q, check %d/%d/%d", s.Used, s.Recordings, s.SetAside, s.Right, s.Refused, s.Wrong)
	if s.Used != len(cs)-1 || len(s.SetAside) != 1 {
		t.Errorf("used %d of %d, set aside %q; want the one wrong recording set aside", s.Used, s.Recordings, s.SetAside)
	}
	if s.Wrong != 0 || s.Right != s.Used {
		t.Errorf("the learnt prompts decode %d right, %d refused, %d wrong of the %d codes used", s.Right, s.Refused, s.Wrong, s.Used)
	}
	if len(p.Sets) != 1 || p.Sets[0].Presses != len(cs) {
		t.Errorf("sets %+v", p.Sets)
	}

	for _, bad := range []struct {
		lang  string
		speed int
		code  string
		a     *device.Audio
	}{
		{"EN", 100, "1", &device.Audio{SampleRate: 8000, PCM: []byte{1, 0}}},
		{"en", 20, "1", &device.Audio{SampleRate: 8000, PCM: []byte{1, 0}}},
		{"en", 100, "12a", &device.Audio{SampleRate: 8000, PCM: []byte{1, 0}}},
		{"en", 100, "1", nil},
		{"en", 100, "1", &device.Audio{SampleRate: 10, PCM: []byte{1, 0}}},
		{"en", 100, "1", &device.Audio{SampleRate: 8000, PCM: []byte{1}}},
		{"en", 100, "1", &device.Audio{SampleRate: 8000, PCM: make([]byte, 16000)}},
	} {
		if err := cal.Add(bad.lang, bad.speed, 100, bad.code, bad.a); err == nil {
			t.Errorf("Add(%q, %d, %q, %v): no error", bad.lang, bad.speed, bad.code, bad.a)
		}
	}
}

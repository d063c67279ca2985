package voice

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	dvoice "github.com/authbench/authbench/device/voice"
	"github.com/authbench/authbench/internal/testenv"
)

func TestEspeakVoiceFor(t *testing.T) {
	for _, tc := range []struct{ voice, lang, want string }{
		{"en+f3", "en", "en+f3"},
		{"en+f3", "da", "da+f3"},
		{"da+klatt", "en", "en+klatt"},
		{"en-us", "en", "en-us"},
		{"en-us", "da", "da"},
		{"da", "da", "da"},
	} {
		if got := (&Espeak{Voice: tc.voice}).VoiceFor(tc.lang); got != tc.want {
			t.Errorf("VoiceFor(%s, %s) = %s, want %s", tc.voice, tc.lang, got, tc.want)
		}
	}
}

// TestEspeakSay: espeak-ng speaks the code at SampleRate; faster speech is
// shorter, pauses make it longer, a repetition more than doubles it, the
// volume scales it, and the same settings give the same bytes.
func TestEspeakSay(t *testing.T) {
	testenv.LookPath(t, "espeak-ng", "espeak-ng", "install the Debian package espeak-ng (make test-deps)")
	v := &Espeak{Voice: "en+m3"}
	say := func(v *Espeak, s Settings) []byte {
		t.Helper()
		pcm, err := v.Say("924071", s)
		if err != nil {
			t.Fatal(err)
		}
		return pcm
	}
	base := say(v, Settings{"en", 100, 100, 1})
	if d := time.Duration(len(base)/2) * time.Second / SampleRate; d < time.Second || d > 5*time.Second {
		t.Errorf("six digits last %v", d)
	}
	if again := say(v, Settings{"en", 100, 100, 1}); !bytes.Equal(base, again) {
		t.Error("the same code and settings gave other bytes")
	}
	fast := say(v, Settings{"en", 200, 100, 1})
	if len(fast) > len(base)*3/4 {
		t.Errorf("at 200 %%: %d bytes, at 100 %%: %d", len(fast), len(base))
	}
	paused := say(&Espeak{Voice: "en+m3", Gap: 150 * time.Millisecond}, Settings{"en", 100, 100, 1})
	if len(paused) < len(base)+5*SampleRate/10 {
		t.Errorf("with 150 ms pauses: %d bytes, without: %d", len(paused), len(base))
	}
	twice := say(v, Settings{"en", 100, 100, 2})
	if len(twice) <= 2*len(base) {
		t.Errorf("said twice: %d bytes, once: %d", len(twice), len(base))
	}
	quiet := say(v, Settings{"en", 100, 10, 1})
	peak := func(b []byte) int {
		s, _ := dvoice.Samples(b)
		m := 0
		for _, x := range s {
			m = max(m, int(x), -int(x))
		}
		return m
	}
	if p, q := peak(base), peak(quiet); q > p/8 || q == 0 {
		t.Errorf("peak at volume 10 %%: %d, at 100 %%: %d", q, p)
	}
	if da := say(v, Settings{"da", 100, 100, 1}); bytes.Equal(da, base) {
		t.Error("Danish sounds like English")
	}
	if _, err := v.Say("12a", DefaultSettings()); !errors.Is(err, ErrInvalidSettings) {
		t.Errorf("Say(12a): %v", err)
	}
	if _, err := v.Say("1", Settings{"de", 100, 100, 1}); !errors.Is(err, device.ErrNotSupported) {
		t.Errorf("Say(de): %v", err)
	}
}

func TestEspeakMissing(t *testing.T) {
	v := &Espeak{Voice: "en", Program: "/nonexistent/espeak-ng"}
	if _, err := v.Say("1", DefaultSettings()); !errors.Is(err, ErrNoEspeak) {
		t.Errorf("Say with no espeak-ng: %v, want ErrNoEspeak", err)
	}
}

func TestStreamedWAV(t *testing.T) {
	good, err := dvoice.EncodeWAV(&device.Audio{SampleRate: 22050, PCM: []byte{1, 2, 3, 4}})
	if err != nil {
		t.Fatal(err)
	}
	// espeak-ng's placeholder sizes
	copy(good[4:], []byte{0x24, 0xf0, 0xff, 0x7f})
	copy(good[40:], []byte{0x00, 0xf0, 0xff, 0x7f})
	rate, pcm, err := streamedWAV(append(bytes.Clone(good), 5, 6, 7))
	if err != nil || rate != 22050 || !bytes.Equal(pcm, []byte{1, 2, 3, 4, 5, 6}) {
		t.Errorf("streamedWAV = %d, %v, %v", rate, pcm, err)
	}
	for _, bad := range [][]byte{nil, good[:20], append([]byte("RIFX"), good[4:]...)} {
		if _, _, err := streamedWAV(bad); !errors.Is(err, dvoice.ErrFormat) {
			t.Errorf("streamedWAV(%x): %v, want ErrFormat", bad, err)
		}
	}
	stereo := bytes.Clone(good)
	stereo[22] = 2
	if _, _, err := streamedWAV(stereo); !errors.Is(err, dvoice.ErrFormat) {
		t.Errorf("stereo: %v, want ErrFormat", err)
	}
}

// TestPromptVoice: prompts from a folder speak from the set of the
// setting's language nearest its speed, resampled from there.
func TestPromptVoice(t *testing.T) {
	p := &dvoice.Prompts{SampleRate: 16000}
	for _, sp := range []int{100, 150} {
		s := dvoice.PromptSet{Language: "en", Speed: sp}
		for d := range s.Digits {
			x := make([]int16, 1600*100/sp) // 0.1 s at the set's speed
			for i := range x {
				x[i] = int16(100 * (d + 1))
			}
			s.Digits[d] = [][]int16{x}
		}
		p.Sets = append(p.Sets, s)
	}
	v, err := NewPromptVoice(p)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Speaks("en") || v.Speaks("da") {
		t.Error("Speaks: want en only")
	}
	for _, tc := range []struct {
		speed int
		want  int // samples of "12" at 8000 Hz
	}{
		{100, 800 + digitGap + 800},
		{150, (2*800*100/150 + digitGap - 1) + 1}, // the 150 % set as recorded
		{140, 0},
	} {
		pcm, err := v.Say("12", Settings{"en", tc.speed, 100, 1})
		if err != nil {
			t.Fatal(err)
		}
		if tc.want != 0 && len(pcm)/2 != tc.want {
			t.Errorf("at %d %%: %d samples, want %d", tc.speed, len(pcm)/2, tc.want)
		}
	}
	if _, err := v.Say("1", Settings{"da", 100, 100, 1}); !errors.Is(err, device.ErrNotSupported) {
		t.Errorf("Say(da): %v, want ErrNotSupported", err)
	}
	if _, err := NewPromptVoice(&dvoice.Prompts{SampleRate: 8000, Sets: []dvoice.PromptSet{{Language: "fr", Speed: 100}}}); !errors.Is(err, device.ErrNotSupported) {
		t.Errorf("NewPromptVoice(fr): %v", err)
	}
}

package voice

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/authbench/authbench/device"
)

func TestPromptsLoad(t *testing.T) {
	total := 0
	for _, lang := range Languages {
		for d := byte('0'); d <= '9'; d++ {
			w, err := Prompt(lang, d)
			if err != nil {
				t.Fatalf("Prompt(%s, %c): %v", lang, d, err)
			}
			if w.SampleRate != SampleRate {
				t.Errorf("Prompt(%s, %c): %d Hz", lang, d, w.SampleRate)
			}
			// Between 0.1 s and 1 s of speech, not silent.
			if n := len(w.Samples); n < SampleRate/10 || n > SampleRate {
				t.Errorf("Prompt(%s, %c): %d samples", lang, d, n)
			}
			peak := 0
			for _, s := range w.Samples {
				peak = max(peak, int(s), -int(s))
			}
			if peak < 8000 {
				t.Errorf("Prompt(%s, %c): peak %d, nearly silent", lang, d, peak)
			}
			total += len(w.Samples) * 2
		}
	}
	if total > 300_000 {
		t.Errorf("prompts hold %d bytes of PCM, want < 300 KB", total)
	}
}

func TestPromptIsACopy(t *testing.T) {
	a, _ := Prompt("da", '1')
	a.Samples[0] = 12345
	b, _ := Prompt("da", '1')
	if b.Samples[0] == 12345 {
		t.Fatal("Prompt returned shared samples")
	}
}

func TestPromptErrors(t *testing.T) {
	if _, err := Prompt("fr", '1'); !errors.Is(err, device.ErrNotSupported) {
		t.Errorf("Prompt(fr): %v, want ErrNotSupported", err)
	}
	if _, err := Prompt("da", 'x'); !errors.Is(err, ErrInvalidSettings) {
		t.Errorf("Prompt(da, x): %v, want ErrInvalidSettings", err)
	}
}

func TestSpeakLength(t *testing.T) {
	code := "924071"
	promptLen := func(lang string) int {
		n := 0
		for i := range len(code) {
			w, _ := Prompt(lang, code[i])
			n += len(w.Samples)
		}
		return n
	}
	for _, tc := range []struct {
		name string
		s    Settings
		want func() int // samples
	}{
		{"da", DefaultSettings(), func() int { return promptLen("da") + 5*digitGap }},
		{"en", Settings{"en", 100, 100, 1}, func() int { return promptLen("en") + 5*digitGap }},
		{"repeat", Settings{"da", 100, 100, 3}, func() int { return 3*(promptLen("da")+5*digitGap) + 2*repeatGap }},
		{"double speed", Settings{"da", 200, 100, 1}, func() int { return (promptLen("da")+5*digitGap-1)/2 + 1 }},
		{"half speed", Settings{"da", 50, 100, 1}, func() int { return (promptLen("da")+5*digitGap-1)*2 + 1 }},
		{"mute", Settings{"en", 100, 0, 1}, func() int { return promptLen("en") + 5*digitGap }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pcm, err := Speak(code, tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(pcm)/2, tc.want(); got != want || len(pcm)%2 != 0 {
				t.Errorf("%d bytes = %d samples, want %d", len(pcm), got, want)
			}
		})
	}
}

func TestSpeakDeterministic(t *testing.T) {
	for _, s := range []Settings{DefaultSettings(), {"en", 137, 63, 2}, {"da", 50, 100, 1}} {
		a, err := Speak("0123456789", s)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Speak("0123456789", s)
		if !bytes.Equal(a, b) {
			t.Errorf("%+v: two calls differ", s)
		}
	}
	a, _ := Speak("123", Settings{"da", 100, 100, 1})
	c, _ := Speak("123", Settings{"en", 100, 100, 1})
	if bytes.Equal(a, c) {
		t.Error("da and en sound the same")
	}
}

func TestSpeakVolume(t *testing.T) {
	full, _ := Speak("58", Settings{"da", 100, 100, 1})
	half, _ := Speak("58", Settings{"da", 100, 50, 1})
	mute, _ := Speak("58", Settings{"da", 100, 0, 1})
	for i := 0; i+1 < len(full); i += 2 {
		f := int16(binary.LittleEndian.Uint16(full[i:]))
		h := int16(binary.LittleEndian.Uint16(half[i:]))
		m := int16(binary.LittleEndian.Uint16(mute[i:]))
		if int(h) != int(f)*50/100 || m != 0 {
			t.Fatalf("sample %d: full %d half %d mute %d", i/2, f, h, m)
		}
	}
}

func TestResample(t *testing.T) {
	in := []int16{0, 100, 200, 300, -32768, 32767}
	for _, tc := range []struct {
		speed int
		want  []int16
	}{
		{100, in},
		{200, []int16{0, 200, -32768}},
		{50, []int16{0, 50, 100, 150, 200, 250, 300, -16234, -32768, -1, 32767}},
		{150, []int16{0, 150, 300, -1}},
	} {
		got := resample(append([]int16(nil), in...), tc.speed)
		if len(got) != len(tc.want) {
			t.Errorf("speed %d: %v, want %v", tc.speed, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("speed %d: %v, want %v", tc.speed, got, tc.want)
				break
			}
		}
	}
}

func TestSettingsValidate(t *testing.T) {
	for _, tc := range []struct {
		s    Settings
		want error
	}{
		{DefaultSettings(), nil},
		{Settings{"en", 50, 0, 1}, nil},
		{Settings{"da", 200, 100, MaxRepeat}, nil},
		{Settings{"de", 100, 100, 1}, device.ErrNotSupported},
		{Settings{"", 100, 100, 1}, device.ErrNotSupported},
		{Settings{"da", 49, 100, 1}, ErrInvalidSettings},
		{Settings{"da", 201, 100, 1}, ErrInvalidSettings},
		{Settings{"da", 100, -1, 1}, ErrInvalidSettings},
		{Settings{"da", 100, 101, 1}, ErrInvalidSettings},
		{Settings{"da", 100, 100, 0}, ErrInvalidSettings},
		{Settings{"da", 100, 100, MaxRepeat + 1}, ErrInvalidSettings},
	} {
		err := tc.s.Validate()
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%+v: %v, want %v", tc.s, err, tc.want)
		}
		if _, err2 := Speak("1", tc.s); (err == nil) != (err2 == nil) {
			t.Errorf("%+v: Validate %v but Speak %v", tc.s, err, err2)
		}
	}
	for _, code := range []string{"", "12a4", "１２"} {
		if _, err := Speak(code, DefaultSettings()); !errors.Is(err, ErrInvalidSettings) {
			t.Errorf("Speak(%q): %v, want ErrInvalidSettings", code, err)
		}
	}
}

func TestWAVRoundTrip(t *testing.T) {
	for _, name := range []string{"da/0.wav", "en/9.wav"} {
		b, err := files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		w, err := DecodeWAV(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Encode(); !bytes.Equal(got, b) {
			t.Errorf("%s: re-encoding differs (sha256 %x, want %x)", name, sha256.Sum256(got), sha256.Sum256(b))
		}
	}
}

func TestDecodeWAVErrors(t *testing.T) {
	good := (&WAV{SampleRate: 8000, Samples: []int16{1, -2, 3}}).Encode()
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	le32 := func(b []byte, off int, v uint32) []byte { binary.LittleEndian.PutUint32(b[off:], v); return b }
	le16 := func(b []byte, off int, v uint16) []byte { binary.LittleEndian.PutUint16(b[off:], v); return b }
	for name, b := range map[string][]byte{
		"empty":         nil,
		"not riff":      mut(func(b []byte) []byte { b[0] = 'X'; return b }),
		"riff size":     mut(func(b []byte) []byte { return le32(b, 4, 1000) }),
		"truncated":     le32(mut(func(b []byte) []byte { return b[:len(b)-1] }), 4, uint32(len(good)-9)),
		"stereo":        mut(func(b []byte) []byte { return le16(b, 22, 2) }),
		"8 bit":         mut(func(b []byte) []byte { return le16(b, 34, 8) }),
		"float":         mut(func(b []byte) []byte { return le16(b, 20, 3) }),
		"rate 0":        mut(func(b []byte) []byte { return le32(le32(b, 24, 0), 28, 0) }),
		"byte rate":     mut(func(b []byte) []byte { return le32(b, 28, 1) }),
		"data too long": mut(func(b []byte) []byte { return le32(b, 40, 100) }),
		"no data":       le32(mut(func(b []byte) []byte { return b[:36] }), 4, 28),
	} {
		if w, err := DecodeWAV(b); !errors.Is(err, ErrFormat) || w != nil {
			t.Errorf("%s: %v, %v; want nil, ErrFormat", name, w, err)
		}
	}
	// An extra chunk is skipped, with its pad byte.
	extra := append(append([]byte(nil), good[:12]...), "LIST\x03\x00\x00\x00abc\x00"...)
	extra = le32(append(extra, good[12:]...), 4, uint32(len(good)+12-8))
	w, err := DecodeWAV(extra)
	if err != nil || len(w.Samples) != 3 || w.Samples[1] != -2 {
		t.Errorf("extra chunk: %v, %v", w, err)
	}
	if !bytes.Equal(w.Encode(), good) {
		t.Error("extra chunk: canonical form differs")
	}
}

// FuzzDecodeWAV: no panic, and a decoded file re-encodes to a canonical
// form that decodes to the same recording and re-encodes to itself.
func FuzzDecodeWAV(f *testing.F) {
	seeds, _ := filepath.Glob("../../../testdata/voice/*.wav")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add((&WAV{SampleRate: 8000}).Encode())
	f.Add((&WAV{SampleRate: 16000, Samples: []int16{0, 1, -1, 32767, -32768}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := DecodeWAV(b)
		if err != nil {
			if w != nil {
				t.Fatal("error with a value")
			}
			return
		}
		c := w.Encode()
		if c == nil {
			t.Fatal("decoded WAV does not encode")
		}
		w2, err := DecodeWAV(c)
		if err != nil {
			t.Fatalf("canonical form does not decode: %v", err)
		}
		if !bytes.Equal(w2.Encode(), c) || w2.SampleRate != w.SampleRate || len(w2.Samples) != len(w.Samples) {
			t.Fatal("canonical form does not round-trip")
		}
		if len(b) == len(c) && !bytes.Equal(b, c) && bytes.Equal(b[12:16], []byte("fmt ")) && binary.LittleEndian.Uint32(b[16:20]) == 16 {
			t.Fatal("canonical-layout input does not re-encode exactly")
		}
	})
}

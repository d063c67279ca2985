package voice

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/authbench/authbench/device"
	dvoice "github.com/authbench/authbench/device/voice"
)

func TestSpeakLength(t *testing.T) {
	code := "924071"
	promptLen := func(lang string) int {
		n := 0
		p, err := dvoice.DefaultPrompts()
		if err != nil {
			t.Fatal(err)
		}
		for i := range len(code) {
			n += len(p.Set(lang, 100).Digits[code[i]-'0'][0])
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

// TestSpeakUsesDefaultPrompts: a single digit at the default settings is
// exactly device/voice's embedded prompt, so the default decoder's
// references are what the simulator says.
func TestSpeakUsesDefaultPrompts(t *testing.T) {
	p, err := dvoice.DefaultPrompts()
	if err != nil {
		t.Fatal(err)
	}
	if p.SampleRate != SampleRate {
		t.Fatalf("device/voice prompts at %d Hz, want %d", p.SampleRate, SampleRate)
	}
	for _, lang := range Languages {
		for d := byte('0'); d <= '9'; d++ {
			got, err := Speak(string(d), Settings{Language: lang, Speed: 100, Volume: 100, Repeat: 1})
			if err != nil {
				t.Fatal(err)
			}
			if want := dvoice.PCM(p.Set(lang, 100).Digits[d-'0'][0]); !bytes.Equal(got, want) {
				t.Errorf("Speak(%c, %s): %d bytes, differs from the %d-byte prompt", d, lang, len(got), len(want))
			}
		}
	}
}

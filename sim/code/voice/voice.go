package voice

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/authbench/authbench/device"
	dvoice "github.com/authbench/authbench/device/voice"
)

// SampleRate is the rate of the prompts and of everything Speak returns.
const SampleRate = 8000

// Languages lists the languages with prompts, the default first.
var Languages = []string{"da", "en"}

// Limits of the settings (the ranges CDP/1 SETTINGS accepts, CDP/1 §4).
const (
	MinSpeed, MaxSpeed   = 50, 200 // percent of the recorded speed
	MinVolume, MaxVolume = 0, 100  // percent of the recorded level
	MaxRepeat            = 5       // times the code is said
)

// Pauses, at normal speed.
const (
	digitGap  = SampleRate * 120 / 1000 // between two digits: 120 ms
	repeatGap = SampleRate * 600 / 1000 // between two repetitions: 600 ms
)

// ErrInvalidSettings is wrapped by Speak errors for a speed, volume or
// repeat count out of range, or a code that is not all digits.
var ErrInvalidSettings = errors.New("voice: invalid settings")

// Settings say how a code is spoken.
type Settings struct {
	Language string // "da" or "en"
	Speed    int    // percent, MinSpeed..MaxSpeed; 100 is as recorded
	Volume   int    // percent, MinVolume..MaxVolume; 100 is as recorded, 0 is silence
	Repeat   int    // how many times the code is said, 1..MaxRepeat
}

// DefaultSettings are Danish, at the recorded speed and level, said once.
func DefaultSettings() Settings {
	return Settings{Language: "da", Speed: 100, Volume: 100, Repeat: 1}
}

// Validate returns an error wrapping device.ErrNotSupported for a language
// without prompts, or ErrInvalidSettings for a speed, volume or repeat count
// out of range.
func (s Settings) Validate() error {
	if !knownLanguage(s.Language) {
		return fmt.Errorf("voice: language %q: %w", s.Language, device.ErrNotSupported)
	}
	if s.Speed < MinSpeed || s.Speed > MaxSpeed {
		return fmt.Errorf("%w: speed %d%% (want %d to %d)", ErrInvalidSettings, s.Speed, MinSpeed, MaxSpeed)
	}
	if s.Volume < MinVolume || s.Volume > MaxVolume {
		return fmt.Errorf("%w: volume %d%% (want %d to %d)", ErrInvalidSettings, s.Volume, MinVolume, MaxVolume)
	}
	if s.Repeat < 1 || s.Repeat > MaxRepeat {
		return fmt.Errorf("%w: repeat %d (want 1 to %d)", ErrInvalidSettings, s.Repeat, MaxRepeat)
	}
	return nil
}

func knownLanguage(lang string) bool {
	for _, l := range Languages {
		if l == lang {
			return true
		}
	}
	return false
}

// prompts holds the reader's prompts, per language, per digit: the
// reference prompts embedded in device/voice, so that what the simulator
// says is exactly what the default decoder compares speech with.
var prompts = sync.OnceValues(func() (map[string]*[10][]int16, error) {
	p, err := dvoice.DefaultPrompts()
	if err != nil {
		return nil, err
	}
	if p.SampleRate != SampleRate {
		return nil, fmt.Errorf("voice: prompts at %d Hz, want %d: %w", p.SampleRate, SampleRate, dvoice.ErrFormat)
	}
	m := make(map[string]*[10][]int16, len(Languages))
	for _, lang := range Languages {
		digits, ok := p.Languages[lang]
		if !ok {
			return nil, fmt.Errorf("voice: no prompts for language %q: %w", lang, dvoice.ErrFormat)
		}
		m[lang] = &digits
	}
	return m, nil
})

// Speak returns what a reader with settings s says for code: the digit
// prompts with a 120 ms pause between digits and 600 ms between
// repetitions, resampled for the speed and scaled for the volume, as s16le
// mono PCM at SampleRate. The same code and settings always give the same
// bytes.
//
// It returns an error wrapping device.ErrNotSupported for an unknown
// language, ErrInvalidSettings for settings out of range or a code that is
// empty or not all ASCII digits, or an error wrapping device/voice's
// ErrFormat if an embedded prompt is damaged.
func Speak(code string, s Settings) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if code == "" {
		return nil, fmt.Errorf("%w: empty code", ErrInvalidSettings)
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return nil, fmt.Errorf("%w: code is not all digits", ErrInvalidSettings)
		}
	}
	all, err := prompts()
	if err != nil {
		return nil, err
	}
	p := all[s.Language]
	var n int
	for i := 0; i < len(code); i++ {
		n += len(p[code[i]-'0']) + digitGap
	}
	n = s.Repeat*(n-digitGap) + (s.Repeat-1)*repeatGap
	buf := make([]int16, 0, n)
	for r := 0; r < s.Repeat; r++ {
		if r > 0 {
			buf = append(buf, make([]int16, repeatGap)...)
		}
		for i := 0; i < len(code); i++ {
			if i > 0 {
				buf = append(buf, make([]int16, digitGap)...)
			}
			buf = append(buf, p[code[i]-'0']...)
		}
	}
	buf = resample(buf, s.Speed)
	scale(buf, s.Volume)
	return dvoice.PCM(buf), nil
}

// resample plays in at speed percent of its rate, by linear interpolation
// between neighbouring samples, in integer arithmetic so that the result is
// the same on every machine. Output sample i sits at input position
// i*speed/100.
func resample(in []int16, speed int) []int16 {
	if speed == 100 || len(in) < 2 {
		return in
	}
	last := uint64(len(in) - 1)
	n := last*100/uint64(speed) + 1
	out := make([]int16, n)
	for i := range out {
		pos := uint64(i) * uint64(speed)
		j, frac := pos/100, int64(pos%100)
		a := int64(in[j])
		if frac == 0 || j == last {
			out[i] = int16(a)
			continue
		}
		b := int64(in[j+1])
		out[i] = int16(a + (b-a)*frac/100) // between a and b: fits int16
	}
	return out
}

// scale multiplies every sample by volume percent, clipping at full scale.
func scale(s []int16, volume int) {
	if volume == 100 {
		return
	}
	for i, v := range s {
		x := int64(v) * int64(volume) / 100
		s[i] = int16(max(math.MinInt16, min(math.MaxInt16, x)))
	}
}

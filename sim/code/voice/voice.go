package voice

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/authbench/authbench/device"
	dvoice "github.com/authbench/authbench/device/voice"
)

// SampleRate is the rate of everything a Voice says.
const SampleRate = 8000

// Languages lists the languages CDP/1 SETTINGS names, the default first.
var Languages = []string{"da", "en"}

// Limits of the settings (the ranges CDP/1 SETTINGS accepts, CDP/1 §4).
const (
	MinSpeed, MaxSpeed   = 50, 200 // percent of the normal speed
	MinVolume, MaxVolume = 0, 100  // percent of the recorded level
	MaxRepeat            = 5       // times the code is said
)

// Pauses of a prompt voice, at normal speed.
const (
	digitGap  = SampleRate * 120 / 1000 // between two digits: 120 ms
	repeatGap = SampleRate * 600 / 1000 // between two repetitions: 600 ms
)

// ErrInvalidSettings is wrapped by Say errors for a speed, volume or
// repeat count out of range, or a code that is not all digits.
var ErrInvalidSettings = errors.New("voice: invalid settings")

// Settings say how a code is spoken.
type Settings struct {
	Language string // "da" or "en"
	Speed    int    // percent, MinSpeed..MaxSpeed; 100 is normal
	Volume   int    // percent, MinVolume..MaxVolume; 100 is as recorded, 0 is silence
	Repeat   int    // how many times the code is said, 1..MaxRepeat
}

// DefaultSettings are Danish, at the recorded speed and level, said once.
func DefaultSettings() Settings {
	return Settings{Language: "da", Speed: 100, Volume: 100, Repeat: 1}
}

// Validate returns an error wrapping device.ErrNotSupported for a language
// CDP/1 does not name, or ErrInvalidSettings for a speed, volume or repeat
// count out of range.
func (s Settings) Validate() error {
	if !slices.Contains(Languages, s.Language) {
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

// checkCode returns ErrInvalidSettings for a code that is empty or not all
// ASCII digits.
func checkCode(code string) error {
	if code == "" {
		return fmt.Errorf("%w: empty code", ErrInvalidSettings)
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return fmt.Errorf("%w: code is not all digits", ErrInvalidSettings)
		}
	}
	return nil
}

// A Voice is how a simulated audio code reader speaks.
type Voice interface {
	// Say returns what the reader says for code with settings s: s16le
	// mono PCM at SampleRate. It returns an error wrapping
	// device.ErrNotSupported for a language the voice does not speak, and
	// ErrInvalidSettings for settings out of range or a code that is empty
	// or not all digits.
	Say(code string, s Settings) ([]byte, error)
	// Speaks reports whether the voice speaks lang.
	Speaks(lang string) bool
}

// PromptVoice strings recorded prompts of the digits together: the
// simulated reader's own voice (DefaultVoice), or prompts learnt from
// another reader or cut by hand (device/voice LoadPrompts). It says the
// first example of each digit with a 120 ms pause between digits and
// 600 ms between repetitions, resampled from the speed of the prompt set
// nearest the setting (so that faster speech also sounds higher, like a
// tape played fast), scaled for the volume. The same code and settings
// always give the same bytes.
type PromptVoice struct {
	sets []dvoice.PromptSet // at SampleRate
}

var _ Voice = (*PromptVoice)(nil)

// NewPromptVoice returns a voice that says p's prompts, resampled to
// SampleRate. It returns an error when p has no set of "da" or "en".
func NewPromptVoice(p *dvoice.Prompts) (*PromptVoice, error) {
	v := &PromptVoice{}
	for _, s := range p.Sets {
		if !slices.Contains(Languages, s.Language) {
			continue
		}
		c := dvoice.PromptSet{Language: s.Language, Speed: s.Speed}
		for d, ex := range s.Digits {
			if len(ex) == 0 || len(ex[0]) == 0 {
				return nil, fmt.Errorf("voice: prompt set %s at %d%%: no example of %d", s.Language, s.Speed, d)
			}
			c.Digits[d] = [][]int16{dvoice.Resample(ex[0], p.SampleRate, SampleRate)}
		}
		v.sets = append(v.sets, c)
	}
	if len(v.sets) == 0 {
		return nil, fmt.Errorf("voice: no prompts in %q: %w", Languages, device.ErrNotSupported)
	}
	return v, nil
}

// defaultVoice is the voice of the prompts embedded in device/voice.
var defaultVoice = sync.OnceValues(func() (*PromptVoice, error) {
	p, err := dvoice.DefaultPrompts()
	if err != nil {
		return nil, err
	}
	if p.SampleRate != SampleRate {
		return nil, fmt.Errorf("voice: prompts at %d Hz, want %d: %w", p.SampleRate, SampleRate, dvoice.ErrFormat)
	}
	for _, lang := range Languages {
		if p.Set(lang, 100) == nil {
			return nil, fmt.Errorf("voice: no prompts for language %q: %w", lang, dvoice.ErrFormat)
		}
	}
	return NewPromptVoice(p)
})

// DefaultVoice returns the simulated reader's own voice: the reference
// prompts embedded in device/voice (DefaultPrompts), so that what the
// simulator says is exactly what the default decoder compares speech with.
// It returns an error only if the embedded prompts are damaged.
func DefaultVoice() (*PromptVoice, error) { return defaultVoice() }

// Speak returns what a reader with settings s says for code in its own
// voice (DefaultVoice). It returns Say's errors, and an error wrapping
// device/voice's ErrFormat if an embedded prompt is damaged.
func Speak(code string, s Settings) ([]byte, error) {
	v, err := DefaultVoice()
	if err != nil {
		return nil, err
	}
	return v.Say(code, s)
}

// Speaks reports whether the voice has prompts of lang.
func (v *PromptVoice) Speaks(lang string) bool { return v.set(lang, 100) != nil }

// set returns the set of lang whose speed is nearest speed, or nil.
func (v *PromptVoice) set(lang string, speed int) *dvoice.PromptSet {
	var best *dvoice.PromptSet
	for i := range v.sets {
		s := &v.sets[i]
		if s.Language == lang && (best == nil || abs(s.Speed-speed) < abs(best.Speed-speed)) {
			best = s
		}
	}
	return best
}

func abs(x int) int { return max(x, -x) }

// Say implements Voice.
func (v *PromptVoice) Say(code string, s Settings) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := checkCode(code); err != nil {
		return nil, err
	}
	set := v.set(s.Language, s.Speed)
	if set == nil {
		return nil, fmt.Errorf("voice: no prompts for language %q: %w", s.Language, device.ErrNotSupported)
	}
	var n int
	for i := 0; i < len(code); i++ {
		n += len(set.Digits[code[i]-'0'][0]) + digitGap
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
			buf = append(buf, set.Digits[code[i]-'0'][0]...)
		}
	}
	buf = resample(buf, s.Speed*100/set.Speed)
	scale(buf, s.Volume)
	return dvoice.PCM(buf), nil
}

// resample plays in at speed percent of its rate, by linear interpolation
// between neighbouring samples, in integer arithmetic so that the result is
// the same on every machine. Output sample i sits at input position
// i*speed/100.
func resample(in []int16, speed int) []int16 {
	if speed == 100 || len(in) < 2 || speed <= 0 {
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

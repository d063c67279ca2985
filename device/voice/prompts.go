package voice

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
)

// Prompts are the reference recordings a Decoder compares speech with: for
// each language, the ten digits 0 to 9 as the device says them, all at one
// sample rate.
type Prompts struct {
	SampleRate int                    // samples per second of every prompt
	Languages  map[string][10][]int16 // language ("da", "en") → digit → samples
}

// LoadPrompts reads prompts from fsys laid out as LANG/0.wav to LANG/9.wav,
// as sim/code/voice keeps them. With no langs it loads every top-level
// directory that holds 0.wav; otherwise exactly the languages named.
//
// Every file must be a WAV file ParseWAV accepts, all at the same sample
// rate, each with at least one sample. It returns an error wrapping
// fs.ErrNotExist when a named language or a digit is missing, or no
// language is found; a *FormatError (unwrapping to ErrFormat) for a bad
// file; and fsys's other errors.
func LoadPrompts(fsys fs.FS, langs ...string) (*Prompts, error) {
	if len(langs) == 0 {
		entries, err := fs.ReadDir(fsys, ".")
		if err != nil {
			return nil, fmt.Errorf("voice: prompts: %w", err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			if _, err := fs.Stat(fsys, path.Join(e.Name(), "0.wav")); err == nil {
				langs = append(langs, e.Name())
			}
		}
		if len(langs) == 0 {
			return nil, fmt.Errorf("voice: prompts: no LANG/0.wav found: %w", fs.ErrNotExist)
		}
	}
	sort.Strings(langs)
	p := &Prompts{Languages: make(map[string][10][]int16, len(langs))}
	for _, lang := range langs {
		var digits [10][]int16
		for d := range digits {
			name := path.Join(lang, fmt.Sprintf("%d.wav", d))
			b, err := fs.ReadFile(fsys, name)
			if err != nil {
				return nil, fmt.Errorf("voice: prompt %s: %w", name, err)
			}
			a, err := ParseWAV(b)
			if err != nil {
				return nil, fmt.Errorf("voice: prompt %s: %w", name, err)
			}
			if p.SampleRate == 0 {
				p.SampleRate = a.SampleRate
			} else if a.SampleRate != p.SampleRate {
				return nil, fmt.Errorf("voice: prompt %s: %w", name, formatErr(24, "sample rate %d, the other prompts have %d", a.SampleRate, p.SampleRate))
			}
			s, err := Samples(a.PCM)
			if err != nil {
				return nil, fmt.Errorf("voice: prompt %s: %w", name, err)
			}
			if len(s) == 0 {
				return nil, fmt.Errorf("voice: prompt %s: %w", name, formatErr(40, "no samples"))
			}
			digits[d] = s
		}
		p.Languages[lang] = digits
	}
	return p, nil
}

package voice

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"sync"
)

// promptFiles holds the reference prompts: prompts/LANG/0.wav to 9.wav,
// the digits as the simulated audio code reader says them (see
// prompts/README.md for how they were made).
//
//go:embed prompts/*/*.wav
var promptFiles embed.FS

// defaultPrompts parses the embedded prompts once.
var defaultPrompts = sync.OnceValues(func() (*Prompts, error) {
	sub, err := fs.Sub(promptFiles, "prompts")
	if err != nil {
		return nil, fmt.Errorf("voice: embedded prompts: %w", err)
	}
	return LoadPrompts(sub)
})

// defaultDecoder builds the decoder of the embedded prompts once.
var defaultDecoder = sync.OnceValues(func() (*Decoder, error) {
	p, err := defaultPrompts()
	if err != nil {
		return nil, err
	}
	return NewDecoder(p, nil)
})

// DefaultPrompts returns the reference prompts embedded in the package:
// the digits 0 to 9 in Danish ("da") and English ("en"), 16-bit mono PCM
// at 8000 Hz, as the simulated audio code reader of sim/code speaks them.
// They are parsed on the first call; each call returns a fresh copy, which
// the caller may change.
//
// It returns LoadPrompts' errors, which can only happen if the embedded
// files are damaged (a broken build).
func DefaultPrompts() (*Prompts, error) {
	p, err := defaultPrompts()
	if err != nil {
		return nil, err
	}
	c := &Prompts{SampleRate: p.SampleRate, Languages: make(map[string][10][]int16, len(p.Languages))}
	for lang, digits := range p.Languages {
		for i := range digits {
			digits[i] = append([]int16(nil), digits[i]...)
		}
		c.Languages[lang] = digits
	}
	return c, nil
}

// DefaultDecoder returns a Decoder of DefaultPrompts with the default
// Options: it recognises the digits of the simulated audio code reader in
// either language. The decoder is built on the first call and shared by
// every caller (a Decoder is safe for concurrent use). For other Options,
// such as one Language, call NewDecoder with DefaultPrompts.
//
// It returns DefaultPrompts' errors.
func DefaultDecoder() (*Decoder, error) {
	return defaultDecoder()
}

// Prompts are the reference recordings a Decoder compares speech with: for
// each language, the ten digits 0 to 9 as the device says them, all at one
// sample rate.
type Prompts struct {
	SampleRate int                    // samples per second of every prompt
	Languages  map[string][10][]int16 // language ("da", "en") → digit → samples
}

// LoadPrompts reads prompts from fsys laid out as LANG/0.wav to LANG/9.wav,
// as the package's own prompts directory holds them (DefaultPrompts). With no langs it loads every top-level
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

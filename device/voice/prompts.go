package voice

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
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
// the digits 0 to 9 in Danish ("da") and English ("en"), one example each
// at speed 100, 16-bit mono PCM at 8000 Hz, as the simulated audio code
// reader of sim/code speaks them. They are parsed on the first call; each
// call returns a fresh copy, which the caller may change.
//
// It returns LoadPrompts' errors, which can only happen if the embedded
// files are damaged (a broken build).
func DefaultPrompts() (*Prompts, error) {
	p, err := defaultPrompts()
	if err != nil {
		return nil, err
	}
	return p.Clone(), nil
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

// Prompts are the reference recordings a Decoder compares speech with: the
// ten digits 0 to 9 as one reader says them, in one or more sets (one per
// language and speed setting), all at one sample rate. The embedded
// prompts (DefaultPrompts) have one example of each digit per language;
// prompts learnt from a reader (Calibrator, Learn) have several, cut from
// codes the reader said, and the background noise of those recordings.
type Prompts struct {
	SampleRate int         // samples per second of every recording
	Sets       []PromptSet // at most one per language and speed
	Reader     ReaderInfo  // the reader they were learnt from; zero for the embedded prompts
}

// ReaderInfo says which reader prompts were learnt from, and when.
type ReaderInfo struct {
	Serial   string    `json:"serial,omitempty"`
	Model    string    `json:"model,omitempty"`
	Firmware string    `json:"firmware,omitempty"`
	Learnt   time.Time `json:"learnt,omitzero"`
}

// PromptSet is one reader's digits at one setting of language and speed.
type PromptSet struct {
	Language string // "da", "en", ...
	Speed    int    // the reader's speed setting, percent (100: normal)
	Volume   int    // the reader's volume setting, percent; 0 when not known
	Presses  int    // codes the examples were cut from; 0 for recorded prompts

	// Digits holds the examples of each digit, at least one each.
	Digits [10][][]int16
	// Noise is the background heard in the recordings the examples were
	// cut from (their quietest frames), or nil when they are clean.
	Noise []int16
}

// Set returns the set of lang at speed percent, or nil.
func (p *Prompts) Set(lang string, speed int) *PromptSet {
	for i := range p.Sets {
		if s := &p.Sets[i]; s.Language == lang && s.Speed == speed {
			return s
		}
	}
	return nil
}

// Languages returns the languages of the sets, sorted, each once.
func (p *Prompts) Languages() []string {
	var out []string
	for _, s := range p.Sets {
		if !slices.Contains(out, s.Language) {
			out = append(out, s.Language)
		}
	}
	sort.Strings(out)
	return out
}

// Clone returns a deep copy of p.
func (p *Prompts) Clone() *Prompts {
	c := &Prompts{SampleRate: p.SampleRate, Reader: p.Reader, Sets: make([]PromptSet, len(p.Sets))}
	for i, s := range p.Sets {
		cs := s
		for d := range cs.Digits {
			cs.Digits[d] = make([][]int16, len(s.Digits[d]))
			for e, x := range s.Digits[d] {
				cs.Digits[d][e] = slices.Clone(x)
			}
		}
		cs.Noise = slices.Clone(s.Noise)
		c.Sets[i] = cs
	}
	return c
}

// validate checks what NewDecoder and Files need: a sample rate, sets
// with a language, a speed and at least one non-empty example of each
// digit, no two sets of one language and speed.
func (p *Prompts) validate() error {
	if p == nil || len(p.Sets) == 0 {
		return errors.New("voice: no prompts")
	}
	if p.SampleRate < 1000 || p.SampleRate > MaxSampleRate {
		return fmt.Errorf("voice: prompts at %d Hz, want 1000 to %d", p.SampleRate, MaxSampleRate)
	}
	for i, s := range p.Sets {
		if !validLanguage(s.Language) {
			return fmt.Errorf("voice: prompt set %d: language %q is not a lowercase language code", i, s.Language)
		}
		if s.Speed < MinSpeed || s.Speed > MaxSpeed {
			return fmt.Errorf("voice: prompt set %s: speed %d%%, want %d to %d", s.Language, s.Speed, MinSpeed, MaxSpeed)
		}
		if p.Set(s.Language, s.Speed) != &p.Sets[i] {
			return fmt.Errorf("voice: two prompt sets of %s at %d%%", s.Language, s.Speed)
		}
		for d, ex := range s.Digits {
			if len(ex) == 0 {
				return fmt.Errorf("voice: prompt set %s: no example of %d", s.name(), d)
			}
			for e, x := range ex {
				if len(x) == 0 {
					return fmt.Errorf("voice: prompt set %s: example %d of %d is empty", s.name(), e+1, d)
				}
			}
		}
	}
	return nil
}

// validLanguage accepts what a folder name may carry: 2 to 8 lowercase
// letters.
func validLanguage(l string) bool {
	if len(l) < 2 || len(l) > 8 {
		return false
	}
	for i := 0; i < len(l); i++ {
		if l[i] < 'a' || l[i] > 'z' {
			return false
		}
	}
	return true
}

// name is the set's folder name: LANG-SPEED.
func (s *PromptSet) name() string { return fmt.Sprintf("%s-%d", s.Language, s.Speed) }

// ManifestName is the file in a prompts folder that says where the
// prompts come from.
const ManifestName = "manifest.json"

// manifestFormat is the manifest's version.
const manifestFormat = 1

// manifest is the JSON form of ManifestName.
type manifest struct {
	Format     int             `json:"format"`
	SampleRate int             `json:"sample_rate"`
	Reader     ReaderInfo      `json:"reader"`
	Sets       []manifestEntry `json:"sets"`
}

type manifestEntry struct {
	Dir      string  `json:"dir"`
	Language string  `json:"language"`
	Speed    int     `json:"speed"`
	Volume   int     `json:"volume,omitempty"`
	Presses  int     `json:"presses,omitempty"`
	Examples [10]int `json:"examples"` // per digit
	Noise    string  `json:"noise,omitempty"`
}

// File is one file of a prompts folder.
type File struct {
	Name string // slash-separated path in the folder
	Data []byte
}

// Files returns p as the files of a prompts folder, which LoadPrompts
// reads back: ManifestName, and for each set a folder LANG-SPEED with
// D-N.wav, the Nth example of digit D, and noise.wav when the set has
// noise. It returns an error when p is not valid (see NewDecoder).
func (p *Prompts) Files() ([]File, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	m := manifest{Format: manifestFormat, SampleRate: p.SampleRate, Reader: p.Reader}
	var files []File
	wav := func(name string, s []int16) error {
		b, err := EncodeWAV(&device.Audio{SampleRate: p.SampleRate, PCM: PCM(s)})
		if err != nil {
			return fmt.Errorf("voice: %s: %w", name, err)
		}
		files = append(files, File{Name: name, Data: b})
		return nil
	}
	for _, s := range p.Sets {
		e := manifestEntry{Dir: s.name(), Language: s.Language, Speed: s.Speed, Volume: s.Volume, Presses: s.Presses}
		for d, ex := range s.Digits {
			e.Examples[d] = len(ex)
			for i, x := range ex {
				if err := wav(fmt.Sprintf("%s/%d-%d.wav", e.Dir, d, i+1), x); err != nil {
					return nil, err
				}
			}
		}
		if len(s.Noise) > 0 {
			e.Noise = "noise.wav"
			if err := wav(e.Dir+"/noise.wav", s.Noise); err != nil {
				return nil, err
			}
		}
		m.Sets = append(m.Sets, e)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("voice: manifest: %w", err)
	}
	return append([]File{{Name: ManifestName, Data: append(b, '\n')}}, files...), nil
}

// LoadPrompts reads prompts from a folder fsys. With a ManifestName (as
// Files writes it) the sets are those it lists, each a folder of D-N.wav
// files, N from 1 to the number of examples the manifest gives for digit
// D, and a noise file when it names one. Without a manifest every
// top-level folder that holds 0.wav or 0-1.wav is a set, named LANG or
// LANG-SPEED (speed 100 when not given), with D.wav or D-1.wav, D-2.wav,
// ... for each digit D: the layout of the package's own prompts
// (DefaultPrompts) and of recordings cut by hand. With langs, only the
// sets of those languages are loaded, and each must have one.
//
// Every file must be a WAV file ParseWAV accepts, all at one sample rate.
// It returns an error wrapping fs.ErrNotExist when a named language, a
// digit or a file the manifest names is missing, or no set is found; a
// *FormatError (unwrapping to ErrFormat) for a bad file or manifest; and
// fsys's other errors.
func LoadPrompts(fsys fs.FS, langs ...string) (*Prompts, error) {
	p := &Prompts{}
	var entries []manifestEntry
	b, err := fs.ReadFile(fsys, ManifestName)
	switch {
	case err == nil:
		var m manifest
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("voice: %s: %w", ManifestName, formatErr(0, "%v", err))
		}
		if m.Format != manifestFormat {
			return nil, fmt.Errorf("voice: %s: %w", ManifestName, formatErr(0, "format %d, this version reads %d", m.Format, manifestFormat))
		}
		p.Reader, entries = m.Reader, m.Sets
		for _, e := range entries {
			if !fs.ValidPath(e.Dir) || e.Dir == "." || strings.Contains(e.Dir, "/") || e.Noise != "" && (!fs.ValidPath(e.Noise) || strings.Contains(e.Noise, "/")) {
				return nil, fmt.Errorf("voice: %s: %w", ManifestName, formatErr(0, "set folder %q or noise %q is not a plain name", e.Dir, e.Noise))
			}
			for d, n := range e.Examples {
				if n < 1 || n > maxExamples {
					return nil, fmt.Errorf("voice: %s: %w", ManifestName, formatErr(0, "set %s: %d examples of %d, want 1 to %d", e.Dir, n, d, maxExamples))
				}
			}
		}
	case errors.Is(err, fs.ErrNotExist):
		if entries, err = scanPrompts(fsys); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("voice: prompts: %w", err)
	}

	for _, e := range entries {
		if len(langs) > 0 && !slices.Contains(langs, e.Language) {
			continue
		}
		s := PromptSet{Language: e.Language, Speed: e.Speed, Volume: e.Volume, Presses: e.Presses}
		for d := range s.Digits {
			// D.wav, or D-1.wav to D-N.wav.
			names := []string{fmt.Sprintf("%s/%d.wav", e.Dir, d)}
			if n := e.Examples[d]; n > 1 || n == 1 && !fileExists(fsys, names[0]) {
				names = names[:0]
				for i := range n {
					names = append(names, fmt.Sprintf("%s/%d-%d.wav", e.Dir, d, i+1))
				}
			}
			for _, name := range names {
				x, err := readPrompt(fsys, name, p)
				if err != nil {
					return nil, err
				}
				s.Digits[d] = append(s.Digits[d], x)
			}
		}
		if e.Noise != "" {
			x, err := readPrompt(fsys, e.Dir+"/"+e.Noise, p)
			if err != nil {
				return nil, err
			}
			s.Noise = x
		}
		p.Sets = append(p.Sets, s)
	}
	for _, l := range langs {
		if !slices.Contains(p.Languages(), l) {
			return nil, fmt.Errorf("voice: prompts: no set of language %q: %w", l, fs.ErrNotExist)
		}
	}
	if len(p.Sets) == 0 {
		return nil, fmt.Errorf("voice: prompts: no set (LANG/0.wav, LANG-SPEED/0-1.wav or %s) found: %w", ManifestName, fs.ErrNotExist)
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("%w", formatErr(0, "%v", strings.TrimPrefix(err.Error(), "voice: ")))
	}
	return p, nil
}

// maxExamples bounds the examples of one digit in a set (a bound on the
// decoder's work).
const maxExamples = 32

func fileExists(fsys fs.FS, name string) bool {
	_, err := fs.Stat(fsys, name)
	return err == nil
}

// scanPrompts finds the sets of a folder without a manifest.
func scanPrompts(fsys fs.FS) ([]manifestEntry, error) {
	dirs, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("voice: prompts: %w", err)
	}
	var out []manifestEntry
	for _, dir := range dirs {
		if !dir.IsDir() {
			continue
		}
		name := dir.Name()
		e := manifestEntry{Dir: name, Language: name, Speed: 100}
		if l, sp, ok := strings.Cut(name, "-"); ok {
			n, err := strconv.Atoi(sp)
			if err != nil {
				continue
			}
			e.Language, e.Speed = l, n
		}
		files, err := fs.ReadDir(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("voice: prompts: %w", err)
		}
		found := false
		for _, f := range files {
			base, ok := strings.CutSuffix(f.Name(), ".wav")
			if !ok || f.IsDir() {
				continue
			}
			if base == "noise" {
				e.Noise = f.Name()
				continue
			}
			ds, ns, multi := strings.Cut(base, "-")
			d, err := strconv.Atoi(ds)
			if err != nil || len(ds) != 1 {
				continue
			}
			n := 1
			if multi {
				if n, err = strconv.Atoi(ns); err != nil || n < 1 {
					continue
				}
			}
			found = true
			e.Examples[d] = max(e.Examples[d], min(n, maxExamples))
		}
		if found && e.Examples[0] > 0 {
			out = append(out, e)
		}
	}
	return out, nil
}

// readPrompt reads one WAV file of a prompts folder, setting p's sample
// rate from the first.
func readPrompt(fsys fs.FS, name string, p *Prompts) ([]int16, error) {
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
	return s, nil
}

package voice

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
)

// Sentinel errors of Decode, wrapped by *DecodeError.
var (
	// ErrNoSpeech: the recording is silent (a reader at volume 0, say).
	ErrNoSpeech = errors.New("voice: no speech in the recording")
	// ErrUnrecognised: there is sound, but not digits this decoder knows:
	// noise, another voice, a damaged recording.
	ErrUnrecognised = errors.New("voice: speech not recognised as digits")
)

// DecodeError says where a recording could not be decoded. It unwraps to
// ErrNoSpeech or ErrUnrecognised.
type DecodeError struct {
	Start, End int    // the sample range concerned, in the recording's samples
	Partial    string // what was heard, '?' for each word not recognised; "" if nothing
	Reason     string // what went wrong, in a few words
	Err        error  // ErrNoSpeech or ErrUnrecognised
}

func (e *DecodeError) Error() string {
	s := fmt.Sprintf("voice: samples %d to %d: %s", e.Start, e.End, e.Reason)
	if e.Partial != "" {
		s += fmt.Sprintf(" (heard %q)", e.Partial)
	}
	return s
}

// Unwrap returns ErrNoSpeech or ErrUnrecognised.
func (e *DecodeError) Unwrap() error { return e.Err }

// Speed limits: the decoder looks for speech played at 50 % to 200 % of the
// prompts' speed, the range CDP/1 SETTINGS allows (CDP/1 §4).
const (
	MinSpeed = 50
	MaxSpeed = 200
)

// Defaults for zero Options fields.
const (
	DefaultMaxDuration = 60 * time.Second
	DefaultMaxDistance = 5.5
	DefaultMinRatio    = 1.5
)

// Options tune a Decoder. The zero value gives the defaults.
type Options struct {
	// Language restricts decoding to one language of the prompts; ""
	// tries each and keeps the one that matches best.
	Language string
	// MaxDuration is the longest recording Decode accepts, which bounds its
	// work; 0 means DefaultMaxDuration.
	MaxDuration time.Duration
	// MaxDistance is the largest distance (mean absolute difference of log
	// band energies, in dB) between a word and its best prompt for the word
	// to count as that digit; 0 means DefaultMaxDistance.
	MaxDistance float64
	// MinRatio is how many times farther than the best prompt the second
	// best must be for the word to count; 0 means DefaultMinRatio.
	MinRatio float64
}

// Decoder recognises the digits an audio code reader speaks by comparing
// each spoken word with reference prompts (see Prompts). It is safe for
// concurrent use.
type Decoder struct {
	langs   []string
	prompts map[string][10][]float64 // at analysisRate
	opts    Options
	fb      *filterBank
	longest int // samples in the longest prompt

	mu    sync.Mutex
	cache map[templateKey]*[10]*template
}

// NewDecoder returns a decoder for speech in the languages of p. It copies
// p. It returns an error when p has no language, its sample rate is outside
// 1000 to MaxSampleRate, or a prompt is empty; and an error wrapping
// device.ErrNotSupported when opts.Language is not one of p's languages.
// opts may be nil.
func NewDecoder(p *Prompts, opts *Options) (*Decoder, error) {
	if p == nil || len(p.Languages) == 0 {
		return nil, errors.New("voice: no prompts")
	}
	if p.SampleRate < 1000 || p.SampleRate > MaxSampleRate {
		return nil, fmt.Errorf("voice: prompts at %d Hz, want 1000 to %d", p.SampleRate, MaxSampleRate)
	}
	d := &Decoder{
		prompts: make(map[string][10][]float64, len(p.Languages)),
		fb:      newFilterBank(analysisRate),
		cache:   make(map[templateKey]*[10]*template),
	}
	if opts != nil {
		d.opts = *opts
	}
	if d.opts.MaxDuration <= 0 {
		d.opts.MaxDuration = DefaultMaxDuration
	}
	if d.opts.MaxDistance <= 0 {
		d.opts.MaxDistance = DefaultMaxDistance
	}
	if d.opts.MinRatio <= 0 {
		d.opts.MinRatio = DefaultMinRatio
	}
	for lang, digits := range p.Languages {
		var fd [10][]float64
		for i, s := range digits {
			if len(s) == 0 {
				return nil, fmt.Errorf("voice: prompt %s/%d is empty", lang, i)
			}
			fd[i] = toRate(s, p.SampleRate)
			d.longest = max(d.longest, len(fd[i]))
		}
		d.prompts[lang] = fd
		d.langs = append(d.langs, lang)
	}
	sort.Strings(d.langs)
	if l := d.opts.Language; l != "" {
		if _, ok := d.prompts[l]; !ok {
			return nil, fmt.Errorf("voice: no prompts for language %q: %w", l, device.ErrNotSupported)
		}
		d.langs = []string{l}
	}
	return d, nil
}

// Languages returns the languages the decoder tries, sorted.
func (d *Decoder) Languages() []string { return slices.Clone(d.langs) }

// Result is what Decode heard.
type Result struct {
	Digits     string    // every digit heard, in order
	Utterances []string  // the digits split at long pauses: one entry per repetition of the code
	Language   string    // the language of the prompts that matched
	Speed      int       // the speed of the speech, percent of the prompts' speed, as estimated
	Segments   []Segment // one per digit
}

// Segment is one spoken digit.
type Segment struct {
	Digit          byte    // '0' to '9'
	Start, End     int     // where it was heard, as a sample range of the recording
	Distance       float64 // distance to the digit's prompt (see Options.MaxDistance)
	Runner         byte    // the next nearest digit
	RunnerDistance float64 // its distance
}

// DecodeAudio decodes a's s16le PCM with Decode. It also returns a
// *FormatError for PCM of odd length, and a *DecodeError unwrapping to
// ErrNoSpeech when a is nil.
func (d *Decoder) DecodeAudio(ctx context.Context, a *device.Audio) (*Result, error) {
	if a == nil {
		return nil, &DecodeError{Reason: "no audio", Err: ErrNoSpeech}
	}
	s, err := Samples(a.PCM)
	if err != nil {
		return nil, err
	}
	return d.Decode(ctx, s, a.SampleRate)
}

// Decode recognises the digits spoken in pcm, mono samples at sampleRate,
// as an audio code reader says them: one digit after the other with short
// pauses between them, the whole code maybe repeated after a longer pause,
// at any volume, at a speed of MinSpeed to MaxSpeed percent with the pitch
// moving with the speed (as when a recording is played faster), with some
// background noise.
//
// How: words are runs of sound between pauses, found by their energy
// above the background (runs a short pause apart may form one word; the
// grouping that fits the prompts best is taken). The speed and the
// language are those at which the prompts fit the first words best, found
// by a coarse then a finer search.
// Each word is then compared with each prompt played at that speed, as log
// energies in mel-spaced bands: the prompt is slid over the word, brought
// to its level, and given the recording's background noise, and the
// mean difference at the best place is the distance. A word is the digit
// of the nearest prompt, provided that distance is at most
// Options.MaxDistance and the second nearest is Options.MinRatio times
// farther. Otherwise the whole decode fails: Decode does not guess.
//
// Errors: a *DecodeError unwrapping to ErrNoSpeech (silence) or to
// ErrUnrecognised (no pauses, a word that matches no prompt or two); an
// error wrapping device.ErrMessageTooLarge when the recording is longer
// than Options.MaxDuration or has more than 256 words; an error wrapping
// device.ErrNotSupported for a sample rate outside 1000 to MaxSampleRate;
// ctx.Err(), wrapped, when ctx ends first.
func (d *Decoder) Decode(ctx context.Context, pcm []int16, sampleRate int) (*Result, error) {
	if sampleRate < 1000 || sampleRate > MaxSampleRate {
		return nil, fmt.Errorf("voice: sample rate %d, want 1000 to %d: %w", sampleRate, MaxSampleRate, device.ErrNotSupported)
	}
	if dur := time.Duration(len(pcm)) * time.Second / time.Duration(sampleRate); dur > d.opts.MaxDuration {
		return nil, fmt.Errorf("voice: recording of %v, at most %v decoded: %w", dur.Round(time.Millisecond), d.opts.MaxDuration, device.ErrMessageTooLarge)
	}
	scale := float64(sampleRate) / analysisRate // recording samples per analysed sample
	back := func(i int) int { return max(0, min(int(math.Round(float64(i)*scale)), len(pcm))) }

	a, err := d.analyse(toRate(pcm, sampleRate))
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			de.End = len(pcm)
		}
		return nil, err
	}
	if len(a.runs) > maxWords {
		return nil, fmt.Errorf("voice: %d separate sounds, at most %d decoded: %w", len(a.runs), maxWords, device.ErrMessageTooLarge)
	}
	best, err := d.search(ctx, a)
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			de.End = len(pcm)
		}
		return nil, err
	}
	// The search looked at the first words; classify them all now, more
	// finely.
	final, err := d.evaluate(ctx, a, best.lang, best.speed, 0, phases, 1)
	if err != nil {
		return nil, err
	}
	res := &Result{Language: final.lang, Speed: final.speed}
	var heard strings.Builder
	var bad *DecodeError
	utt := -1
	for _, w := range final.words {
		if w.utterance != utt {
			res.Utterances = append(res.Utterances, "")
			utt = w.utterance
		}
		seg := Segment{
			Digit: byte('0' + w.digit), Start: back(w.start), End: back(w.end),
			Distance: w.dist, Runner: byte('0' + w.runner), RunnerDistance: w.runnerDist,
		}
		res.Segments = append(res.Segments, seg)
		ok := w.dist <= d.opts.MaxDistance && w.runnerDist >= d.opts.MinRatio*w.dist
		c := seg.Digit
		if !ok {
			c = '?'
			if bad == nil {
				reason := fmt.Sprintf("a word matches no digit (nearest %c at %.1f dB, limit %.1f)", seg.Digit, w.dist, d.opts.MaxDistance)
				if w.dist <= d.opts.MaxDistance {
					reason = fmt.Sprintf("a word is ambiguous (%c at %.1f dB, %c at %.1f dB)", seg.Digit, w.dist, seg.Runner, w.runnerDist)
				}
				bad = &DecodeError{Start: seg.Start, End: seg.End, Reason: reason, Err: ErrUnrecognised}
			}
		}
		heard.WriteByte(c)
		res.Utterances[len(res.Utterances)-1] += string(c)
	}
	if bad != nil {
		bad.Partial = heard.String()
		return nil, bad
	}
	res.Digits = heard.String()
	return res, nil
}

package voice

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
)

// Sentinel errors of Decode, wrapped by *DecodeError.
var (
	// ErrNoSpeech: the recording is silent (a reader at volume 0, say).
	ErrNoSpeech = errors.New("voice: no speech in the recording")
	// ErrUnrecognised: there is sound, but not digits this decoder knows
	// for sure: noise, another voice, a damaged recording, a word too
	// close to two digits.
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

// Speed limits: the decoder looks for speech at 50 % to 200 % of the
// normal speed, the range CDP/1 SETTINGS allows (CDP/1 §4).
const (
	MinSpeed = 50
	MaxSpeed = 200
)

// Defaults for zero Options fields.
const (
	DefaultMaxDuration = 60 * time.Second
	DefaultMaxDistance = 4.0
	DefaultMinMargin   = 0.3
	DefaultMinRatio    = 1.2
)

// Options tune a Decoder. The zero value gives the defaults.
type Options struct {
	// Language restricts decoding to the sets of one language of the
	// prompts; "" tries each and keeps the one that matches best.
	Language string
	// Digits, when positive, is how many digits the reader says in each
	// repetition of a code (IDENTIFY's digits): the words are grouped in
	// repetitions of that many, and a recording of another number of
	// words is refused. Otherwise a long pause separates repetitions.
	Digits int
	// MaxDuration is the longest recording Decode accepts, which bounds its
	// work; 0 means DefaultMaxDuration.
	MaxDuration time.Duration
	// MaxDistance is the largest distance (mean absolute difference of log
	// band energies per frame, in dB) between a word and its best example
	// for the word to count as that digit; 0 means DefaultMaxDistance.
	MaxDistance float64
	// MinMargin (dB per frame) and MinRatio say how much farther than the
	// best digit the second best, or no word at all, must be for the word
	// to count: by MinMargin, and MinRatio times; 0 means DefaultMinMargin
	// and DefaultMinRatio.
	MinMargin float64
	MinRatio  float64
}

// Decoder recognises the digits an audio code reader speaks by comparing
// the recording with examples of each digit as the reader says them
// (Prompts). It is safe for concurrent use.
type Decoder struct {
	sets  []*promptSet
	langs []string
	opts  Options
	fb    *filterBank

	mu    sync.Mutex
	cache map[bankKey]*bank
}

type bankKey struct {
	set    *promptSet
	mode   speedMode
	factor float64
	all    bool // every example, not only those of the search
}

// maxBanks bounds the decoder's cache of prepared banks.
const maxBanks = 256

// NewDecoder returns a decoder for speech like that of p, which it
// copies. It returns an error when p has no set, its sample rate is
// outside 1000 to MaxSampleRate, a set's speed is outside MinSpeed to
// MaxSpeed, two sets have one language and speed, or a digit has no
// example or an empty one; and an error wrapping device.ErrNotSupported
// when opts.Language is not one of p's languages. opts may be nil.
func NewDecoder(p *Prompts, opts *Options) (*Decoder, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	d := &Decoder{fb: newFilterBank(analysisRate), cache: make(map[bankKey]*bank)}
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
	if d.opts.MinMargin <= 0 {
		d.opts.MinMargin = DefaultMinMargin
	}
	if l := d.opts.Language; l != "" && !slices.Contains(p.Languages(), l) {
		return nil, fmt.Errorf("voice: no prompts for language %q: %w", l, device.ErrNotSupported)
	}
	for _, s := range p.Sets {
		if d.opts.Language != "" && s.Language != d.opts.Language {
			continue
		}
		ps := &promptSet{lang: s.Language, speed: s.Speed}
		for dg, ex := range s.Digits {
			for _, x := range ex {
				y := toRate(x, p.SampleRate)
				ps.examples[dg] = append(ps.examples[dg], y)
				ps.pow[dg] = append(ps.pow[dg], d.fb.features(y))
			}
		}
		if len(s.Noise) > 0 {
			f := d.fb.features(toRate(s.Noise, p.SampleRate))
			for _, fr := range f {
				for k := range numBands {
					ps.noise[k] += fr[k] / float64(len(f))
				}
			}
		}
		d.sets = append(d.sets, ps)
		if !slices.Contains(d.langs, s.Language) {
			d.langs = append(d.langs, s.Language)
		}
	}
	slices.Sort(d.langs)
	return d, nil
}

// Languages returns the languages the decoder tries, sorted.
func (d *Decoder) Languages() []string { return slices.Clone(d.langs) }

// bank returns set's examples at factor times its speed in mode: all of
// them, or only those the search compares.
func (d *Decoder) bank(set *promptSet, mode speedMode, factor float64, all bool) *bank {
	if factor == 1 {
		mode = resampled // the same either way
	}
	key := bankKey{set, mode, math.Round(factor*1e4) / 1e4, all}
	d.mu.Lock()
	b, ok := d.cache[key]
	d.mu.Unlock()
	if ok {
		return b
	}
	b = d.newBank(set, mode, key.factor, all)
	d.mu.Lock()
	if len(d.cache) >= maxBanks {
		clear(d.cache)
	}
	d.cache[key] = b
	d.mu.Unlock()
	return b
}

// Result is what Decode heard.
type Result struct {
	Digits     string    // every digit heard, in order
	Utterances []string  // the digits split at long pauses: one entry per repetition of the code
	Language   string    // the language of the prompts that matched
	Speed      int       // the speed of the speech, percent of normal, as estimated
	PitchKept  bool      // the speed differs from the prompts' by time-stretching, not resampling
	Segments   []Segment // one per digit
}

// Segment is one spoken digit.
type Segment struct {
	Digit          byte    // '0' to '9'
	Start, End     int     // where it was heard, as a sample range of the recording
	Distance       float64 // mean distance to the digit's example, dB per frame (see Options.MaxDistance)
	Runner         byte    // the next nearest digit; ' ' when that is no word at all, '+' two words
	RunnerDistance float64 // its distance, as if it had been heard instead
	Tempo          float64 // its length relative to the digit's examples (the median, at the speed found)
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

// Timing of the speech at 100 % speed.
const (
	repeatMS = 340 // a pause at least this long separates two repetitions
	marginMS = 300 // decoding starts and ends this far outside the sound
	probeMS  = 2500
	maxWords = 256 // bounds Decode's work
)

// Decode recognises the digits spoken in pcm, mono samples at sampleRate,
// as an audio code reader says them: one digit after the other, with or
// without pauses between them, the whole code maybe repeated after a
// longer pause, at any volume, with background noise, at a speed of
// MinSpeed to MaxSpeed percent whether the reader resamples (the pitch
// moves with the speed) or time-stretches (the pitch stays).
//
// How: the recording and the examples are compared as band energies
// (18 mel-spaced bands every 10 ms), each floored 3 dB above the louder
// of the recording's background and the examples' (what is below it
// cannot be told from noise), the examples brought to the recording's
// level. Connected-word dynamic time warping then finds the sequence of
// examples and pauses that fits the whole recording best, each word
// matched at half to twice its example's speed, so words need no pause
// between them. Which prompt set (language and speed) fits, and how much
// faster or slower than its examples the reader speaks, resampled or
// stretched, is found first on the first seconds, by a coarse then a finer
// search. Each word is then checked: its best digit must be near it
// (Options.MaxDistance) and every other digit, and no word at all, must
// fit the same stretch of recording Options.MinRatio times worse. A word
// that fails is a '?', and the whole decode fails: Decode does not guess.
//
// Errors: a *DecodeError unwrapping to ErrNoSpeech (silence) or to
// ErrUnrecognised (no sound above the background, a word that matches no
// digit or two, a repetition of other than Options.Digits words); an
// error wrapping device.ErrMessageTooLarge when the recording is longer
// than Options.MaxDuration or has more than 256 words; an error wrapping
// device.ErrNotSupported for a sample rate outside 1000 to MaxSampleRate;
// ctx.Err(), wrapped, when ctx ends first.
func (d *Decoder) Decode(ctx context.Context, pcm []int16, sampleRate int) (*Result, error) {
	return d.decode(ctx, pcm, sampleRate, d.opts.Digits)
}

// ErrMismatch is wrapped by *MismatchError.
var ErrMismatch = errors.New("voice: spoken digits differ from the code")

// MismatchError reports speech that was decoded and says other digits
// than the code. It unwraps to ErrMismatch.
type MismatchError struct {
	Code  string   // the code the speech should say
	Heard []string // what each repetition said
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("voice: the code is %s but the reader said %s", e.Code, strings.Join(e.Heard, " "))
}

// Unwrap returns ErrMismatch.
func (e *MismatchError) Unwrap() error { return ErrMismatch }

// Check reports whether a says code, once or more: the one test of
// spoken digits that driver/serial's Press, the conformance suite
// (device/devicetest) and `authbench check` share. It decodes a as
// DecodeAudio does, a repetition of other than len(code) words being
// refused, and returns the result with nil when every repetition is code;
// the result with a *MismatchError (ErrMismatch) when a repetition says
// other digits; nil and DecodeAudio's error when the speech cannot be
// decoded for sure. It returns an error when code is not 1 to 16 ASCII
// digits.
func (d *Decoder) Check(ctx context.Context, a *device.Audio, code string) (*Result, error) {
	if code == "" || len(code) > maxCodeDigits || strings.Trim(code, "0123456789") != "" {
		return nil, fmt.Errorf("voice: check: code %q is not 1 to %d digits", code, maxCodeDigits)
	}
	if a == nil {
		return nil, &DecodeError{Reason: "no audio", Err: ErrNoSpeech}
	}
	s, err := Samples(a.PCM)
	if err != nil {
		return nil, err
	}
	res, err := d.decode(ctx, s, a.SampleRate, len(code))
	if err != nil {
		return nil, err
	}
	for _, u := range res.Utterances {
		if u != code {
			return res, &MismatchError{Code: code, Heard: res.Utterances}
		}
	}
	return res, nil
}

// decode is Decode with digits for Options.Digits.
func (d *Decoder) decode(ctx context.Context, pcm []int16, sampleRate, digits int) (*Result, error) {
	if sampleRate < 1000 || sampleRate > MaxSampleRate {
		return nil, fmt.Errorf("voice: sample rate %d, want 1000 to %d: %w", sampleRate, MaxSampleRate, device.ErrNotSupported)
	}
	if dur := time.Duration(len(pcm)) * time.Second / time.Duration(sampleRate); dur > d.opts.MaxDuration {
		return nil, fmt.Errorf("voice: recording of %v, at most %v decoded: %w", dur.Round(time.Millisecond), d.opts.MaxDuration, device.ErrMessageTooLarge)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("voice: decode: %w", err)
	}
	// back converts a frame boundary to a sample of the recording.
	back := func(f int) int {
		return max(0, min(int(math.Round(float64(f*hop)*float64(sampleRate)/analysisRate)), len(pcm)))
	}
	rec, err := analyse(d.fb, toRate(pcm, sampleRate))
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			de.End = len(pcm)
		}
		return nil, err
	}
	margin := marginMS / 10
	t0, t1 := max(0, rec.first-margin), min(len(rec.pow), rec.last+margin+1)
	sr := &searcher{d: d, ctx: ctx, rec: rec, t0: t0, t1: t1}
	h, err := sr.resampled()
	if err != nil {
		return nil, err
	}
	// Decode everything with every example.
	sc, p, err := sr.decode(h)
	if err != nil {
		return nil, err
	}
	// Words much longer or shorter than the examples: a reader that
	// stretches its speech to another speed than the set's. Try that.
	if tempo := p.tempo(sc.b); len(p.words) > 0 && (tempo < 1/stretchTempo || tempo > stretchTempo) {
		hs, err := sr.stretched(h, tempo)
		if err != nil {
			return nil, err
		}
		if hs != nil {
			if sc2, p2, err := sr.decode(hs); err != nil {
				return nil, err
			} else if p2.cost < p.cost {
				h, sc, p = hs, sc2, p2
			}
		}
	}
	if len(p.words) == 0 {
		return nil, &DecodeError{Start: back(t0), End: back(t1), Reason: "no words", Err: ErrUnrecognised}
	}
	if len(p.words) > maxWords {
		return nil, fmt.Errorf("voice: %d words, at most %d decoded: %w", len(p.words), maxWords, device.ErrMessageTooLarge)
	}
	// The path's cost of each frame.
	pc := slices.Clone(sc.gapD)
	inWord := make([]bool, len(pc))
	for _, w := range p.words {
		copy(pc[w.start:], sc.frameCosts(w))
		for t := w.start; t <= w.end; t++ {
			inWord[t] = true
		}
	}
	// Loud sound outside every word is something the prompts do not
	// know: a word lost in a burst of noise, a damaged word, a word cut
	// short. Decode refuses rather than skip it.
	if a, z, ok := rec.unexplained(inWord, t0, t1); ok {
		return nil, &DecodeError{Start: back(a), End: back(z), Reason: "a loud sound that is no digit", Err: ErrUnrecognised}
	}
	speed := float64(h.b.set.speed) * h.b.factor
	res := &Result{Language: h.b.set.lang, Speed: int(math.Round(speed)), PitchKept: h.b.mode == stretched && h.b.factor != 1}
	repeat := int(math.Round(repeatMS / 10 * 100 / speed))
	var heard, utt strings.Builder
	var bad *DecodeError
	for i, w := range p.words {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("voice: decode: %w", err)
		}
		// A new repetition: after digits words when the length of a code
		// is known, otherwise after a long pause.
		if digits > 0 && i > 0 && i%digits == 0 || digits <= 0 && i > 0 && w.start-p.words[i-1].end > repeat {
			res.Utterances = append(res.Utterances, utt.String())
			utt.Reset()
		}
		base, own, alt, none := sc.alternatives(w, pc, t0, t1)
		dg := sc.b.ex[w.ex].digit
		n := float64(w.end - w.start + 1)
		own = min(own, alt[dg])
		dist := (own - base) / n
		med, shortest, longest := sc.b.length(dg)
		seg := Segment{Digit: byte('0' + dg), Start: back(w.start), End: back(w.end + 1), Distance: dist,
			Runner: ' ', RunnerDistance: (none - base) / n, Tempo: n / med}
		for o, a := range alt {
			if o != dg && (a-base)/n < seg.RunnerDistance {
				seg.Runner, seg.RunnerDistance = byte('0'+o), (a-base)/n
			}
		}
		if digits <= 0 && seg.Tempo > splitTempo {
			// Two words run together? (When the length of a code is known,
			// a word lost makes the count wrong, which is refused anyway.)
			if two := (sc.split(w, pc, t0, t1, own+farMargin*n) - base) / n; two < seg.RunnerDistance {
				seg.Runner, seg.RunnerDistance = '+', two
			}
		}
		res.Segments = append(res.Segments, seg)
		c := seg.Digit
		if n/shortest < minTempo || n/longest > maxTempo {
			c = '?'
			if bad == nil {
				bad = &DecodeError{Start: seg.Start, End: seg.End, Err: ErrUnrecognised,
					Reason: fmt.Sprintf("a word %.0f %% as long as the digit it sounds like (%c): cut short, or another word", 100*seg.Tempo, seg.Digit)}
			}
		} else if ok := dist <= d.opts.MaxDistance && seg.RunnerDistance >= max(d.opts.MinRatio*dist, dist+d.opts.MinMargin); !ok {
			c = '?'
			if bad == nil {
				reason := fmt.Sprintf("a word matches no digit (nearest %c at %.1f dB, limit %.1f)", seg.Digit, dist, d.opts.MaxDistance)
				if dist <= d.opts.MaxDistance {
					what := fmt.Sprintf("%c", seg.Runner)
					switch seg.Runner {
					case ' ':
						what = "no word"
					case '+':
						what = "two words"
					}
					reason = fmt.Sprintf("a word is ambiguous (%c at %.1f dB, %s at %.1f dB)", seg.Digit, dist, what, seg.RunnerDistance)
				}
				bad = &DecodeError{Start: seg.Start, End: seg.End, Reason: reason, Err: ErrUnrecognised}
			}
		}
		heard.WriteByte(c)
		utt.WriteByte(c)
	}
	res.Utterances = append(res.Utterances, utt.String())
	if bad != nil {
		bad.Partial = heard.String()
		return nil, bad
	}
	if n := digits; n > 0 && len(p.words)%n != 0 {
		return nil, &DecodeError{Start: back(t0), End: back(t1), Partial: heard.String(),
			Reason: fmt.Sprintf("%d words, not a whole number of %d-digit codes", len(p.words), n), Err: ErrUnrecognised}
	}
	res.Digits = heard.String()
	return res, nil
}

// A word may be said this much faster than the shortest example of its
// digit, or slower than the longest, at the speed found for the whole
// recording: a shorter word is a word cut short, a longer one may be two.
const (
	minTempo = 0.6
	maxTempo = 1.8
)

// hypothesis is a prompt set at one speed and gain, and how well it fits.
type hypothesis struct {
	b    *bank
	gain float64
	cost float64 // per frame of the probe
}

// resampledFactors are the speeds of the coarse search, relative to a
// set's: about 12 % apart, so that resampled speech is never more than
// 6 % off in pitch and formants from one of them.
var resampledFactors = []float64{0.5, 0.56, 0.63, 0.71, 0.79, 0.89, 1, 1.12, 1.26, 1.41, 1.59, 1.78, 2}

// stretchTempo: when the words are this much longer or shorter than the
// examples, time-stretched examples are tried too.
const stretchTempo = 1.12

// searcher finds the set, speed and mode that fit a recording.
type searcher struct {
	d      *Decoder
	ctx    context.Context
	rec    *recording
	half   *recording // at 20 ms frames, made when needed
	t0, t1 int        // the frames decoded
}

// probe returns the end of the frames the search compares: probeMS of
// sound from t0.
func (sr *searcher) probe() int { return min(sr.t1, sr.t0+probeMS/10) }

// eval measures how well b fits the probe: at 20 ms frames when coarse.
func (sr *searcher) eval(b *bank, coarse bool) (*hypothesis, error) {
	gain := loudness(sr.rec.total[sr.t0:sr.t1], sr.rec.tnoise) / b.loud
	p1 := sr.probe()
	r, a, z, eb := sr.rec, sr.t0, p1, b
	if coarse {
		if sr.half == nil {
			sr.half = sr.rec.halve()
		}
		r, a, z, eb = sr.half, sr.t0/2, (p1+1)/2, b.halved()
	}
	g := freeGrammar(eb.search)
	g.cut = p1 < sr.t1
	p, err := newScene(r, eb, gain).run(sr.ctx, g, a, z)
	if err != nil {
		return nil, err
	}
	return &hypothesis{b: b, gain: gain, cost: p.cost / float64(z-a)}, nil
}

func inRange(set *promptSet, f float64) bool {
	s := float64(set.speed) * f
	return s >= MinSpeed*0.97 && s <= MaxSpeed*1.03
}

// resampled searches every set on the resampledFactors grid at 20 ms
// frames, then steps of 6 % around the best, then of 3 % at 10 ms.
func (sr *searcher) resampled() (*hypothesis, error) {
	var best *hypothesis
	try := func(set *promptSet, f float64, coarse bool) error {
		if !inRange(set, f) {
			return nil
		}
		h, err := sr.eval(sr.d.bank(set, resampled, f, false), coarse)
		if err == nil && (best == nil || h.cost < best.cost) {
			best = h
		}
		return err
	}
	for _, set := range sr.d.sets {
		for _, f := range resampledFactors {
			if err := try(set, f, true); err != nil {
				return nil, err
			}
		}
	}
	c := best.b
	for _, f := range []float64{c.factor / 1.06, c.factor * 1.06} {
		if err := try(c.set, f, true); err != nil {
			return nil, err
		}
	}
	c, best = best.b, nil
	for _, f := range []float64{c.factor, c.factor / 1.03, c.factor * 1.03} {
		if err := try(c.set, f, false); err != nil {
			return nil, err
		}
	}
	return best, nil
}

// stretched searches around the speed at which h's set, stretched, says
// its words as long as the recording's (tempo times the examples' at h),
// in steps of 6 % then 3 %. It returns nil when that speed is out of
// range.
func (sr *searcher) stretched(h *hypothesis, tempo float64) (*hypothesis, error) {
	var best *hypothesis
	try := func(f float64) error {
		if !inRange(h.b.set, f) || f == 1 {
			return nil
		}
		hs, err := sr.eval(sr.d.bank(h.b.set, stretched, f, false), false)
		if err == nil && (best == nil || hs.cost < best.cost) {
			best = hs
		}
		return err
	}
	c := h.b.factor / tempo
	for _, f := range []float64{c, c / 1.06, c * 1.06} {
		if err := try(f); err != nil {
			return nil, err
		}
	}
	if best != nil {
		c = best.b.factor
		for _, f := range []float64{c / 1.03, c * 1.03} {
			if err := try(f); err != nil {
				return nil, err
			}
		}
	}
	return best, nil
}

// decode finds the best path through the recording with every example of
// h's bank.
func (sr *searcher) decode(h *hypothesis) (*scene, *path, error) {
	b := sr.d.bank(h.b.set, h.b.mode, h.b.factor, true)
	all := make([]int, len(b.ex))
	for i := range all {
		all[i] = i
	}
	sc := newScene(sr.rec, b, h.gain)
	p, err := sc.run(sr.ctx, freeGrammar(all), sr.t0, sr.t1)
	return sc, p, err
}

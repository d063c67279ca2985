package voice

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/authbench/authbench/device"
)

// ErrTooFewExamples is wrapped by Calibrator.Prompts when a digit has not
// been heard often enough in recordings that could be used.
var ErrTooFewExamples = errors.New("voice: too few examples of a digit")

// Defaults for zero CalibrateOptions fields.
const (
	DefaultExamples    = 4
	DefaultMaxExamples = 8
)

// CalibrateOptions tune a Calibrator. The zero value gives the defaults.
type CalibrateOptions struct {
	// Examples is how many times each digit must have been heard in
	// usable recordings (DefaultExamples when 0).
	Examples int
	// MaxExamples is how many examples of each digit the prompts keep at
	// most, chosen to cover the ways the reader says it (DefaultMaxExamples
	// when 0).
	MaxExamples int
}

// Calibrator learns a reader's prompts from codes it said: each recording
// comes with the code the reader reported for it (CDP/1 PRESS, then
// AUDIO), so the words in it are known, and only where each word begins
// and ends must be found. Prompts finds them by forced alignment: the
// recording is matched, with the DP the decoder uses, against the code's
// digits in order (the code may be said several times, with or without
// pauses between words), first with the embedded prompts, which speak
// another voice but are near enough to place the words roughly, then
// several times over with the words found in the reader's other
// recordings. Recordings that fit the others poorly (a reader that said
// something else, a burst of noise) are set aside. Each digit keeps the
// examples that best cover how the reader says it, cut from the
// recordings at their own sample rate, and the background of the
// recordings is kept as the set's noise.
//
// A Calibrator is not safe for concurrent use.
type Calibrator struct {
	opts CalibrateOptions
	fb   *filterBank
	rate int // sample rate of the recordings: the first one's
	sets []*calSet
}

// calSet is what was heard at one language and speed.
type calSet struct {
	lang          string
	speed, volume int
	recs          []*calRec
}

// calRec is one recording of a code.
type calRec struct {
	code   string
	pcm    []int16 // at the calibrator's rate
	rec    *recording
	t0, t1 int     // the frames aligned
	segs   []seg   // its words, as last aligned
	cost   float64 // the alignment's cost per frame
	aside  string  // why it was set aside, or ""
}

// seg is one word of a recording: a digit and its frames.
type seg struct {
	digit      int
	start, end int // end inclusive
}

// NewCalibrator returns an empty calibrator. opts may be nil.
func NewCalibrator(opts *CalibrateOptions) *Calibrator {
	c := &Calibrator{fb: newFilterBank(analysisRate)}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.Examples <= 0 {
		c.opts.Examples = DefaultExamples
	}
	if c.opts.MaxExamples <= 0 {
		c.opts.MaxExamples = DefaultMaxExamples
	}
	c.opts.MaxExamples = min(max(c.opts.MaxExamples, c.opts.Examples), maxExamples)
	return c
}

// maxCodeDigits is the longest code Add accepts.
const maxCodeDigits = 16

// Add records that the reader, set to language lang at speed and volume
// percent, said a when it reported code.
//
// It returns an error, and keeps nothing, for a language that is not 2 to
// 8 lowercase letters, a speed outside MinSpeed to MaxSpeed, a code that
// is not 1 to 16 digits, audio at a sample rate outside 1000 to
// MaxSampleRate or longer than DefaultMaxDuration (wrapping
// device.ErrNotSupported or device.ErrMessageTooLarge), PCM of odd length
// (a *FormatError), and a *DecodeError for a recording that is silent or
// has no sound above its background.
func (c *Calibrator) Add(lang string, speed, volume int, code string, a *device.Audio) error {
	switch {
	case !validLanguage(lang):
		return fmt.Errorf("voice: calibrate: language %q is not a lowercase language code", lang)
	case speed < MinSpeed || speed > MaxSpeed:
		return fmt.Errorf("voice: calibrate: speed %d%%, want %d to %d", speed, MinSpeed, MaxSpeed)
	case len(code) == 0 || len(code) > maxCodeDigits || strings.Trim(code, "0123456789") != "":
		return fmt.Errorf("voice: calibrate: code %q is not 1 to %d digits", code, maxCodeDigits)
	case a == nil:
		return &DecodeError{Reason: "no audio", Err: ErrNoSpeech}
	case a.SampleRate < 1000 || a.SampleRate > MaxSampleRate:
		return fmt.Errorf("voice: calibrate: sample rate %d, want 1000 to %d: %w", a.SampleRate, MaxSampleRate, device.ErrNotSupported)
	}
	if d := a.Duration(); d > DefaultMaxDuration {
		return fmt.Errorf("voice: calibrate: recording of %v, at most %v: %w", d.Round(time.Millisecond), DefaultMaxDuration, device.ErrMessageTooLarge)
	}
	pcm, err := Samples(a.PCM)
	if err != nil {
		return err
	}
	if c.rate == 0 {
		c.rate = a.SampleRate
	} else if a.SampleRate != c.rate {
		pcm = Resample(pcm, a.SampleRate, c.rate)
	}
	rec, err := analyse(c.fb, toRate(pcm, c.rate))
	if err != nil {
		return err
	}
	r := &calRec{code: code, pcm: pcm, rec: rec}
	margin := marginMS / 10
	r.t0, r.t1 = max(0, rec.first-margin), min(len(rec.pow), rec.last+margin+1)
	s := c.set(lang, speed)
	if s == nil {
		s = &calSet{lang: lang, speed: speed}
		c.sets = append(c.sets, s)
	}
	s.volume = volume
	s.recs = append(s.recs, r)
	return nil
}

func (c *Calibrator) set(lang string, speed int) *calSet {
	for _, s := range c.sets {
		if s.lang == lang && s.speed == speed {
			return s
		}
	}
	return nil
}

// Heard returns how many times each digit was said in the codes added
// for lang at speed (a code said twice counts once).
func (c *Calibrator) Heard(lang string, speed int) [10]int {
	var n [10]int
	if s := c.set(lang, speed); s != nil {
		for _, r := range s.recs {
			for i := 0; i < len(r.code); i++ {
				n[r.code[i]-'0']++
			}
		}
	}
	return n
}

// Missing returns how many more times each digit must be heard at lang
// and speed before Prompts can keep opts.Examples of it.
func (c *Calibrator) Missing(lang string, speed int) [10]int {
	h := c.Heard(lang, speed)
	var m [10]int
	for d := range m {
		m[d] = max(0, c.opts.Examples-h[d])
	}
	return m
}

// CalibrationReport says how the prompts were learnt.
type CalibrationReport struct {
	Sets []SetReport
}

// SetReport is the report of one language and speed.
type SetReport struct {
	Language   string
	Speed      int
	Recordings int      // recordings added
	Used       int      // recordings whose words were used
	SetAside   []string // "CODE: why" for each recording not used
	Examples   [10]int  // examples kept of each digit
	// The recordings used, decoded with the new prompts: a check that they
	// tell the reader's digits apart (they hold the examples, so this is
	// not a measure of accuracy on new codes).
	Right, Refused, Wrong int
}

// alignRounds is how many times the words are aligned again with the
// reader's own examples.
const alignRounds = 4

// alignExamples is how many examples of each digit an alignment compares.
const alignExamples = 6

// Prompts aligns every recording added, keeps the examples of each digit
// and returns them as prompts with one set per language and speed, with
// the reader info given (Learnt defaults to now), and a report.
//
// It returns an error wrapping ErrTooFewExamples when a digit was heard
// fewer than opts.Examples times in usable recordings of a set (the
// report then says why recordings were set aside); an error when nothing
// was added; ctx.Err(), wrapped, when ctx ends first.
func (c *Calibrator) Prompts(ctx context.Context, reader ReaderInfo) (*Prompts, *CalibrationReport, error) {
	if len(c.sets) == 0 {
		return nil, nil, errors.New("voice: calibrate: no recordings")
	}
	boot, err := DefaultDecoder()
	if err != nil {
		return nil, nil, err
	}
	if reader.Learnt.IsZero() {
		reader.Learnt = time.Now().UTC().Truncate(time.Second)
	}
	p := &Prompts{SampleRate: c.rate, Reader: reader}
	report := &CalibrationReport{}
	var short []string
	for _, s := range c.sets {
		ps, sr, err := c.learnSet(ctx, boot, s)
		if err != nil {
			return nil, nil, err
		}
		report.Sets = append(report.Sets, *sr)
		if ps == nil {
			var missing []string
			for d, n := range sr.Examples {
				if n < c.opts.Examples {
					missing = append(missing, fmt.Sprintf("%d (%d of %d)", d, n, c.opts.Examples))
				}
			}
			short = append(short, fmt.Sprintf("%s at %d%%: %s", s.lang, s.speed, strings.Join(missing, ", ")))
			continue
		}
		p.Sets = append(p.Sets, *ps)
	}
	if len(short) > 0 {
		return nil, report, fmt.Errorf("%w: %s", ErrTooFewExamples, strings.Join(short, "; "))
	}
	for i := range report.Sets {
		c.check(ctx, p, &p.Sets[i], &report.Sets[i])
	}
	return p, report, nil
}

// learnSet aligns the recordings of s and picks its examples. It returns
// a nil set when a digit has too few examples.
func (c *Calibrator) learnSet(ctx context.Context, boot *Decoder, s *calSet) (*PromptSet, *SetReport, error) {
	sr := &SetReport{Language: s.lang, Speed: s.speed, Recordings: len(s.recs)}
	// First placing: the embedded prompts of the language (or any),
	// stretched to the reader's speed.
	var bset *promptSet
	for _, b := range boot.sets {
		if bset == nil || b.lang == s.lang {
			bset = b
		}
	}
	bb := boot.bank(bset, stretched, float64(s.speed)/float64(bset.speed), true)
	for _, r := range s.recs {
		r.aside = ""
		gain := loudness(r.rec.total[r.t0:r.t1], r.rec.tnoise) / bb.loud
		exOf := func(d int) []int {
			var out []int
			for i, e := range bb.ex {
				if e.digit == d {
					out = append(out, i)
				}
			}
			return out
		}
		if err := c.align(ctx, r, newScene(r.rec, bb, gain), exOf); err != nil {
			return nil, nil, err
		}
	}
	// Then again and again with the reader's own words.
	for range alignRounds {
		var next [][]seg
		for _, r := range s.recs {
			b, exOf := c.peerBank(s, r)
			if err := c.align(ctx, r, newScene(r.rec, b, 1), exOf); err != nil {
				return nil, nil, err
			}
			next = append(next, r.segs)
		}
		for i, r := range s.recs {
			r.segs = next[i]
		}
	}
	// Set aside what fits the others poorly.
	var costs []float64
	for _, r := range s.recs {
		if r.aside == "" {
			costs = append(costs, r.cost)
		}
	}
	med := percentile(costs, 0.5)
	for _, r := range s.recs {
		if r.aside == "" && len(costs) >= 3 && r.cost > 2*med {
			r.aside = fmt.Sprintf("fits the other recordings poorly (%.1f dB per frame, the median is %.1f)", r.cost, med)
		}
		if r.aside != "" {
			sr.SetAside = append(sr.SetAside, r.code+": "+r.aside)
		} else {
			sr.Used++
		}
	}

	ps := &PromptSet{Language: s.lang, Speed: s.speed, Volume: s.volume, Presses: len(s.recs)}
	short := false
	for d := range 10 {
		refs := c.segsOf(s, d, nil)
		sr.Examples[d] = len(refs)
		if len(refs) < c.opts.Examples {
			short = true
			continue
		}
		for _, i := range c.choose(refs, c.opts.MaxExamples) {
			ps.Digits[d] = append(ps.Digits[d], c.cut(refs[i]))
		}
		sr.Examples[d] = len(ps.Digits[d])
	}
	if short {
		return nil, sr, nil
	}
	ps.Noise = c.noise(s)
	return ps, sr, nil
}

// segRef is one word of one recording.
type segRef struct {
	r *calRec
	s seg
}

// segsOf returns the words of digit d in the usable recordings of s other
// than skip, those of the best-fitting recordings first.
func (c *Calibrator) segsOf(s *calSet, d int, skip *calRec) []segRef {
	recs := slices.Clone(s.recs)
	slices.SortStableFunc(recs, func(a, b *calRec) int { return cmpFloat(a.cost, b.cost) })
	var out []segRef
	for _, r := range recs {
		if r == skip || r.aside != "" {
			continue
		}
		for _, g := range r.segs {
			if g.digit == d {
				out = append(out, segRef{r, g})
			}
		}
	}
	return out
}

// peerBank returns the words of the other recordings of s as a bank, at
// most alignExamples of each digit, and which examples are of each digit.
func (c *Calibrator) peerBank(s *calSet, skip *calRec) (*bank, func(int) []int) {
	b := &bank{set: &promptSet{lang: s.lang, speed: s.speed}, mode: resampled, factor: 1}
	var of [10][]int
	for d := range 10 {
		refs := c.segsOf(s, d, skip)
		for _, ref := range refs[:min(len(refs), alignExamples)] {
			of[d] = append(of[d], len(b.ex))
			b.ex = append(b.ex, example{digit: d, pow: ref.clean()})
		}
	}
	return b, func(d int) []int { return of[d] }
}

// clean returns the word's band powers with its recording's background
// removed.
func (ref segRef) clean() []band {
	pow := slices.Clone(ref.r.rec.pow[ref.s.start : ref.s.end+1])
	for t := range pow {
		for k := range numBands {
			pow[t][k] = max(pow[t][k]-ref.r.rec.noise[k], 0)
		}
	}
	return pow
}

// align places the words of r's code with the examples of sc, exOf
// giving those of each digit: the code said once or more, nothing else.
// A digit without examples sets r aside.
func (c *Calibrator) align(ctx context.Context, r *calRec, sc *scene, exOf func(int) []int) error {
	g := &grammar{last: len(r.code) - 1}
	for i := 0; i < len(r.code); i++ {
		ex := exOf(int(r.code[i] - '0'))
		if len(ex) == 0 {
			if r.aside == "" && r.segs == nil {
				r.aside = "no example to place its words with"
			}
			return nil
		}
		g.ex = append(g.ex, ex)
	}
	p, err := sc.run(ctx, g, r.t0, r.t1)
	if err != nil {
		return err
	}
	if len(p.words) == 0 {
		r.aside = "its words could not be placed"
		return nil
	}
	r.segs = r.segs[:0:0]
	for _, w := range p.words {
		r.segs = append(r.segs, seg{digit: int(r.code[w.slot] - '0'), start: w.start, end: w.end})
	}
	r.cost = p.cost / float64(r.t1-r.t0)
	return nil
}

// choose picks at most k of the words refs that best cover them all: the
// most central first, then each time the one that most brings every word
// nearer to its nearest pick (greedy k-medoids). It returns indices.
func (c *Calibrator) choose(refs []segRef, k int) []int {
	n := len(refs)
	if n <= k {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	dist := make([][]float64, n)
	for i := range dist {
		dist[i] = make([]float64, n)
	}
	for i := range n {
		for j := i + 1; j < n; j++ {
			v := (wordDist(refs[i], refs[j]) + wordDist(refs[j], refs[i])) / 2
			dist[i][j], dist[j][i] = v, v
		}
	}
	near := make([]float64, n) // each word's distance to its nearest pick
	for i := range near {
		near[i] = math.Inf(1)
	}
	var picks []int
	for len(picks) < k {
		best, gain := -1, -1.0
		for cand := range n {
			if slices.Contains(picks, cand) {
				continue
			}
			var g float64
			for i := range n {
				if math.IsInf(near[i], 1) {
					g -= dist[i][cand] // the first pick: the most central
				} else {
					g += max(0, near[i]-dist[i][cand])
				}
			}
			if best < 0 || g > gain {
				best, gain = cand, g
			}
		}
		picks = append(picks, best)
		for i := range n {
			near[i] = min(near[i], dist[i][best])
		}
	}
	slices.Sort(picks)
	return picks
}

// wordDist is how far word a is from word b as an example: the mean frame
// distance of a on its best alignment with b, both floored above the
// louder of their backgrounds.
func wordDist(a, b segRef) float64 {
	var lin band
	cf := math.Pow(10, floorDB/10)
	for k := range numBands {
		lin[k] = cf * max(a.r.rec.noise[k], b.r.rec.noise[k])
	}
	m := make([]band, 0, b.s.end-b.s.start+1)
	for _, f := range b.clean() {
		var x band
		for k := range numBands {
			x[k] = db(max(f[k]+a.r.rec.noise[k], lin[k]))
		}
		m = append(m, x)
	}
	cs := newCells(len(m))
	end := math.Inf(1)
	for t := a.s.start; t <= a.s.end; t++ {
		var x band
		for k := range numBands {
			x[k] = db(max(a.r.rec.pow[t][k], lin[k]))
		}
		entry := math.Inf(1)
		if t == a.s.start {
			entry = 0
		}
		end, _ = cs.step(m, &x, t, entry, math.Inf(1))
	}
	return end / float64(a.s.end-a.s.start+1)
}

// cut returns the samples of a word at the calibrator's rate.
func (c *Calibrator) cut(ref segRef) []int16 {
	at := func(f int) int {
		return max(0, min(len(ref.r.pcm), int(math.Round(float64(f*hop)*float64(c.rate)/analysisRate))))
	}
	return slices.Clone(ref.r.pcm[at(ref.s.start):at(ref.s.end+1)])
}

// noiseFrames is how much background a set keeps: 1 s.
const noiseFrames = 100

// noise returns the quietest frames of the usable recordings of s, one
// after the other (at most noiseFrames), or nil when they are silent.
func (c *Calibrator) noise(s *calSet) []int16 {
	var out []int16
	for _, r := range s.recs {
		if r.aside != "" {
			continue
		}
		idx := make([]int, len(r.rec.total))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int { return cmpFloat(r.rec.total[a], r.rec.total[b]) })
		quiet := idx[:max(1, len(idx)*10/100)]
		slices.Sort(quiet)
		for _, f := range quiet {
			a, b := f*hop*c.rate/analysisRate, min(len(r.pcm), (f+1)*hop*c.rate/analysisRate)
			if a < b {
				out = append(out, r.pcm[a:b]...)
			}
		}
		if len(out) >= noiseFrames*hop*c.rate/analysisRate {
			break
		}
	}
	out = out[:min(len(out), noiseFrames*hop*c.rate/analysisRate)]
	for _, v := range out {
		if v > 1 || v < -1 {
			return out
		}
	}
	return nil
}

// check decodes the usable recordings of set with p's decoder for it.
func (c *Calibrator) check(ctx context.Context, p *Prompts, set *PromptSet, sr *SetReport) {
	one := &Prompts{SampleRate: p.SampleRate, Sets: []PromptSet{*set}}
	d, err := NewDecoder(one, nil)
	if err != nil {
		return
	}
	s := c.set(set.Language, set.Speed)
	for _, r := range s.recs {
		if r.aside != "" {
			continue
		}
		res, err := d.Decode(ctx, r.pcm, c.rate)
		switch {
		case err != nil:
			sr.Refused++
		case len(res.Digits)%len(r.code) == 0 && res.Digits == strings.Repeat(r.code, len(res.Digits)/len(r.code)):
			sr.Right++
		default:
			sr.Wrong++
		}
	}
}

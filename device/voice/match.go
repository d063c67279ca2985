package voice

import (
	"context"
	"fmt"
	"math"
	"slices"
)

// The analysis runs at one sample rate whatever the rates of the prompts
// and of the recording: telephone quality is enough to tell digits apart.
const analysisRate = 8000

// Timing of the speech at 100 % speed, as an audio code reader produces
// it: the simulated reader pauses 120 ms between digits and 600 ms between
// repetitions of the code.
const (
	splitMS  = 40  // a shorter pause is within a word
	mergeMS  = 200 // a longer pause separates two words
	maxUnits = 3   // runs of sound that may make one word
	repeatMS = 340 // a pause at least this long separates two repetitions
	leadMS   = 100 // a word may start this long before its sound is detected
	hop      = 40  // samples between frames: 5 ms
	maxWords = 256 // bounds Decode's work
	maxCache = 96  // template sets kept
)

// coarseSpeeds spans MinSpeed to MaxSpeed in steps of about 12 %.
var coarseSpeeds = []int{50, 56, 63, 71, 79, 89, 100, 112, 126, 141, 159, 178, 200}

// Words used to estimate the speed and the language. Prompts fit well only
// near the right speed, and the fit gets steadily better towards it, so a
// few words and a coarse grid are enough to find it.
const (
	coarseWords = 4
	fineWords   = 6
)

// phases is how many sub-frame offsets the final classification tries.
const phases = 4

// toRate converts samples at rate to analysisRate, averaging the samples
// that fall in one output sample when the rate is higher.
func toRate(s []int16, rate int) []float64 {
	x := make([]float64, len(s))
	for i, v := range s {
		x[i] = float64(v)
	}
	if rate == analysisRate {
		return x
	}
	step := float64(rate) / analysisRate
	if w := int(step); w > 1 {
		// A moving average as a crude anti-aliasing filter.
		y := make([]float64, len(x))
		var sum float64
		for i := range x {
			sum += x[i]
			if i >= w {
				sum -= x[i-w]
			}
			y[i] = sum / float64(min(i+1, w))
		}
		x = y
	}
	return resample(x, step, 0)
}

// analysis is what Decode learns about a recording before it tries
// speeds: where there is sound, and the background's band powers.
type analysis struct {
	x       []float64 // the samples, at analysisRate
	runs    [][2]int  // sample ranges with sound
	floor   [numBands]float64
	floorDB [numBands]float64 // dB of twice the floor: below it, nothing counts
	frames  *frames           // every hop samples
}

// frames are a recording's band energies every hop samples.
type frames struct {
	hop   int
	rdB   [][numBands]float64 // in dB, floored at twice the background
	power []float64           // total power of each frame
	quiet []float64           // prefix sums of each frame's distance from the background
}

// newFrames floors feat, the band powers every h samples.
func (a *analysis) newFrames(feat [][numBands]float64, h int) *frames {
	f := &frames{
		hop:   h,
		rdB:   make([][numBands]float64, len(feat)),
		power: make([]float64, len(feat)),
		quiet: make([]float64, len(feat)+1),
	}
	for i, fr := range feat {
		for b, p := range fr {
			f.rdB[i][b] = db(max(p, 2*a.floor[b]))
			f.power[i] += p
		}
		f.quiet[i+1] = f.quiet[i] + frameDist(&f.rdB[i], &a.floorDB)
	}
	return f
}

// analyse finds the sound in x by its energy envelope: the background is
// the envelope's 10th percentile, and sound is what rises 9 dB above it
// (and within 45 dB of the loudest part). It measures the background's
// band powers in the pauses.
func (d *Decoder) analyse(x []float64) (*analysis, error) {
	env := envelope(x, hop)
	if len(env) == 0 {
		return nil, &DecodeError{Reason: "empty recording", Err: ErrNoSpeech}
	}
	peak := slices.Max(env)
	if peak < 20 { // RMS below 10 on the int16 scale: about -70 dBFS
		return nil, &DecodeError{Reason: "silence", Err: ErrNoSpeech}
	}
	bg := percentile(env, 0.1)
	if bg > peak-12 {
		return nil, &DecodeError{Reason: "no pauses: noise or one continuous sound", Err: ErrUnrecognised}
	}
	thr := max(bg+9, peak-45)
	a := &analysis{x: x}
	start := -1
	for i, e := range env {
		switch {
		case e >= thr && start < 0:
			start = i
		case e < thr && start >= 0:
			a.runs = append(a.runs, [2]int{start * hop, min(i*hop+hop, len(x))})
			start = -1
		}
	}
	if start >= 0 {
		a.runs = append(a.runs, [2]int{start * hop, len(x)})
	}

	// Background band powers: the median over the frames that lie in
	// pauses, and at least 60 dB below the loudest band power.
	feat := d.fb.features(x, hop)
	var quiet [numBands][]float64
	var top float64
	for f, fr := range feat {
		lo, hi := min(f, len(env)), min(f+fftSize/hop+1, len(env))
		silent := true
		for _, e := range env[lo:hi] {
			if e >= thr-3 {
				silent = false
				break
			}
		}
		for b, p := range fr {
			top = max(top, p)
			if silent {
				quiet[b] = append(quiet[b], p)
			}
		}
	}
	for b := range a.floor {
		a.floor[b] = max(percentile(quiet[b], 0.5), top*1e-6, 1)
		a.floorDB[b] = db(2 * a.floor[b])
	}
	a.frames = a.newFrames(feat, hop)
	return a, nil
}

// hypothesis is the outcome of decoding at one speed in one language.
type hypothesis struct {
	lang  string
	speed int
	words []wordMatch
	cost  float64 // mean distance of the words to their nearest prompts
}

type wordMatch struct {
	start, end, utterance int // samples; the repetition it belongs to
	digit, runner         int
	dist, runnerDist      float64
}

// search finds the language and the speed at which the prompts fit the
// recording best: a coarse pass over coarseSpeeds in every language, then
// finer steps around the best. It returns ctx's error, wrapped, if ctx
// ends first, and a *DecodeError when there are no words.
func (d *Decoder) search(ctx context.Context, a *analysis) (*hypothesis, error) {
	if len(a.runs) == 0 {
		return nil, &DecodeError{Reason: "no words", Err: ErrUnrecognised}
	}
	var best *hypothesis
	for _, lang := range d.langs {
		for _, s := range coarseSpeeds {
			h, err := d.evaluate(ctx, a, lang, s, coarseWords, 1, 2)
			if err != nil {
				return nil, err
			}
			if best == nil || h.cost < best.cost {
				best = h
			}
		}
	}
	// Halve the step around the best speed: roughly (every other frame)
	// first, then frame by frame.
	for i, step := range []float64{0.06, 0.03, 0.015, 0.0075} {
		stride := 2
		if i >= 2 {
			stride = 1
		}
		if i == 0 || i == 2 {
			h, err := d.evaluate(ctx, a, best.lang, best.speed, fineWords, 1, stride)
			if err != nil {
				return nil, err
			}
			best = h
		}
		c := best.speed
		for _, f := range []float64{1 - step, 1 + step} {
			s := int(math.Round(float64(c) * f))
			if s < MinSpeed || s > MaxSpeed || s == c {
				continue
			}
			h, err := d.evaluate(ctx, a, best.lang, s, fineWords, 1, stride)
			if err != nil {
				return nil, err
			}
			if h.cost < best.cost {
				best = h
			}
		}
	}
	return best, nil
}

// evaluate classifies the words of the recording assuming speech at speed
// percent in lang: the words of the first limit runs of sound (0: all),
// trying nph sub-frame offsets of each prompt and, below 100 %, comparing
// every stride-th frame (see place).
//
// Runs closer than splitMS belong to one word. Runs up to mergeMS apart
// may too (a quiet consonant in the middle of "seven" lost in noise looks
// like a pause), and so may runs that are far apart in a slow recording,
// so the grouping is chosen with the words: the one that minimises the sum
// of the words' distances to their nearest prompts. Joining two digits
// into one word fits no prompt, and splitting a digit gives two poor
// fits, so the right grouping wins.
func (d *Decoder) evaluate(ctx context.Context, a *analysis, lang string, speed, limit, nph, stride int) (*hypothesis, error) {
	if speed >= 100 {
		stride = 1 // fast speech has few frames to spare
	}
	r := float64(speed) / 100
	ms := func(v float64) int { return int(v * analysisRate / 1000 / r) }
	split, merge, repeat := ms(splitMS), ms(mergeMS), ms(repeatMS)
	longest := int(float64(d.longest)/r) + ms(50)

	// Units: runs of sound with short pauses between them.
	type unit struct{ a, b, utt int }
	var units []unit
	utt := 0
	for i, run := range a.runs {
		if i > 0 {
			gap := run[0] - a.runs[i-1][1]
			if gap < split {
				units[len(units)-1].b = run[1]
				continue
			}
			if gap >= repeat {
				utt++
			}
		}
		units = append(units, unit{run[0], run[1], utt})
	}
	if limit > 0 && len(units) > limit {
		units = units[:limit]
	}
	ts := d.templates(lang, speed, nph)
	fs := a.frames
	var sc scratch

	// classify matches the word made of units i to j-1.
	classify := func(i, j int) wordMatch {
		w := unit{units[i].a, units[j-1].b, units[i].utt}
		// The window compared: from the middle of the pause before to the
		// middle of the pause after, at most 150 ms (at 100 % speed)
		// from the sound.
		lo, hi := w.a-ms(150), w.b+ms(150)
		if i > 0 {
			lo = max(lo, (units[i-1].b+w.a)/2)
		}
		if j < len(units) {
			hi = min(hi, (w.b+units[j].a)/2)
		}
		win := [2]int{max(lo, 0) / fs.hop, min((hi+fs.hop-1)/fs.hop, len(fs.rdB))}
		// Where the prompt may start: up to leadMS before the sound was
		// detected (a quiet onset lost in the noise), or a little after.
		starts := [2]int{w.a - ms(leadMS), w.a + ms(10)}
		m := wordMatch{start: w.a, end: w.b, utterance: w.utt, digit: -1, runner: -1,
			dist: math.Inf(1), runnerDist: math.Inf(1)}
		level := loudness(fs.power[win[0]:win[1]])
		for dg, t := range ts {
			dist := fs.place(&sc, t, &a.floorDB, win, starts, level, stride)
			switch {
			case dist < m.dist:
				m.runner, m.runnerDist = m.digit, m.dist
				m.digit, m.dist = dg, dist
			case dist < m.runnerDist:
				m.runner, m.runnerDist = dg, dist
			}
		}
		return m
	}

	// best[j] is the least sum of distances of words made of units[:j];
	// from[j] where its last word starts, and match[j] that word.
	n := len(units)
	best := make([]float64, n+1)
	from := make([]int, n+1)
	match := make([]wordMatch, n+1)
	for j := 1; j <= n; j++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("voice: decode: %w", err)
		}
		best[j] = math.Inf(1)
		for i := j - 1; i >= 0 && i >= j-maxUnits; i-- {
			if i < j-1 && (units[i+1].a-units[i].b >= merge || units[j-1].b-units[i].a > longest) {
				break
			}
			m := classify(i, j)
			if c := best[i] + m.dist; c < best[j] || math.IsInf(best[j], 1) && i == j-1 {
				best[j], from[j], match[j] = c, i, m
			}
		}
	}
	h := &hypothesis{lang: lang, speed: speed, cost: math.Inf(1)}
	for j := n; j > 0; j = from[j] {
		h.words = append(h.words, match[j])
	}
	slices.Reverse(h.words)
	if len(h.words) > 0 {
		h.cost = best[n] / float64(len(h.words))
	}
	return h, nil
}

// template is one prompt at one speed as band energies (dB) every hop
// samples, in variants: frame j of variant v covers the
// prompt's samples from j*hop - pre[v] on.
type template struct {
	feat     [][][numBands]float64
	pre      []int
	loudness float64 // see loudness, of the band powers
}

// templateKey names the prompts of one language at one speed, in nph
// sub-frame offsets.
type templateKey struct {
	lang       string
	speed, nph int
}

// templates returns lang's prompts played at speed percent, in nph
// sub-frame offsets and, when nph > 1 and the speed is above 100 %, two
// resampling offsets.
func (d *Decoder) templates(lang string, speed, nph int) *[10]*template {
	key := templateKey{lang, speed, nph}
	d.mu.Lock()
	ts, ok := d.cache[key]
	d.mu.Unlock()
	if ok {
		return ts
	}
	ts = new([10]*template)
	step := float64(speed) / 100
	// Faster speech skips samples, and which ones it keeps (where the
	// prompt starts between two output samples) changes what aliases into
	// the bands; the final pass tries both halves.
	offsets := []float64{0}
	if nph > 1 && step > 1 {
		offsets = append(offsets, step/2)
	}
	const h = hop
	for dg, p := range d.prompts[lang] {
		t := &template{}
		for v := range nph * len(offsets) {
			y := resample(p, step, offsets[v%len(offsets)])
			pre := fftSize - h + (v/len(offsets))*h/nph
			buf := make([]float64, pre+len(y)+fftSize)
			copy(buf[pre:], y)
			fr := d.fb.features(buf, h)
			fr = fr[:min(len(fr), (pre+len(y)-1)/h+1)] // none after the prompt
			if v == 0 {
				power := make([]float64, len(fr))
				for j := range fr {
					for _, p := range fr[j] {
						power[j] += p
					}
				}
				t.loudness = loudness(power)
			}
			for j := range fr {
				for b := range numBands {
					fr[j][b] = db(max(fr[j][b], 1e-3))
				}
			}
			t.feat = append(t.feat, fr)
			t.pre = append(t.pre, pre)
		}
		ts[dg] = t
	}
	d.mu.Lock()
	if len(d.cache) >= maxCache {
		clear(d.cache)
	}
	d.cache[key] = ts
	d.mu.Unlock()
	return ts
}

// place slides the prompt t over the recording, its start between
// starts[0] and starts[1] (samples) in steps of stride frames, comparing
// every stride-th frame, and returns the smallest distance
// between the frames of the window win and the model "background plus the
// prompt there, at the level of the window's sound": the mean frame
// distance over the window, where frames of the prompt that fall outside
// the window count against the background.
func (a *frames) place(sc *scratch, t *template, floorDB *[numBands]float64, win, starts [2]int, level float64, stride int) float64 {
	if win[1] <= win[0] {
		return math.Inf(1)
	}
	g := level / t.loudness
	if !(g > 0) || math.IsInf(g, 0) {
		return math.Inf(1)
	}
	gdB := db(g)
	best := math.Inf(1)
	base := a.quiet[win[1]] - a.quiet[win[0]]
	for v, fr := range t.feat {
		m := len(fr)
		model := grow(&sc.model, m)
		out := grow(&sc.out, m+1) // prefix sums of the distance to the background
		out[0] = 0
		for j := range fr {
			for b := range numBands {
				// dB(max(g·T + F, 2F)) = dB(F) + max(logAdd(dB(g·T) − dB(F)), dB(2))
				f := floorDB[b] - db2
				model[j][b] = f + max(logAdd(gdB+fr[j][b]-f), db2)
			}
			out[j+1] = out[j] + frameDist(&model[j], floorDB)
		}
		// Frame j covers the recording's samples from start - pre + j*hop;
		// it is the recording's frame q+j when start - pre = q*hop.
		pre := t.pre[v]
		for q := ceilDiv(starts[0]-pre, a.hop); q <= floorDiv(starts[1]-pre, a.hop); q += stride {
			jlo, jhi := max(0, win[0]-q), min(m, win[1]-q)
			sum := base + out[m]
			if jlo < jhi {
				sum = base - (a.quiet[q+jhi] - a.quiet[q+jlo]) + out[jlo] + out[m] - out[jhi]
				var near float64
				for j := jlo; j < jhi; j += stride {
					near += frameDist(&a.rdB[q+j], &model[j])
				}
				sum += near * float64(stride)
			}
			n := (win[1] - win[0]) + m - max(jhi-jlo, 0)
			best = min(best, sum/float64(n))
		}
	}
	return best
}

// scratch holds buffers place reuses.
type scratch struct {
	model [][numBands]float64
	out   []float64
}

// grow returns (*buf)[:n], reallocating when it is too short.
func grow[T any](buf *[]T, n int) []T {
	if cap(*buf) < n {
		*buf = make([]T, n)
	}
	return (*buf)[:n]
}

// loudness is the mean of the loudest third of the frame powers.
func loudness(power []float64) float64 {
	if len(power) == 0 {
		return 0
	}
	p := slices.Clone(power)
	slices.Sort(p)
	k := max(1, len(p)/3)
	var s float64
	for _, v := range p[len(p)-k:] {
		s += v
	}
	return s / float64(k)
}

// frameDist is the mean absolute difference of two frames, in dB.
func frameDist(a, b *[numBands]float64) float64 {
	var s float64
	for k := range numBands {
		s += math.Abs(a[k] - b[k])
	}
	return s / numBands
}

func db(p float64) float64 { return 10 * math.Log10(p) }

// db2 is 10·log10(2).
var db2 = db(2)

const logAddMin, logAddMax = -30.0, 60.0

// logAddTable[i] is 10·log10(1 + 10^(x/10)) for x = logAddMin + i/10.
var logAddTable = func() []float64 {
	t := make([]float64, int((logAddMax-logAddMin)*10)+1)
	for i := range t {
		t[i] = db(1 + math.Pow(10, (logAddMin+float64(i)/10)/10))
	}
	return t
}()

// logAdd returns 10·log10(1 + 10^(x/10)), the level of a sum of two
// powers in dB relative to one of them when the other is x dB, to 0.05 dB.
func logAdd(x float64) float64 {
	switch {
	case x <= logAddMin:
		return 0
	case x >= logAddMax:
		return x
	}
	return logAddTable[int((x-logAddMin)*10+0.5)]
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b int) int { return -floorDiv(-a, b) }

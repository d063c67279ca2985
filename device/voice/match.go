package voice

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
)

// The matching engine: a recording's band powers, the templates of a
// prompt set at one speed, and connected-word dynamic time warping of the
// one against the other (one-pass DP in the manner of Bridle, Brown and
// Chamberlain, "An algorithm for connected word recognition", ICASSP 1982,
// and Ney, "The use of a one-stage dynamic programming algorithm for
// connected word recognition", IEEE Trans. ASSP 32(2), 1984).

// Tuning of the DP, in the units of frameDist (dB per frame).
const (
	stayCost = 0.4 // a template frame held for a second recording frame
	skipCost = 0.4 // a template frame skipped
	wordCost = 6.0 // every word: keeps one word from being matched as two
	floorDB  = 3.0 // the floor sits this far above the background (dB)
	beam     = 80  // paths costlier than the best by more are dropped
)

// recording is what the decoder measures of a recording before it
// compares it with templates.
type recording struct {
	pow    []band    // band powers of each frame
	total  []float64 // their sum
	noise  band      // the background's band powers
	tnoise float64   // their sum
	first  int       // the first frame with sound
	last   int       // the last frame with sound
}

// minSpeechDB is how far above the background the loudest part of a
// recording must be for it to hold speech.
const minSpeechDB = 12

// analyse measures x, samples at analysisRate: band powers every hop
// samples, the background (the median of each band over the quietest
// 15 % of frames, which are pauses when there are any and the weakest
// sounds otherwise; at least 50 dB below the loudest band), and where
// there is sound. It returns a *DecodeError
// for silence or a recording without sound above its background.
func analyse(fb *filterBank, x []float64) (*recording, error) {
	if len(x) < hop {
		return nil, &DecodeError{Reason: "empty recording", Err: ErrNoSpeech}
	}
	r := &recording{pow: fb.features(x)}
	n := len(r.pow)
	r.total = make([]float64, n)
	var top float64
	for t, f := range r.pow {
		for _, p := range f {
			r.total[t] += p
			top = max(top, p)
		}
	}
	// Silence: the loudest frame below about -70 dBFS (an RMS of 10).
	if slices.Max(r.total) < 100*fftSize*fftSize*0.375/2 {
		return nil, &DecodeError{Reason: "silence", Err: ErrNoSpeech}
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmpFloat(r.total[a], r.total[b]) })
	quiet := idx[:max(1, n*15/100)]
	col := make([]float64, len(quiet))
	for b := range numBands {
		for i, t := range quiet {
			col[i] = r.pow[t][b]
		}
		// At least 50 dB below the loudest band: in a clean recording,
		// detail further down (a breathy tail, a reverberation) changes
		// from one saying to the next and tells nothing about the digit.
		r.noise[b] = max(percentile(col, 0.5), top*1e-5, 1e-3)
		r.tnoise += r.noise[b]
	}
	loud := r.total[idx[n-1-n/20]] // the 95th percentile
	if db(loud/r.tnoise) < minSpeechDB {
		return nil, &DecodeError{Reason: "no sound stands out from the background: noise or one continuous sound", Err: ErrUnrecognised}
	}
	thr := r.tnoise * math.Pow(10, 0.6) // 6 dB above the background
	r.first, r.last = -1, -1
	for t, p := range r.total {
		if p > thr {
			if r.first < 0 {
				r.first = t
			}
			r.last = t
		}
	}
	return r, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// loudness is the mean of the loudest third of the frame powers above
// the background (frames at least 3 dB above it).
func loudness(total []float64, noise float64) float64 {
	var p []float64
	for _, v := range total {
		if v > 2*noise {
			p = append(p, v-noise)
		}
	}
	if len(p) == 0 {
		return 0
	}
	slices.Sort(p)
	k := max(1, len(p)/3)
	var s float64
	for _, v := range p[len(p)-k:] {
		s += v
	}
	return s / float64(k)
}

// halve returns the recording at half the frame rate (20 ms frames, each
// the mean of two), for a coarse search.
func (r *recording) halve() *recording {
	h := &recording{noise: r.noise, tnoise: r.tnoise, first: r.first / 2, last: r.last / 2}
	h.pow = halveFrames(r.pow)
	h.total = make([]float64, len(h.pow))
	for t, f := range h.pow {
		for _, p := range f {
			h.total[t] += p
		}
	}
	return h
}

// halveFrames averages frames two by two (the last alone when odd).
func halveFrames(f []band) []band {
	out := make([]band, (len(f)+1)/2)
	for i := range out {
		a := f[2*i]
		b := a
		if 2*i+1 < len(f) {
			b = f[2*i+1]
		}
		for k := range numBands {
			out[i][k] = (a[k] + b[k]) / 2
		}
	}
	return out
}

// Sound outside the words of a path is loud when it comes within
// loudDB of the loudest sound (the 95th percentile of the frames) and
// stands loudOverNoise above the background, for loudFrames frames
// running.
const (
	loudDB        = 20
	loudOverNoise = 10
	loudFrames    = 3
)

// unexplained returns the first run of loud frames from t0 to t1 that are
// not in a word.
func (r *recording) unexplained(inWord []bool, t0, t1 int) (int, int, bool) {
	s := slices.Clone(r.total[t0:t1])
	slices.Sort(s)
	thr := max(s[len(s)*95/100]*math.Pow(10, -loudDB/10.0), r.tnoise*math.Pow(10, loudOverNoise/10.0))
	run := 0
	for t := t0; t < t1; t++ {
		if inWord[t] || r.total[t] < thr {
			run = 0
			continue
		}
		if run++; run == loudFrames {
			end := t
			for end+1 < t1 && !inWord[end+1] && r.total[end+1] >= thr {
				end++
			}
			return t - loudFrames + 1, end + 1, true
		}
	}
	return 0, 0, false
}

// example is one recording of a digit as the decoder compares it: band
// powers every hop samples with the background of the recording it was
// cut from removed.
type example struct {
	digit int
	pow   []band
}

// bank is the examples of one prompt set played at one speed.
type bank struct {
	set    *promptSet
	mode   speedMode
	factor float64   // speed of the speech relative to the set's
	ex     []example // every example
	search []int     // the examples the speed search uses
	loud   float64   // loudness of the examples' frames

	halfOnce sync.Once
	half     *bank // at 20 ms frames
}

// halved returns the bank at half the frame rate (see recording.halve).
func (b *bank) halved() *bank {
	b.halfOnce.Do(func() {
		h := &bank{set: b.set, mode: b.mode, factor: b.factor, search: b.search, loud: b.loud}
		for _, e := range b.ex {
			h.ex = append(h.ex, example{digit: e.digit, pow: halveFrames(e.pow)})
		}
		b.half = h
	})
	return b.half
}

// speedMode is how a reader's speed setting changes its speech.
type speedMode int

const (
	// resampled: played faster or slower, pitch and all (a tape, the
	// simulated reader).
	resampled speedMode = iota
	// stretched: longer or shorter at the same pitch (a time-stretching
	// or synthesising reader).
	stretched
)

func (m speedMode) String() string {
	if m == stretched {
		return "time-stretched"
	}
	return "resampled"
}

// promptSet is a PromptSet prepared for the decoder.
type promptSet struct {
	lang     string
	speed    int
	examples [10][][]float64 // samples at analysisRate
	pow      [10][][]band    // band powers of the examples at their own speed
	noise    band            // the background of the recordings the examples came from
}

// newBank prepares set's examples at factor times its speed in mode.
//
// With all false, only the examples the search compares are prepared. The
// loudness is that of those examples either way, so that the gain found
// in the search holds for all.
func (d *Decoder) newBank(set *promptSet, mode speedMode, factor float64, all bool) *bank {
	b := &bank{set: set, mode: mode, factor: factor}
	var total []float64
	for dg := range set.examples {
		for i, x := range set.examples[dg] {
			if !all && i >= searchExamples {
				break
			}
			var pow []band
			switch {
			case factor == 1:
				pow = slices.Clone(set.pow[dg][i])
			case mode == resampled:
				pow = d.fb.features(stretch(x, factor))
			default:
				pow = stretchFrames(set.pow[dg][i], factor)
			}
			for t := range pow {
				var s float64
				for k := range numBands {
					pow[t][k] = max(pow[t][k]-set.noise[k], 0)
					s += pow[t][k]
				}
				if i < searchExamples {
					total = append(total, s)
				}
			}
			if i < searchExamples {
				b.search = append(b.search, len(b.ex))
			}
			b.ex = append(b.ex, example{digit: dg, pow: pow})
		}
	}
	b.loud = loudness(total, 0)
	return b
}

// length returns the median length of the examples of digit dg, and the
// shortest and the longest, in frames.
func (b *bank) length(dg int) (median, shortest, longest float64) {
	var n []float64
	for _, e := range b.ex {
		if e.digit == dg {
			n = append(n, float64(len(e.pow)))
		}
	}
	return percentile(n, 0.5), slices.Min(n), slices.Max(n)
}

// searchExamples is how many examples of each digit the speed search
// compares.
const searchExamples = 2

// stretchFrames returns frames played at factor times their speed by
// linear interpolation between neighbouring frames.
func stretchFrames(f []band, factor float64) []band {
	n := max(1, int(math.Round(float64(len(f))/factor)))
	out := make([]band, n)
	for i := range out {
		pos := min(float64(i)*factor, float64(len(f)-1))
		j := int(pos)
		if j >= len(f)-1 {
			out[i] = f[len(f)-1]
			continue
		}
		fr := pos - float64(j)
		for k := range numBands {
			out[i][k] = f[j][k] + (f[j+1][k]-f[j][k])*fr
		}
	}
	return out
}

// scene is a recording seen through one bank at one gain: both in dB,
// floored at what neither can tell from the background.
type scene struct {
	rec    *recording
	b      *bank
	gain   float64
	lin    band      // the floor, as powers
	floor  band      // the floor in dB
	rdB    []band    // the recording's frames
	gapD   []float64 // distance of each frame from the background
	models [][]band  // each example at the recording's level, over its background; made when needed
}

// newScene floors the recording and the examples of b, scaled by gain,
// at 3 dB above the louder of the two backgrounds.
func newScene(r *recording, b *bank, gain float64) *scene {
	sc := &scene{rec: r, b: b, gain: gain, rdB: make([]band, len(r.pow)), gapD: make([]float64, len(r.pow))}
	c := math.Pow(10, floorDB/10)
	for k := range numBands {
		sc.lin[k] = c * max(r.noise[k], gain*b.set.noise[k])
		sc.floor[k] = db(sc.lin[k])
	}
	for t, f := range r.pow {
		for k := range numBands {
			sc.rdB[t][k] = db(max(f[k], sc.lin[k]))
		}
		sc.gapD[t] = frameDist(&sc.rdB[t], &sc.floor)
	}
	sc.models = make([][]band, len(b.ex))
	return sc
}

// model returns example e as the scene compares it.
func (sc *scene) model(e int) []band {
	if m := sc.models[e]; m != nil {
		return m
	}
	pow := sc.b.ex[e].pow
	m := make([]band, len(pow))
	for j, f := range pow {
		for k := range numBands {
			m[j][k] = db(max(sc.gain*f[k]+sc.rec.noise[k], sc.lin[k]))
		}
	}
	sc.models[e] = m
	return m
}

// frameDist is the mean absolute difference of two frames, in dB.
func frameDist(a, b *band) float64 {
	var s float64
	for k := range numBands {
		s += math.Abs(a[k] - b[k])
	}
	return s * (1.0 / numBands)
}

// cells are the DTW cells of one example: the cost of the best path that
// ends at each template frame, arrived at by a move (c0) or by holding
// the frame (c1), and the frame where that path's word started.
type cells struct {
	c0, c1, p0, p1 []float64 // this frame, previous frame
	s0, s1, q0, q1 []int32
	active         bool    // some cell of this frame is finite
	min            float64 // the cheapest cell of this frame
}

func newCells(n int) *cells {
	c := &cells{
		c0: make([]float64, n), c1: make([]float64, n), p0: make([]float64, n), p1: make([]float64, n),
		s0: make([]int32, n), s1: make([]int32, n), q0: make([]int32, n), q1: make([]int32, n),
	}
	for i := range n {
		c.c0[i], c.c1[i], c.p0[i], c.p1[i] = math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1)
	}
	return c
}

// step advances the cells of model m by recording frame t, where a word
// may start at cost entry (+Inf: none may). It returns the cost of the
// best word that ends at t and where it started.
//
// Local constraints: each recording frame is matched with one template
// frame; the template moves on by one frame, two (a skip, at skipCost)
// or none (a stay, at stayCost, never twice running), so a word may be
// said at half to twice the template's speed. A word starts at the
// template's first or second frame and ends at its last or last but one.
//
// Paths that cost more than limit at the frame before are dropped (beam
// pruning): pass +Inf to keep every one. Once every cell is dropped, a step with no entry below limit
// costs nothing.
func (c *cells) step(m []band, x *band, t int, entry, limit float64) (float64, int32) {
	inf := math.Inf(1)
	if !c.active && !(entry <= limit) {
		return inf, -1 // c.c0 and c.c1 hold no finite cell: nothing to do
	}
	// c.min is now stale until the loop below sets it.
	c.c0, c.p0 = c.p0, c.c0
	c.c1, c.p1 = c.p1, c.c1
	c.s0, c.q0 = c.q0, c.s0
	c.s1, c.q1 = c.q1, c.s1
	n := len(m)
	c.active = false
	c.min = inf
	for j := range n {
		best, from := inf, int32(0)
		if j >= 1 {
			if v := c.p0[j-1]; v < best {
				best, from = v, c.q0[j-1]
			}
			if v := c.p1[j-1]; v < best {
				best, from = v, c.q1[j-1]
			}
		}
		if j >= 2 {
			if v := c.p0[j-2] + skipCost; v < best {
				best, from = v, c.q0[j-2]
			}
			if v := c.p1[j-2] + skipCost; v < best {
				best, from = v, c.q1[j-2]
			}
		}
		if j == 0 && entry < best {
			best, from = entry, int32(t)
		} else if j == 1 && entry+skipCost < best {
			best, from = entry+skipCost, int32(t)
		}
		stay := c.p0[j] + stayCost
		if !(best <= limit) && !(stay <= limit) {
			c.c0[j], c.c1[j] = inf, inf
			continue
		}
		dist := frameDist(x, &m[j])
		if !(best <= limit) {
			best = inf
		}
		if !(stay <= limit) {
			stay = inf
		}
		c.c0[j], c.s0[j] = best+dist, from
		c.c1[j], c.s1[j] = stay+dist, c.q0[j]
		c.active = true
		c.min = min(c.min, c.c0[j], c.c1[j])
	}
	end, start := inf, int32(-1)
	for j := max(0, n-2); j < n; j++ {
		extra := 0.0
		if j < n-1 {
			extra = skipCost
		}
		if v := c.c0[j] + extra; v < end {
			end, start = v, c.s0[j]
		}
		if v := c.c1[j] + extra; v < end {
			end, start = v, c.s1[j]
		}
	}
	return end, start
}

// grammar says which word sequences the DP considers. Slot k holds the
// examples ex[k]; after a word of slot k comes one of slot next(k), with
// or without a pause. The recording may start and end with a pause; it
// starts with slot 0 and, unless empty is allowed, ends after slot last.
type grammar struct {
	ex    [][]int // examples of each slot (indices into the bank)
	last  int     // the slot after which the recording may end
	empty bool    // no word at all is a valid path
	// cut: the frames end in the middle of the speech, so the path may
	// end anywhere, within a word too; run then returns its cost only.
	cut bool
}

func (g *grammar) next(k int) int { return (k + 1) % len(g.ex) }
func (g *grammar) prev(k int) int { return (k + len(g.ex) - 1) % len(g.ex) }

// freeGrammar is any number of digits, each from examples ex.
func freeGrammar(ex []int) *grammar {
	return &grammar{ex: [][]int{ex}, last: 0, empty: true}
}

// word is one word of a DP path.
type word struct {
	slot       int
	ex         int // the example matched (index into the bank)
	start, end int // frames, end inclusive
	cost       float64
}

// path is the DP's best way through frames t0 to t1-1.
type path struct {
	cost  float64 // sum of the frame distances and penalties
	words []word
}

// Where a word's entry or a pause came from.
const (
	fromLead = iota // the start of the recording, or the pause before the first word
	fromGap         // a pause after a word
	fromWord        // directly after a word
)

// run finds the best path through frames t0 to t1-1 under g. It returns
// ctx's error, wrapped, when ctx ends first.
func (sc *scene) run(ctx context.Context, g *grammar, t0, t1 int) (*path, error) {
	K := len(g.ex)
	T := t1 - t0
	inf := math.Inf(1)
	type end struct {
		cost  float64
		ex    int
		start int32
	}
	ends := make([][]end, K)       // best word of slot k ending at frame t
	entryFrom := make([][]int8, K) // how a word of slot k starting at t was entered
	gaps := make([][]float64, K)   // best pause before slot k, at frame t
	gapFrom := make([][]int8, K)
	lead := make([]float64, T)
	frontier := 0.0 // the best cost of any state at the frame before
	cs := make([][]*cells, K)
	for k := range K {
		ends[k] = make([]end, T)
		entryFrom[k] = make([]int8, T)
		gaps[k] = make([]float64, T)
		gapFrom[k] = make([]int8, T)
		for _, e := range g.ex[k] {
			cs[k] = append(cs[k], newCells(len(sc.b.ex[e].pow)))
		}
	}
	for i := range T {
		t := t0 + i
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("voice: decode: %w", err)
			}
		}
		prevLead := 0.0
		if i > 0 {
			prevLead = lead[i-1]
		}
		limit := math.Inf(1)
		if i > 0 {
			limit = frontier + beam
		}
		frontier = math.Inf(1)
		for k := range K {
			// The entry into slot k at t: after the lead (slot 0), a pause
			// before k, or a word of the slot before.
			entry, from := inf, int8(fromLead)
			if k == 0 {
				entry = prevLead
			}
			if i > 0 {
				if v := gaps[k][i-1]; v < entry {
					entry, from = v, fromGap
				}
				if v := ends[g.prev(k)][i-1].cost; v < entry {
					entry, from = v, fromWord
				}
			}
			entryFrom[k][i] = from
			entry += wordCost
			best := end{cost: inf, ex: -1, start: -1}
			for n, e := range g.ex[k] {
				c := cs[k][n]
				if !c.active && !(entry <= limit) {
					continue
				}
				cost, s := c.step(sc.model(e), &sc.rdB[t], t, entry, limit)
				if cost < best.cost {
					best = end{cost, e, s}
				}
				if c.active {
					frontier = min(frontier, c.min)
				}
			}
			ends[k][i] = best
		}
		for k := range K {
			gc, gf := inf, int8(fromGap)
			if i > 0 {
				gc = gaps[k][i-1]
				if v := ends[g.prev(k)][i-1].cost; v < gc {
					gc, gf = v, fromWord
				}
			}
			gaps[k][i], gapFrom[k][i] = gc+sc.gapD[t], gf
			frontier = min(frontier, gaps[k][i])
		}
		lead[i] = prevLead + sc.gapD[t]
		frontier = min(frontier, lead[i])
	}

	if g.cut {
		return &path{cost: frontier}, nil
	}
	// The best end, and back from it.
	p := &path{cost: inf}
	kind, k := -1, g.last
	if v := ends[g.last][T-1].cost; v < p.cost {
		p.cost, kind = v, fromWord
	}
	if v := gaps[g.next(g.last)][T-1]; v < p.cost {
		p.cost, kind, k = v, fromGap, g.next(g.last)
	}
	if g.empty && lead[T-1] < p.cost {
		p.cost, kind = lead[T-1], fromLead
	}
	if math.IsInf(p.cost, 1) {
		return p, nil
	}
	for i := T - 1; i >= 0 && kind != fromLead; {
		switch kind {
		case fromGap:
			if gapFrom[k][i] == fromWord {
				kind, k = fromWord, g.prev(k)
			}
			i--
		case fromWord:
			e := ends[k][i]
			s := int(e.start) - t0
			before := 0.0
			if s > 0 {
				switch entryFrom[k][s] {
				case fromGap:
					before = gaps[k][s-1]
				case fromWord:
					before = ends[g.prev(k)][s-1].cost
				default:
					before = lead[s-1]
				}
			}
			p.words = append(p.words, word{slot: k, ex: e.ex, start: int(e.start), end: t0 + i, cost: e.cost - before})
			if s == 0 {
				kind = fromLead
				break
			}
			switch entryFrom[k][s] {
			case fromGap:
				kind = fromGap
			case fromWord:
				kind, k = fromWord, g.prev(k)
			default:
				kind = fromLead
			}
			i = s - 1
		}
	}
	slices.Reverse(p.words)
	return p, nil
}

// tempo returns the median over the words of p of their length relative
// to the examples of their digit in b (1 when p has no words).
func (p *path) tempo(b *bank) float64 {
	if len(p.words) == 0 {
		return 1
	}
	var t []float64
	for _, w := range p.words {
		med, _, _ := b.length(b.ex[w.ex].digit)
		t = append(t, float64(w.end-w.start+1)/med)
	}
	return percentile(t, 0.5)
}

// frameCosts returns the distance of each frame of w on its best
// alignment with its example (the path's cost of those frames, without
// penalties).
func (sc *scene) frameCosts(w word) []float64 {
	m := sc.model(w.ex)
	n, L := w.end-w.start+1, len(m)
	inf := math.Inf(1)
	// cost[i][j][s]: best cost of frames start..start+i ending on template
	// frame j, arrived by a move (s=0) or a stay (s=1); from: the j before.
	cost := make([][2][]float64, n)
	from := make([][2][]int16, n)
	for i := range n {
		for s := range 2 {
			cost[i][s] = make([]float64, L)
			from[i][s] = make([]int16, L)
			for j := range L {
				cost[i][s][j] = inf
			}
		}
	}
	dist := func(i, j int) float64 { return frameDist(&sc.rdB[w.start+i], &m[j]) }
	for j := range min(2, L) {
		cost[0][0][j] = dist(0, j) + float64(j)*skipCost
		from[0][0][j] = -1
	}
	for i := 1; i < n; i++ {
		for j := range L {
			best, bf := inf, int16(-1)
			for dj, pen := range [...]float64{0, 0, skipCost} {
				pj := j - dj
				if dj == 0 || pj < 0 {
					continue
				}
				for s := range 2 {
					if v := cost[i-1][s][pj] + pen; v < best {
						best, bf = v, int16(pj*2+s)
					}
				}
			}
			d := dist(i, j)
			cost[i][0][j], from[i][0][j] = best+d, bf
			cost[i][1][j], from[i][1][j] = cost[i-1][0][j]+stayCost+d, int16(j*2)
		}
	}
	bj, bs, best := -1, 0, inf
	for j := max(0, L-2); j < L; j++ {
		for s := range 2 {
			if v := cost[n-1][s][j]; v < best {
				best, bj, bs = v, j, s
			}
		}
	}
	out := make([]float64, n)
	for i := n - 1; i >= 0 && bj >= 0; i-- {
		out[i] = dist(i, bj)
		f := from[i][bs][bj]
		if f < 0 {
			break
		}
		bj, bs = int(f)/2, int(f)%2
	}
	return out
}

// alternatives measures how sure the path is of word i: within a window
// around it, the cost of the path there, of the best word of each digit
// instead (starting and ending near the word, the rest of the window as
// the path has it, the word's uncovered frames as background), and of no
// word at all. pc holds the path's cost of each frame.
// It returns the costs of the window: base without the word's frames,
// own with them as the path has them, alt with a word of each digit, none
// with no word.
func (sc *scene) alternatives(w word, pc []float64, t0, t1 int) (base, own float64, alt [10]float64, none float64) {
	n := w.end - w.start + 1
	a, b := max(t0, w.start-n/2-3), min(t1-1, w.end+n/2+3)
	outside := func(u int) float64 {
		if u >= w.start && u <= w.end {
			return sc.gapD[u]
		}
		return pc[u]
	}
	pre := make([]float64, b-a+2) // pre[u-a]: outside costs of a..u-1
	for u := a; u <= b; u++ {
		pre[u-a+1] = pre[u-a] + outside(u)
	}
	none = pre[b-a+1]
	for u := a; u <= b; u++ {
		own += pc[u]
		if u < w.start || u > w.end {
			base += pc[u]
		}
	}
	lastEntry, firstExit := w.start+n/3, w.end-n/3
	for d := range alt {
		alt[d] = math.Inf(1)
	}
	// A word farther than this from the window is no competitor: its
	// paths are dropped as soon as they cost more (costs only grow along
	// a path), and it counts as that far.
	limit := own + farMargin*float64(n)
	for e := range sc.b.ex {
		m := sc.model(e)
		c := newCells(len(m))
		dg := sc.b.ex[e].digit
		for u := a; u <= b; u++ {
			entry := math.Inf(1)
			if u <= lastEntry {
				entry = pre[u-a]
			}
			if !c.active && !(entry <= limit) {
				if u > lastEntry {
					break
				}
				continue
			}
			end, _ := c.step(m, &sc.rdB[u], u, entry, limit)
			if u >= firstExit {
				alt[dg] = min(alt[dg], end+pre[b-a+1]-pre[u-a+1])
			}
		}
	}
	for d := range alt {
		alt[d] = min(alt[d], limit)
	}
	return base, own, alt, none
}

// split returns the cost of the window of alternatives with two words
// (any digits, with or without a pause between them) where the path has
// w: a word that may be two run together. It counts the second word's
// wordCost, which the path saved.
func (sc *scene) split(w word, pc []float64, t0, t1 int, limit float64) float64 {
	n := w.end - w.start + 1
	a, b := max(t0, w.start-n/2-3), min(t1-1, w.end+n/2+3)
	outside := func(u int) float64 {
		if u >= w.start && u <= w.end {
			return sc.gapD[u]
		}
		return pc[u]
	}
	pre := make([]float64, b-a+2)
	for u := a; u <= b; u++ {
		pre[u-a+1] = pre[u-a] + outside(u)
	}
	lastEntry, firstExit := w.start+n/3, w.end-n/3
	inf := math.Inf(1)
	// first[u-a]: the best cost up to frame u with the first word ended at
	// u or before (the frames after it as background).
	first := make([]float64, b-a+1)
	for u := range first {
		first[u] = inf
	}
	cs := make([]*cells, len(sc.b.ex))
	for e := range sc.b.ex {
		cs[e] = newCells(len(sc.model(e)))
	}
	for u := a; u <= b; u++ {
		entry := inf
		if u <= lastEntry {
			entry = pre[u-a]
		}
		for e, c := range cs {
			if !c.active && !(entry <= limit) {
				continue
			}
			end, _ := c.step(sc.model(e), &sc.rdB[u], u, entry, limit)
			first[u-a] = min(first[u-a], end)
		}
		if u > a {
			first[u-a] = min(first[u-a], first[u-a-1]+sc.gapD[u])
		}
	}
	best := inf
	for e := range sc.b.ex {
		cs[e] = newCells(len(sc.model(e)))
	}
	for u := a + 1; u <= b; u++ {
		entry := first[u-a-1] + wordCost
		for e, c := range cs {
			if !c.active && !(entry <= limit) {
				continue
			}
			end, _ := c.step(sc.model(e), &sc.rdB[u], u, entry, limit)
			if u >= firstExit {
				best = min(best, end+pre[b-a+1]-pre[u-a+1])
			}
		}
	}
	return min(best, limit)
}

// splitTempo: a word this much longer than the median example of its
// digit is checked for being two words run together.
const splitTempo = 1.15

// farMargin (dB per frame) is how much worse than the path a competing
// word may fit before alternatives stops measuring it: far beyond any
// threshold of Options.
const farMargin = 3.0

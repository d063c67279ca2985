package voice

import (
	"math"
	"math/cmplx"
	"slices"
	"sync"
)

// Signal processing for the decoder: resampling, the energy envelope, and
// band powers on a mel-spaced filter bank.

// The analysis runs at one sample rate whatever the rates of the prompts
// and of the recording: telephone quality is enough to tell digits apart.
const analysisRate = 8000

const (
	fftSize  = 256 // the analysis window: 32 ms at analysisRate
	hop      = 80  // samples between frames: 10 ms
	numBands = 18  // mel-spaced bands in a feature frame
)

// Resample converts 16-bit samples at rate from to rate to with a
// windowed-sinc low-pass filter (Kaiser window, cut-off just below the
// lower of the two Nyquist frequencies), as a sound card or sox would. It
// returns a copy when the rates are equal, and nil for a rate that is not
// positive.
func Resample(s []int16, from, to int) []int16 {
	if from <= 0 || to <= 0 {
		return nil
	}
	x := make([]float64, len(s))
	for i, v := range s {
		x[i] = float64(v)
	}
	y := resampleSinc(x, from, to)
	out := make([]int16, len(y))
	for i, v := range y {
		out[i] = int16(max(math.MinInt16, min(math.MaxInt16, math.Round(v))))
	}
	return out
}

// sincZeros is the number of zero crossings of the filter on each side,
// at the output's rate when it is lower.
const sincZeros = 16

// resampleSinc is Resample on float samples.
func resampleSinc(x []float64, from, to int) []float64 {
	if from == to || len(x) == 0 {
		return slices.Clone(x)
	}
	k := sincKernel(from, to)
	n := int(float64(len(x)-1)*float64(to)/float64(from)) + 1
	out := make([]float64, n)
	for i := range out {
		// Output sample i sits at input position i*m/l.
		num := i * k.m
		ph := &k.phases[num%k.l]
		base := num/k.l + ph.first
		var sum, wsum float64
		for j, w := range ph.taps {
			if p := base + j; p >= 0 && p < len(x) {
				sum += x[p] * w
				wsum += w
			}
		}
		if wsum != 0 {
			out[i] = sum / wsum // unity gain at DC, also at the edges
		}
	}
	return out
}

// polyphase is a windowed-sinc low-pass filter for one pair of rates:
// output sample i is the dot product of phases[i*m mod l].taps with the
// input from sample i*m/l + first on.
type polyphase struct {
	l, m   int // the rates divided by their greatest common divisor
	phases []phase
}

type phase struct {
	first int
	taps  []float64
}

// maxPhases bounds the phases of a filter (rates whose ratio needs more
// are approximated by the nearest ratio with fewer).
const maxPhases = 4096

var kernels sync.Map // [2]int{from, to} → *polyphase

// sincKernel returns the filter that converts from to to.
func sincKernel(from, to int) *polyphase {
	key := [2]int{from, to}
	if k, ok := kernels.Load(key); ok {
		return k.(*polyphase)
	}
	g := gcd(from, to)
	l, m := to/g, from/g
	for l > maxPhases { // an odd pair of rates: keep the ratio to 1 part in 4096
		l, m = (l+1)/2, max(1, (m+1)/2)
	}
	step := float64(m) / float64(l)  // input samples per output sample
	cut := 0.95 * min(1, 1/step)     // cut-off as a fraction of the input Nyquist
	half := float64(sincZeros) / cut // half-width in input samples
	kw := kaiserTable()
	k := &polyphase{l: l, m: m, phases: make([]phase, l)}
	for p := range k.phases {
		frac := float64(p) / float64(l) // where the output falls between two inputs
		first := int(math.Ceil(frac - half))
		ph := phase{first: first}
		for j := first; float64(j) <= frac+half; j++ {
			d := float64(j) - frac
			r := math.Abs(d) / half * kaiserSteps
			ri := int(r)
			if ri >= kaiserSteps {
				ph.taps = append(ph.taps, 0)
				continue
			}
			w := cut * (kw[ri] + (kw[ri+1]-kw[ri])*(r-float64(ri)))
			if d != 0 {
				a := math.Pi * cut * d
				w *= math.Sin(a) / a
			}
			ph.taps = append(ph.taps, w)
		}
		k.phases[p] = ph
	}
	kernels.Store(key, k)
	return k
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// kaiserSteps is the resolution of kaiserTable.
const kaiserSteps = 2048

// kaiserTable holds the Kaiser window (β = 8) at r = i/kaiserSteps of its
// half-width, for i = 0 to kaiserSteps (where it is zero).
var kaiserTable = sync.OnceValue(func() []float64 {
	const beta = 8.0
	t := make([]float64, kaiserSteps+1)
	for i := range kaiserSteps {
		r := float64(i) / kaiserSteps
		t[i] = besselI0(beta*math.Sqrt(1-r*r)) / besselI0(beta)
	}
	return t
})

// besselI0 is the modified Bessel function of the first kind, order 0, by
// its power series (enough terms for the arguments of a Kaiser window).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / 2 / float64(k)) * (x / 2 / float64(k))
		sum += term
		if term < 1e-12*sum {
			break
		}
	}
	return sum
}

// stretch resamples x by linear interpolation so that output sample i
// sits at input position i*step (step > 1 shortens, < 1 lengthens): a
// recording played faster or slower, pitch and all, as the simulated
// reader changes its speed.
func stretch(x []float64, step float64) []float64 {
	if len(x) < 2 || step <= 0 {
		return slices.Clone(x)
	}
	last := float64(len(x) - 1)
	n := int(last/step) + 1
	out := make([]float64, n)
	for i := range out {
		pos := float64(i) * step
		j := int(pos)
		if j >= len(x)-1 {
			out[i] = x[len(x)-1]
			continue
		}
		frac := pos - float64(j)
		out[i] = x[j] + (x[j+1]-x[j])*frac
	}
	return out
}

// toRate converts samples at rate to analysisRate.
func toRate(s []int16, rate int) []float64 {
	x := make([]float64, len(s))
	for i, v := range s {
		x[i] = float64(v)
	}
	if rate == analysisRate {
		return x
	}
	return resampleSinc(x, rate, analysisRate)
}

// envelope returns the energy of x in dB (10·log10(mean square + 1), on the
// int16 sample scale) over windows of 2*h samples every h samples.
func envelope(x []float64, h int) []float64 {
	n := (len(x) + h - 1) / h
	env := make([]float64, n)
	for i := range env {
		lo, hi := i*h, min(i*h+2*h, len(x))
		var e float64
		for _, v := range x[lo:hi] {
			e += v * v
		}
		env[i] = 10 * math.Log10(e/float64(2*h)+1)
	}
	return env
}

// band is a vector of band powers (or levels), one per mel band.
type band = [numBands]float64

// filterBank maps FFT bins to mel-spaced bands between 100 Hz and just
// below the Nyquist frequency, with triangular weights.
type filterBank struct {
	lo     [numBands]int           // first bin of each band
	weight [numBands][]float64     // weights of bins lo, lo+1, ...
	window [fftSize]float64        // Hann
	twid   [fftSize / 2]complex128 // FFT twiddles
}

func newFilterBank(rate int) *filterBank {
	fb := &filterBank{}
	mel := func(f float64) float64 { return 2595 * math.Log10(1+f/700) }
	inv := func(m float64) float64 { return 700 * (math.Pow(10, m/2595) - 1) }
	top := min(3800, 0.475*float64(rate))
	m0, m1 := mel(100), mel(top)
	binHz := float64(rate) / fftSize
	edge := func(i int) float64 { return inv(m0+(m1-m0)*float64(i)/(numBands+1)) / binHz }
	for b := range numBands {
		l, c, r := edge(b), edge(b+1), edge(b+2)
		lo := int(math.Ceil(l))
		fb.lo[b] = lo
		for k := lo; float64(k) < r && k <= fftSize/2; k++ {
			var w float64
			if float64(k) <= c {
				w = (float64(k) - l) / (c - l)
			} else {
				w = (r - float64(k)) / (r - c)
			}
			fb.weight[b] = append(fb.weight[b], max(w, 0))
		}
		if len(fb.weight[b]) == 0 { // narrower than a bin: take the nearest
			fb.lo[b] = int(math.Round(c))
			fb.weight[b] = []float64{1}
		}
	}
	for i := range fb.window {
		fb.window[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/fftSize)
	}
	for i := range fb.twid {
		fb.twid[i] = cmplx.Exp(complex(0, -2*math.Pi*float64(i)/fftSize))
	}
	return fb
}

// features returns the band powers of x in frames of fftSize samples every
// hop samples, frame f starting at sample f*hop-fftSize/2+hop/2 so that it
// is centred on samples f*hop to f*hop+hop (zero beyond x). There are
// ceil(len(x)/hop) frames, at least one.
func (fb *filterBank) features(x []float64) []band {
	n := max(1, (len(x)+hop-1)/hop)
	out := make([]band, n)
	var buf [fftSize]complex128
	off := fftSize/2 - hop/2
	for f := range out {
		start := f*hop - off
		for i := range buf {
			v := 0.0
			if j := start + i; j >= 0 && j < len(x) {
				v = x[j]
			}
			buf[i] = complex(v*fb.window[i], 0)
		}
		fb.fft(&buf)
		for b := range numBands {
			var p float64
			for k, w := range fb.weight[b] {
				c := buf[fb.lo[b]+k]
				p += w * (real(c)*real(c) + imag(c)*imag(c))
			}
			out[f][b] = p
		}
	}
	return out
}

// fft transforms buf in place (iterative radix-2 decimation in time).
func (fb *filterBank) fft(buf *[fftSize]complex128) {
	for i, j := 1, 0; i < fftSize; i++ {
		bit := fftSize >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			buf[i], buf[j] = buf[j], buf[i]
		}
	}
	for size := 2; size <= fftSize; size <<= 1 {
		half, step := size/2, fftSize/size
		for start := 0; start < fftSize; start += size {
			for k := range half {
				t := fb.twid[k*step] * buf[start+k+half]
				buf[start+k+half] = buf[start+k] - t
				buf[start+k] += t
			}
		}
	}
}

// percentile returns the p-th percentile (0..1) of x, which it sorts a
// copy of.
func percentile(x []float64, p float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := slices.Clone(x)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

func db(p float64) float64 { return 10 * math.Log10(p) }

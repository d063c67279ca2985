package voice

import (
	"math"
	"math/cmplx"
	"slices"
)

// Signal processing for the decoder: resampling, the energy envelope, and
// log band energies on a mel-spaced filter bank.

// fftSize is the analysis window of the band features (16 ms at 8 kHz).
const fftSize = 128

// numBands is the number of mel-spaced bands in a feature frame.
const numBands = 14

// resample stretches x by linear interpolation so that output sample i
// sits at input position offset + i*step (step > 1 shortens, < 1
// lengthens), the way the simulated audio reader changes its speed.
func resample(x []float64, step, offset float64) []float64 {
	if len(x) < 2 || step <= 0 || offset < 0 || offset > float64(len(x)-1) {
		return append([]float64(nil), x...)
	}
	last := float64(len(x) - 1)
	n := int((last-offset)/step) + 1
	out := make([]float64, n)
	for i := range out {
		pos := offset + float64(i)*step
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

// envelope returns the energy of x in dB (10·log10(mean square + 1), on the
// int16 sample scale) over windows of 2*hop samples every hop samples.
func envelope(x []float64, hop int) []float64 {
	n := (len(x) + hop - 1) / hop
	env := make([]float64, n)
	for i := range env {
		lo, hi := i*hop, min(i*hop+2*hop, len(x))
		var e float64
		for _, v := range x[lo:hi] {
			e += v * v
		}
		env[i] = 10 * math.Log10(e/float64(2*hop)+1)
	}
	return env
}

// filterBank maps FFT bins to mel-spaced bands between 150 Hz and just
// below the Nyquist frequency.
type filterBank struct {
	lo, hi [numBands]int // bin range of each band, hi exclusive
	window [fftSize]float64
	twid   [fftSize / 2]complex128
}

func newFilterBank(rate int) *filterBank {
	fb := &filterBank{}
	mel := func(f float64) float64 { return 2595 * math.Log10(1+f/700) }
	inv := func(m float64) float64 { return 700 * (math.Pow(10, m/2595) - 1) }
	top := min(3800, 0.475*float64(rate))
	m0, m1 := mel(min(150, top/4)), mel(top)
	binHz := float64(rate) / fftSize
	prev := 1
	for b := range numBands {
		hiHz := inv(m0 + (m1-m0)*float64(b+1)/numBands)
		hi := max(int(math.Round(hiHz/binHz)), prev+1)
		hi = min(hi, fftSize/2+1)
		fb.lo[b], fb.hi[b] = min(prev, fftSize/2), hi
		prev = hi
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
// hop samples (the last frames zero-padded), at least one frame.
func (fb *filterBank) features(x []float64, hop int) [][numBands]float64 {
	n := 1
	if len(x) > fftSize {
		n = (len(x)-fftSize+hop-1)/hop + 1
	}
	out := make([][numBands]float64, n)
	var buf [fftSize]complex128
	for f := range out {
		start := f * hop
		for i := range buf {
			v := 0.0
			if start+i < len(x) {
				v = x[start+i]
			}
			buf[i] = complex(v*fb.window[i], 0)
		}
		fb.fft(&buf)
		for b := range numBands {
			var p float64
			for k := fb.lo[b]; k < fb.hi[b]; k++ {
				re, im := real(buf[k]), imag(buf[k])
				p += re*re + im*im
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
	s := append([]float64(nil), x...)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

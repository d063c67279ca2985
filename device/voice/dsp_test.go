package voice

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"
)

func TestFFT(t *testing.T) {
	fb := newFilterBank(analysisRate)
	r := rand.New(rand.NewPCG(1, 1))
	var buf, in [fftSize]complex128
	for i := range in {
		in[i] = complex(r.NormFloat64(), r.NormFloat64())
	}
	buf = in
	fb.fft(&buf)
	for k := range fftSize {
		var want complex128
		for n := range fftSize {
			want += in[n] * cmplx.Exp(complex(0, -2*math.Pi*float64(k*n)/fftSize))
		}
		if cmplx.Abs(buf[k]-want) > 1e-9*fftSize {
			t.Fatalf("bin %d: %v, want %v", k, buf[k], want)
		}
	}
}

func TestFilterBank(t *testing.T) {
	for _, rate := range []int{analysisRate, 16000} {
		fb := newFilterBank(rate)
		for b := range numBands {
			if fb.lo[b] < 1 || fb.hi[b] <= fb.lo[b] || fb.hi[b] > fftSize/2+1 || (b > 0 && fb.lo[b] != fb.hi[b-1]) {
				t.Errorf("%d Hz: band %d covers bins %d to %d", rate, b, fb.lo[b], fb.hi[b])
			}
		}
	}
	// A tone lands in the band that covers its frequency.
	fb := newFilterBank(analysisRate)
	x := make([]float64, 4*fftSize)
	for i := range x {
		x[i] = 1000 * math.Sin(2*math.Pi*1000*float64(i)/analysisRate)
	}
	fr := fb.features(x, hop)[1]
	best := 0
	for b := range numBands {
		if fr[b] > fr[best] {
			best = b
		}
	}
	bin := 1000 * fftSize / analysisRate
	if bin < fb.lo[best] || bin >= fb.hi[best] {
		t.Errorf("1 kHz peaks in band %d (bins %d to %d), want the band of bin %d", best, fb.lo[best], fb.hi[best], bin)
	}
}

func TestResample(t *testing.T) {
	x := []float64{0, 10, 20, 30, 40}
	for _, tc := range []struct {
		step, offset float64
		want         []float64
	}{
		{1, 0, []float64{0, 10, 20, 30, 40}},
		{2, 0, []float64{0, 20, 40}},
		{2, 1, []float64{10, 30}},
		{0.5, 0, []float64{0, 5, 10, 15, 20, 25, 30, 35, 40}},
		{1.5, 0.5, []float64{5, 20, 35}},
	} {
		got := resample(x, tc.step, tc.offset)
		if len(got) != len(tc.want) {
			t.Errorf("resample(step %v, offset %v) = %v, want %v", tc.step, tc.offset, got, tc.want)
			continue
		}
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-9 {
				t.Errorf("resample(step %v, offset %v) = %v, want %v", tc.step, tc.offset, got, tc.want)
				break
			}
		}
	}
}

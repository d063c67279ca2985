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
			if fb.lo[b] < 1 || len(fb.weight[b]) == 0 || fb.lo[b]+len(fb.weight[b]) > fftSize/2+1 || (b > 0 && fb.lo[b] < fb.lo[b-1]) {
				t.Errorf("%d Hz: band %d covers bins %d to %d", rate, b, fb.lo[b], fb.lo[b]+len(fb.weight[b]))
			}
		}
	}
	// A tone lands in the band centred nearest its frequency.
	fb := newFilterBank(analysisRate)
	x := make([]float64, 4*fftSize)
	for i := range x {
		x[i] = 1000 * math.Sin(2*math.Pi*1000*float64(i)/analysisRate)
	}
	fr := fb.features(x)[4]
	best := 0
	for b := range numBands {
		if fr[b] > fr[best] {
			best = b
		}
	}
	bin := 1000 * fftSize / analysisRate
	if bin < fb.lo[best] || bin >= fb.lo[best]+len(fb.weight[best]) {
		t.Errorf("1 kHz peaks in band %d (bins %d to %d), want a band with bin %d", best, fb.lo[best], fb.lo[best]+len(fb.weight[best]), bin)
	}
}

func TestStretch(t *testing.T) {
	x := []float64{0, 10, 20, 30, 40}
	for _, tc := range []struct {
		step float64
		want []float64
	}{
		{1, []float64{0, 10, 20, 30, 40}},
		{2, []float64{0, 20, 40}},
		{0.5, []float64{0, 5, 10, 15, 20, 25, 30, 35, 40}},
		{1.5, []float64{0, 15, 30}},
	} {
		got := stretch(x, tc.step)
		if len(got) != len(tc.want) {
			t.Errorf("stretch(step %v) = %v, want %v", tc.step, got, tc.want)
			continue
		}
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-9 {
				t.Errorf("stretch(step %v) = %v, want %v", tc.step, got, tc.want)
				break
			}
		}
	}
}

// TestResampleSinc: a tone below both Nyquist frequencies keeps its
// amplitude and frequency; one above the output's is removed.
func TestResampleSinc(t *testing.T) {
	tone := func(n, rate int, hz float64) []int16 {
		s := make([]int16, n)
		for i := range s {
			s[i] = int16(10000 * math.Sin(2*math.Pi*hz*float64(i)/float64(rate)))
		}
		return s
	}
	rms := func(s []int16) float64 {
		var p float64
		for _, v := range s[len(s)/4 : 3*len(s)/4] { // away from the edges
			p += float64(v) * float64(v)
		}
		return math.Sqrt(p / float64(len(s)/2))
	}
	for _, tc := range []struct {
		from, to int
		hz       float64
		want     float64 // RMS
	}{
		{22050, 8000, 1000, 10000 / math.Sqrt2},
		{22050, 8000, 6000, 0},
		{8000, 44100, 440, 10000 / math.Sqrt2},
		{48000, 8000, 3000, 10000 / math.Sqrt2},
		{8000, 8000, 440, 10000 / math.Sqrt2},
	} {
		out := Resample(tone(tc.from, tc.from, tc.hz), tc.from, tc.to)
		if want := (tc.from-1)*tc.to/tc.from + 1; len(out) < want-1 || len(out) > want+1 {
			t.Errorf("%d → %d Hz: %d samples from 1 s", tc.from, tc.to, len(out))
		}
		if got := rms(out); math.Abs(got-tc.want) > 0.03*10000 {
			t.Errorf("%d → %d Hz, %v Hz tone: RMS %.0f, want %.0f", tc.from, tc.to, tc.hz, got, tc.want)
		}
		if tc.want == 0 {
			continue
		}
		// Sample by sample, the tone at the new rate (away from the edges).
		want := tone(tc.to, tc.to, tc.hz)
		for i := len(out) / 4; i < 3*len(out)/4; i++ {
			if d := math.Abs(float64(out[i]) - float64(want[i])); d > 150 {
				t.Errorf("%d → %d Hz, %v Hz tone: sample %d is %d, want %d", tc.from, tc.to, tc.hz, i, out[i], want[i])
				break
			}
		}
	}
	if Resample([]int16{1}, 0, 8000) != nil {
		t.Error("Resample from 0 Hz: not nil")
	}
}

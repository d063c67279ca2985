package voice_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/authbench/authbench/device/voice"
	simvoice "github.com/authbench/authbench/sim/code/voice"
)

// These tests are outside package voice so that they can hear the
// simulated reader (sim/code/voice imports this package).

// testPrompts returns the embedded prompts.
func testPrompts(tb testing.TB) *voice.Prompts {
	tb.Helper()
	p, err := voice.DefaultPrompts()
	if err != nil {
		tb.Fatalf("DefaultPrompts: %v", err)
	}
	return p
}

// testDecoder returns the shared default decoder.
func testDecoder(tb testing.TB) *voice.Decoder {
	tb.Helper()
	d, err := voice.DefaultDecoder()
	if err != nil {
		tb.Fatalf("DefaultDecoder: %v", err)
	}
	return d
}

// speak is what the simulated audio reader says for code, as samples.
func speak(tb testing.TB, code, lang string, speed, volume, repeat int) []int16 {
	tb.Helper()
	pcm, err := simvoice.Speak(code, simvoice.Settings{Language: lang, Speed: speed, Volume: volume, Repeat: repeat})
	if err != nil {
		tb.Fatalf("Speak(%s, %s, %d%%, %d%%): %v", code, lang, speed, volume, err)
	}
	s, err := voice.Samples(pcm)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// addNoise adds white Gaussian noise snr dB below the mean power of s
// (which it changes), deterministic from seed.
func addNoise(s []int16, snr float64, seed uint64) {
	var p float64
	for _, v := range s {
		p += float64(v) * float64(v)
	}
	if len(s) == 0 || p == 0 {
		return
	}
	sigma := math.Sqrt(p / float64(len(s)) / math.Pow(10, snr/10))
	r := rand.New(rand.NewPCG(seed, 1))
	for i, v := range s {
		x := float64(v) + r.NormFloat64()*sigma
		s[i] = int16(max(math.MinInt16, min(math.MaxInt16, math.Round(x))))
	}
}

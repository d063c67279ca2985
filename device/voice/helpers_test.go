package voice

import (
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	simvoice "github.com/authbench/authbench/sim/code/voice"
)

// promptDir is where the simulator keeps its prompts (see
// sim/code/voice/README.md).
const promptDir = "../../sim/code/voice"

var loadPrompts = sync.OnceValues(func() (*Prompts, error) {
	return LoadPrompts(os.DirFS(promptDir), "da", "en")
})

func testPrompts(tb testing.TB) *Prompts {
	tb.Helper()
	p, err := loadPrompts()
	if err != nil {
		tb.Fatalf("LoadPrompts(%s): %v", promptDir, err)
	}
	return p
}

var sharedDecoder = sync.OnceValues(func() (*Decoder, error) {
	p, err := loadPrompts()
	if err != nil {
		return nil, err
	}
	return NewDecoder(p, nil)
})

func testDecoder(tb testing.TB) *Decoder {
	tb.Helper()
	d, err := sharedDecoder()
	if err != nil {
		tb.Fatal(err)
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
	s, err := Samples(pcm)
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

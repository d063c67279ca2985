package voice_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/voice"
)

// allDigits is said in every accuracy case, so that each digit of each
// language is heard at every speed, volume and noise level.
const allDigits = "0123456789"

// TestDecodeAccuracy decodes what the simulated reader says at the
// extremes and the middle of its speed and volume ranges, clean and with
// white noise 20 dB below the speech, and requires every digit right. It
// logs the accuracy and the worst distances and ratios per condition.
func TestDecodeAccuracy(t *testing.T) {
	d := testDecoder(t)
	type cond struct {
		lang          string
		speed, volume int
		snr           float64 // 0: clean
	}
	var conds []cond
	for _, lang := range []string{"da", "en"} {
		for _, speed := range []int{50, 100, 200} {
			for _, volume := range []int{10, 50, 100} {
				for _, snr := range []float64{0, 20} {
					conds = append(conds, cond{lang, speed, volume, snr})
				}
			}
		}
	}
	conds = sample(conds, 18, 7)
	var (
		mu              sync.Mutex
		right, total    int
		worst, minRatio = 0.0, math.Inf(1)
	)
	t.Run("cases", func(t *testing.T) {
		for i, c := range conds {
			name := fmt.Sprintf("%s/speed%d/vol%d/snr%v", c.lang, c.speed, c.volume, c.snr)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := speak(t, allDigits, c.lang, c.speed, c.volume, 1)
				if c.snr > 0 {
					addNoise(s, c.snr, uint64(i))
				}
				r, err := d.Decode(context.Background(), s, 8000)
				mu.Lock()
				defer mu.Unlock()
				total += len(allDigits)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				for i := range min(len(r.Digits), len(allDigits)) {
					if r.Digits[i] == allDigits[i] {
						right++
					}
				}
				if r.Digits != allDigits || r.Language != c.lang {
					t.Fatalf("heard %q in %q, want %q in %q", r.Digits, r.Language, allDigits, c.lang)
				}
				if r.Speed < c.speed*95/100 || r.Speed > c.speed*105/100 {
					t.Errorf("speed estimated at %d%%, want about %d%%", r.Speed, c.speed)
				}
				for _, s := range r.Segments {
					worst = max(worst, s.Distance)
					minRatio = min(minRatio, s.RunnerDistance/s.Distance)
				}
			})
		}
	})
	t.Logf("accuracy: %d of %d digits (%.1f %%) over %d recordings; largest distance %.2f (limit %.1f), smallest runner-up ratio %.2f (limit %.1f)",
		right, total, 100*float64(right)/float64(max(total, 1)), len(conds), worst, voice.DefaultMaxDistance, minRatio, voice.DefaultMinRatio)
}

// TestDecodeCodes decodes codes as a reader says them, at speeds and
// volumes between the extremes, repeated, and at other sample rates.
func TestDecodeCodes(t *testing.T) {
	d := testDecoder(t)
	for _, tc := range sample([]struct {
		code          string
		lang          string
		speed, volume int
		repeat        int
		rate          int // resample to this rate; 0: as spoken (8000)
		snr           float64
	}{
		{"924071", "da", 100, 100, 1, 0, 0},
		{"924071", "en", 100, 100, 1, 0, 0},
		{"55555555", "da", 137, 80, 1, 0, 20},
		{"00000000", "en", 63, 30, 1, 0, 20},
		{"386612", "da", 177, 5, 1, 0, 0},
		{"386612", "en", 91, 100, 3, 0, 20},
		{"7410", "da", 120, 60, 5, 0, 0},
		{"830957", "en", 100, 100, 1, 16000, 20},
		{"830957", "da", 75, 100, 2, 44100, 0},
		{"8", "en", 100, 100, 1, 0, 0},
	}, 5, 0) {
		name := fmt.Sprintf("%s/%s/speed%d/vol%d/x%d/%dHz/snr%v", tc.code, tc.lang, tc.speed, tc.volume, tc.repeat, tc.rate, tc.snr)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := speak(t, tc.code, tc.lang, tc.speed, tc.volume, tc.repeat)
			if tc.snr > 0 {
				addNoise(s, tc.snr, 7)
			}
			rate := 8000
			if tc.rate != 0 {
				s, rate = upsample(s, 8000, tc.rate), tc.rate
			}
			r, err := d.Decode(context.Background(), s, rate)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if want := strings.Repeat(tc.code, tc.repeat); r.Digits != want {
				t.Errorf("Digits %q, want %q", r.Digits, want)
			}
			if len(r.Utterances) != tc.repeat {
				t.Fatalf("Utterances %q, want %d times %q", r.Utterances, tc.repeat, tc.code)
			}
			for _, u := range r.Utterances {
				if u != tc.code {
					t.Errorf("Utterances %q, want each %q", r.Utterances, tc.code)
				}
			}
			if len(r.Segments) != len(r.Digits) {
				t.Fatalf("%d segments for %d digits", len(r.Segments), len(r.Digits))
			}
			prev := 0
			for i, sg := range r.Segments {
				if sg.Digit != r.Digits[i] || sg.Start < prev || sg.End <= sg.Start || sg.End > len(s) {
					t.Errorf("segment %d: %+v (after %d, recording of %d)", i, sg, prev, len(s))
				}
				prev = sg.End
			}
		})
	}
}

// upsample returns s at rate to instead of from, by linear interpolation.
func upsample(s []int16, from, to int) []int16 {
	if len(s) == 0 {
		return nil
	}
	out := make([]int16, (len(s)-1)*to/from+1)
	for i := range out {
		pos := float64(i) * float64(from) / float64(to)
		j := int(pos)
		v := float64(s[j])
		if j+1 < len(s) {
			v += (float64(s[j+1]) - v) * (pos - float64(j))
		}
		out[i] = int16(math.Round(v))
	}
	return out
}

// TestDecodeRejects checks that damaged or foreign recordings give an
// error, never digits.
func TestDecodeRejects(t *testing.T) {
	d := testDecoder(t)
	rng := rand.New(rand.NewPCG(42, 43))
	randomSamples := func(n int) []int16 {
		s := make([]int16, n)
		for i := range s {
			s[i] = int16(rng.Uint32())
		}
		return s
	}
	// wordRange returns where the third digit of "0123" is.
	wordRange := func(lang string, speed int) (int, int) {
		two := len(speak(t, "01", lang, speed, 100, 1))
		three := len(speak(t, "012", lang, speed, 100, 1))
		return two + 960*100/speed, three
	}
	type tc struct {
		name string
		pcm  []int16
		want error
	}
	var cases []tc
	cases = append(cases,
		tc{"silence", make([]int16, 16000), voice.ErrNoSpeech},
		tc{"empty", nil, voice.ErrNoSpeech},
		tc{"volume 0", speak(t, "924071", "da", 100, 0, 1), voice.ErrNoSpeech},
		tc{"random samples", randomSamples(16000), voice.ErrUnrecognised},
		tc{"steady tone", tone(16000, 440, 8000), voice.ErrUnrecognised},
	)
	for _, lang := range []string{"da", "en"} {
		for _, speed := range []int{50, 100, 200} {
			pre := fmt.Sprintf("%s/speed%d/", lang, speed)
			// sim/code's CorruptAudio: the middle third of the bytes
			// replaced by noise.
			b := voice.PCM(speak(t, "01234567", lang, speed, 100, 1))
			x := uint32(0x9E3779B9)
			for i := len(b) / 3; i < 2*len(b)/3; i++ {
				x ^= x << 13
				x ^= x >> 17
				x ^= x << 5
				b[i] = byte(x)
			}
			corrupt, _ := voice.Samples(b)
			cases = append(cases, tc{pre + "middle third noise", corrupt, voice.ErrUnrecognised})

			lo, hi := wordRange(lang, speed)
			s := speak(t, "0123", lang, speed, 100, 1)
			rms := rmsOf(s[lo:hi])
			noisy := append([]int16(nil), s...)
			for i := lo; i < hi; i++ {
				noisy[i] = int16(max(-32768, min(32767, rng.NormFloat64()*rms)))
			}
			cases = append(cases, tc{pre + "a digit replaced by noise", noisy, voice.ErrUnrecognised})
			toned := append([]int16(nil), s...)
			copy(toned[lo:hi], tone(hi-lo, 440, rms*math.Sqrt2))
			cases = append(cases, tc{pre + "a digit replaced by a tone", toned, voice.ErrUnrecognised})
			cases = append(cases, tc{pre + "cut in the middle of a digit", s[:lo+(hi-lo)/2], voice.ErrUnrecognised})
		}
	}
	for _, c := range sample(cases, 10, 0) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r, err := d.Decode(context.Background(), c.pcm, 8000)
			if err == nil {
				t.Fatalf("Decode: heard %q, want an error", r.Digits)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Decode: %v, want %v", err, c.want)
			}
			var de *voice.DecodeError
			if !errors.As(err, &de) || de.End < de.Start || de.End > len(c.pcm) {
				t.Errorf("error %#v: want a *DecodeError within the recording", err)
			}
			t.Logf("%v", err)
		})
	}
}

func tone(n int, hz, amp float64) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(amp * math.Sin(2*math.Pi*hz*float64(i)/8000))
	}
	return s
}

func rmsOf(s []int16) float64 {
	var p float64
	for _, v := range s {
		p += float64(v) * float64(v)
	}
	return math.Sqrt(p / float64(max(len(s), 1)))
}

func TestDecodeErrors(t *testing.T) {
	d := testDecoder(t)
	ctx := context.Background()
	s := speak(t, "924071", "da", 100, 100, 1)
	if _, err := d.Decode(ctx, s, 0); !errors.Is(err, device.ErrNotSupported) {
		t.Errorf("rate 0: %v, want ErrNotSupported", err)
	}
	if _, err := d.Decode(ctx, s, voice.MaxSampleRate+1); !errors.Is(err, device.ErrNotSupported) {
		t.Errorf("rate too high: %v, want ErrNotSupported", err)
	}
	short, err := voice.NewDecoder(testPrompts(t), &voice.Options{MaxDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := short.Decode(ctx, s, 8000); !errors.Is(err, device.ErrMessageTooLarge) {
		t.Errorf("too long: %v, want ErrMessageTooLarge", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Decode(cctx, s, 8000); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v, want context.Canceled", err)
	}
	if _, err := d.DecodeAudio(ctx, &device.Audio{SampleRate: 8000, PCM: []byte{1, 2, 3}}); !errors.Is(err, voice.ErrFormat) {
		t.Errorf("odd PCM: %v, want ErrFormat", err)
	}
	if _, err := d.DecodeAudio(ctx, nil); !errors.Is(err, voice.ErrNoSpeech) {
		t.Errorf("nil audio: %v, want ErrNoSpeech", err)
	}
	r, err := d.DecodeAudio(ctx, &device.Audio{SampleRate: 8000, PCM: voice.PCM(s)})
	if err != nil || r.Digits != "924071" {
		t.Errorf("DecodeAudio: %+v, %v", r, err)
	}
}

func TestNewDecoder(t *testing.T) {
	p := testPrompts(t)
	if _, err := voice.NewDecoder(nil, nil); err == nil {
		t.Error("NewDecoder(nil): no error")
	}
	if _, err := voice.NewDecoder(&voice.Prompts{SampleRate: 8000}, nil); err == nil {
		t.Error("NewDecoder(no sets): no error")
	}
	if _, err := voice.NewDecoder(&voice.Prompts{SampleRate: 0, Sets: p.Sets}, nil); err == nil {
		t.Error("NewDecoder(rate 0): no error")
	}
	if _, err := voice.NewDecoder(p, &voice.Options{Language: "fr"}); !errors.Is(err, device.ErrNotSupported) {
		t.Errorf("NewDecoder(fr): %v, want ErrNotSupported", err)
	}
	for name, mod := range map[string]func(*voice.PromptSet){
		"no example":    func(s *voice.PromptSet) { s.Digits[3] = nil },
		"empty example": func(s *voice.PromptSet) { s.Digits[3] = [][]int16{{}} },
		"speed 0":       func(s *voice.PromptSet) { s.Speed = 0 },
		"no language":   func(s *voice.PromptSet) { s.Language = "" },
	} {
		q := p.Clone()
		mod(&q.Sets[0])
		if _, err := voice.NewDecoder(q, nil); err == nil {
			t.Errorf("NewDecoder(%s): no error", name)
		}
	}
	twice := p.Clone()
	twice.Sets[1].Language = twice.Sets[0].Language
	if _, err := voice.NewDecoder(twice, nil); err == nil {
		t.Error("NewDecoder(two sets of one language and speed): no error")
	}

	// One language only: English speech is then not recognised.
	da, err := voice.NewDecoder(p, &voice.Options{Language: "da"})
	if err != nil {
		t.Fatal(err)
	}
	if got := da.Languages(); len(got) != 1 || got[0] != "da" {
		t.Errorf("Languages() = %q", got)
	}
	ctx := context.Background()
	if r, err := da.Decode(ctx, speak(t, "924071", "da", 100, 100, 1), 8000); err != nil || r.Digits != "924071" {
		t.Errorf("Danish decoder, Danish speech: %+v, %v", r, err)
	}
	if r, err := da.Decode(ctx, speak(t, "924071", "en", 100, 100, 1), 8000); !errors.Is(err, voice.ErrUnrecognised) {
		t.Errorf("Danish decoder, English speech: %+v, %v; want ErrUnrecognised", r, err)
	}
}

// TestDecodeConcurrent runs decoders in parallel (for the race detector
// and the shared template cache).
func TestDecodeConcurrent(t *testing.T) {
	d, err := voice.NewDecoder(testPrompts(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	codes := []string{"1111", "2222", "3333", "4444"}
	var wg sync.WaitGroup
	errs := make(chan error, len(codes))
	for i, code := range codes {
		s := speak(t, code, []string{"da", "en"}[i%2], 120+20*i, 100, 1)
		wg.Go(func() {
			r, err := d.Decode(context.Background(), s, 8000)
			if err == nil && r.Digits != code {
				err = fmt.Errorf("heard %q, want %q", r.Digits, code)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// sample returns every nth case from first on under the race detector,
// all otherwise.
func sample[T any](cases []T, n, first int) []T {
	if !raceEnabled {
		return cases
	}
	var out []T
	for i := first; i < len(cases); i += n {
		out = append(out, cases[i])
	}
	return out
}

// BenchmarkDecode decodes a six-digit code of the simulated reader with
// the default decoder (both languages, the whole speed search), clean and
// with noise 20 dB below the speech.
func BenchmarkDecode(b *testing.B) {
	d := testDecoder(b)
	for _, snr := range []float64{0, 20} {
		b.Run(fmt.Sprintf("snr%v", snr), func(b *testing.B) {
			s := speak(b, "924071", "da", 100, 100, 1)
			if snr > 0 {
				addNoise(s, snr, 1)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := d.Decode(context.Background(), s, 8000); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

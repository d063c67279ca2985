package voice

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/internal/testenv"
)

// wavFiles returns the WAV files of the repository's testdata/voice.
func wavFiles(tb testing.TB) map[string][]byte {
	return testenv.Files(tb, "../../testdata/voice/*.wav")
}

func TestParseWAVFiles(t *testing.T) {
	for name, b := range wavFiles(t) {
		t.Run(name, func(t *testing.T) {
			a, err := ParseWAV(b)
			if err != nil {
				t.Fatalf("ParseWAV: %v", err)
			}
			enc, err := EncodeWAV(a)
			if err != nil {
				t.Fatalf("EncodeWAV: %v", err)
			}
			canonical := len(b) == HeaderLen+len(a.PCM) && bytes.Equal(b[12:16], []byte("fmt "))
			if canonical && !bytes.Equal(enc, b) {
				t.Errorf("canonical file does not re-encode to itself:\n got %x\nwant %x", enc[:HeaderLen], b[:HeaderLen])
			}
			if !canonical && len(enc) != HeaderLen+len(a.PCM) {
				t.Errorf("re-encoded to %d bytes, want the canonical %d", len(enc), HeaderLen+len(a.PCM))
			}
		})
	}
}

func TestParseWAVKnown(t *testing.T) {
	files := wavFiles(t)
	a, err := ParseWAV(files["tiny.wav"])
	if err != nil {
		t.Fatal(err)
	}
	s, _ := Samples(a.PCM)
	if a.SampleRate != 8000 || !equalInt16(s, []int16{0, 1, -1, 32767, -32768}) {
		t.Errorf("tiny.wav: %d Hz %v", a.SampleRate, s)
	}
	a, err = ParseWAV(files["list-chunk.wav"]) // a LIST chunk of odd length before fmt
	if err != nil {
		t.Fatal(err)
	}
	s, _ = Samples(a.PCM)
	if a.SampleRate != 16000 || !equalInt16(s, []int16{5, -5}) {
		t.Errorf("list-chunk.wav: %d Hz %v", a.SampleRate, s)
	}
}

func equalInt16(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// canonicalWAV returns a canonical file with rate and pcm; edit edits its
// bytes before the RIFF size is fixed (fix: recompute it).
func canonicalWAV(rate int, pcm []byte, edit func([]byte) []byte, fix bool) []byte {
	b, err := EncodeWAV(&device.Audio{SampleRate: rate, PCM: pcm})
	if err != nil {
		panic(err)
	}
	if edit != nil {
		b = edit(b)
	}
	if fix && len(b) >= 8 {
		binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	}
	return b
}

func TestParseWAVErrors(t *testing.T) {
	pcm := []byte{1, 0, 2, 0}
	put16 := func(off int, v uint16) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint16(b[off:], v); return b }
	}
	put32 := func(off int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint32(b[off:], v); return b }
	}
	for _, tc := range []struct {
		name   string
		b      []byte
		offset int
		reason string
	}{
		{"empty", nil, 0, "too short"},
		{"not RIFF", canonicalWAV(8000, pcm, func(b []byte) []byte { copy(b, "RIFX"); return b }, true), 0, "no RIFF tag"},
		{"not WAVE", canonicalWAV(8000, pcm, func(b []byte) []byte { copy(b[8:], "AVI "); return b }, true), 8, "not WAVE"},
		{"RIFF size too big", canonicalWAV(8000, pcm, put32(4, 100), false), 4, "RIFF size"},
		{"trailing byte", append(canonicalWAV(8000, pcm, nil, false), 0), 4, "RIFF size"},
		{"truncated", canonicalWAV(8000, pcm, func(b []byte) []byte { return b[:len(b)-2] }, true), 36, "runs past the end"},
		{"stereo", canonicalWAV(8000, pcm, put16(22, 2), true), 22, "channels"},
		{"8 bit", canonicalWAV(8000, pcm, put16(34, 8), true), 34, "bits"},
		{"float", canonicalWAV(8000, pcm, put16(20, 3), true), 20, "format tag"},
		{"rate 0", canonicalWAV(8000, pcm, put32(24, 0), true), 24, "sample rate"},
		{"byte rate", canonicalWAV(8000, pcm, put32(28, 8000), true), 28, "byte rate"},
		{"block align", canonicalWAV(8000, pcm, put16(32, 4), true), 32, "block align"},
		{"fmt of 14 bytes", canonicalWAV(8000, pcm, func(b []byte) []byte {
			return append(append(append([]byte{}, b[:16]...), 14, 0, 0, 0), append(b[20:34], b[36:]...)...)
		}, true), 16, "fmt chunk of 14"},
		{"odd data", canonicalWAV(8000, []byte{1, 2, 3, 0}, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[40:], 3)
			return b // the last byte is now the pad byte
		}, true), 40, "odd length"},
		{"no data", canonicalWAV(8000, pcm, func(b []byte) []byte { return b[:36] }, true), 36, "no data chunk"},
		{"no fmt", canonicalWAV(8000, pcm, func(b []byte) []byte { return append(b[:12], b[36:]...) }, true), 12, "before the fmt"},
		{"two data", canonicalWAV(8000, pcm, func(b []byte) []byte { return append(b, b[36:]...) }, true), 48, "second data"},
		{"two fmt", canonicalWAV(8000, pcm, func(b []byte) []byte {
			return append(append(append([]byte{}, b[:36]...), b[12:36]...), b[36:]...)
		}, true), 36, "second fmt"},
		{"missing pad byte", canonicalWAV(8000, pcm, func(b []byte) []byte {
			return append(b, 'x', 'x', 'x', 'x', 1, 0, 0, 0, 9)
		}, true), 57, "pad byte"},
		{"short chunk header", canonicalWAV(8000, pcm, func(b []byte) []byte { return append(b, 'x', 'x') }, true), 48, "truncated chunk header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseWAV(tc.b)
			if a != nil || err == nil {
				t.Fatalf("ParseWAV = %v, %v; want nil and an error", a, err)
			}
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is not a *FormatError wrapping ErrFormat", err)
			}
			if fe.Offset != tc.offset || !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("error at %d %q, want at %d containing %q", fe.Offset, fe.Reason, tc.offset, tc.reason)
			}
		})
	}
}

func TestWAVRoundTrip(t *testing.T) {
	for _, a := range []*device.Audio{
		{SampleRate: 8000, PCM: nil},
		{SampleRate: 1, PCM: []byte{0xFF, 0x7F}},
		{SampleRate: MaxSampleRate, PCM: PCM([]int16{-32768, 0, 32767})},
	} {
		var buf bytes.Buffer
		if err := WriteWAV(&buf, a); err != nil {
			t.Fatalf("WriteWAV(%d Hz): %v", a.SampleRate, err)
		}
		if buf.Len() != HeaderLen+len(a.PCM) {
			t.Errorf("%d bytes, want %d", buf.Len(), HeaderLen+len(a.PCM))
		}
		got, err := ReadWAV(&buf)
		if err != nil {
			t.Fatalf("ReadWAV: %v", err)
		}
		if got.SampleRate != a.SampleRate || !bytes.Equal(got.PCM, a.PCM) {
			t.Errorf("round trip: %d Hz %x, want %d Hz %x", got.SampleRate, got.PCM, a.SampleRate, a.PCM)
		}
	}
}

func TestEncodeWAVErrors(t *testing.T) {
	for _, a := range []*device.Audio{
		nil,
		{SampleRate: 0},
		{SampleRate: MaxSampleRate + 1},
		{SampleRate: 8000, PCM: []byte{1}},
	} {
		if b, err := EncodeWAV(a); b != nil || !errors.Is(err, ErrFormat) {
			t.Errorf("EncodeWAV(%+v) = %x, %v; want nil and ErrFormat", a, b, err)
		}
		if err := WriteWAV(io.Discard, a); !errors.Is(err, ErrFormat) {
			t.Errorf("WriteWAV(%+v) = %v; want ErrFormat", a, err)
		}
	}
	werr := errors.New("disk full")
	if err := WriteWAV(failWriter{werr}, &device.Audio{SampleRate: 8000}); !errors.Is(err, werr) {
		t.Errorf("WriteWAV to a failing writer: %v", err)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestReadWAVLimits(t *testing.T) {
	big := io.LimitReader(zeros{}, MaxWAVSize+10)
	if _, err := ReadWAV(big); !errors.Is(err, ErrFormat) {
		t.Errorf("ReadWAV(too big) = %v, want ErrFormat", err)
	}
	rerr := errors.New("unplugged")
	if _, err := ReadWAV(io.MultiReader(strings.NewReader("RIFF"), failReader{rerr})); !errors.Is(err, rerr) {
		t.Errorf("ReadWAV(failing reader) = %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type failReader struct{ err error }

func (r failReader) Read([]byte) (int, error) { return 0, r.err }

func TestSamples(t *testing.T) {
	s, err := Samples([]byte{0x01, 0x00, 0xFF, 0xFF, 0x00, 0x80})
	if err != nil || !equalInt16(s, []int16{1, -1, -32768}) {
		t.Errorf("Samples = %v, %v", s, err)
	}
	if !bytes.Equal(PCM(s), []byte{0x01, 0x00, 0xFF, 0xFF, 0x00, 0x80}) {
		t.Errorf("PCM(Samples(b)) != b")
	}
	if s, err := Samples([]byte{1}); s != nil || !errors.Is(err, ErrFormat) {
		t.Errorf("Samples(odd) = %v, %v", s, err)
	}
}

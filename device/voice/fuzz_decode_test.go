package voice_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/authbench/authbench/device/voice"
)

// FuzzDecode feeds arbitrary PCM to the decoder: no panic, and a result
// is consistent (one segment per digit, in order, within the recording).
func FuzzDecode(f *testing.F) {
	d := testDecoder(f)
	names, _ := filepath.Glob("../../testdata/voice/*.wav")
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if a, err := voice.ParseWAV(b); err == nil {
			f.Add(a.PCM, uint16(a.SampleRate))
		}
	}
	f.Add(voice.PCM(speak(f, "31", "da", 150, 60, 1)), uint16(8000))
	f.Add(voice.PCM(speak(f, "0", "en", 200, 100, 2)), uint16(8000))
	f.Add([]byte{0, 0, 0xFF, 0x7F, 0, 0x80}, uint16(11025))
	f.Fuzz(func(t *testing.T, pcm []byte, rate uint16) {
		if len(pcm) > 64000 {
			pcm = pcm[:64000] // 4 s at 8 kHz: enough to find bugs, quick to try
		}
		s, err := voice.Samples(pcm[:len(pcm)&^1])
		if err != nil {
			t.Fatal(err)
		}
		r, err := d.Decode(context.Background(), s, int(rate))
		if err != nil {
			if r != nil {
				t.Fatal("Decode returned a result and an error")
			}
			return
		}
		if len(r.Segments) != len(r.Digits) || len(r.Digits) == 0 {
			t.Fatalf("%d segments for %q", len(r.Segments), r.Digits)
		}
		prev := 0
		for i, sg := range r.Segments {
			if sg.Digit != r.Digits[i] || sg.Start < prev || sg.End < sg.Start || sg.End > len(s) {
				t.Fatalf("segment %d %+v out of order or range (recording of %d)", i, sg, len(s))
			}
			prev = sg.Start
		}
	})
}

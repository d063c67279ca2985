package voice

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzParseWAV: ParseWAV never panics, and what it accepts encodes to the
// canonical form, which parses to the same audio and encodes to itself; a
// canonical input comes back byte for byte.
func FuzzParseWAV(f *testing.F) {
	for _, b := range wavFiles(f) {
		f.Add(b)
	}
	for _, name := range []string{"prompts/da/0.wav", "prompts/en/7.wav"} {
		b, err := promptFiles.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("RIFF\x04\x00\x00\x00WAVE"))
	f.Add(canonicalWAV(8000, []byte{1, 2}, func(b []byte) []byte {
		return append(b, 'f', 'a', 'c', 't', 4, 0, 0, 0, 1, 2, 3, 4)
	}, true))
	f.Add(canonicalWAV(22050, nil, func(b []byte) []byte {
		// an 18-byte fmt chunk with cbSize 0
		return append(append(append([]byte{}, b[:16]...), append([]byte{18, 0, 0, 0}, b[20:36]...)...), append([]byte{0, 0}, b[36:]...)...)
	}, true))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseWAV(b)
		if err != nil {
			if a != nil {
				t.Fatal("ParseWAV returned audio and an error")
			}
			return
		}
		enc, err := EncodeWAV(a)
		if err != nil {
			t.Fatalf("EncodeWAV of parsed audio: %v", err)
		}
		again, err := ParseWAV(enc)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v", err)
		}
		if again.SampleRate != a.SampleRate || !bytes.Equal(again.PCM, a.PCM) {
			t.Fatal("canonical form parses to other audio")
		}
		if enc2, _ := EncodeWAV(again); !bytes.Equal(enc2, enc) {
			t.Fatal("canonical form does not encode to itself")
		}
		if len(b) == HeaderLen+len(a.PCM) && binary.LittleEndian.Uint32(b[16:20]) == 16 && !bytes.Equal(enc, b) {
			t.Fatalf("canonical input %x re-encodes to %x", b[:HeaderLen], enc[:HeaderLen])
		}
	})
}

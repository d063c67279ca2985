package voice

import (
	"bytes"
	"context"
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

// FuzzDecode feeds arbitrary PCM to the decoder: no panic, and a result
// is consistent (one segment per digit, in order, within the recording).
func FuzzDecode(f *testing.F) {
	d := testDecoder(f)
	for _, b := range wavFiles(f) {
		if a, err := ParseWAV(b); err == nil {
			f.Add(a.PCM, uint16(a.SampleRate))
		}
	}
	f.Add(PCM(speak(f, "31", "da", 150, 60, 1)), uint16(8000))
	f.Add(PCM(speak(f, "0", "en", 200, 100, 2)), uint16(8000))
	f.Add([]byte{0, 0, 0xFF, 0x7F, 0, 0x80}, uint16(11025))
	f.Fuzz(func(t *testing.T, pcm []byte, rate uint16) {
		if len(pcm) > 64000 {
			pcm = pcm[:64000] // 4 s at 8 kHz: enough to find bugs, quick to try
		}
		s, err := Samples(pcm[:len(pcm)&^1])
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

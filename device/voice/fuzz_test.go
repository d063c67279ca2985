package voice

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"testing"
	"testing/fstest"

	"github.com/authbench/authbench/device"
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

// FuzzLoadPrompts: any manifest gives prompts or an error, never a panic;
// prompts it gives write out (Files) to a folder that loads to the same.
func FuzzLoadPrompts(f *testing.F) {
	if b, err := os.ReadFile("../../testdata/voice/manifest.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"format":1,"sample_rate":8000,"reader":{},"sets":[{"dir":"da-100","language":"da","speed":100,"examples":[1,1,1,1,1,1,1,1,1,2]}]}`))
	f.Add([]byte(`{"format":1,"sets":[{"dir":"da-100","language":"da","speed":100,"examples":[1,1,1,1,1,1,1,1,1,1],"noise":"noise.wav"}]}`))
	f.Add([]byte(`{"format":1,"sets":[{"dir":"..","language":"da","speed":100,"examples":[1,1,1,1,1,1,1,1,1,1]}]}`))
	wav, _ := EncodeWAV(&device.Audio{SampleRate: 8000, PCM: []byte{1, 0, 2, 0}})
	base := fstest.MapFS{"da-100/noise.wav": {Data: wav}, "da-100/9-2.wav": {Data: wav}}
	for d := range 10 {
		base[fmt.Sprintf("da-100/%d-1.wav", d)] = &fstest.MapFile{Data: wav}
	}
	f.Fuzz(func(t *testing.T, manifest []byte) {
		fsys := fstest.MapFS{ManifestName: {Data: manifest}}
		maps.Copy(fsys, base)
		p, err := LoadPrompts(fsys)
		if err != nil {
			if p != nil {
				t.Fatal("LoadPrompts returned prompts and an error")
			}
			return
		}
		files, err := p.Files()
		if err != nil {
			t.Fatalf("Files of loaded prompts: %v", err)
		}
		again := fstest.MapFS{}
		for _, fl := range files {
			again[fl.Name] = &fstest.MapFile{Data: fl.Data}
		}
		q, err := LoadPrompts(again)
		if err != nil {
			t.Fatalf("written prompts do not load: %v", err)
		}
		if len(q.Sets) != len(p.Sets) || q.SampleRate != p.SampleRate || q.Reader != p.Reader {
			t.Fatalf("written prompts load to %+v, were %+v", q, p)
		}
	})
}

// FuzzCalibrate: recordings of any bytes, with any code, give prompts or
// an error, never a panic.
func FuzzCalibrate(f *testing.F) {
	for _, b := range wavFiles(f) {
		if a, err := ParseWAV(b); err == nil {
			f.Add(a.PCM, "3")
		}
	}
	f.Add([]byte{0, 0, 0xFF, 0x7F, 0, 0x80}, "12")
	f.Fuzz(func(t *testing.T, pcm []byte, code string) {
		pcm = pcm[:min(len(pcm), 32000)&^1]
		c := NewCalibrator(&CalibrateOptions{Examples: 1})
		for i := range 3 {
			part := pcm[i*len(pcm)/3 : (i+1)*len(pcm)/3]
			_ = c.Add("da", 100, 100, code, &device.Audio{SampleRate: 8000, PCM: part[:len(part)&^1]})
		}
		p, rep, err := c.Prompts(context.Background(), ReaderInfo{})
		if err == nil && (p == nil || rep == nil || p.validate() != nil) {
			t.Fatalf("Prompts gave %+v, %+v without an error", p, rep)
		}
	})
}

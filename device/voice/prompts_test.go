package voice

import (
	"errors"
	"io/fs"
	"os"
	"testing"
	"testing/fstest"
	"time"

	"github.com/authbench/authbench/device"
)

// embeddedPrompts returns the embedded prompts directory as an fs.FS.
func embeddedPrompts(tb testing.TB) fs.FS {
	tb.Helper()
	sub, err := fs.Sub(promptFiles, "prompts")
	if err != nil {
		tb.Fatal(err)
	}
	return sub
}

func TestDefaultPrompts(t *testing.T) {
	p, err := DefaultPrompts()
	if err != nil {
		t.Fatal(err)
	}
	if p.SampleRate != 8000 || len(p.Sets) != 2 {
		t.Fatalf("DefaultPrompts: %d Hz, %d sets", p.SampleRate, len(p.Sets))
	}
	total := 0
	for _, lang := range []string{"da", "en"} {
		set := p.Set(lang, 100)
		if set == nil {
			t.Fatalf("DefaultPrompts: no %q at 100 %%", lang)
		}
		for d, ex := range set.Digits {
			if len(ex) != 1 {
				t.Fatalf("%s/%d: %d examples, want 1", lang, d, len(ex))
			}
			// Between 0.1 s and 1 s of speech.
			if n := len(ex[0]); n < 800 || n > 8000 {
				t.Errorf("%s/%d: %d samples", lang, d, n)
			}
			total += 2 * len(ex[0])
		}
	}
	if total > 300_000 {
		t.Errorf("prompts hold %d bytes of PCM, want < 300 KB", total)
	}
	// Each call returns its own copy.
	p.Set("da", 100).Digits[1][0][0] = 12345
	p.Sets = p.Sets[:1]
	q, err := DefaultPrompts()
	if err != nil || q.Set("da", 100).Digits[1][0][0] == 12345 || len(q.Sets) != 2 {
		t.Errorf("DefaultPrompts shares its result with an earlier caller")
	}

	d1, err := DefaultDecoder()
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := DefaultDecoder()
	if d1 != d2 {
		t.Error("DefaultDecoder built twice")
	}
	if got := d1.Languages(); len(got) != 2 || got[0] != "da" || got[1] != "en" {
		t.Errorf("DefaultDecoder languages %q, want [da en]", got)
	}
}

func TestLoadPrompts(t *testing.T) {
	p, err := LoadPrompts(embeddedPrompts(t), "da", "en")
	if err != nil {
		t.Fatal(err)
	}
	if p.SampleRate != 8000 || len(p.Sets) != 2 {
		t.Fatalf("LoadPrompts: %d Hz, %d sets", p.SampleRate, len(p.Sets))
	}
	all, err := LoadPrompts(embeddedPrompts(t))
	if err != nil {
		t.Fatal(err)
	}
	if all.Set("da", 100) == nil || len(all.Sets) != 2 {
		t.Errorf("LoadPrompts without languages found %d sets", len(all.Sets))
	}
	// The files on disk are the ones embedded.
	disk, err := LoadPrompts(os.DirFS("prompts"))
	if err != nil || disk.SampleRate != all.SampleRate || len(disk.Sets) != len(all.Sets) {
		t.Errorf("LoadPrompts(prompts directory) = %+v, %v", disk, err)
	}

	wav := func(rate int) *fstest.MapFile {
		b, _ := EncodeWAV(&device.Audio{SampleRate: rate, PCM: []byte{1, 0}})
		return &fstest.MapFile{Data: b}
	}
	full := fstest.MapFS{}
	for d := range 10 {
		full["xx/"+string(rune('0'+d))+".wav"] = wav(8000)
	}
	if p, err := LoadPrompts(full); err != nil || len(p.Set("xx", 100).Digits[9]) != 1 {
		t.Errorf("LoadPrompts(MapFS) = %+v, %v", p, err)
	}
	if _, err := LoadPrompts(full, "yy"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing language: %v, want fs.ErrNotExist", err)
	}
	if _, err := LoadPrompts(fstest.MapFS{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no language: %v, want fs.ErrNotExist", err)
	}
	clone := func(m fstest.MapFS) fstest.MapFS {
		c := fstest.MapFS{}
		for k, v := range m {
			c[k] = v
		}
		return c
	}
	missing := clone(full)
	delete(missing, "xx/7.wav")
	if _, err := LoadPrompts(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing digit: %v, want fs.ErrNotExist", err)
	}
	mixed := clone(full)
	mixed["xx/3.wav"] = wav(16000)
	if _, err := LoadPrompts(mixed); !errors.Is(err, ErrFormat) {
		t.Errorf("mixed rates: %v, want ErrFormat", err)
	}
	mixed["xx/3.wav"] = &fstest.MapFile{Data: []byte("RIFF")}
	if _, err := LoadPrompts(mixed); !errors.Is(err, ErrFormat) {
		t.Errorf("bad file: %v, want ErrFormat", err)
	}
	empty, _ := EncodeWAV(&device.Audio{SampleRate: 8000})
	mixed["xx/3.wav"] = &fstest.MapFile{Data: empty}
	if _, err := LoadPrompts(mixed); !errors.Is(err, ErrFormat) {
		t.Errorf("empty prompt: %v, want ErrFormat", err)
	}

	// Several examples, and a speed in the folder name.
	multi := fstest.MapFS{}
	for d := range 10 {
		for _, n := range []string{"1", "2", "3"} {
			multi["da-150/"+string(rune('0'+d))+"-"+n+".wav"] = wav(8000)
		}
	}
	if p, err := LoadPrompts(multi); err != nil || p.Set("da", 150) == nil || len(p.Set("da", 150).Digits[4]) != 3 {
		t.Errorf("LoadPrompts(da-150, 3 examples) = %+v, %v", p, err)
	}
}

// TestPromptFiles: Files and LoadPrompts are inverses, the manifest keeps
// where the prompts come from, and a folder that disagrees with its
// manifest is refused.
func TestPromptFiles(t *testing.T) {
	p := &Prompts{SampleRate: 8000, Reader: ReaderInfo{Serial: "0123456789", Model: "m", Firmware: "1.2", Learnt: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}}
	for _, key := range []struct {
		lang  string
		speed int
	}{{"da", 100}, {"en", 150}} {
		s := PromptSet{Language: key.lang, Speed: key.speed, Volume: 80, Presses: 12, Noise: []int16{1, -1, 2}}
		for d := range s.Digits {
			for e := range d%3 + 1 {
				s.Digits[d] = append(s.Digits[d], []int16{int16(d), int16(e), int16(key.speed)})
			}
		}
		p.Sets = append(p.Sets, s)
	}
	files, err := p.Files()
	if err != nil {
		t.Fatal(err)
	}
	m := fstest.MapFS{}
	for _, f := range files {
		m[f.Name] = &fstest.MapFile{Data: f.Data}
	}
	if m[ManifestName] == nil || m["en-150/9-1.wav"] == nil || m["da-100/noise.wav"] == nil {
		t.Fatalf("files %v", files)
	}
	q, err := LoadPrompts(m)
	if err != nil {
		t.Fatal(err)
	}
	if q.Reader != p.Reader || q.SampleRate != 8000 || len(q.Sets) != 2 {
		t.Fatalf("loaded %+v", q)
	}
	for i, s := range p.Sets {
		r := q.Sets[i]
		if r.Language != s.Language || r.Speed != s.Speed || r.Volume != s.Volume || r.Presses != s.Presses || !equalInt16(r.Noise, s.Noise) {
			t.Errorf("set %d: %+v, want %+v", i, r, s)
		}
		for d := range s.Digits {
			if len(r.Digits[d]) != len(s.Digits[d]) {
				t.Fatalf("set %d digit %d: %d examples, want %d", i, d, len(r.Digits[d]), len(s.Digits[d]))
			}
			for e := range s.Digits[d] {
				if !equalInt16(r.Digits[d][e], s.Digits[d][e]) {
					t.Errorf("set %d digit %d example %d differs", i, d, e)
				}
			}
		}
	}

	gone := fstest.MapFS{}
	for k, v := range m {
		gone[k] = v
	}
	delete(gone, "en-150/2-3.wav")
	if _, err := LoadPrompts(gone); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a listed example missing: %v, want fs.ErrNotExist", err)
	}
	for _, bad := range []string{`{`, `{"format":2}`, `{"format":1,"sets":[{"dir":"../x","examples":[1,1,1,1,1,1,1,1,1,1]}]}`,
		`{"format":1,"sample_rate":8000,"sets":[{"dir":"da-100","language":"da","speed":100,"examples":[0,1,1,1,1,1,1,1,1,1]}]}`,
		`{"format":1,"unknown":true}`} {
		b := fstest.MapFS{}
		for k, v := range m {
			b[k] = v
		}
		b[ManifestName] = &fstest.MapFile{Data: []byte(bad)}
		if _, err := LoadPrompts(b); !errors.Is(err, ErrFormat) {
			t.Errorf("manifest %s: %v, want ErrFormat", bad, err)
		}
	}
	if _, err := (&Prompts{SampleRate: 8000}).Files(); err == nil {
		t.Error("Files of no sets: no error")
	}
}

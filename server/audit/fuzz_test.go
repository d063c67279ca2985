package audit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seeds adds every file matching pattern under the repository's
// testdata/audit to the corpus of f.
func seeds(f *testing.F, pattern string, add func([]byte)) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "audit", pattern))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// FuzzParseRecord: ParseRecord never panics, refuses with ErrMalformed,
// and what it accepts encodes back to exactly the input; checking the
// record never panics either.
func FuzzParseRecord(f *testing.F) {
	seeds(f, "records/*.hex", func(b []byte) {
		raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	})
	for _, r := range []Record{golden, {}} {
		b, _ := r.MarshalBinary()
		f.Add(b)
	}
	f.Add(make([]byte, 32+1+8+8+7*4+4+32))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if err != nil {
			if r != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseRecord = %+v, %v", r, err)
			}
			return
		}
		out, err := r.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip:\n%x\n%x", b, out)
		}
		var c Checker
		first := r.Version == Version1 || r.PrevHash.IsZero() && r.Seq == 1
		if br := c.Check(*r); (br == nil) != (first && r.ComputeHash() == r.Hash) {
			t.Fatalf("Check = %v", br)
		}
	})
}

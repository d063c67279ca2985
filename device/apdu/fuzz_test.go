package apdu_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/apdu/apdutest"
)

// seeds returns the hex files matching pattern under testdata/apdu.
func seeds(f *testing.F, pattern string) [][]byte {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("../../testdata/apdu", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s: %v", pattern, err)
	}
	var out [][]byte
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, unhex(f, string(text)))
	}
	return out
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range seeds(f, "command/*.hex") {
		f.Add(s)
	}
	f.Add([]byte{0x00, 0xa4, 0x04, 0x00, 0x00, 0x00})
	f.Add([]byte{0x80, 0x10, 0x80, 0x00, 0x00, 0x00, 0x01, 0x04})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := apdu.ParseCommand(b)
		if err != nil {
			if c != nil {
				t.Fatalf("error %v with a non-nil command", err)
			}
			return
		}
		enc, err := c.Encode()
		if err != nil {
			t.Fatalf("Encode of a parsed command: %v", err)
		}
		ext, err := c.EncodeExtended()
		if err != nil {
			t.Fatalf("EncodeExtended of a parsed command: %v", err)
		}
		if !bytes.Equal(enc, b) && !bytes.Equal(ext, b) {
			// Only the U2F form `00 00 00 Le1 Le2` is read leniently; it
			// must come back in its canonical form.
			if len(b) != 9 || b[4] != 0 || b[5] != 0 || b[6] != 0 {
				t.Fatalf("%x parsed to %+v, which encodes to %x / %x", b, c, enc, ext)
			}
		}
		again, err := apdu.ParseCommand(enc)
		if err != nil || !sameCommand(again, c) {
			t.Fatalf("re-parse of %x: %+v, %v; want %+v", enc, again, err, c)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	for _, s := range seeds(f, "response/*.hex") {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{0x90})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := apdu.ParseResponse(b)
		if err != nil {
			if r != nil || len(b) >= 2 {
				t.Fatalf("ParseResponse(%x) = %v, %v", b, r, err)
			}
			return
		}
		if got := r.Encode(); !bytes.Equal(got, b) {
			t.Fatalf("Encode = %x, want %x", got, b)
		}
	})
}

// frameAPDUs joins APDUs with a two-byte length before each; splitAPDUs
// undoes it (a truncated tail is one more APDU).
func frameAPDUs(cmds ...[]byte) []byte {
	var out []byte
	for _, c := range cmds {
		out = binary.BigEndian.AppendUint16(out, uint16(len(c)))
		out = append(out, c...)
	}
	return out
}

func splitAPDUs(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		n = min(n, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	if len(b) > 0 {
		out = append(out, b)
	}
	return out
}

// FuzzCardProcess feeds a card a sequence of APDUs: it must answer each with
// at least two bytes, never panic, and leave no handler running after Close.
func FuzzCardProcess(f *testing.F) {
	files, err := filepath.Glob("../../testdata/apdu/*.txt")
	if err != nil || len(files) == 0 {
		f.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		tr, err := apdutest.ParseTranscript(text)
		if err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		var cmds [][]byte
		for _, e := range tr {
			cmds = append(cmds, e.Command)
		}
		f.Add(frameAPDUs(cmds...))
	}
	sel := unhex(f, "00a4040008a0000006472f0001")
	for _, s := range seeds(f, "command/*.hex") {
		f.Add(frameAPDUs(sel, s))
	}
	f.Add(frameAPDUs(sel, unhex(f, "80108000 01 02 00"), unhex(f, "8011000000"), unhex(f, "00c0000000")))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := newWaitHandler() // 01 and 02 wait until cancelled
		card := apdu.NewCard(h, apdu.CardOptions{StatusAfter: time.Microsecond, MaxWait: time.Millisecond})
		for _, cmd := range splitAPDUs(b) {
			if resp := card.Process(context.Background(), cmd); len(resp) < 2 {
				t.Fatalf("> %x\n< %x: shorter than a status word", cmd, resp)
			}
		}
		if err := card.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

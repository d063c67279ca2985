package frame

import (
	"bytes"
	"fmt"
	"testing"
)

func enc(seq, cmd byte, payload ...byte) []byte {
	return mustEnc((&Frame{Seq: seq, Cmd: cmd, Payload: payload}).Encode())
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// feed writes b in pieces of size n (0: all at once) and collects frames.
func feed(p *Parser, b []byte, n int) []Frame {
	var out []Frame
	if n <= 0 {
		n = len(b) + 1
	}
	for len(b) > 0 {
		k := min(n, len(b))
		p.Write(b[:k])
		b = b[k:]
		for {
			f, ok := p.Next()
			if !ok {
				break
			}
			out = append(out, f)
		}
	}
	return out
}

func TestParser(t *testing.T) {
	a := enc(1, CmdPress)
	b := enc(2, CmdDisplay|ResponseBit, 0, '1', '2')
	big := enc(3, CmdAudio|ResponseBit, bytes.Repeat([]byte{SOF}, MaxData+1)...)
	badCRC := bytes.Clone(a)
	badCRC[len(badCRC)-1] ^= 1
	// A false A5 whose LEN (5) swallows the start of the real frame b: the
	// parser must rescan from the byte after the false A5, not after the
	// candidate.
	falseShort := []byte{SOF, 0x00, 0x05, 0x00}
	for _, tc := range []struct {
		name  string
		in    []byte
		want  [][]byte // wire bytes of the frames expected
		stats Stats
	}{
		{"one", a, [][]byte{a}, Stats{Frames: 1}},
		{"two in one write", cat(a, b), [][]byte{a, b}, Stats{Frames: 2}},
		{"garbage before", cat([]byte("noise\x00\xff"), a), [][]byte{a}, Stats{Frames: 1, Skipped: 7}},
		{"garbage between and after", cat(a, []byte{1, 2, 3}, b, []byte{9}), [][]byte{a, b}, Stats{Frames: 2, Skipped: 4}},
		{"A5 noise before", cat([]byte{SOF, SOF}, a), [][]byte{a}, Stats{Frames: 1, Skipped: 2, BadLen: 2}}, // LEN 0xA5A5, 0xA500
		{"false A5 with LEN > 1024", cat([]byte{SOF, 0xFF, 0xFF}, a), [][]byte{a}, Stats{Frames: 1, Skipped: 3, BadLen: 1}},
		{"false A5 covering a frame", cat(falseShort, b), [][]byte{b}, Stats{Frames: 1, Skipped: 4, BadCRC: 1}},
		{"bad CRC then good", cat(badCRC, a), [][]byte{a}, Stats{Frames: 1, Skipped: uint64(len(badCRC)), BadCRC: 1}},
		{"largest payload", big, [][]byte{big}, Stats{Frames: 1}},
		{"frame inside a bad-CRC frame", cat([]byte{SOF, 0x00, byte(len(a))}, []byte{7, 7}, a, []byte{0, 0}), [][]byte{a}, Stats{Frames: 1, Skipped: 7, BadCRC: 1}},
	} {
		for _, n := range []int{0, 1, 2, 3, 7, 64} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, n), func(t *testing.T) {
				var p Parser
				got := feed(&p, tc.in, n)
				if len(got) != len(tc.want) {
					t.Fatalf("%d frames, want %d", len(got), len(tc.want))
				}
				for i, f := range got {
					if w := mustEnc(f.Encode()); !bytes.Equal(w, tc.want[i]) {
						t.Errorf("frame %d: %x, want %x", i, w, tc.want[i])
					}
				}
				if p.Stats() != tc.stats {
					t.Errorf("stats %+v, want %+v", p.Stats(), tc.stats)
				}
				if p.Buffered() != 0 {
					t.Errorf("%d bytes left", p.Buffered())
				}
			})
		}
	}
}

func TestParserIdle(t *testing.T) {
	a := enc(1, CmdPress)
	var p Parser
	// A false A5 with a large LEN waits for bytes that will not come, and
	// holds the real frame behind it.
	p.Write([]byte{SOF, 0x03, 0xE8})
	p.Write(a)
	if _, ok := p.Next(); ok {
		t.Fatal("frame before Idle")
	}
	if p.Buffered() != 3+len(a) {
		t.Fatalf("buffered %d", p.Buffered())
	}
	p.Idle()
	f, ok := p.Next()
	if !ok || f.Seq != 1 || f.Cmd != CmdPress {
		t.Fatalf("after Idle: %+v %v", f, ok)
	}
	if st := p.Stats(); st.Stale != 1 || st.Skipped != 3 || st.Frames != 1 {
		t.Fatalf("stats %+v", st)
	}

	// Bytes written after Idle are not stale: a frame that starts in them
	// is waited for.
	p.Write([]byte{SOF, 0x00})
	p.Idle()
	p.Write(a[:4])
	if _, ok := p.Next(); ok {
		t.Fatal("unexpected frame")
	}
	p.Write(a[4:])
	if f, ok := p.Next(); !ok || f.Seq != 1 {
		t.Fatalf("frame after Idle: %+v %v", f, ok)
	}
	if st := p.Stats(); st.Stale != 2 || st.Frames != 2 || st.Skipped != 5 {
		t.Fatalf("stats %+v", st)
	}

	p.Write([]byte{SOF, 0, 9, 1})
	p.Reset()
	if p.Buffered() != 0 || p.Stats().Skipped != 9 {
		t.Fatalf("Reset: %d buffered, %+v", p.Buffered(), p.Stats())
	}
}

// TestParserMemory: garbage with A5 and large LENs never makes the parser
// hold more than one frame's worth.
func TestParserMemory(t *testing.T) {
	var p Parser
	junk := bytes.Repeat([]byte{SOF, 0x04, 0x00, 0x11}, 10000)
	for i := 0; i < len(junk); i += 100 {
		p.Write(junk[i : i+100])
		for {
			if _, ok := p.Next(); !ok {
				break
			}
		}
		if p.Buffered() >= MaxFrame+100 {
			t.Fatalf("buffered %d", p.Buffered())
		}
	}
}

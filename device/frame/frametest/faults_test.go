package frametest_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/frame/frametest"
)

// guard bounds waits that only a bug makes long.
const guard = 10 * time.Second

func mustFrame(t testing.TB, seq, cmd byte, payload string) []byte {
	t.Helper()
	p, err := hex.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	b, err := (&frame.Frame{Seq: seq, Cmd: cmd, Payload: p}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// drain reads what the peer end has buffered, stopping at the first read
// that finds nothing (the writes under test never block, so everything sent
// synchronously is already there).
func drain(t *testing.T, e *frametest.End) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	for {
		e.SetReadDeadline(time.Now().Add(time.Millisecond))
		n, err := e.Read(buf)
		got = append(got, buf[:n]...)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			e.SetReadDeadline(time.Time{})
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func noLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(guard)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("goroutines left:\n%s", buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// TestFaultsTable sends three CDP/1 frames through Faults with one fault on
// the second and checks the bytes that reach the other end.
func TestFaultsTable(t *testing.T) {
	f1 := mustFrame(t, 7, frame.CmdIdentify, "")
	f2 := mustFrame(t, 8, frame.CmdPress|frame.ResponseBit, "00000000000000010005313233343536")
	f3 := mustFrame(t, 9, frame.CmdStatus, "")
	wrong := mustFrame(t, 7, frame.CmdPress|frame.ResponseBit, "00000000000000010005313233343536")
	badCRC := bytes.Clone(f2)
	badCRC[len(badCRC)-2] ^= 0xFF
	corrupt := bytes.Clone(f2)
	corrupt[len(corrupt)-1] ^= 0x01
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	tests := []struct {
		name   string
		faults *frametest.Faults
		want   []byte
	}{
		{"none", &frametest.Faults{}, cat(f1, f2, f3)},
		{"drop", &frametest.Faults{Drop: []int{2}}, cat(f1, f3)},
		{"corrupt", &frametest.Faults{Corrupt: []int{2}}, cat(f1, corrupt, f3)},
		{"duplicate", &frametest.Faults{Duplicate: []int{2}}, cat(f1, f2, f2, f3)},
		{"reorder", &frametest.Faults{Reorder: []int{2}}, cat(f1, f3, f2)},
		{"reorder the last write: held", &frametest.Faults{Reorder: []int{3}}, cat(f1, f2)},
		{"reorder, next one dropped", &frametest.Faults{Reorder: []int{1}, Drop: []int{2}}, cat(f1, f3)},
		{"wrong SEQ", &frametest.Faults{WrongSeq: []int{2}}, cat(f1, wrong, f3)},
		{"bad CRC", &frametest.Faults{BadCRC: []int{2}}, cat(f1, badCRC, f3)},
		{"delay: overtaken", &frametest.Faults{Delay: []int{2}, DelayBy: time.Hour}, cat(f1, f3)},
		{"first list wins", &frametest.Faults{Drop: []int{2}, Duplicate: []int{2}}, cat(f1, f3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeaks(t)
			a, b := frametest.Pipe()
			defer a.Close()
			defer b.Close()
			f := tt.faults
			f.RW = a
			defer f.Stop()
			for _, w := range [][]byte{f1, f2, f3} {
				if n, err := f.Write(w); n != len(w) || err != nil {
					t.Fatalf("Write: %d, %v", n, err)
				}
			}
			if got := drain(t, b); !bytes.Equal(got, tt.want) {
				t.Fatalf("peer read\n%x\nwant\n%x", got, tt.want)
			}
			if w := f.Writes(); len(w) != 3 || !bytes.Equal(w[1], f2) {
				t.Fatalf("Writes() = %x", w)
			}
		})
	}
}

// TestFaultsWrongSeqAndBadCRC: what the frame parser makes of the two
// rewritten frames.
func TestFaultsWrongSeqAndBadCRC(t *testing.T) {
	in := mustFrame(t, 0, frame.CmdPress|frame.ResponseBit, "00")
	for _, tt := range []struct {
		name    string
		faults  *frametest.Faults
		wantSeq byte
		wantErr error
	}{
		{"wrong SEQ", &frametest.Faults{WrongSeq: []int{1}}, 0xFF, nil},
		{"bad CRC", &frametest.Faults{BadCRC: []int{1}}, 0, frame.ErrChecksum},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := frametest.Pipe()
			defer a.Close()
			defer b.Close()
			tt.faults.RW = a
			tt.faults.Write(in)
			got, err := frame.ParseFrame(drain(t, b))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseFrame: %v, want %v", err, tt.wantErr)
			}
			if err == nil && (got.Seq != tt.wantSeq || got.Cmd != in[4] || !bytes.Equal(got.Payload, []byte{0})) {
				t.Fatalf("frame %+v", got)
			}
		})
	}
	// Bytes that are not one good frame pass WrongSeq unchanged.
	a, b := frametest.Pipe()
	defer a.Close()
	defer b.Close()
	f := &frametest.Faults{RW: a, WrongSeq: []int{1, 2, 3}}
	bad := bytes.Clone(in)
	bad[len(bad)-1] ^= 1
	f.Write(in[:5])
	f.Write([]byte("noise"))
	f.Write(bad)
	if got := drain(t, b); !bytes.Equal(got, bytes.Join([][]byte{in[:5], []byte("noise"), bad}, nil)) {
		t.Fatalf("peer read %x", got)
	}
}

// TestFaultsDelay: a delayed write arrives later; Stop drops one still
// waiting and leaves no timer behind.
func TestFaultsDelay(t *testing.T) {
	t.Run("arrives", func(t *testing.T) {
		noLeaks(t)
		a, b := frametest.Pipe()
		defer a.Close()
		defer b.Close()
		f := &frametest.Faults{RW: a, Delay: []int{1}, DelayBy: time.Millisecond}
		defer f.Stop()
		if n, err := f.Write([]byte("late")); n != 4 || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
		b.SetReadDeadline(time.Now().Add(guard)) // failure guard only
		got := make([]byte, 4)
		if _, err := io.ReadFull(b, got); err != nil || string(got) != "late" {
			t.Fatalf("read %q, %v", got, err)
		}
	})
	t.Run("default delay", func(t *testing.T) {
		noLeaks(t)
		a, b := frametest.Pipe()
		defer a.Close()
		defer b.Close()
		f := &frametest.Faults{RW: a, Delay: []int{1}}
		defer f.Stop()
		f.Write([]byte("x"))
		b.SetReadDeadline(time.Now().Add(guard))
		if _, err := io.ReadFull(b, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("stopped", func(t *testing.T) {
		noLeaks(t)
		a, b := frametest.Pipe()
		defer a.Close()
		defer b.Close()
		f := &frametest.Faults{RW: a, Delay: []int{1, 3}, DelayBy: time.Hour, Reorder: []int{2}}
		f.Write([]byte("delayed"))
		f.Write([]byte("held"))
		if err := f.Stop(); err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("after stop")) // a Delay write: vanishes
		f.Write([]byte("plain"))
		if got := drain(t, b); string(got) != "plain" {
			t.Fatalf("peer read %q", got)
		}
	})
}

// TestFaultsWriteError: the stream's error comes back from Write.
func TestFaultsWriteError(t *testing.T) {
	a, b := frametest.Pipe()
	b.Close()
	a.Close()
	for _, f := range []*frametest.Faults{{RW: a}, {RW: a, Duplicate: []int{1}}, {RW: a, Reorder: []int{1}}} {
		f.Write([]byte("1"))
		if _, err := f.Write([]byte("2")); !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("Write to a closed pipe: %v", err)
		}
	}
}

// FuzzFaults: whatever bytes are written, no fault panics, WrongSeq turns a
// frame into a frame with the previous SEQ and a good CRC, and BadCRC into
// one that fails only its CRC check.
func FuzzFaults(f *testing.F) {
	files, _ := filepath.Glob("../../../testdata/frame/*.hex")
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var h strings.Builder
		for line := range strings.SplitSeq(string(text), "\n") {
			if line = strings.TrimSpace(line); line != "" && line[0] != '#' {
				h.WriteString(strings.ReplaceAll(line, " ", ""))
			}
		}
		b, err := hex.DecodeString(h.String())
		if err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xA5, 0, 0, 0, 1, 0xAA, 0xBB})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, faults := range []*frametest.Faults{
			{Corrupt: []int{1}}, {Duplicate: []int{1}}, {Reorder: []int{1}}, {WrongSeq: []int{1}}, {BadCRC: []int{1}}, {Drop: []int{1}},
		} {
			var out bytes.Buffer
			faults.RW = &out
			if n, err := faults.Write(in); n != len(in) || err != nil {
				t.Fatalf("Write: %d, %v", n, err)
			}
			faults.Write(nil) // releases a held write
			got := out.Bytes()
			orig, origErr := frame.ParseFrame(in)
			switch {
			case faults.WrongSeq != nil && origErr == nil:
				fr, err := frame.ParseFrame(got)
				if err != nil || fr.Seq != orig.Seq-1 || fr.Cmd != orig.Cmd || !bytes.Equal(fr.Payload, orig.Payload) {
					t.Fatalf("WrongSeq of %x gave %x: %+v, %v", in, got, fr, err)
				}
				// The rewrite is exact: applying the inverse SEQ gives the input back.
				back, _ := (&frame.Frame{Seq: fr.Seq + 1, Cmd: fr.Cmd, Payload: fr.Payload}).Encode()
				if !bytes.Equal(back, in) {
					t.Fatalf("round trip %x != %x", back, in)
				}
			case faults.WrongSeq != nil && !bytes.Equal(got, in):
				t.Fatalf("WrongSeq changed a non-frame: %x -> %x", in, got)
			case faults.BadCRC != nil && origErr == nil:
				if _, err := frame.ParseFrame(got); !errors.Is(err, frame.ErrChecksum) {
					t.Fatalf("BadCRC of %x: %v", in, err)
				}
			case faults.Duplicate != nil && !bytes.Equal(got, append(bytes.Clone(in), in...)):
				t.Fatalf("Duplicate: %x", got)
			case faults.Reorder != nil && !bytes.Equal(got, in):
				t.Fatalf("Reorder: %x", got)
			case faults.Drop != nil && len(got) != 0:
				t.Fatalf("Drop: %x", got)
			}
		}
	})
}

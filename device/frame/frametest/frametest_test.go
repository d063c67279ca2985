package frametest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPipe(t *testing.T) {
	a, b := Pipe()
	if _, err := a.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("back"))
	buf := make([]byte, 3)
	if n, _ := b.Read(buf); string(buf[:n]) != "hel" {
		t.Fatalf("read %q", buf[:n])
	}
	if n, _ := b.Read(buf); string(buf[:n]) != "lo" {
		t.Fatalf("read %q", buf[:n])
	}
	if got, _ := io.ReadAll(io.LimitReader(a, 4)); string(got) != "back" {
		t.Fatalf("read %q", got)
	}

	// Deadlines: one in the past fails at once; a Read in progress sees a
	// new deadline.
	b.SetReadDeadline(time.Unix(1, 0))
	if _, err := b.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("past deadline: %v", err)
	}
	b.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, err := b.Read(buf); errc <- err }()
	b.SetReadDeadline(time.Now().Add(time.Millisecond))
	if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline during Read: %v", err)
	}
	b.SetReadDeadline(time.Time{})

	// CloseWrite: the peer reads what is left, then EOF, and can answer.
	a.Write([]byte("x"))
	a.CloseWrite()
	if got, err := io.ReadAll(b); err != nil || string(got) != "x" {
		t.Fatalf("after CloseWrite: %q, %v", got, err)
	}
	if _, err := b.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Read(buf); err != nil || string(buf[:n]) != "y" {
		t.Fatalf("answer after CloseWrite: %q, %v", buf[:n], err)
	}

	// Close wakes a blocked Read on either end.
	go func() { _, err := a.Read(buf); errc <- err }()
	b.Close()
	if err := <-errc; err != io.EOF {
		t.Fatalf("peer closed: %v", err)
	}
	if _, err := b.Read(buf); err != io.ErrClosedPipe {
		t.Fatalf("read after Close: %v", err)
	}
	if _, err := a.Write(buf); err != io.ErrClosedPipe {
		t.Fatalf("write to closed: %v", err)
	}
	if b.Close() != nil || a.Close() != nil {
		t.Fatal("Close failed")
	}
}

func TestFaults(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	f := &Faults{RW: a, Drop: []int{2}, Corrupt: []int{3}}
	for _, s := range []string{"one", "two", "three", "four"} {
		if n, err := f.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write %q: %d, %v", s, n, err)
		}
	}
	a.CloseWrite()
	got, _ := io.ReadAll(b)
	if string(got) != "onethred"+"four" {
		t.Fatalf("peer read %q", got)
	}
	w := f.Writes()
	if len(w) != 4 || string(w[2]) != "three" {
		t.Fatalf("writes %q", w)
	}
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		t.Fatalf("SetReadDeadline on a pipe: %v", err)
	}
	if err := (&Faults{RW: struct{ io.ReadWriter }{a}}).SetReadDeadline(time.Time{}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("SetReadDeadline without support: %v", err)
	}
}

func TestTranscriptFormat(t *testing.T) {
	steps := []Step{{Write: true, Data: []byte{0xA5, 0}}, {Data: []byte{1, 2, 3}}}
	text := FormatTranscript("a comment\nsecond line", steps)
	want := "# a comment\n# second line\n> a500\n< 010203\n"
	if string(text) != want {
		t.Fatalf("got %q", text)
	}
	got, err := ParseTranscript([]byte("\n# c\n  >  a5 00 \n<01\t0203\n"))
	if err != nil || len(got) != 2 || !bytes.Equal(got[1].Data, []byte{1, 2, 3}) || !got[0].Write {
		t.Fatalf("parse: %+v, %v", got, err)
	}
	for _, bad := range []string{"x a5", "> a", "> zz", ">", "<\n"} {
		if _, err := ParseTranscript([]byte("# ok\n" + bad)); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestPlayback(t *testing.T) {
	steps := []Step{
		{Write: true, Data: []byte("req")},
		{Data: []byte("resp")},
		{Write: true, Data: []byte("req2")},
	}
	t.Run("ok", func(t *testing.T) {
		p := NewPlayback(steps)
		got := make(chan string, 1)
		go func() { // the read waits for the write before it
			b := make([]byte, 4)
			io.ReadFull(p, b)
			got <- string(b)
		}()
		if _, err := p.Write([]byte("req")); err != nil {
			t.Fatal(err)
		}
		if s := <-got; s != "resp" {
			t.Fatalf("read %q", s)
		}
		if _, err := p.Write([]byte("req2")); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("mismatch", func(t *testing.T) {
		p := NewPlayback(steps)
		_, err := p.Write([]byte("bad"))
		if err == nil || !strings.Contains(err.Error(), "got  > 626164") || !strings.Contains(err.Error(), "want > 726571") {
			t.Fatalf("err %v", err)
		}
		if _, err2 := p.Read(make([]byte, 4)); err2 != err {
			t.Fatalf("Read after failure: %v", err2)
		}
		if err2 := p.Close(); err2 != err {
			t.Fatalf("Close after failure: %v", err2)
		}
	})
	t.Run("write while a read is expected", func(t *testing.T) {
		p := NewPlayback(steps)
		p.Write([]byte("req"))
		if _, err := p.Write([]byte("req2")); err == nil || !strings.Contains(err.Error(), "step 2") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("steps left", func(t *testing.T) {
		p := NewPlayback(steps)
		p.Write([]byte("req"))
		b := make([]byte, 2)
		if n, _ := p.Read(b); string(b[:n]) != "re" {
			t.Fatalf("partial read %q", b[:n])
		}
		if n, _ := p.Read(b); string(b[:n]) != "sp" {
			t.Fatalf("partial read %q", b[:n])
		}
		err := p.Close()
		if err == nil || !strings.Contains(err.Error(), "1 of 3 steps not played; next: > 72657132") {
			t.Fatalf("Close: %v", err)
		}
	})
	t.Run("after the end", func(t *testing.T) {
		p := NewPlayback(steps[:2])
		p.Write([]byte("req"))
		io.ReadFull(p, make([]byte, 4))
		if n, err := p.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("Read at end: %d, %v", n, err)
		}
		if _, err := p.Write([]byte("more")); err == nil || !strings.Contains(err.Error(), "after the end") {
			t.Fatalf("Write at end: %v", err)
		}
	})
	t.Run("close wakes a reader", func(t *testing.T) {
		p := NewPlayback(steps)
		errc := make(chan error, 1)
		go func() { _, err := p.Read(make([]byte, 1)); errc <- err }()
		p.Close()
		if err := <-errc; err != io.ErrClosedPipe {
			t.Fatalf("Read: %v", err)
		}
	})
}

func TestRecorder(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	r := Record(a)
	r.Write([]byte{1, 2})
	b.Write([]byte{3})
	r.Read(make([]byte, 8))
	if err := r.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Read(make([]byte, 8)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("timed-out read: %d, %v", n, err)
	}
	got := string(FormatTranscript("", r.Steps()))
	if got != "> 0102\n< 03\n" {
		t.Fatalf("transcript %q", got)
	}
	path := t.TempDir() + "/t.transcript"
	if err := r.Save(path, "c"); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil || len(p.steps) != 2 {
		t.Fatalf("Load: %v", err)
	}
	if _, err := Load(path + ".missing"); err == nil {
		t.Fatal("Load of a missing file")
	}
}

// FuzzParseTranscript: a transcript that parses formats to text that
// parses to the same steps.
func FuzzParseTranscript(f *testing.F) {
	if b, err := os.ReadFile("../../../testdata/frame/identify_press.transcript"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("# c\n> a500\n< 01 02\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		steps, err := ParseTranscript(in)
		if err != nil {
			return
		}
		text := FormatTranscript("", steps)
		again, err := ParseTranscript(text)
		if err != nil || len(again) != len(steps) {
			t.Fatalf("%q: %v", text, err)
		}
		for i := range steps {
			if steps[i].Write != again[i].Write || !bytes.Equal(steps[i].Data, again[i].Data) {
				t.Fatalf("step %d differs", i)
			}
		}
		if !bytes.Equal(FormatTranscript("", again), text) {
			t.Fatal("format not stable")
		}
	})
}

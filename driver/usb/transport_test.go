package usb

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/sim/chip"
)

const guard = 10 * time.Second

// fakeIn is an IN endpoint that hands out the packets in ch, or blocks
// until ctx ends (and then fails as gousb does, with its own error).
type fakeIn struct {
	ch    chan []byte
	err   error // returned instead of a packet when set
	asked atomic.Int64
}

var errCancelled = errors.New("fake: transfer was cancelled")

func (f *fakeIn) ReadContext(ctx context.Context, b []byte) (int, error) {
	f.asked.Store(int64(len(b)))
	if f.err != nil {
		return 0, f.err
	}
	select {
	case p := <-f.ch:
		return copy(b, p), nil
	case <-ctx.Done():
		return 0, errCancelled
	}
}

// fakeOut is an OUT endpoint that records what it sends, or blocks until
// ctx ends when block is set.
type fakeOut struct {
	sent  [][]byte
	block bool
	short bool
	err   error
}

func (f *fakeOut) WriteContext(ctx context.Context, b []byte) (int, error) {
	switch {
	case f.block:
		<-ctx.Done()
		return 0, errCancelled
	case f.err != nil:
		return 0, f.err
	case f.short:
		return len(b) - 1, nil
	}
	f.sent = append(f.sent, append([]byte(nil), b...))
	return len(b), nil
}

var errGone = errors.New("fake: no device")

func classifyFake(err error) error {
	if errors.Is(err, errGone) {
		return device.ErrRemoved
	}
	return nil
}

func TestEndpointsRead(t *testing.T) {
	in := &fakeIn{ch: make(chan []byte, 2)}
	e := newEndpoints(in, &fakeOut{}, 0, classifyFake)
	defer e.Close()

	full := bytes.Repeat([]byte{0xAB}, ReportSize)
	in.ch <- full
	buf := make([]byte, 2*ReportSize)
	n, err := e.Read(buf)
	if err != nil || n != ReportSize || !bytes.Equal(buf[:n], full) {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if in.asked.Load() != ReportSize {
		t.Errorf("asked the endpoint for %d bytes, want exactly %d", in.asked.Load(), ReportSize)
	}

	// A short packet becomes a whole report, padded with zeros.
	in.ch <- []byte{1, 2, 3}
	n, err = e.Read(buf)
	want := append([]byte{1, 2, 3}, make([]byte, ReportSize-3)...)
	if err != nil || n != ReportSize || !bytes.Equal(buf[:n], want) {
		t.Fatalf("short packet: Read = %d %x, %v", n, buf[:n], err)
	}

	// A buffer too small gets the start of the report and io.ErrShortBuffer.
	in.ch <- full
	small := make([]byte, 10)
	if n, err := e.Read(small); n != 10 || !errors.Is(err, io.ErrShortBuffer) {
		t.Errorf("small buffer: Read = %d, %v", n, err)
	}

	// Errors of the endpoint carry the sentinel classify names.
	in.err = errGone
	if _, err := e.Read(buf); !errors.Is(err, device.ErrRemoved) || !errors.Is(err, errGone) {
		t.Errorf("Read of a gone device = %v", err)
	}
	in.err = errors.New("fake: odd")
	if _, err := e.Read(buf); err == nil || errors.Is(err, device.ErrRemoved) {
		t.Errorf("Read with an unclassified error = %v", err)
	}
}

func TestEndpointsCloseUnblocksRead(t *testing.T) {
	in := &fakeIn{ch: make(chan []byte)}
	e := newEndpoints(in, &fakeOut{}, 0, nil)
	done := make(chan error, 1)
	go func() {
		_, err := e.Read(make([]byte, ReportSize))
		done <- err
	}()
	for in.asked.Load() == 0 {
		runtime.Gosched()
	}
	e.Close()
	select {
	case err := <-done:
		if !errors.Is(err, device.ErrClosed) {
			t.Errorf("Read interrupted by Close = %v", err)
		}
	case <-time.After(guard):
		t.Fatal("Close did not end the Read")
	}
	if _, err := e.Read(make([]byte, ReportSize)); !errors.Is(err, device.ErrClosed) {
		t.Errorf("Read after Close = %v", err)
	}
	if _, err := e.Write(make([]byte, ReportSize)); !errors.Is(err, device.ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestEndpointsWrite(t *testing.T) {
	out := &fakeOut{}
	e := newEndpoints(&fakeIn{}, out, 20*time.Millisecond, classifyFake)
	defer e.Close()
	r := bytes.Repeat([]byte{7}, ReportSize)
	if n, err := e.Write(r); n != ReportSize || err != nil || len(out.sent) != 1 || !bytes.Equal(out.sent[0], r) {
		t.Fatalf("Write = %d, %v; sent %x", n, err, out.sent)
	}
	tests := []struct {
		name string
		out  fakeOut
		p    []byte
		want error
	}{
		{"not a report", fakeOut{}, make([]byte, ReportSize+1), device.ErrProtocol},
		{"short write", fakeOut{short: true}, r, device.ErrProtocol},
		{"timeout", fakeOut{block: true}, r, device.ErrTimeout},
		{"gone", fakeOut{err: errGone}, r, device.ErrRemoved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEndpoints(&fakeIn{}, &tt.out, 20*time.Millisecond, classifyFake)
			defer e.Close()
			if _, err := e.Write(tt.p); !errors.Is(err, tt.want) {
				t.Errorf("Write = %v, want %v", err, tt.want)
			}
		})
	}
}

// pipeIn and pipeOut make the host end of an in-memory pipe look like
// gousb's endpoints: reads end when ctx ends.
type pipeIn struct{ p *ctaphid.PipeEnd }

func (e pipeIn) ReadContext(ctx context.Context, b []byte) (int, error) {
	stop := context.AfterFunc(ctx, func() { e.p.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	n, err := e.p.Read(b)
	if ctx.Err() != nil {
		return 0, errCancelled
	}
	return n, err
}

type pipeOut struct{ p *ctaphid.PipeEnd }

func (e pipeOut) WriteContext(ctx context.Context, b []byte) (int, error) { return e.p.Write(b) }

// TestOpenPath runs what Open does after claiming the interface (the
// endpoints handed to the Chip, which closes them and then releases the
// device) against a simulated chip, and checks that nothing is left
// running.
func TestOpenPath(t *testing.T) {
	base := runtime.NumGoroutine()
	sc, err := chip.New(chip.Options{Seed: []byte("open path")})
	if err != nil {
		t.Fatal(err)
	}
	dev, host := ctaphid.NewPipe()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ctaphid.Serve(ctx, dev, sc, ctaphid.ServeOptions{}) }()

	var released atomic.Int32
	rw := newEndpoints(pipeIn{host}, pipeOut{host}, 0, nil)
	octx, ocancel := context.WithTimeout(context.Background(), guard)
	defer ocancel()
	ch, err := newChip(octx, rw, sc.DeviceInfo(), Options{}, true, func() error {
		released.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Info(octx); err != nil {
		t.Fatal(err)
	}
	if err := ch.Selection(octx); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if released.Load() != 1 {
		t.Errorf("release called %d times", released.Load())
	}
	if _, err := rw.Read(make([]byte, ReportSize)); !errors.Is(err, device.ErrClosed) {
		t.Errorf("endpoints not closed by Chip.Close: %v", err)
	}
	ch.Close()
	if released.Load() != 1 {
		t.Errorf("release called %d times after a second Close", released.Load())
	}
	cancel()
	<-served
	dev.Close()
	if err := sc.Close(); err != nil {
		t.Error(err)
	}
	settleGoroutines(t, base)
}

// TestOpenPathFails checks that a Chip that cannot start releases what Open
// opened.
func TestOpenPathFails(t *testing.T) {
	base := runtime.NumGoroutine()
	_, host := ctaphid.NewPipe() // nobody answers
	defer host.Close()
	var released atomic.Int32
	rw := newEndpoints(pipeIn{host}, pipeOut{host}, 0, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	ch, err := newChip(ctx, rw, device.Info{Path: "1-1:1.0"}, Options{}, true, func() error {
		released.Add(1)
		return errors.New("release failed")
	})
	if ch != nil || !errors.Is(err, device.ErrTimeout) {
		t.Fatalf("newChip = %v, %v", ch, err)
	}
	if released.Load() != 1 {
		t.Errorf("release called %d times", released.Load())
	}
	if _, err := rw.Read(make([]byte, ReportSize)); !errors.Is(err, device.ErrClosed) {
		t.Errorf("endpoints left open: %v", err)
	}
	settleGoroutines(t, base)
}

func settleGoroutines(tb testing.TB, base int) {
	tb.Helper()
	deadline := time.Now().Add(guard)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			tb.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

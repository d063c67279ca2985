package serial

import (
	"context"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/voice"
	"github.com/authbench/authbench/sim/code"
)

// sharedVoice is a decoder of its own (not voice.DefaultDecoder), for the
// tests that pass Options.Voice.
var sharedVoice = sync.OnceValues(func() (*voice.Decoder, error) {
	p, err := voice.DefaultPrompts()
	if err != nil {
		return nil, err
	}
	return voice.NewDecoder(p, nil)
})

func testVoice(tb testing.TB) *voice.Decoder {
	tb.Helper()
	d, err := sharedVoice()
	if err != nil {
		tb.Fatalf("voice decoder of the embedded prompts: %v", err)
	}
	return d
}

// fixedNow is the simulators' clock: a fixed instant, so that codes are
// known in advance.
var fixedNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// simPTY serves a simulated code device on a new pty until the test ends.
func simPTY(t testing.TB, opts code.Options) (*code.Device, *code.PTY) {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return fixedNow }
	}
	dev, err := code.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := code.ServePTY(context.Background(), dev)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return dev, p
}

// rawPTY is a pty whose device side a test drives itself: Serve runs a
// frame handler on the master; the terminal end stays open so that the
// driver can come and go.
type rawPTY struct {
	Path   string
	master *os.File
	tty    *os.File
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func newRawPTY(t testing.TB) *rawPTY {
	t.Helper()
	m, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	// creack/pty leaves the master in blocking mode, where read deadlines
	// do not interrupt a Read; use a non-blocking duplicate that the
	// runtime polls.
	fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	r := &rawPTY{Path: tty.Name(), master: os.NewFile(uintptr(fd), "ptmx"), tty: tty}
	t.Cleanup(func() { r.Close() })
	return r
}

// Serve answers CDP/1 requests with h until Close.
func (r *rawPTY) Serve(h frame.Handler) {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan error, 1)
	go func() { r.done <- frame.Serve(ctx, r.master, h) }()
}

// HangUp closes both ends of the pty under the server, as when a device
// is unplugged; Close still stops the server.
func (r *rawPTY) HangUp() {
	r.master.Close()
	r.tty.Close()
}

// Close stops serving, waits for the server to return, and closes both
// ends of the pty.
func (r *rawPTY) Close() {
	r.once.Do(func() {
		if r.cancel != nil {
			r.cancel()
			<-r.done
		}
		r.master.Close()
		r.tty.Close()
	})
}

// checkGoroutines fails the test if, after it and its cleanups, more
// goroutines run than before it (polling, since exiting goroutines take a
// moment to be gone).
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("%d goroutines left running, %d before the test:\n%s", n, before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

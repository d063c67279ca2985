package frametest

import (
	"io"
	"os"
	"sync"
	"time"
)

// Pipe returns the two ends of an in-memory full-duplex stream: what one end
// writes, the other reads. Writes never block (the buffers grow as needed),
// so two sides that both write before reading cannot deadlock, as they could
// over net.Pipe; a serial line has buffers too. Ends support SetReadDeadline
// (reads then fail with os.ErrDeadlineExceeded) and Close (the peer reads
// what is buffered, then io.EOF; writes to a closed pipe fail with
// io.ErrClosedPipe).
func Pipe() (*End, *End) {
	ab, ba := newHalf(), newHalf()
	return &End{in: ba, out: ab, dlWake: make(chan struct{})},
		&End{in: ab, out: ba, dlWake: make(chan struct{})}
}

// half is one direction of a Pipe.
type half struct {
	mu     sync.Mutex
	buf    []byte
	closed bool          // either end is closed
	wake   chan struct{} // closed and replaced on every change
}

func newHalf() *half { return &half{wake: make(chan struct{})} }

func (h *half) changed() {
	close(h.wake)
	h.wake = make(chan struct{})
}

// End is one end of a Pipe. It is safe for concurrent use.
type End struct {
	in, out *half

	mu       sync.Mutex
	closed   bool
	deadline time.Time
	dlWake   chan struct{} // closed and replaced when the deadline changes
}

// Read reads what the other end wrote, waiting for at least one byte.
func (e *End) Read(p []byte) (int, error) {
	for {
		e.mu.Lock()
		closed, deadline, dlWake := e.closed, e.deadline, e.dlWake
		e.mu.Unlock()
		if closed {
			return 0, io.ErrClosedPipe
		}
		e.in.mu.Lock()
		if len(e.in.buf) > 0 && len(p) > 0 {
			n := copy(p, e.in.buf)
			e.in.buf = e.in.buf[n:]
			e.in.mu.Unlock()
			return n, nil
		}
		peerClosed, wake := e.in.closed, e.in.wake
		e.in.mu.Unlock()
		if peerClosed {
			return 0, io.EOF
		}
		if deadline.IsZero() {
			select {
			case <-wake:
			case <-dlWake:
			}
			continue
		}
		d := time.Until(deadline)
		if d <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		select {
		case <-wake:
		case <-dlWake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Write appends p to what the other end reads. It never blocks.
func (e *End) Write(p []byte) (int, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	if closed || e.out.closed {
		return 0, io.ErrClosedPipe
	}
	e.out.buf = append(e.out.buf, p...)
	e.out.changed()
	return len(p), nil
}

// SetReadDeadline makes Read fail with os.ErrDeadlineExceeded once t has
// passed; the zero time means no deadline. It also applies to a Read in
// progress.
func (e *End) SetReadDeadline(t time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.deadline = t
	close(e.dlWake)
	e.dlWake = make(chan struct{})
	return nil
}

// CloseWrite closes the direction this end writes: the other end reads
// what is buffered and then io.EOF, and can still write back.
func (e *End) CloseWrite() error {
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	if !e.out.closed {
		e.out.closed = true
		e.out.changed()
	}
	return nil
}

// Close closes both directions: reads at this end fail with
// io.ErrClosedPipe, the other end reads what is buffered and then io.EOF.
// Closing twice is harmless.
func (e *End) Close() error {
	e.mu.Lock()
	e.closed = true
	close(e.dlWake)
	e.dlWake = make(chan struct{})
	e.mu.Unlock()
	for _, h := range []*half{e.in, e.out} {
		h.mu.Lock()
		if !h.closed {
			h.closed = true
			h.changed()
		}
		h.mu.Unlock()
	}
	return nil
}

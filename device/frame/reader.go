package frame

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// readDeadliner is met by net.Conn, by *os.File on a pollable descriptor
// (a pty), and by frametest.Pipe.
type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

// readTimeouter is met by go.bug.st/serial.Port: after SetReadTimeout(d), a
// Read that sees no byte for d returns 0, nil.
type readTimeouter interface {
	SetReadTimeout(d time.Duration) error
}

// pollSlice bounds each Read in SetReadTimeout mode, so that a context
// that ends is noticed that soon.
const pollSlice = 50 * time.Millisecond

// errIdle reports that a read deadline passed without a byte.
var errIdle = errors.New("frame: idle")

// lineReader reads a byte stream with a deadline and honours a context, in
// the best way the stream allows:
//
//   - SetReadDeadline: reads in the calling goroutine; the deadline ends a
//     read, and a context that ends moves the deadline into the past.
//   - SetReadTimeout: reads in the calling goroutine, each Read waiting at
//     most pollSlice.
//   - neither: one goroutine reads ahead and hands chunks over a channel;
//     close stops it as soon as its current Read returns (when bytes arrive
//     or the owner closes the stream).
type lineReader struct {
	r         io.Reader
	deadliner readDeadliner
	timeouter readTimeouter
	buf       []byte
	err       error // sticky: the stream failed

	startOnce sync.Once
	stopOnce  sync.Once
	chunks    chan chunk
	stop      chan struct{}
	done      chan struct{} // closed when the goroutine has returned
}

type chunk struct {
	b   []byte
	err error
}

func newLineReader(r io.Reader) *lineReader {
	l := &lineReader{r: r, stop: make(chan struct{}), done: make(chan struct{})}
	if d, ok := r.(readDeadliner); ok && d.SetReadDeadline(time.Time{}) == nil {
		l.deadliner = d
	} else if t, ok := r.(readTimeouter); ok {
		l.timeouter = t
	}
	if l.deadliner != nil || l.timeouter != nil {
		l.buf = make([]byte, MaxFrame)
		l.startOnce.Do(func() { close(l.done) }) // no goroutine in these modes
	}
	return l
}

// read returns the next bytes from the stream (valid until the next call),
// or errIdle when deadline (zero: none) passes first, or ctx.Err() when ctx
// ends first, or the stream's error.
func (l *lineReader) read(ctx context.Context, deadline time.Time) ([]byte, error) {
	if l.err != nil {
		return nil, l.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch {
	case l.deadliner != nil:
		return l.readDeadline(ctx, deadline)
	case l.timeouter != nil:
		return l.readTimeout(ctx, deadline)
	}
	return l.readChunk(ctx, deadline)
}

func (l *lineReader) readDeadline(ctx context.Context, deadline time.Time) ([]byte, error) {
	for {
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return nil, errIdle
		}
		if err := l.deadliner.SetReadDeadline(deadline); err != nil {
			l.err = err
			return nil, err
		}
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(fired)
			l.deadliner.SetReadDeadline(time.Unix(1, 0)) // in the past: the Read returns now
		})
		n, err := l.r.Read(l.buf)
		if !stop() {
			<-fired // don't let it move a later deadline
		}
		if n > 0 {
			l.keep(err)
			return l.buf[:n], nil
		}
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue // loop: the deadline check returns errIdle
		case err != nil:
			l.err = err
			return nil, err
		}
	}
}

func (l *lineReader) readTimeout(ctx context.Context, deadline time.Time) ([]byte, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		wait := pollSlice
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return nil, errIdle
			}
			wait = min(wait, max(left, time.Millisecond))
		}
		if err := l.timeouter.SetReadTimeout(wait); err != nil {
			l.err = err
			return nil, err
		}
		n, err := l.r.Read(l.buf)
		if n > 0 {
			l.keep(err)
			return l.buf[:n], nil
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			l.err = err
			return nil, err
		}
	}
}

// keep remembers an error that came with data, for the next read.
func (l *lineReader) keep(err error) {
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		l.err = err
	}
}

func (l *lineReader) readChunk(ctx context.Context, deadline time.Time) ([]byte, error) {
	l.startOnce.Do(func() {
		l.chunks = make(chan chunk)
		go l.pump()
	})
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case c := <-l.chunks:
		if c.err != nil {
			l.err = c.err
			return nil, c.err
		}
		return c.b, nil
	case <-timeout:
		return nil, errIdle
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.stop:
		return nil, errStopped
	}
}

var errStopped = errors.New("frame: reader stopped")

// pump is the reader goroutine of the third mode.
func (l *lineReader) pump() {
	defer close(l.done)
	for {
		buf := make([]byte, MaxFrame)
		n, err := l.r.Read(buf)
		if n > 0 {
			select {
			case l.chunks <- chunk{b: buf[:n]}:
			case <-l.stop:
				return
			}
		}
		if err != nil {
			select {
			case l.chunks <- chunk{err: err}:
			case <-l.stop:
			}
			return
		}
	}
}

// release clears a read deadline left on the stream, so that its owner
// finds it as it was.
func (l *lineReader) release() {
	if l.deadliner != nil {
		l.deadliner.SetReadDeadline(time.Time{})
	}
}

// close stops the reader goroutine, if any, once its current Read returns.
// It does not wait for that; wait on l.done to.
func (l *lineReader) close() {
	l.stopOnce.Do(func() {
		close(l.stop)
		l.startOnce.Do(func() { close(l.done) }) // never started
	})
}

package ctaphidtest

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
)

// Playback is a strict fake transport that plays a transcript back to the
// host side: each Write must be the next step and carry exactly the recorded
// report, and each Read returns the next step once it is a read step. It is
// safe for concurrent use, which a host with a reading goroutine needs: a
// Read waits while the next step is a write.
//
// The first mismatch is kept; Close returns it, or an error when steps were
// left unplayed, so a test that ends with Close fails on both.
type Playback struct {
	mu       sync.Mutex
	steps    []Step
	pos      int
	err      error         // the first mismatch
	closed   bool          // Close was called
	changed  chan struct{} // closed and replaced whenever the state changes
	deadline time.Time
}

// NewPlayback returns a Playback of steps.
func NewPlayback(steps []Step) *Playback {
	return &Playback{steps: steps, changed: make(chan struct{})}
}

// Write checks b against the next step. On a mismatch it returns an error
// wrapping device.ErrProtocol that shows the expected and the written
// report, and keeps it for Close; after Close it returns an error wrapping
// device.ErrClosed.
func (p *Playback) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, fmt.Errorf("ctaphidtest: playback write: %w", device.ErrClosed)
	}
	if p.err != nil {
		return 0, p.err
	}
	var err error
	switch {
	case p.pos == len(p.steps):
		err = fmt.Errorf("ctaphidtest: %w: unexpected write after the last step\n got  > %x", device.ErrProtocol, b)
	case !p.steps[p.pos].Write:
		err = fmt.Errorf("ctaphidtest: %w: step %d: unexpected write while the device should answer\n want < %x\n got  > %x",
			device.ErrProtocol, p.pos+1, p.steps[p.pos].Report, b)
	case !bytes.Equal(p.steps[p.pos].Report, b):
		err = fmt.Errorf("ctaphidtest: %w: step %d: unexpected write\n want > %x\n got  > %x",
			device.ErrProtocol, p.pos+1, p.steps[p.pos].Report, b)
	}
	if err != nil {
		p.err = err
		p.notify()
		return 0, err
	}
	p.pos++
	p.notify()
	return len(b), nil
}

// Read waits until the next step is a read step and returns its report. It
// returns an error wrapping device.ErrClosed after Close, the mismatch error
// after a mismatched Write, one wrapping os.ErrDeadlineExceeded (a timeout)
// when the read deadline passes, and one wrapping device.ErrProtocol when b
// is shorter than the report. When the transcript is over, Read waits like a
// silent device.
func (p *Playback) Read(b []byte) (int, error) {
	for {
		p.mu.Lock()
		switch {
		case p.closed:
			p.mu.Unlock()
			return 0, fmt.Errorf("ctaphidtest: playback read: %w", device.ErrClosed)
		case p.err != nil:
			err := p.err
			p.mu.Unlock()
			return 0, err
		case !p.deadline.IsZero() && !time.Now().Before(p.deadline):
			p.mu.Unlock()
			return 0, fmt.Errorf("ctaphidtest: playback read: %w", os.ErrDeadlineExceeded)
		case p.pos < len(p.steps) && !p.steps[p.pos].Write:
			r := p.steps[p.pos].Report
			if len(b) < len(r) {
				p.mu.Unlock()
				return 0, fmt.Errorf("ctaphidtest: %w: read buffer of %d bytes for a %d-byte report", device.ErrProtocol, len(b), len(r))
			}
			p.pos++
			p.notify()
			p.mu.Unlock()
			return copy(b, r), nil
		}
		changed, deadline := p.changed, p.deadline
		p.mu.Unlock()
		if deadline.IsZero() {
			<-changed
			continue
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// SetReadDeadline makes pending and later Reads fail with a timeout once t
// has passed; the zero time removes the deadline. It returns nil.
func (p *Playback) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	p.deadline = t
	p.notify()
	p.mu.Unlock()
	return nil
}

// Close ends the playback: pending and later Reads and Writes fail with an
// error wrapping device.ErrClosed. It returns the first mismatch, or an error
// wrapping device.ErrProtocol that shows the first unplayed step when the
// transcript was not played to its end, or nil.
func (p *Playback) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		p.notify()
	}
	if p.err != nil {
		return p.err
	}
	if p.pos < len(p.steps) {
		s := p.steps[p.pos]
		dir := "<"
		if s.Write {
			dir = ">"
		}
		return fmt.Errorf("ctaphidtest: %w: %d of %d steps not played, next: %s %x",
			device.ErrProtocol, len(p.steps)-p.pos, len(p.steps), dir, s.Report)
	}
	return nil
}

// notify wakes every waiting Read; the caller holds mu.
func (p *Playback) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

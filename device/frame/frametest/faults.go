package frametest

import (
	"errors"
	"io"
	"slices"
	"sync"
	"time"
)

// Faults wraps a stream and spoils chosen writes, to test timeouts and
// resends: the writes whose 1-based numbers are in Drop vanish (Write
// reports success), and those in Corrupt go out with the last byte's lowest
// bit flipped (in CDP/1, a bad CRC). Reads pass through. Set the fields
// before the first Write; it is safe for concurrent use after that.
type Faults struct {
	RW      io.ReadWriter
	Drop    []int
	Corrupt []int

	mu     sync.Mutex
	writes [][]byte
}

// Write passes p on, drops it or corrupts it, as configured.
func (f *Faults) Write(p []byte) (int, error) {
	f.mu.Lock()
	f.writes = append(f.writes, slices.Clone(p))
	n := len(f.writes)
	f.mu.Unlock()
	switch {
	case slices.Contains(f.Drop, n):
		return len(p), nil
	case slices.Contains(f.Corrupt, n) && len(p) > 0:
		q := slices.Clone(p)
		q[len(q)-1] ^= 0x01
		return f.RW.Write(q)
	}
	return f.RW.Write(p)
}

// Read reads from the wrapped stream.
func (f *Faults) Read(p []byte) (int, error) { return f.RW.Read(p) }

// SetReadDeadline passes the deadline on when the wrapped stream has
// SetReadDeadline, and fails with errors.ErrUnsupported otherwise.
func (f *Faults) SetReadDeadline(t time.Time) error {
	if d, ok := f.RW.(interface{ SetReadDeadline(time.Time) error }); ok {
		return d.SetReadDeadline(t)
	}
	return errors.ErrUnsupported
}

// Writes returns a copy of every write so far, as the caller made it
// (before any fault).
func (f *Faults) Writes() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]byte, len(f.writes))
	for i, w := range f.writes {
		out[i] = slices.Clone(w)
	}
	return out
}

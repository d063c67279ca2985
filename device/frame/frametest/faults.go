package frametest

import (
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sync"
	"time"
)

// DefaultDelay is how late a write listed in Faults.Delay arrives when
// Faults.DelayBy is 0.
const DefaultDelay = 100 * time.Millisecond

// Faults wraps a stream and spoils chosen writes, to show what the other
// side does with lost, repeated, late and damaged frames (CDP/1 §2, docs/cdp1.md: a
// receiver drops a frame with a bad CRC silently, ignores a response whose
// SEQ it is not waiting for, and answers a repeated request from its cache).
//
// Writes are numbered from 1 in the order they are made. Each list names the
// writes that get that fault; a write named in several lists gets the first
// in the order of the fields. CDP/1 sends one frame per Write (frame.Host and
// frame.Server both do), so write N is frame N of that side.
//
// Faults spoils only what its side writes: to spoil what a host reads, wrap
// the device's end of the stream (and the other way round). Reads pass
// through unchanged.
//
// Set the fields before the first Write; Faults is safe for concurrent use
// after that. Call Stop when done if Delay or Reorder are used, so that no
// delivery is left pending.
type Faults struct {
	RW io.ReadWriter

	// Drop: the write vanishes (Write reports success).
	Drop []int
	// Corrupt: the write goes out with the lowest bit of its last byte
	// flipped (for a CDP/1 frame, the CRC's low byte: a bad CRC).
	Corrupt []int
	// Duplicate: the write goes out twice in a row.
	Duplicate []int
	// Reorder: the write is held back and goes out right after the next
	// write, so the two arrive swapped. A held write that no other write
	// follows is never delivered.
	Reorder []int
	// WrongSeq: when the write is one good CDP/1 frame (SOF 0xA5, a LEN
	// that matches its length, a CRC that checks), its SEQ is decremented by one and its CRC
	// recomputed, so it arrives as a well-formed frame that carries the
	// previous command's SEQ, as a late answer would. Other bytes pass
	// unchanged.
	WrongSeq []int
	// BadCRC: the second-to-last byte of the write (for a CDP/1 frame, the
	// CRC's high byte) goes out with every bit inverted; the rest of the
	// frame is intact.
	BadCRC []int
	// Delay: Write returns at once and the bytes go out DelayBy later.
	// Later writes are not held up, so they may overtake it.
	Delay []int
	// DelayBy is the delay of Delay writes; 0 means DefaultDelay.
	DelayBy time.Duration

	mu      sync.Mutex
	writes  [][]byte
	held    []byte // a Reorder write waiting for the next write
	timers  []*time.Timer
	pending sync.WaitGroup // delayed writes scheduled and not yet done
	stopped bool
}

// Write passes p on, or does to it what its fault says. It reports success
// for dropped, held and delayed writes; other errors are the stream's.
func (f *Faults) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, slices.Clone(p))
	n := len(f.writes)
	var out [][]byte
	switch {
	case slices.Contains(f.Drop, n):
	case slices.Contains(f.Corrupt, n) && len(p) > 0:
		q := slices.Clone(p)
		q[len(q)-1] ^= 0x01
		out = [][]byte{q}
	case slices.Contains(f.Duplicate, n):
		out = [][]byte{p, p}
	case slices.Contains(f.Reorder, n):
		if f.held != nil {
			out = [][]byte{f.held}
		}
		f.held = slices.Clone(p)
		return len(p), f.flush(out)
	case slices.Contains(f.WrongSeq, n):
		out = [][]byte{wrongSeq(p)}
	case slices.Contains(f.BadCRC, n) && len(p) >= 2:
		q := slices.Clone(p)
		q[len(q)-2] ^= 0xFF
		out = [][]byte{q}
	case slices.Contains(f.Delay, n):
		f.delay(slices.Clone(p))
	default:
		out = [][]byte{p}
	}
	if f.held != nil {
		out = append(out, f.held)
		f.held = nil
	}
	return len(p), f.flush(out)
}

// flush writes out in order; f.mu is held.
func (f *Faults) flush(out [][]byte) error {
	for _, b := range out {
		if _, err := f.RW.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// delay schedules b to go out after DelayBy; f.mu is held.
func (f *Faults) delay(b []byte) {
	if f.stopped {
		return
	}
	d := f.DelayBy
	if d <= 0 {
		d = DefaultDelay
	}
	f.pending.Add(1)
	f.timers = append(f.timers, time.AfterFunc(d, func() {
		defer f.pending.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.stopped {
			f.RW.Write(b) // nobody to tell of an error: the write is lost, as on a wire
		}
	}))
}

// Stop drops the writes that are still held back or delayed, waits for a
// delayed write being delivered at that moment, and makes later Delay writes
// vanish. It does not close the stream. Stop always returns nil.
func (f *Faults) Stop() error {
	f.mu.Lock()
	f.stopped = true
	f.held = nil
	for _, t := range f.timers {
		if t.Stop() {
			f.pending.Done()
		}
	}
	f.timers = nil
	f.mu.Unlock()
	f.pending.Wait()
	return nil
}

// wrongSeq returns a copy of b with the SEQ of the CDP/1 frame decremented
// and the CRC recomputed, or b unchanged when b is not one good frame.
func wrongSeq(b []byte) []byte {
	const sof, overhead = 0xA5, 7
	if len(b) < overhead || b[0] != sof || int(binary.BigEndian.Uint16(b[1:3]))+overhead != len(b) ||
		binary.BigEndian.Uint16(b[len(b)-2:]) != crc16(b[1:len(b)-2]) {
		return b
	}
	q := slices.Clone(b)
	q[3]--
	binary.BigEndian.PutUint16(q[len(q)-2:], crc16(q[1:len(q)-2]))
	return q
}

// crc16 is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no
// final XOR), the CDP/1 frame check (CDP/1 §3). It is repeated here so
// that frametest needs nothing from device/frame, whose own tests use it.
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
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

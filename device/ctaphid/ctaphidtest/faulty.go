package ctaphidtest

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
)

// Direction says which reports a Fault applies to.
type Direction int

// Directions, seen from the user of the wrapped transport.
const (
	Writes Direction = iota // reports written to the transport
	Reads                   // reports read from the transport
)

// FaultKind is what a Fault does to its report.
type FaultKind int

// Faults.
const (
	// Drop loses the report.
	Drop FaultKind = iota + 1
	// Duplicate delivers the report twice in a row.
	Duplicate
	// Corrupt inverts every bit of byte Fault.Byte of the report.
	Corrupt
	// Reorder delivers the report after the next one. A written report is
	// held until the next Write; a read report is returned after the next
	// report read from the transport.
	Reorder
	// WrongCID replaces the channel identifier (the first 4 bytes) with
	// Fault.CID, or with the original CID's bits inverted when Fault.CID is 0.
	WrongCID
	// Delay holds the report for Fault.Delay, as a slow or congested bus
	// does; the reports after it wait behind it, in order. A written report
	// is held by Write, which returns when the report has been passed on. A
	// read report is held by Read after it arrived; if the read deadline
	// (SetReadDeadline) passes meanwhile, Read fails with an error wrapping
	// os.ErrDeadlineExceeded and the next Read returns the report at once.
	// Close ends the wait early.
	Delay
)

// Fault is one fault to inject.
type Fault struct {
	Dir   Direction
	N     int // which report: 1 for the first one in direction Dir
	Kind  FaultKind
	Byte  int           // Corrupt: the index of the byte to invert
	CID   uint32        // WrongCID: the channel to write in, 0 for the inverted CID
	Delay time.Duration // Delay: how long the report is held
}

// Faulty wraps a report transport and injects faults into chosen reports,
// counted separately for each direction (reports that Faulty itself adds,
// such as duplicates, are not counted). Reports without a fault pass through
// unchanged. Read and Write may be called concurrently.
type Faulty struct {
	rw     io.ReadWriter
	faults []Fault

	wmu    sync.Mutex
	nw     int
	heldW  []byte
	rmu    sync.Mutex
	nr     int
	queueR [][]byte

	dmu       sync.Mutex
	deadline  time.Time     // the last read deadline set
	dlChanged chan struct{} // closed and replaced when deadline changes
	closeOnce sync.Once
	closed    chan struct{} // closed by Close
}

// NewFaulty returns rw with faults injected.
func NewFaulty(rw io.ReadWriter, faults ...Fault) *Faulty {
	return &Faulty{
		rw:        rw,
		faults:    append([]Fault(nil), faults...),
		dlChanged: make(chan struct{}),
		closed:    make(chan struct{}),
	}
}

var errFaultyClosed = fmt.Errorf("ctaphidtest: faulty transport: %w", device.ErrClosed)

// hold waits d before a report is passed on. It returns errFaultyClosed
// when Close is called first.
func (f *Faulty) hold(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-f.closed:
		return errFaultyClosed
	}
}

// holdRead waits d before a read report is returned. It returns an error
// wrapping os.ErrDeadlineExceeded when the read deadline passes first, and
// errFaultyClosed when Close is called first.
func (f *Faulty) holdRead(d time.Duration) error {
	until := time.NewTimer(d)
	defer until.Stop()
	for {
		f.dmu.Lock()
		dl, changed := f.deadline, f.dlChanged
		f.dmu.Unlock()
		var expired <-chan time.Time
		stop := func() bool { return false }
		if !dl.IsZero() {
			left := time.Until(dl)
			if left <= 0 {
				return fmt.Errorf("ctaphidtest: faulty read: %w", os.ErrDeadlineExceeded)
			}
			t := time.NewTimer(left)
			expired, stop = t.C, t.Stop
		}
		select {
		case <-until.C:
			stop()
			return nil
		case <-expired:
		case <-changed:
			stop()
		case <-f.closed:
			stop()
			return errFaultyClosed
		}
	}
}

func (f *Faulty) fault(dir Direction, n int) *Fault {
	for i := range f.faults {
		if f.faults[i].Dir == dir && f.faults[i].N == n {
			return &f.faults[i]
		}
	}
	return nil
}

// apply returns the report as changed by a Corrupt or WrongCID fault.
func (ft *Fault) apply(r []byte) []byte {
	r = append([]byte(nil), r...)
	switch ft.Kind {
	case Corrupt:
		if ft.Byte >= 0 && ft.Byte < len(r) {
			r[ft.Byte] ^= 0xFF
		}
	case WrongCID:
		if len(r) >= 4 {
			cid := ft.CID
			if cid == 0 {
				cid = ^binary.BigEndian.Uint32(r)
			}
			binary.BigEndian.PutUint32(r, cid)
		}
	}
	return r
}

// Write writes b to the transport, or does to it what its fault says. It
// reports success for dropped and held reports; it returns an error wrapping
// device.ErrClosed when Close ends a Delay; other errors are the
// transport's.
func (f *Faulty) Write(b []byte) (int, error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.nw++
	var kind FaultKind
	ft := f.fault(Writes, f.nw)
	if ft != nil {
		kind = ft.Kind
	}
	var out [][]byte
	switch kind {
	case Drop:
	case Duplicate:
		out = [][]byte{b, b}
	case Corrupt, WrongCID:
		out = [][]byte{ft.apply(b)}
	case Delay:
		if err := f.hold(ft.Delay); err != nil {
			return 0, err
		}
		out = [][]byte{b}
	case Reorder:
		if f.heldW != nil {
			out = [][]byte{f.heldW}
		}
		f.heldW = append([]byte(nil), b...)
	default:
		out = [][]byte{b}
	}
	if kind != Reorder && len(out) > 0 && f.heldW != nil {
		out = append(out, f.heldW)
		f.heldW = nil
	}
	for _, r := range out {
		if _, err := f.rw.Write(r); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// Read returns the next report, after applying its fault. Errors are the
// transport's, one wrapping io.ErrShortBuffer when b is too small for a
// queued report, and for a Delay one wrapping os.ErrDeadlineExceeded or
// device.ErrClosed (see Delay).
func (f *Faulty) Read(b []byte) (int, error) {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	for {
		if len(f.queueR) > 0 {
			r := f.queueR[0]
			f.queueR = f.queueR[1:]
			if len(b) < len(r) {
				return 0, fmt.Errorf("ctaphidtest: faulty read: %w", io.ErrShortBuffer)
			}
			return copy(b, r), nil
		}
		n, err := f.rw.Read(b)
		if err != nil {
			return n, err
		}
		f.nr++
		ft := f.fault(Reads, f.nr)
		if ft == nil {
			return n, nil
		}
		r := append([]byte(nil), b[:n]...)
		switch ft.Kind {
		case Drop:
			continue
		case Duplicate:
			f.queueR = append(f.queueR, r)
			return n, nil
		case Corrupt, WrongCID:
			return copy(b, ft.apply(r)), nil
		case Delay:
			if err := f.holdRead(ft.Delay); err != nil {
				f.queueR = append(f.queueR, r) // nothing else is queued: the head
				return 0, err
			}
			return n, nil
		case Reorder:
			n, err := f.rw.Read(b)
			if err != nil {
				f.queueR = append(f.queueR, r)
				return 0, err
			}
			f.nr++ // this report passes unchanged, whatever its fault
			f.queueR = append(f.queueR, r)
			return n, nil
		}
		return n, nil
	}
}

// Close ends Delay waits in progress, and closes the transport when it is an
// io.Closer and returns its error; otherwise it returns nil.
func (f *Faulty) Close() error {
	f.closeOnce.Do(func() { close(f.closed) })
	if c, ok := f.rw.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// SetReadDeadline passes t on to the transport; it returns an error wrapping
// device.ErrNotSupported when the transport has no read deadline.
func (f *Faulty) SetReadDeadline(t time.Time) error {
	f.dmu.Lock()
	f.deadline = t
	close(f.dlChanged)
	f.dlChanged = make(chan struct{})
	f.dmu.Unlock()
	if d, ok := f.rw.(readDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return fmt.Errorf("ctaphidtest: read deadline: %w", device.ErrNotSupported)
}

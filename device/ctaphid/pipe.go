package ctaphid

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
)

// PipeBuffer is how many reports an in-memory pipe holds per direction
// before Write blocks. It is larger than the longest message (129 reports),
// so one side can write a whole message while the other is busy.
const PipeBuffer = 256

// PipeEnd is one end of an in-memory report transport made by NewPipe or
// NewHub. It is message-preserving like a HID interrupt endpoint or a UDP
// socket: each Write is one report and each Read returns one report. It is
// safe for concurrent use.
type PipeEnd struct {
	in   *queue   // Read takes reports from here
	out  []*queue // Write puts each report into all of these
	hub  bool     // a hub device end: writes skip departed hosts
	done chan struct{}
	shut func()
	dl   deadline
}

// NewPipe returns the two ends of an in-memory report pipe: what one end
// writes, the other reads, in order. Closing either end closes the whole
// pipe, as unplugging a device does: reports not yet read are discarded, and
// pending and later Reads and Writes on both ends fail with an error
// wrapping device.ErrClosed.
func NewPipe() (a, b *PipeEnd) {
	ab, ba := newQueue(), newQueue()
	done := make(chan struct{})
	var once sync.Once
	shut := func() {
		once.Do(func() {
			close(done)
			ab.close()
			ba.close()
		})
	}
	a = &PipeEnd{in: ba, out: []*queue{ab}, done: done, shut: shut}
	b = &PipeEnd{in: ab, out: []*queue{ba}, done: done, shut: shut}
	a.dl.init()
	b.dl.init()
	return a, b
}

// NewHub returns a device end and n host ends that behave like a HID device
// opened by n programs at once: every report the device writes reaches every
// host that is still open, and the reports all hosts write reach the device,
// interleaved in the order they were written. CTAPHID channels exist to share
// a device this way (CTAP 2.1 §11.2.3).
//
// Closing a host end detaches that host only. Closing the device end
// closes everything. Errors wrap device.ErrClosed as with NewPipe.
func NewHub(n int) (dev *PipeEnd, hosts []*PipeEnd) {
	up := newQueue()
	downs := make([]*queue, n)
	for i := range downs {
		downs[i] = newQueue()
	}
	devDone := make(chan struct{})
	var devOnce sync.Once
	dev = &PipeEnd{in: up, out: downs, hub: true, done: devDone}
	dev.shut = func() {
		devOnce.Do(func() {
			close(devDone)
			up.close()
			for _, q := range downs {
				q.close()
			}
		})
	}
	dev.dl.init()
	for i := range n {
		done := make(chan struct{})
		var once sync.Once
		q := downs[i]
		h := &PipeEnd{in: q, out: []*queue{up}, done: done}
		h.shut = func() {
			once.Do(func() {
				close(done)
				q.close()
			})
		}
		h.dl.init()
		hosts = append(hosts, h)
	}
	return dev, hosts
}

// Read waits for the next report and copies it into b. It returns an error
// wrapping device.ErrClosed once the pipe is closed, one wrapping
// os.ErrDeadlineExceeded (a timeout) when the read deadline passes first,
// and one wrapping io.ErrShortBuffer, with the report cut to len(b), when b
// is too small for it.
func (e *PipeEnd) Read(b []byte) (int, error) {
	select {
	case <-e.done:
		return 0, errPipeClosed
	case <-e.in.closed:
		return 0, errPipeClosed
	default:
	}
	select {
	case <-e.done:
		return 0, errPipeClosed
	case <-e.in.closed:
		return 0, errPipeClosed
	case <-e.dl.wait():
		return 0, fmt.Errorf("ctaphid: pipe read: %w", os.ErrDeadlineExceeded)
	case r := <-e.in.ch:
		n := copy(b, r)
		if n < len(r) {
			return n, fmt.Errorf("ctaphid: pipe read: %w: report of %d bytes", io.ErrShortBuffer, len(r))
		}
		return n, nil
	}
}

// Write sends b as one report. It blocks while the reader's buffer
// (PipeBuffer reports) is full, and returns an error wrapping
// device.ErrClosed once the pipe is closed. A hub's device end skips hosts
// that have gone.
func (e *PipeEnd) Write(b []byte) (int, error) {
	r := append([]byte(nil), b...)
	for _, q := range e.out {
		select {
		case <-e.done:
			return 0, errPipeClosed
		case <-q.closed:
			if e.hub {
				continue
			}
			return 0, errPipeClosed
		default:
		}
		select {
		case <-e.done:
			return 0, errPipeClosed
		case <-q.closed:
			if e.hub {
				continue
			}
			return 0, errPipeClosed
		case q.ch <- r:
		}
	}
	return len(b), nil
}

// Close closes the pipe (see NewPipe and NewHub). It always returns nil.
func (e *PipeEnd) Close() error {
	e.shut()
	return nil
}

// SetReadDeadline makes pending and later Reads fail with a timeout once t
// has passed; the zero time removes the deadline. It always returns nil.
func (e *PipeEnd) SetReadDeadline(t time.Time) error {
	e.dl.set(t)
	return nil
}

var errPipeClosed = fmt.Errorf("ctaphid: pipe: %w", device.ErrClosed)

type queue struct {
	ch     chan []byte
	closed chan struct{}
	once   sync.Once
}

func newQueue() *queue {
	return &queue{ch: make(chan []byte, PipeBuffer), closed: make(chan struct{})}
}

func (q *queue) close() { q.once.Do(func() { close(q.closed) }) }

// deadline is a channel that is closed when a settable point in time passes.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	passed chan struct{}
}

func (d *deadline) init() { d.passed = make(chan struct{}) }

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.passed // the timer fired: wait until its function has closed the channel
	}
	d.timer = nil
	isPassed := false
	select {
	case <-d.passed:
		isPassed = true
	default:
	}
	if t.IsZero() {
		if isPassed {
			d.passed = make(chan struct{})
		}
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		if !isPassed {
			close(d.passed)
		}
		return
	}
	if isPassed {
		d.passed = make(chan struct{})
	}
	ch := d.passed
	d.timer = time.AfterFunc(wait, func() { close(ch) })
}

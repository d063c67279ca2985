// Package gcpace trades memory for CPU in a server's garbage collector,
// within a bound the server states: the heap may gather, between two
// collections, as much garbage as it holds live objects (what GOGC=100
// allows) or a fixed headroom, whichever is larger.
//
// A server whose live heap is small but which allocates fast (a login
// allocates tens of KiB and keeps little) is collected, under GOGC=100,
// every time it has allocated its small live heap once more: collections
// then cost a fifth of its CPU. A fixed GOGC above 100 cuts that, but
// multiplies peaks as well: while argon2id computations hold their
// blocks (19 MiB each) the live heap is large, and GOGC=400 let the heap
// grow to five times that. The headroom is additive instead of a factor,
// so a peak of live memory is followed by collections as often as under
// GOGC=100, and the heap never grows past live + max(live, headroom).
//
// After every collection the pacer reads the live heap L that the
// collection marked (runtime/metrics /gc/heap/live:bytes) and sets
//
//	GOGC         = 100 × max(L, headroom) / L
//	memory limit = L + max(L, headroom) + the runtime's other memory
//
// (the other memory: stacks, metadata, fragmentation; see
// runtime/debug.SetMemoryLimit). Both give the same heap goal; between
// two collections each bounds the other's stale value: after the live
// heap grew, the old memory limit is the tighter one, after it shrank,
// the old GOGC.
//
// A process that holds the live data of another program beside the
// server's (authbench load runs a server on SQLite in its own process,
// with thousands of simulated clients) tells the pacer how much of the
// live heap is not the server's (Exclude). Those X bytes get a room of
// their own size, as under GOGC=100, on top of the server's:
//
//	room = max(L − X, headroom) + X = max(L, headroom + X)
//
// so that the heap may grow as far as the two programs' heaps would in
// processes of their own (the server paced, the other under Go's
// default), and a fleet of clients does not use up the server's headroom.
//
// A GOGC or GOMEMLIMIT given in the environment is the operator's
// choice: Start leaves the collector alone then (see Environment).
package gcpace

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// minLive is the live heap the pacer assumes at least: the runtime's own
// smallest heap goal under GOGC=100 is 4 MiB.
const minLive = 4 << 20

// maxPercent bounds the GOGC the pacer sets (for a live heap of a few
// MiB and a headroom of a few GiB).
const maxPercent = 100_000

// Environment returns the GOGC and GOMEMLIMIT settings of the
// environment ("GOGC=200", "GOMEMLIMIT=1GiB", or both), or "" when
// neither is set.
func Environment() string {
	var s string
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		if v, ok := os.LookupEnv(k); ok {
			if s != "" {
				s += " "
			}
			s += k + "=" + v
		}
	}
	return s
}

// Pacer adjusts GOGC and the memory limit of the process after every
// garbage collection (see the package comment). There is one per process
// at a time: the settings it changes are the process's.
type Pacer struct {
	headroom uint64

	excluded atomic.Uint64 // live bytes not the paced program's (Exclude)

	mu         sync.Mutex
	stopped    bool
	samples    []metrics.Sample
	oldPercent int
	oldLimit   int64
	adjusted   uint64 // collections after which the settings were adjusted
	goal       uint64 // the last heap goal set, in bytes
}

var current struct {
	sync.Mutex
	p *Pacer
}

// Start starts pacing the process's garbage collector with headroom
// bytes: after every collection, the heap may grow by max(live heap,
// headroom) before the next one. It returns an error when a Pacer runs
// already, or when headroom is 0 (the Go defaults need no pacer). Stop
// gives back the settings found.
//
// Start does not look at the environment: a caller that respects GOGC
// and GOMEMLIMIT (as serve and load do) checks Environment first.
func Start(headroom uint64) (*Pacer, error) {
	if headroom == 0 {
		return nil, fmt.Errorf("gcpace: a headroom of 0 bytes")
	}
	current.Lock()
	defer current.Unlock()
	if current.p != nil {
		return nil, fmt.Errorf("gcpace: the garbage collector is paced already")
	}
	p := &Pacer{headroom: headroom, samples: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}}
	p.oldPercent = debug.SetGCPercent(100)
	p.oldLimit = debug.SetMemoryLimit(-1)
	current.p = p
	p.adjust()
	p.arm()
	return p, nil
}

// sentinel is an object that becomes garbage right after it is made, so
// that its cleanup runs after the next collection. It is larger than 16
// bytes: the runtime batches smaller pointer-free objects, and their
// cleanups may never run.
type sentinel struct{ _ [32]byte }

// arm makes a sentinel whose cleanup adjusts the settings after the next
// collection and arms a new one.
func (p *Pacer) arm() {
	runtime.AddCleanup(new(sentinel), func(p *Pacer) {
		if p.adjust() {
			p.arm()
		}
	}, p)
}

// adjust sets GOGC and the memory limit from the live heap of the last
// collection; it reports false once the pacer is stopped.
func (p *Pacer) adjust() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	metrics.Read(p.samples)
	v := func(i int) uint64 { return p.samples[i].Value.Uint64() }
	live := max(v(0), minLive)
	room := max(live, p.headroom+min(p.excluded.Load(), live))
	// Everything the runtime has mapped and not given back to the system,
	// except heap objects (live or not yet swept) and free heap spans:
	// goroutine stacks, metadata, unused parts of spans.
	var other uint64
	if inUse := v(1) - v(2); inUse > v(3)+v(4) {
		other = inUse - v(3) - v(4)
	}
	debug.SetGCPercent(int(min(100*room/live, maxPercent)))
	debug.SetMemoryLimit(int64(min(live+room+other, 1<<62)))
	p.goal = live + room
	p.adjusted++
	return true
}

// Exclude counts n more bytes of the live heap as another program's (see
// the package comment): until release is called, the heap may grow by
// max(live heap, headroom + the bytes excluded) after each collection.
// The caller measures n, for instance as the growth of the live heap
// (/gc/heap/live:bytes after runtime.GC) while it made the other
// program's objects. It takes effect at once; release may be called more
// than once.
func (p *Pacer) Exclude(n uint64) (release func()) {
	p.excluded.Add(n)
	p.adjust()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.excluded.Add(-n)
			p.adjust()
		})
	}
}

// Stop stops pacing and sets GOGC and the memory limit back to what
// Start found.
func (p *Pacer) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	debug.SetGCPercent(p.oldPercent)
	debug.SetMemoryLimit(p.oldLimit)
	current.Lock()
	current.p = nil
	current.Unlock()
}

// Stats returns how many times the settings were adjusted (once at the
// start and once after each collection since) and the heap goal, in
// bytes, that the last adjustment set.
func (p *Pacer) Stats() (adjusted, goal uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.adjusted, p.goal
}

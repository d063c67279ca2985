package sqlite

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// Where the writer's time goes. The group-committing writer (batch.go) is
// serial: whatever its wall time per batch is made of — the wait for the
// next leader to be scheduled, the statements, the COMMIT with its
// fdatasync and the wait for a P after it — bounds the batches per
// second. Every Store keeps these counters (a few clock readings per
// batch, beside a transaction that costs tens of microseconds at least);
// WriterStats returns them and, with AUTHBENCH_SQLITE_WRITER_STATS=1 in
// the environment, Close prints them to standard error, so that
// `authbench load` (whose SQLite server runs in its own process) shows
// them for each scenario without a profile.
//
// What they showed for `authbench load --scenario lifecycle` (10,000
// chips, 64 clients) on the shared 2-core machine: at load average 7–15
// the writer ran batches 79–85% of the wall time and waited for its next
// leader 7–11% more (1.7–5.6 ms per batch); at load average 3–4 (18.4 and
// 22.5 s, 108–145 batches/s) 70–72% and 14% (1.0–1.3 ms per batch). It
// is occupied nearly all the time, so it is what limits the lifecycle; of its busy time about a third was the ops' statements and
// two thirds the COMMIT, in which the fdatasync and the wait for a P
// after it dominate (run apart, the fdatasync with that wait took 4.5–19
// ms per batch against 3–15 ms for the rest of the COMMIT). Batches held
// 15–18 ops (5 per chip). In the chip and code logins the writer was busy
// only 22–39% of the time: there it is not the limit.

// writerStatsEnv names the environment variable that makes Close print
// the writer's statistics.
const writerStatsEnv = "AUTHBENCH_SQLITE_WRITER_STATS"

// WriterStats is what the writer of a Store did since Open, summed over
// its batches.
type WriterStats struct {
	// Batches is the number of batches run (transactions, also those
	// rolled back), Ops the writes they ran.
	Batches, Ops int64
	// BatchSizes counts the batches by their number of ops: 1, 2–3,
	// 4–7, 8–15, …, 128–255, 256.
	BatchSizes [9]int64
	// Ready is the time from a batch's ops being queued with no batch
	// running (or from the end of the batch before, when ops were queued
	// then) to the start of the batch: the wait for the next leader to be
	// scheduled.
	Ready time.Duration
	// Exec is the time from the start of a batch to its COMMIT (the
	// connection, BEGIN, the ops' statements).
	Exec time.Duration
	// Commit is the time COMMIT took: writing the log, syncing it
	// (synchronous=FULL, unless every op of the batch may lapse), the
	// wait for a P after the sync, and handing the changes to the mirror.
	Commit time.Duration
	// Done is the time from the end of COMMIT to the end of the batch:
	// releasing the connection, waking the ops.
	Done time.Duration
	// Busy is the time batches ran (start to end), Idle the time no
	// batch ran and none was queued.
	Busy, Idle time.Duration
	// Since is when the counting began (Open, or ResetWriterStats).
	Since time.Time
}

// writerClock counts the writer's time. Its fields other than the
// atomics are guarded by groupCommit.mu.
type writerClock struct {
	// readyAt is when queued ops started waiting for a leader (zero:
	// none wait, or a batch runs); idleAt when the writer became idle
	// (zero: it is not).
	readyAt, idleAt int64
	running         bool
	batches, ops    atomic.Int64
	sizes           [9]atomic.Int64
	ready, exec     atomic.Int64
	commit, done    atomic.Int64
	busy, idle      atomic.Int64
	since           atomic.Int64
}

// nanotime is the writer's clock: monotonic nanoseconds.
var epoch = time.Now()

func nanotime() int64 { return int64(time.Since(epoch)) }

// enqueued notes an op queued at now; gc.mu is held.
func (w *writerClock) enqueued(now int64, wasEmpty bool) {
	if w.running || !wasEmpty {
		return
	}
	if w.idleAt != 0 {
		w.idle.Add(now - w.idleAt)
		w.idleAt = 0
	}
	if w.readyAt == 0 {
		w.readyAt = now
	}
}

// started notes the start of a batch at now; gc.mu is held.
func (w *writerClock) started(now int64) {
	w.running = true
	if w.readyAt != 0 {
		w.ready.Add(now - w.readyAt)
		w.readyAt = 0
	}
	if w.idleAt != 0 { // ops queued by a leader that found them, not by enqueue
		w.idle.Add(now - w.idleAt)
		w.idleAt = 0
	}
}

// ended notes the end of a batch at now, with queued ops left; gc.mu is
// held.
func (w *writerClock) ended(now int64, queued int) {
	w.running = false
	if queued > 0 {
		w.readyAt = now
	} else {
		w.idleAt = now
	}
}

// batch notes a batch of n ops, from start to end, with its parts.
func (w *writerClock) batch(n int, start, execEnd, commitEnd, end int64) {
	w.batches.Add(1)
	w.ops.Add(int64(n))
	b := 0
	for k := n; k > 1 && b < len(w.sizes)-1; k >>= 1 {
		b++
	}
	w.sizes[b].Add(1)
	if execEnd != 0 {
		w.exec.Add(execEnd - start)
	}
	if commitEnd != 0 {
		w.commit.Add(commitEnd - execEnd)
		w.done.Add(end - commitEnd)
	}
	w.busy.Add(end - start)
}

// WriterStats returns what the writer did since Open (or the last
// ResetWriterStats).
func (s *Store) WriterStats() WriterStats {
	w := &s.gc.clock
	st := WriterStats{
		Batches: w.batches.Load(), Ops: w.ops.Load(),
		Ready: time.Duration(w.ready.Load()), Exec: time.Duration(w.exec.Load()),
		Commit: time.Duration(w.commit.Load()), Done: time.Duration(w.done.Load()),
		Busy: time.Duration(w.busy.Load()), Idle: time.Duration(w.idle.Load()),
		Since: epoch.Add(time.Duration(w.since.Load())),
	}
	for i := range w.sizes {
		st.BatchSizes[i] = w.sizes[i].Load()
	}
	return st
}

// ResetWriterStats starts the counting of WriterStats again.
func (s *Store) ResetWriterStats() {
	w := &s.gc.clock
	s.gc.mu.Lock()
	defer s.gc.mu.Unlock()
	for _, a := range []*atomic.Int64{&w.batches, &w.ops, &w.ready, &w.exec, &w.commit, &w.done, &w.busy, &w.idle} {
		a.Store(0)
	}
	for i := range w.sizes {
		w.sizes[i].Store(0)
	}
	now := nanotime()
	w.since.Store(now)
	if w.readyAt != 0 {
		w.readyAt = now
	}
	if w.idleAt != 0 {
		w.idleAt = now
	}
}

// Print writes st as a few lines of text: the parts of the writer's time
// per batch and as shares of the time since st.Since.
func (st WriterStats) Print(out io.Writer, now time.Time) {
	wall := now.Sub(st.Since)
	fmt.Fprintf(out, "sqlite writer: %d batches (%.0f/s), %d ops (%.1f per batch) in %v\n",
		st.Batches, float64(st.Batches)/wall.Seconds(), st.Ops, float64(st.Ops)/max(1, float64(st.Batches)), wall.Round(time.Millisecond))
	per := func(d time.Duration) string {
		if st.Batches == 0 {
			return "-"
		}
		return fmt.Sprintf("%6.1f µs/batch %5.1f%%", float64(d.Microseconds())/float64(st.Batches), 100*d.Seconds()/wall.Seconds())
	}
	fmt.Fprintf(out, "  busy        %s\n", per(st.Busy))
	fmt.Fprintf(out, "    exec      %s\n", per(st.Exec))
	fmt.Fprintf(out, "    commit    %s\n", per(st.Commit))
	fmt.Fprintf(out, "    done      %s\n", per(st.Done))
	fmt.Fprintf(out, "  ready-wait  %s\n", per(st.Ready))
	fmt.Fprintf(out, "  idle        %s\n", per(st.Idle))
	fmt.Fprintf(out, "  batch sizes:")
	lo := 1
	for i, n := range st.BatchSizes {
		hi := 2*lo - 1
		switch {
		case i == 0:
			fmt.Fprintf(out, " 1:%d", n)
		case i == len(st.BatchSizes)-1:
			fmt.Fprintf(out, " %d+:%d", lo, n)
		default:
			fmt.Fprintf(out, " %d-%d:%d", lo, hi, n)
		}
		lo *= 2
	}
	fmt.Fprintln(out)
}

// printWriterStats prints the writer's statistics at Close when the
// environment asks for them.
func (s *Store) printWriterStats() {
	if os.Getenv(writerStatsEnv) == "" || s.ro {
		return
	}
	st := s.WriterStats()
	if st.Batches == 0 {
		return
	}
	st.Print(os.Stderr, time.Now())
}

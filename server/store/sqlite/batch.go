package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// Group commit. Every write is an op: a function run inside a write
// transaction. Ops queue up; whoever holds the leader token takes every op
// queued at that moment and runs them in ONE transaction (BEGIN IMMEDIATE;
// a failing op undoes only its own work, see runBatch), then commits
// once: one fsync for the whole batch. While a batch
// commits, the next one queues. An op returns only after the commit of its
// batch, so what a caller was told has happened is durable.
//
// Two other shapes of the writer were measured against this one in
// back-to-back `authbench load --scenario lifecycle` runs (WriterStats,
// writerstats.go) and lost: one goroutine that runs batch after batch
// (no wait for the next leader; but at 10,000 chips its COMMITs took
// about twice as long and the lifecycle 114, 114, 63 and 106 s against
// 83, 84, 36 and 39 s for this one, though at 3,000 chips it won 4 pairs
// of 4; at load average 2, 19.6, 22.3 and 22.5 s against 16.6, 19.7 and
// 18.0 s: it ran batches of 6–7 ops instead of 10–13, at 3.3–3.7 ms of
// CPU per chip instead of 2.7–3.2 — the wait for the next leader, 15–23%
// of the wall time, is also what lets ops gather into a batch), and
// a syncer beside the writer that fdatasyncs the -wal file while the next
// batch runs, answering each batch after the sync that covers its commit
// (more, smaller batches, and slower syncs while the log is written:
// 3,000 chips in 86, 23 and 27 s against 61, 20 and 17 s with the sync
// in the batch). Nor did yielding the old leader's P to the new one at
// once (runtime.Gosched after handing over the token): the wait for the
// next leader fell from 14% of the lifecycle to 2%, the COMMITs grew by
// as much, and 10,000 chips took 38 and 21 s against 22.5 and 18 s. The
// writer's wall time is mostly a wait for a P (2 of them, for ~130
// goroutines): the time the ready-wait gave back went to the wait after
// the fdatasync.
//
// A batch whose ops all may lapse (sqlcore.Lapse: reservations and their
// releases, a password's success before the second factor) commits with
// synchronous=NORMAL: in WAL mode the commit then writes the log without
// syncing it. A crash of the process loses nothing (the operating system
// has the log), a crash of the machine may lose such a batch, and the next
// batch that syncs takes it to the disk along with its own (the log is
// written in order, and SQLite syncs it before every checkpoint). Every
// other batch commits with synchronous=FULL.

// maxBatch bounds the ops of one transaction, and so its latency.
const maxBatch = 256

const (
	opQueued int32 = iota
	opClaimed
	opCancelled
)

type writeOp struct {
	ctx   context.Context
	flags sqlcore.Flags
	fn    func(ctx context.Context, tx sqlcore.Tx) error
	state atomic.Int32
	err   error
	done  chan struct{}
}

type groupCommit struct {
	token   chan struct{} // capacity 1: held by the leader
	mu      sync.Mutex
	queue   []*writeOp
	batches atomic.Int64 // transactions run, for tests
	synced  atomic.Int64 // of those, committed with synchronous=FULL
	clock   writerClock  // where the writer's time goes (writerstats.go)
}

// The synchronous settings of the write connection.
const (
	syncFull   = "FULL"
	syncNormal = "NORMAL"
)

// The statements of the writer's transactions, prepared once on the write
// connection like the core's.
var (
	stmtBegin      = sqlcore.NewStmt("begin", "BEGIN IMMEDIATE", false)
	stmtCommit     = sqlcore.NewStmt("commit", "COMMIT", false)
	stmtRollback   = sqlcore.NewStmt("rollback", "ROLLBACK", false)
	stmtSavepoint  = sqlcore.NewStmt("savepoint", "SAVEPOINT op", false)
	stmtRollbackTo = sqlcore.NewStmt("rollback-to", "ROLLBACK TO op", false)
	stmtRelease    = sqlcore.NewStmt("release", "RELEASE op", false)
	stmtSyncFull   = sqlcore.NewStmt("sync-full", "PRAGMA synchronous = FULL", false)
	stmtSyncNormal = sqlcore.NewStmt("sync-normal", "PRAGMA synchronous = NORMAL", false)
)

// errReadOnly is the error of every write to a read-only store.
var errReadOnly = errors.New("sqlite: the store was opened read-only")

// Write implements sqlcore.Backend: fn runs as an op of a group-committed
// batch. The caller's ctx applies while the op waits to be taken into a
// batch; once taken, the op runs to the end of the batch, with a ctx that
// carries the caller's values but never cancels (cancelling one statement
// of a batch would roll back the whole transaction).
func (s *Store) Write(ctx context.Context, f sqlcore.Flags, fn func(ctx context.Context, tx sqlcore.Tx) error) error {
	if s.ro {
		return errReadOnly
	}
	if s.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &writeOp{ctx: ctx, flags: f, fn: fn, done: make(chan struct{})}
	s.gc.mu.Lock()
	if len(s.gc.queue) == 0 && !s.gc.clock.running {
		s.gc.clock.enqueued(nanotime(), true)
	}
	s.gc.queue = append(s.gc.queue, op)
	s.gc.mu.Unlock()
	for {
		select {
		case <-op.done:
			return op.err
		case s.gc.token <- struct{}{}:
			select {
			case <-op.done: // the previous leader ran it
			default:
				s.runBatch()
			}
			<-s.gc.token
			// The op is done now, unless more than maxBatch ops were
			// queued before it: then it waits for a later batch.
		case <-ctx.Done():
			if op.state.CompareAndSwap(opQueued, opCancelled) {
				return ctx.Err()
			}
			<-op.done // it is running: wait for the commit
			return op.err
		}
	}
}

// runBatch takes the queued ops and runs them in one transaction. The
// caller holds the leader token.
func (s *Store) runBatch() {
	s.gc.mu.Lock()
	start := nanotime()
	s.gc.clock.started(start)
	n := min(len(s.gc.queue), maxBatch)
	batch := append([]*writeOp(nil), s.gc.queue[:n]...)
	s.gc.queue = append(s.gc.queue[:0], s.gc.queue[n:]...)
	s.gc.mu.Unlock()
	var t batchTimes
	defer func() {
		end := nanotime()
		s.gc.clock.batch(len(batch), start, t.execEnd, t.commitEnd, end)
		s.gc.mu.Lock()
		s.gc.clock.ended(end, len(s.gc.queue))
		s.gc.mu.Unlock()
	}()

	var ops []*writeOp
	for _, op := range batch {
		if op.state.CompareAndSwap(opQueued, opClaimed) {
			// Claimed, the op runs to the end of the batch (Write).
			op.ctx = context.WithoutCancel(op.ctx)
			ops = append(ops, op)
		} else {
			close(op.done) // cancelled; nobody reads its result
		}
	}
	defer func() {
		for _, op := range ops {
			close(op.done)
		}
	}()
	if len(ops) == 0 {
		return
	}
	fail := func(err error) {
		for _, op := range ops {
			if op.err == nil {
				op.err = err
			}
		}
	}
	c, ok := <-s.wconn
	if !ok {
		fail(errClosed)
		return
	}
	defer func() { s.wconn <- c }()
	// One transaction at a time among the Stores of the file, each with
	// its hand-over to the mirror at COMMIT (changes.go).
	s.own.writes.Lock()
	defer s.own.writes.Unlock()
	s.gc.batches.Add(1)
	bg := ops[0].ctx
	sync := syncNormal
	for _, op := range ops {
		if op.flags&sqlcore.Lapse == 0 {
			sync = syncFull
		}
	}
	if err := s.setSynchronous(bg, c, sync); err != nil {
		fail(err)
		return
	}
	if _, err := c.Exec(bg, stmtBegin); err != nil {
		fail(fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	// The ops run one after the other without savepoints: when they all
	// succeed, as they nearly always do, the batch commits. An op that
	// fails cannot undo its own work alone then: the transaction rolls
	// back, and a batch of several ops runs again from the start with
	// each op inside a savepoint (runSavepoint), so that only the
	// failing op's work is undone. An op's fn may run more than once
	// (sqlcore.Backend); what it returns is what its committed run
	// returned.
	if !s.runPlain(c, ops) {
		_, _ = c.Exec(bg, stmtRollback)
		if len(ops) == 1 {
			return
		}
		if _, err := c.Exec(bg, stmtBegin); err != nil {
			fail(fmt.Errorf("sqlite: begin: %w", err))
			return
		}
		for _, op := range ops {
			op.err = nil
		}
		for _, op := range ops {
			if err := s.runSavepoint(op.ctx, c, op); err != nil {
				// The transaction is gone (SQLite rolled it back after an
				// I/O error, say): nothing of the batch is committed.
				_, _ = c.Exec(bg, stmtRollback)
				fail(err)
				return
			}
		}
	}
	t.execEnd = nanotime()
	if _, err := c.Exec(bg, stmtCommit); err != nil {
		_, _ = c.Exec(bg, stmtRollback)
		fail(fmt.Errorf("sqlite: commit: %w", err))
		return
	}
	t.commitEnd = nanotime()
	if sync == syncFull {
		s.gc.synced.Add(1)
	}
	s.committed()
	for _, op := range ops {
		if op.err == nil && op.flags&sqlcore.Scrub != 0 {
			s.wakeScrubber() // in the background: see scrub.go
			break
		}
	}
}

// batchTimes are the moments of a batch the writer's clock notes (zero:
// not reached).
type batchTimes struct{ execEnd, commitEnd int64 }

// setSynchronous sets the write connection's synchronous setting for the
// next batch (nothing to do for an in-memory database).
func (s *Store) setSynchronous(ctx context.Context, c *conn, to string) error {
	if s.mem || s.synchronous == to {
		return nil
	}
	q := stmtSyncFull
	if to == syncNormal {
		q = stmtSyncNormal
	}
	if _, err := c.Exec(ctx, q); err != nil {
		return fmt.Errorf("sqlite: synchronous=%s: %w", to, err)
	}
	s.synchronous = to
	return nil
}

// runOp runs fn. It is run again only after a rollback (runBatch), never
// to retry: the write transaction holds the database's write lock from
// its BEGIN IMMEDIATE, in this process and any other, so an audit append
// cannot lose the race for a sequence number that sqlcore.SeqRace reports
// (the primary key would refuse it all the same).
func (s *Store) runOp(ctx context.Context, c *conn, fn func(context.Context, sqlcore.Tx) error) error {
	return fn(ctx, c)
}

// runPlain runs ops in the transaction, without savepoints, until one
// fails (its op.err set). It reports whether all succeeded.
func (s *Store) runPlain(c *conn, ops []*writeOp) bool {
	for _, op := range ops {
		if op.err = s.runOp(op.ctx, c, op.fn); op.err != nil {
			return false
		}
	}
	return true
}

// runSavepoint runs op inside a savepoint, undoing its work when it fails
// (op.err). It returns an error only when the transaction itself can no
// longer be used.
func (s *Store) runSavepoint(ctx context.Context, c *conn, op *writeOp) error {
	if _, err := c.Exec(ctx, stmtSavepoint); err != nil {
		return fmt.Errorf("sqlite: savepoint: %w", err)
	}
	if op.err = s.runOp(ctx, c, op.fn); op.err != nil {
		if _, err := c.Exec(ctx, stmtRollbackTo); err != nil {
			return fmt.Errorf("sqlite: rollback to savepoint: %w (after %w)", err, op.err)
		}
	}
	if _, err := c.Exec(ctx, stmtRelease); err != nil {
		return fmt.Errorf("sqlite: release savepoint: %w", err)
	}
	return nil
}

// WriteStats counts the write transactions a Store committed.
type WriteStats struct {
	// Commits is the number of write transactions (group-committed
	// batches) run.
	Commits int64
	// Durable is the number of those that waited for the disk
	// (synchronous=FULL: the -wal file synced at the commit).
	Durable int64
}

// Writes returns the write transactions committed so far: what a chip's
// lifecycle, a login or a benchmark costs in durable writes.
func (s *Store) Writes() WriteStats {
	return WriteStats{Commits: s.gc.batches.Load(), Durable: s.gc.synced.Load()}
}

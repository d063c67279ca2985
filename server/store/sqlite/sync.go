package sqlite

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// Syncing the log beside the writer. A batch's COMMIT writes its pages to
// the -wal file (pwrite, into the operating system's page cache) with
// synchronous=NORMAL, which does not sync; the syncer, a goroutine of its
// own, then calls fdatasync on its own descriptor of the -wal file — the
// same inode, so the call makes every byte written to it before the call
// durable — and only then answers the ops of the batches that committed
// before the call began. Meanwhile the writer runs the next batch: the
// wait for the disk, and the wait for the Go scheduler after it, overlap
// the next batch's work instead of adding to it. One fdatasync covers
// every batch committed before it began, so a syncer that falls behind
// syncs several batches at once.
//
// The rules that keep an answer from running ahead of the disk:
//
//   - An op is answered only after an fdatasync that began after its
//     batch's COMMIT returned has completed (syncer.run). A batch that
//     wrote nothing that must be durable (all its ops may lapse, or it
//     rolled back) needs no sync of its own, but is answered in its turn,
//     after the batches before it.
//   - Checkpoints: SQLite syncs the -wal file before a checkpoint copies
//     frames into the database file, whatever synchronous is (it is
//     NORMAL or FULL on every connection of the store, never OFF), and
//     syncs the database file before it marks them copied, so the
//     background PASSIVE checkpoint never moves an unsynced frame, and a
//     log that a truncating checkpoint empties, or that a commit restarts
//     from its start, held only frames that are durable in the database
//     file: the syncer's next fdatasync of a shorter file loses nothing.
//   - The -wal file is never replaced while the store is open: SQLite
//     deletes it only when the last connection of the database closes,
//     and the store holds its connections from Open to Close, after the
//     syncer's last sync.
//   - A failed fdatasync leaves the log's state on the disk unknown (the
//     kernel may have dropped the pages it could not write): its ops fail,
//     and so does every later write of the store (errSyncFailed).
//
// Reads see a batch from its COMMIT on, possibly before its sync: the
// read connections and the mirror of the records a login reads
// (changes.go). That is safe: an answer that reports a write waits for
// the write's sync, and one sync covers every earlier commit, so a write
// that depended on what it read is durable only with what it read. A
// read-only answer may show a change whose own write is not yet answered
// (a chip refused as blocked a moment before the block is answered); if
// the machine then loses power, the change is gone together with the
// answer its writer never received, as if the read had come a moment
// earlier. A killed process loses nothing that was written to the file,
// synced or not.

// errSyncFailed wraps the error of a failed fdatasync of the log.
var errSyncFailed = errors.New("sqlite: syncing the write-ahead log failed")

// syncer syncs the -wal file and answers the batches it covers.
type syncer struct {
	f *os.File // the -wal file, read-only: fdatasync needs no write access
	// inline makes the writer sync the log itself after each COMMIT (for
	// measurements: AUTHBENCH_SQLITE_SYNC=inline).
	inline bool

	mu      sync.Mutex
	pending []syncBatch // committed, in order, not yet answered
	busy    bool        // run holds batches it has not answered yet
	cond    sync.Cond   // on mu: synced moved
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}

	// seq numbers the commits handed over; synced is the highest seq an
	// fdatasync covered (for tests: onSync).
	seq, synced atomic.Int64
	// failed holds the error of a failed sync, once set.
	failed atomic.Pointer[error]
	// onSync, when set (tests), is called before each fdatasync with the
	// highest seq it covers, and after it with the same seq.
	onSync func(seq int64, done bool)
	// onCommit, when set (tests), is called by the writer with the seq
	// of each commit it hands over, before the next batch.
	onCommit func(seq int64)
}

// syncBatch is a committed batch waiting for its answers.
type syncBatch struct {
	ops []*writeOp
	// seq is the batch's commit number (0: nothing to sync).
	seq int64
	// at is when its COMMIT ended (nanotime).
	at int64
}

// startSyncer opens the -wal file of the database at abs and starts the
// syncer. Without a -wal file (it exists from the first write of a WAL
// database on, and the store migrates before this), the store syncs at
// every COMMIT instead.
func (s *Store) startSyncer(abs string) error {
	f, err := os.Open(abs + "-wal")
	if err != nil {
		return fmt.Errorf("sqlite: open the write-ahead log to sync it: %w", err)
	}
	sy := &syncer{f: f, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	sy.cond.L = &sy.mu
	sy.inline = os.Getenv("AUTHBENCH_SQLITE_SYNC") == "inline"
	s.syncer = sy
	go s.runSyncer(sy)
	return nil
}

// answer answers the ops of a batch that ended: at once when nothing is
// waiting for a sync and the batch needs none; else once the syncer has
// synced it (needSync: it committed writes that must be durable) and
// the batches before it.
// It returns the time the writer itself spent syncing (inline).
func (s *Store) answer(ops []*writeOp, needSync bool, at int64) (synced int64) {
	sy := s.syncer
	if sy == nil {
		closeOps(ops, nil)
		return 0
	}
	if sy.inline && needSync {
		start := nanotime()
		err := s.syncNow(sy)
		synced = nanotime() - start
		s.gc.clock.sync.Add(synced)
		closeOps(ops, err)
		return synced
	}
	sy.mu.Lock()
	if !needSync && !sy.busy && len(sy.pending) == 0 {
		sy.mu.Unlock()
		closeOps(ops, nil)
		return 0
	}
	b := syncBatch{ops: ops, at: at}
	if needSync {
		b.seq = sy.seq.Add(1)
		if sy.onCommit != nil {
			sy.onCommit(b.seq)
		}
	}
	sy.pending = append(sy.pending, b)
	select {
	case sy.wake <- struct{}{}:
	default:
	}
	// One sync in flight at most: the writer runs the next batch while
	// this one syncs, but waits for the sync of the one before (so that
	// ops queue into batches instead of trickling into a commit each).
	start := nanotime()
	for needSync && sy.synced.Load() < b.seq-1 && sy.failed.Load() == nil {
		sy.cond.Wait()
	}
	sy.mu.Unlock()
	waited := nanotime() - start
	s.gc.clock.prev.Add(waited)
	return waited
}

// closeOps answers ops, with err for those without an error of their own.
func closeOps(ops []*writeOp, err error) {
	for _, op := range ops {
		if err != nil && op.err == nil {
			op.err = err
		}
		close(op.done)
	}
}

// runSyncer is the syncer's goroutine: it syncs and answers what is
// pending until stop is closed and nothing is pending any more.
func (s *Store) runSyncer(sy *syncer) {
	defer close(sy.done)
	for {
		sy.mu.Lock()
		batches := sy.pending
		sy.pending = nil
		sy.busy = len(batches) > 0
		sy.mu.Unlock()
		if len(batches) == 0 {
			select {
			case <-sy.wake:
				continue
			case <-sy.stop:
				sy.mu.Lock()
				n := len(sy.pending)
				sy.mu.Unlock()
				if n > 0 {
					continue
				}
				return
			}
		}
		var top int64
		for _, b := range batches {
			top = max(top, b.seq)
		}
		var err error
		if top > 0 {
			if sy.onSync != nil {
				sy.onSync(top, false)
			}
			start := nanotime()
			err = s.syncNow(sy)
			s.gc.clock.sync.Add(nanotime() - start)
			sy.mu.Lock()
			if err == nil {
				sy.synced.Store(top)
			}
			sy.cond.Broadcast()
			sy.mu.Unlock()
			if sy.onSync != nil {
				sy.onSync(top, true)
			}
		}
		now := nanotime()
		for _, b := range batches {
			s.gc.clock.behind.Add(int64(len(b.ops)) * (now - b.at))
			closeOps(b.ops, err)
		}
		sy.mu.Lock()
		sy.busy = false
		sy.mu.Unlock()
	}
}

// syncNow fdatasyncs the log. Once a sync has failed, it fails for good.
func (s *Store) syncNow(sy *syncer) error {
	if p := sy.failed.Load(); p != nil {
		return *p
	}
	s.gc.clock.syncs.Add(1)
	if err := fdatasync(sy.f); err != nil {
		err = fmt.Errorf("%w: %w", errSyncFailed, err)
		sy.failed.CompareAndSwap(nil, &err)
		s.log.Error("sqlite: syncing the write-ahead log failed: the store accepts no more writes", "err", err)
		return *sy.failed.Load()
	}
	return nil
}

// syncFailed returns the error of a failed sync of the log, or nil.
func (s *Store) syncFailed() error {
	if s.syncer == nil {
		return nil
	}
	if p := s.syncer.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// stopSyncer answers what is pending, ends the syncer and closes its
// descriptor of the log; the writer has ended before.
func (s *Store) stopSyncer() error {
	sy := s.syncer
	if sy == nil {
		return nil
	}
	close(sy.stop)
	<-sy.done
	return sy.f.Close()
}

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Checkpoints and scrubbing the write-ahead log.
//
// Every commit appends the pages it changed to the -wal file; a checkpoint
// copies them back into the database file. SQLite's own automatic
// checkpoint runs on the writer, in the commit that pushes the log past
// its threshold: it copies the whole log and syncs the database file
// while every write waits. The store moves that work off the writer: a
// goroutine with a connection of its own (the checkpointer) runs a PASSIVE
// checkpoint every ckptEvery while the writer commits, beside it (a
// PASSIVE checkpoint takes no lock a writer needs), so that the log is
// reused from its start and stays small; the writer's own automatic
// checkpoint is left only as a backstop for a log that grows past
// walBackstop pages anyway.
//
// A write that deletes or replaces secret material (sqlcore.Scrub) leaves
// the old page versions in the -wal file until a checkpoint copies the log
// back into the database file (where secure_delete has zeroed the old
// bytes) and truncates the log. The batch that committed the wipe wakes
// the checkpointer and returns. The checkpointer waits scrubDelay, so that
// the wipes of that time share one truncation, runs a PASSIVE checkpoint
// (which copies nearly all of the log while the writer goes on), and then
// truncates the log ON THE WRITE CONNECTION, between two batches: PRAGMA
// wal_checkpoint(TRUNCATE) with a short busy timeout (scrubBusy), which
// copies what came since and empties the file, and is tried again every
// scrubRetry until it completes. A truncating checkpoint holds the
// database's write lock while it runs wherever it runs, but on the write
// connection no batch sleeps in SQLite's busy handler waiting for it (the
// next batch takes the connection the moment it is free), and the writer
// keeps its page cache (a connection forgets its cached pages whenever
// ANOTHER connection restarts the log).
//
// ScrubWindow bounds the time from the commit of a wipe to the truncation
// of the log, when no read transaction lasts longer than it; a read open
// at the wipe delays it until the read ends. The checkpointer logs a
// warning when a scrub takes longer than ScrubWindow.

// ScrubWindow is how long wiped key material may remain in the -wal file
// after the wipe's commit (see the package documentation).
const ScrubWindow = 2 * time.Second

const (
	scrubDelay = ScrubWindow / 4        // from a wake to the checkpoint
	scrubBusy  = 100 * time.Millisecond // the truncating checkpoint's busy timeout
	scrubRetry = 25 * time.Millisecond  // the pause between tries
	// ckptEvery is the pause between the checkpointer's PASSIVE
	// checkpoints while the writer commits: a page the writer changes
	// again and again is copied once per checkpoint, and at 4 KiB pages
	// the log holds a few MiB by then.
	ckptEvery = 250 * time.Millisecond
	// walBackstop is the writer's own automatic checkpoint threshold, in
	// pages (SQLite's default is 1000): reached only when the
	// checkpointer falls behind.
	walBackstop = 16384
)

// scrubber checkpoints a file database in the background.
type scrubber struct {
	// mu serializes the checkpoints of the scrubber and of
	// Store.Checkpoint: two at once make one of them fail busy.
	mu   sync.Mutex
	db   *sql.DB       // one connection, not query_only
	wake chan struct{} // capacity 1: a scrub is wanted
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the goroutine ends
	// wrote is set by every commit of the writer and cleared by the
	// checkpointer's PASSIVE checkpoint; paused stops its checkpoints,
	// the periodic ones and the scrubs after wipes (for a bench that
	// counts the frames in the log, and only there: wiped key material
	// then stays in the log until the bench's own checkpoint).
	wrote, paused atomic.Bool
}

// startScrubber opens the checkpointer's connection to the database file
// name (a file: URI) with the pragmas common and starts its goroutine.
func (s *Store) startScrubber(name string, common url.Values) error {
	q := cloneValues(common)
	q.Del("_pragma")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", scrubBusy.Milliseconds()))
	db, err := sql.Open("sqlite", name+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("sqlite: open the checkpointer's connection: %w", err)
	}
	limitPool(db, 1)
	sc := &scrubber{db: db, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	s.scrub = sc
	go s.runScrubber(sc)
	return nil
}

// wakeScrubber asks for a scrub after a batch that removed secret
// material; it never blocks.
func (s *Store) wakeScrubber() {
	if s.scrub == nil {
		return
	}
	select {
	case s.scrub.wake <- struct{}{}:
	default: // a scrub is already wanted; it covers this batch too
	}
}

// committed notes a commit of the writer, for the periodic checkpoint.
func (s *Store) committed() {
	if sc := s.scrub; sc != nil && !sc.wrote.Load() {
		sc.wrote.Store(true)
	}
}

func (s *Store) runScrubber(sc *scrubber) {
	defer close(sc.done)
	ctx := context.Background()
	tick := time.NewTicker(ckptEvery)
	defer tick.Stop()
	for {
		select {
		case <-sc.stop:
			return
		case <-tick.C:
			// A scrub that is wanted checkpoints soon anyway.
			if sc.wrote.Load() && !sc.paused.Load() && len(sc.wake) == 0 {
				s.passive(ctx, sc)
			}
			continue
		case <-sc.wake:
			if sc.paused.Load() {
				continue
			}
		}
		start := time.Now()
		select {
		case <-sc.stop:
			return // Close checkpoints on the write connection
		case <-time.After(scrubDelay):
		}
		if sc.paused.Load() {
			continue
		}
		// The checkpoint below covers every wipe committed before it, so
		// a wake that came meanwhile asks for nothing more.
		select {
		case <-sc.wake:
		default:
		}
		// A passive checkpoint first copies the log into the database
		// while the writer goes on; the truncating one, which holds the
		// writer off while it runs, then has only what came since to
		// copy. Its outcome does not matter: the truncating one checks.
		s.passive(ctx, sc)
		warned := false
		for {
			err := s.truncate(ctx, scrubBusy)
			if err == nil {
				break
			}
			if !warned && time.Since(start) > ScrubWindow {
				warned = true
				s.log.Warn("sqlite: wiped key material is still in the write-ahead log: the checkpoint that removes it has not completed",
					"after", time.Since(start).Round(time.Millisecond), "err", err)
			}
			select {
			case <-sc.stop:
				return // Close checkpoints on the write connection
			case <-time.After(scrubRetry):
			}
		}
		if warned {
			s.log.Info("sqlite: the write-ahead log is scrubbed", "after", time.Since(start).Round(time.Millisecond))
		}
	}
}

// passive runs a PASSIVE checkpoint on the checkpointer's connection.
func (s *Store) passive(ctx context.Context, sc *scrubber) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.wrote.Store(false)
	_, _ = sc.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
}

// truncate runs PRAGMA wal_checkpoint(TRUNCATE) on the write connection,
// between batches, waiting up to busy for readers (busy 0: the store's
// busy timeout); it returns ErrCheckpointBusy when readers kept it from
// completing.
func (s *Store) truncate(ctx context.Context, busy time.Duration) error {
	if s.scrub != nil {
		s.scrub.mu.Lock()
		defer s.scrub.mu.Unlock()
	}
	c, ok := <-s.wconn
	if !ok {
		return errClosed
	}
	defer func() { s.wconn <- c }()
	// No transaction of another Store of the file in this process runs
	// meanwhile (batch.go): it would hold the write lock.
	s.own.writes.Lock()
	defer s.own.writes.Unlock()
	if busy <= 0 || busy == s.busy {
		return checkpoint(ctx, c)
	}
	// Run a few times a second at most: not worth preparing.
	setBusy := func(d time.Duration) error {
		if _, err := c.c.ExecContext(ctx, "PRAGMA busy_timeout = "+strconv.FormatInt(d.Milliseconds(), 10)); err != nil {
			return fmt.Errorf("sqlite: busy timeout: %w", err)
		}
		return nil
	}
	if err := setBusy(busy); err != nil {
		return err
	}
	err := checkpoint(ctx, c)
	if e := setBusy(s.busy); e != nil && err == nil {
		err = e
	}
	return err
}

// checkpoint runs PRAGMA wal_checkpoint(TRUNCATE) on c.
func checkpoint(ctx context.Context, c *conn) error {
	var busy, logPages, done int
	err := c.c.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done)
	return checkpointResult(busy, err)
}

// checkpointOn runs PRAGMA wal_checkpoint(TRUNCATE) on db; it returns
// ErrCheckpointBusy when readers or a writer kept it from completing.
func (s *Store) checkpointOn(ctx context.Context, db *sql.DB) error {
	var busy, logPages, done int
	err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done)
	return checkpointResult(busy, err)
}

// checkpointResult makes the error of a truncating checkpoint of its
// first column (busy) and the error of running it.
func checkpointResult(busy int, err error) error {
	if err != nil {
		if sqliteCode(err)&0xff == 5 { // SQLITE_BUSY and its extended codes
			return ErrCheckpointBusy
		}
		return fmt.Errorf("sqlite: checkpoint: %w", err)
	}
	if busy != 0 {
		return ErrCheckpointBusy
	}
	return nil
}

// stopScrubber ends the scrubber's goroutine and closes its connection.
func (s *Store) stopScrubber() error {
	if s.scrub == nil {
		return nil
	}
	close(s.scrub.stop)
	<-s.scrub.done
	if err := s.scrub.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close the checkpointer's connection: %w", err)
	}
	return nil
}

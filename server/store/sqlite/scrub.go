package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"sync"
	"time"
)

// Scrubbing the write-ahead log. A write that deletes or replaces secret
// material (sqlcore.Scrub) leaves the old page versions in the -wal file
// until a checkpoint copies the log back into the database file (where
// secure_delete has zeroed the old bytes) and truncates the log. That
// checkpoint waits for the readers of older snapshots and blocks new
// writers while it waits, so it is not run on the request path: the batch
// that committed the wipe wakes the scrubber, a goroutine with a
// connection of its own, and returns. The scrubber waits scrubDelay, so
// that the wipes of that time share one checkpoint (a checkpoint per wipe
// kept the writer waiting at its BEGIN most of the time when every
// request blocked something), then runs PRAGMA wal_checkpoint(TRUNCATE)
// with a short busy timeout (scrubBusy), and tries again every scrubRetry
// until it completes, so that no writer waits long for it whatever the
// readers do.
//
// ScrubWindow bounds the time from the commit of a wipe to the truncation
// of the log, when no read transaction lasts longer than it; a read open
// at the wipe delays it until the read ends. The scrubber logs a warning
// when a scrub takes longer than ScrubWindow.

// ScrubWindow is how long wiped key material may remain in the -wal file
// after the wipe's commit (see the package documentation).
const ScrubWindow = 2 * time.Second

const (
	scrubDelay = ScrubWindow / 8        // from a wake to the checkpoint
	scrubBusy  = 100 * time.Millisecond // the checkpoint's busy timeout
	scrubRetry = 25 * time.Millisecond  // the pause between tries
)

// scrubber checkpoints a file database after wipes, in the background.
type scrubber struct {
	// mu serializes the checkpoints of the scrubber and of
	// Store.Checkpoint: two at once make one of them fail busy.
	mu   sync.Mutex
	db   *sql.DB       // one connection, not query_only
	wake chan struct{} // capacity 1: a scrub is wanted
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the goroutine ends
}

// startScrubber opens the scrubber's connection to the database file name
// (a file: URI) with the pragmas common and starts its goroutine.
func (s *Store) startScrubber(name string, common url.Values) error {
	q := cloneValues(common)
	q.Del("_pragma")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", scrubBusy.Milliseconds()))
	db, err := sql.Open("sqlite", name+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("sqlite: open the scrubber's connection: %w", err)
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

func (s *Store) runScrubber(sc *scrubber) {
	defer close(sc.done)
	ctx := context.Background()
	for {
		select {
		case <-sc.stop:
			return
		case <-sc.wake:
		}
		start := time.Now()
		select {
		case <-sc.stop:
			return // Close checkpoints on the write connection
		case <-time.After(scrubDelay):
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
		sc.mu.Lock()
		_, _ = sc.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		sc.mu.Unlock()
		warned := false
		for {
			sc.mu.Lock()
			err := s.checkpointOn(ctx, sc.db)
			sc.mu.Unlock()
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

// checkpointOn runs PRAGMA wal_checkpoint(TRUNCATE) on db; it returns
// ErrCheckpointBusy when readers or a writer kept it from completing.
func (s *Store) checkpointOn(ctx context.Context, db *sql.DB) error {
	var busy, logPages, done int
	err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done)
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
		return fmt.Errorf("sqlite: close the scrubber's connection: %w", err)
	}
	return nil
}

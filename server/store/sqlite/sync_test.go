package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

var stmtSyncTestInsert = sqlcore.NewStmt("sync-test-insert", "INSERT INTO sync_test (k, v) VALUES (?, ?)", false)

// TestAnswerAfterSync checks the syncer's rule (sync.go): no write is
// answered before an fdatasync of the -wal file that covers its commit
// has completed. Many goroutines write while the periodic checkpoints are
// off (so the -wal file only grows, and a byte offset in it is a
// position in the log); hooks note where each batch's COMMIT ended in the
// file and how far each fdatasync reached (the file's size when it
// began), and every write, when it returns, must find its batch's commit
// end at or below the reach of a completed sync.
func TestAnswerAfterSync(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "sync.db"), Options{Chain: nopChain{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := StopAutoCheckpoint(s); err != nil {
		t.Fatal(err)
	}
	err = s.onWriter(func(c *sql.Conn) error {
		_, err := c.ExecContext(context.Background(), "CREATE TABLE sync_test (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sy := s.syncer
	if sy == nil || sy.inline {
		t.Fatal("the store has no syncer of its own")
	}
	size := func() int64 {
		fi, err := sy.f.Stat()
		if err != nil {
			t.Error(err)
			return 0
		}
		return fi.Size()
	}
	var (
		mu        sync.Mutex
		commitEnd = map[int64]int64{} // seq → the size of the log after its COMMIT
		batchSeq  = map[int64]int64{} // batch number → its seq
		reach     = map[int64]int64{} // seq a sync covers → the size when it began
		durable   int64               // the reach of the last completed sync
		syncs     int
	)
	sy.onCommit = func(seq int64) {
		mu.Lock()
		defer mu.Unlock()
		commitEnd[seq] = size()
		batchSeq[s.gc.batches.Load()] = seq
	}
	sy.onSync = func(top int64, done bool) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			reach[top] = size()
			return
		}
		durable = max(durable, reach[top])
		syncs++
	}
	const writers, each = 32, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var batch int64
				err := s.Write(context.Background(), 0, func(ctx context.Context, tx sqlcore.Tx) error {
					batch = s.gc.batches.Load() // batches run one at a time
					_, err := tx.Exec(ctx, stmtSyncTestInsert, fmt.Sprintf("w%d-%d", w, i), make([]byte, 600))
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				seq, ok := batchSeq[batch]
				end, at := commitEnd[seq], durable
				mu.Unlock()
				if !ok {
					errs <- fmt.Errorf("write w%d-%d answered, but its batch %d was never handed to the syncer", w, i, batch)
					return
				}
				if end > at {
					errs <- fmt.Errorf("write w%d-%d answered with its commit ending at byte %d of the log, synced only up to byte %d", w, i, end, at)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if syncs == 0 || len(commitEnd) < 2 {
		t.Fatalf("%d syncs of %d commits: nothing was measured", syncs, len(commitEnd))
	}
	t.Logf("%d writes in %d commits, %d syncs", writers*each, len(commitEnd), syncs)
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// holdLeader takes the leader token, as a running batch would, and returns
// a function that waits until n ops are queued and then releases it.
func holdLeader(t *testing.T, s *Store) func(n int) {
	s.gc.token <- struct{}{}
	return func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second) // a failure guard only
		for {
			s.gc.mu.Lock()
			q := len(s.gc.queue)
			s.gc.mu.Unlock()
			if q >= n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d ops queued, want %d", q, n)
			}
			runtime.Gosched()
		}
		<-s.gc.token
	}
}

// onWriter runs fn with the store's write connection, between batches.
func (s *Store) onWriter(fn func(c *sql.Conn) error) error {
	c := <-s.wconn
	defer func() { s.wconn <- c }()
	// What fn writes bypasses the batches, and so the mirror.
	defer forgetMirror(s)
	return fn(c.c)
}

// forgetMirror makes s forget the records it holds in memory, for a test
// that changed the database behind its back.
func forgetMirror(s *Store) {
	if s.mirror != nil {
		s.mirror.Forget()
	}
}

func identityChange(id string) domain.IdentityChange {
	c, _ := domain.NewIdentity(id, domain.System("test"), time.Unix(1700000000, 0))
	return c
}

// TestBatchIsolatesFailures runs ops in one batch where some fail: the
// others commit, the failed ones leave nothing (their savepoint is undone).
func TestBatchIsolatesFailures(t *testing.T) {
	for _, path := range []string{":memory:", filepath.Join(t.TempDir(), "b.db")} {
		s, err := Open(context.Background(), path, Options{Chain: nopChain{}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := s.CreateIdentity(ctx, identityChange("dup")); err != nil {
			t.Fatal(err)
		}
		before := s.gc.batches.Load()
		release := holdLeader(t, s)
		const n = 20
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprint("id-", i)
				if i%4 == 0 {
					id = "dup"
				}
				errs[i] = s.CreateIdentity(ctx, identityChange(id))
			}()
		}
		release(n)
		wg.Wait()
		if b := s.gc.batches.Load() - before; b != 1 {
			t.Errorf("%s: %d ops ran in %d transactions, want 1", path, n, b)
		}
		for i, err := range errs {
			_, gerr := s.Identity(ctx, fmt.Sprint("id-", i))
			if i%4 == 0 {
				if !errors.Is(err, store.ErrDuplicate) || !errors.Is(gerr, store.ErrNotFound) {
					t.Errorf("%s: op %d: %v / %v, want a duplicate that stored nothing", path, i, err, gerr)
				}
			} else if err != nil || gerr != nil {
				t.Errorf("%s: op %d: %v / %v", path, i, err, gerr)
			}
		}
		// 1 + 15 identities were audited, each in a chain of its own.
		heads, err := s.AuditHeads(ctx)
		if err != nil || len(heads) != 16 {
			t.Errorf("%s: %d audit chains, %v; want 16", path, len(heads), err)
		}
		s.Close()
	}
}

// TestBatchUndoesPartialWork runs ops in one batch where some fail after
// they wrote: the others commit, and nothing of a failed op's work stays,
// whether the batch had to run again with savepoints (several ops) or not
// (one op).
func TestBatchUndoesPartialWork(t *testing.T) {
	insert := sqlcore.NewStmt("test-ceremony-insert", "INSERT INTO ceremonies (ckey, expires_at) VALUES (?, 1)", false)
	count := sqlcore.NewStmt("test-ceremony-count", "SELECT COUNT(*) FROM ceremonies WHERE ckey = ?", false)
	errAfter := errors.New("failed after its insert")
	for _, n := range []int{1, 20} {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "b.db"), Options{Chain: nopChain{}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		release := holdLeader(t, s)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Write(ctx, 0, func(ctx context.Context, tx sqlcore.Tx) error {
					if _, err := tx.Exec(ctx, insert, fmt.Sprint("c-", i)); err != nil {
						return err
					}
					if i%4 == 0 {
						return errAfter
					}
					return nil
				})
			}()
		}
		release(n)
		wg.Wait()
		for i, err := range errs {
			var k int64
			if rerr := s.Read(ctx, func(ctx context.Context, tx sqlcore.Tx) error {
				return tx.QueryRow(ctx, count, fmt.Sprint("c-", i)).Scan(&k)
			}); rerr != nil {
				t.Fatal(rerr)
			}
			if i%4 == 0 {
				if !errors.Is(err, errAfter) || k != 0 {
					t.Errorf("batch of %d: op %d: %v, %d rows; want its error and no row", n, i, err, k)
				}
			} else if err != nil || k != 1 {
				t.Errorf("batch of %d: op %d: %v, %d rows; want success and its row", n, i, err, k)
			}
		}
		s.Close()
	}
}

// TestBatchCancelledWhileQueued: an op whose context ends before a leader
// takes it returns the context's error and never runs.
func TestBatchCancelledWhileQueued(t *testing.T) {
	s, err := Open(context.Background(), "", Options{Chain: nopChain{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	release := holdLeader(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.CreateIdentity(ctx, identityChange("late")) }()
	// Wait until it is queued, then cancel it while the "leader" runs.
	for {
		s.gc.mu.Lock()
		q := len(s.gc.queue)
		s.gc.mu.Unlock()
		if q == 1 {
			break
		}
		runtime.Gosched()
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled op: %v, want context.Canceled", err)
	}
	release(0)
	if err := s.CreateIdentity(context.Background(), identityChange("next")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Identity(context.Background(), "late"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the cancelled op ran: %v", err)
	}
}

// TestBatchOverflow queues more ops than one batch holds; all complete.
func TestBatchOverflow(t *testing.T) {
	s, err := Open(context.Background(), "", Options{Chain: nopChain{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	release := holdLeader(t, s)
	n := maxBatch + 44
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.CreateIdentity(context.Background(), identityChange(fmt.Sprint("id-", i)))
		}()
	}
	release(n)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("op %d: %v", i, err)
		}
	}
	if b := s.gc.batches.Load(); b < 2 {
		t.Errorf("%d ops in %d transactions; a batch holds at most %d", n, b, maxBatch)
	}
}

// TestWriterStats: the writer's statistics count every write once, in
// batches whose sizes add up, and split no more time than passed.
func TestWriterStats(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "stats.db"), Options{Chain: nopChain{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.ResetWriterStats()
	begin := time.Now()
	const goroutines, each = 8, 20
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := s.CreateIdentity(context.Background(), identityChange(fmt.Sprintf("s-%d-%d", g, i))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(begin)
	st := s.WriterStats()
	if st.Ops != goroutines*each {
		t.Errorf("%d ops counted, want %d", st.Ops, goroutines*each)
	}
	var sizes int64
	for _, n := range st.BatchSizes {
		sizes += n
	}
	if st.Batches < 1 || st.Batches > st.Ops || sizes != st.Batches {
		t.Errorf("%d batches, %d by size, for %d ops", st.Batches, sizes, st.Ops)
	}
	if w := s.Writes(); w.Commits != st.Batches {
		t.Errorf("%d batches counted, %d commits", st.Batches, w.Commits)
	}
	if st.Exec+st.Commit+st.Done > st.Busy {
		t.Errorf("exec %v + commit %v + done %v exceed busy %v", st.Exec, st.Commit, st.Done, st.Busy)
	}
	if sum := st.Busy + st.Idle + st.Ready; sum > time.Since(begin)+time.Millisecond || st.Commit <= 0 {
		t.Errorf("busy %v + idle %v + ready %v in %v of writes; commit %v", st.Busy, st.Idle, st.Ready, wall, st.Commit)
	}
	var b strings.Builder
	st.Print(&b, time.Now())
	if !strings.Contains(b.String(), fmt.Sprintf("%d ops", st.Ops)) {
		t.Errorf("the printed statistics lack the ops:\n%s", b.String())
	}
}

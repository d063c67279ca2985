package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// walSize returns the size of the -wal file at path (0 when there is none).
func walSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path + "-wal")
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// waitCheckpointed waits until the checkpointer has run after the last
// commit of s, and its checkpoint has completed.
func waitCheckpointed(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a failure guard only
	for s.scrub.wrote.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the checkpointer did not run")
		}
		time.Sleep(ckptEvery / 4)
	}
	// The checkpointer clears wrote before its checkpoint runs, and holds
	// its lock until the checkpoint is done.
	s.scrub.mu.Lock()
	s.scrub.mu.Unlock()
}

// TestLogReusedWithoutWipes: with nothing wiped, and the writer's own
// automatic checkpoint far away, the checkpointer copies the log back
// while the writer goes on, so that the writes that follow reuse the
// -wal file from its start instead of growing it.
func TestLogReusedWithoutWipes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ckpt.db")
	s := openChained(t, path)
	ctx := context.Background()
	n := 0
	write := func(k int) {
		t.Helper()
		for range k {
			n++
			if err := s.CreateIdentity(ctx, identityChange(fmt.Sprintf("id-%d", n))); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(200)
	first := walSize(t, path)
	if pages := first / 4096; pages >= walBackstop {
		t.Fatalf("the first writes filled %d pages of the log: the writer's automatic checkpoint may have run", pages)
	}
	waitCheckpointed(t, s)
	write(200)
	if second := walSize(t, path); second > first {
		t.Errorf("the -wal file grew from %d to %d bytes: the checkpointer did not copy the log back between the writes", first, second)
	}
}

// TestScrubOnWriter: the truncation after a wipe runs on the write
// connection, so that the writer keeps its page cache: no other
// connection restarted the log (PRAGMA data_version, which moves with
// every change another connection makes, is where it was).
func TestScrubOnWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scrub.db")
	s := openChained(t, path)
	ctx := context.Background()
	if err := s.CreateIdentity(ctx, identityChange("id-1")); err != nil {
		t.Fatal(err)
	}
	version := func() int64 {
		t.Helper()
		var v int64
		err := s.Write(ctx, 0, func(ctx context.Context, tx sqlcore.Tx) error {
			return tx.QueryRow(ctx, stmtDataVersion).Scan(&v)
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := version()
	if walSize(t, path) == 0 {
		t.Fatal("nothing in the -wal file before the scrub: the check below is vacuous")
	}
	s.wakeScrubber()
	deadline := time.Now().Add(ScrubWindow)
	for walSize(t, path) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the -wal file has %d bytes %v after the scrub was asked for", walSize(t, path), ScrubWindow)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if after := version(); after != before {
		t.Errorf("data_version of the writer moved from %d to %d over the scrub: another connection restarted the log", before, after)
	}
}

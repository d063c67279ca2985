package sqlite_test

import (
	"context"
	"database/sql"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/server/store/sqlite"
	"github.com/authbench/authbench/server/store/storetest"
)

// commitCost is what one write of a store committed: the frames (pages)
// it appended to the -wal file, the B-trees (tables and indexes) those
// pages belong to, and the rows it inserted, updated or deleted.
type commitCost struct {
	frames int
	trees  []string
	rows   int64
}

// measureCommit runs write, one write of s (the database at path) that
// commits once, and returns what it committed. A read transaction held
// across it keeps the scrubber's checkpoint from truncating the -wal file
// before it is read.
func measureCommit(t *testing.T, s *sqlite.Store, path string, write func() error) commitCost {
	t.Helper()
	if err := sqlite.StopAutoCheckpoint(s); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rtx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer rtx.Rollback()
	var n int
	if err := rtx.QueryRow("SELECT COUNT(*) FROM identities").Scan(&n); err != nil {
		t.Fatal(err)
	}
	before, err := sqlite.TotalChanges(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	frames, commits, err := sqlite.WALFrames(path + "-wal")
	if err != nil || commits != 1 {
		t.Fatalf("WAL: %d frames, %d commits, %v; want one commit", len(frames), commits, err)
	}
	after, err := sqlite.TotalChanges(s)
	if err != nil {
		t.Fatal(err)
	}
	names, err := sqlite.PagesOf(s)
	if err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	for _, pg := range frames {
		// Page 1 holds the file's header, written when the file grows;
		// a page of no B-tree is a free one.
		if name := names[pg]; pg != 1 && name != "" {
			written[name] = true
		}
	}
	return commitCost{frames: len(frames), trees: slices.Sorted(maps.Keys(written)), rows: after - before}
}

// TestLifecycleBTrees: what the writes of a chip's lifecycle commit, as
// TestLoginBTrees for a login. An enroll (and a re-add) writes the chip's
// record, its element and its credential ID into one B-tree each (WITHOUT
// ROWID: no second B-tree for the key), a block its tombstone into its
// table and the credential index only; no write touches a B-tree it has no row in.
// What a commit costs the writer is mostly a write of each page it
// changed, at least one for every B-tree.
func TestLifecycleBTrees(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lifecycle.db")
	s := open(t, path)
	defer s.Close()
	o, err := storetest.WarmChipOwner(ctx, s, "id-1", "id-2", t0)
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Second)
	// An enroll writes the authenticator's row (in the B-tree of its
	// key, the identity and the ID), the unique index of IDs (what finds
	// an authenticator by its ID alone), the element and the credential
	// ID: the credential is found through
	// credential_ids, which keeps it unique forever, with no index of
	// its own on authenticators.
	enrolled := []string{"authenticators", "authenticators_id", "chip_elements", "credential_ids"}
	var blocked string
	for _, step := range []struct {
		name string
		fn   func(context.Context, time.Time) error
		// mine are the B-trees of the chip's records that it writes,
		// of those named in check; most, the most B-trees in all.
		mine []string
		most int
	}{
		{"enroll", o.Enroll, enrolled, lifecycleTrees["enroll"]},
		{"block", o.Block, []string{"authenticators", "chip_elements", "tombstones", "tombstones_credential"}, lifecycleTrees["block"]},
		{"re-add", o.Enroll, enrolled, lifecycleTrees["enroll"]},
	} {
		if step.name == "re-add" {
			blocked = o.Chip.ID
		}
		c := measureCommit(t, s, path, func() error { return step.fn(ctx, at) })
		t.Logf("%s: %d frames, %d rows, %d B-trees %v", step.name, c.frames, c.rows, len(c.trees), c.trees)
		var mine []string
		for _, tr := range c.trees {
			if slices.ContainsFunc(checked, func(p string) bool { return strings.HasPrefix(tr, p) || strings.HasPrefix(tr, "sqlite_autoindex_"+p) }) {
				mine = append(mine, tr)
			}
		}
		if !slices.Equal(mine, step.mine) {
			t.Errorf("%s: the chip's records were written into %v, want %v", step.name, mine, step.mine)
		}
		if len(c.trees) > step.most {
			t.Errorf("%s wrote %d B-trees, want at most %d: %v", step.name, len(c.trees), step.most, c.trees)
		}
	}
	// The block wiped the element, also as the store's mirror holds it.
	if el, err := s.Element(ctx, blocked); err != nil || el.Chip == nil || el.Chip.PublicKey != nil || el.WipedAt.IsZero() {
		t.Errorf("the blocked chip's element: %+v, %v; want wiped", el, err)
	}
}

// checked are the tables (and their indexes) of a chip's records.
var checked = []string{"authenticators", "chip_elements", "credential_ids", "tombstones"}

// lifecycleTrees are the most B-trees an enroll (or re-add) and a block
// may write: the chip's records (above), the identity's row (the version
// of its authenticator set), the spent ceremony (its table and expiry
// index) and the audit log (its rows and its key, whose last record per
// chain is the chain's head).
var lifecycleTrees = map[string]int{"enroll": 9, "block": 6}

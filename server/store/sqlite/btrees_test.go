package sqlite_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
)

// TestLoginBTrees: the commit of a two-factor chip login writes its
// session into the B-trees of sessions and its two indexes only, and its
// spent challenge into those of ceremonies and its index: no B-tree of
// proofs, and no second B-tree for either key (WITHOUT ROWID); its audit
// record goes into the log's rows and key, and no B-tree of chain heads
// is written (a chain's head is its last record). What a
// commit costs the writer is mostly a write of each page it changed, at
// least one for every B-tree.
func TestLoginBTrees(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "btrees.db")
	s := open(t, path)
	defer s.Close()
	pws, chips := twoFactorIdentities(t, s, 2)
	// A first login of each, so that the one measured changes no page
	// for the first time (the audit chain's first head, a table's first
	// leaf).
	var err error
	for i := range pws {
		if pws[i], chips[i], err = chipLogin(ctx, s, pws[i], chips[i], "first-"+pws[i].ID, sessionKey("first-"+pws[i].ID, t0), 1, t0); err != nil {
			t.Fatal(err)
		}
	}
	cost := measureCommit(t, s, path, func() error {
		_, _, err := chipLogin(ctx, s, pws[0], chips[0], "measured", sessionKey("measured", t0.Add(time.Second)), 2, t0.Add(time.Second))
		return err
	})
	trees := cost.trees
	t.Logf("one login: %d frames, %d rows, B-trees %v", cost.frames, cost.rows, trees)
	var mine []string
	for _, tr := range trees {
		if strings.Contains(tr, "session") || strings.Contains(tr, "ceremon") {
			mine = append(mine, tr)
		}
	}
	if want := []string{"ceremonies", "ceremonies_expiry", "sessions", "sessions_expiry", "sessions_identity"}; !slices.Equal(mine, want) {
		t.Errorf("the session and the spent challenge were written into %v, want %v", mine, want)
	}
	// The rest: the two authenticators, the chip's element and the
	// audit log (its rows and its key), whose last record per chain is
	// the chain's head: no B-tree of heads.
	if slices.Contains(trees, "audit_heads") {
		t.Errorf("one login wrote a B-tree of audit heads: %v", trees)
	}
	if len(trees) > 10 {
		t.Errorf("one login wrote %d B-trees: %v", len(trees), trees)
	}
	// Its rows: the two authenticators, the chip's element, the spent
	// challenge, the session and one audit record for both factors (the
	// chain's new head).
	if cost.rows > 6 {
		t.Errorf("one login changed %d rows, want 6 (one audit record for the password and the chip, no row of heads)", cost.rows)
	}
}

// TestCodeLoginBTrees: the commit of a two-factor code login (password
// and code display, whose record has a serial) writes the leaf of the
// identity's authenticators and no page of authenticators_serial_in_use,
// the partial unique index of serials in use: the login leaves the code
// display's state, and so its entry, as they are. Nor does it write a
// page of code_elements: the OTP watermark moves in the code display's
// row of authenticators.
func TestCodeLoginBTrees(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "btrees.db")
	s := open(t, path)
	defer s.Close()
	pws, kvs := twoFactorIdentitiesOf(t, s, 2, device.KindCodeDisplay)
	var err error
	for i := range pws {
		key := "first-" + pws[i].ID
		if pws[i], kvs[i], err = codeLogin(ctx, s, pws[i], kvs[i], key, sessionKey(key, t0), 1, t0); err != nil {
			t.Fatal(err)
		}
	}
	at := t0.Add(time.Second)
	cost := measureCommit(t, s, path, func() error {
		_, _, err := codeLogin(ctx, s, pws[0], kvs[0], "measured", sessionKey("measured", at), 2, at)
		return err
	})
	t.Logf("one code login: %d frames, %d rows, B-trees %v", cost.frames, cost.rows, cost.trees)
	if !slices.Contains(cost.trees, "authenticators") {
		t.Errorf("the login wrote no page of authenticators: %v", cost.trees)
	}
	for _, tr := range []string{"authenticators_serial_in_use", "code_elements"} {
		if slices.Contains(cost.trees, tr) {
			t.Errorf("the login wrote a page of %s: %v", tr, cost.trees)
		}
	}
}

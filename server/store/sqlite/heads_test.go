package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/server/audit"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/sqlcore"
	"github.com/authbench/authbench/server/store/storetest"
)

func openChained(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, Options{Chain: storetest.Chain{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func auditEvent(identityID string, typ domain.EventType) domain.Event {
	return domain.Event{Type: typ, IdentityID: identityID, Actor: domain.System("test"), At: time.Unix(1700000000, 0).UTC()}
}

// verifyAudit checks every chain of s and that the heads the store
// recorded are the chains' last records; it returns the records.
func verifyAudit(t *testing.T, s *Store) []store.AuditRecord {
	t.Helper()
	ctx := context.Background()
	var all []store.AuditRecord
	last := map[string]store.AuditRecord{}
	for r, err := range s.AuditRecords(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
		last[r.IdentityID] = r
	}
	if err := storetest.VerifyChain(all); err != nil {
		t.Fatalf("the audit chains break: %v", err)
	}
	heads, err := s.AuditHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != len(last) {
		t.Fatalf("%d audit heads for %d chains", len(heads), len(last))
	}
	for _, h := range heads {
		if r := last[h.IdentityID]; h.Seq != r.Seq || !bytes.Equal(h.Hash, r.Hash) {
			t.Errorf("head of %q at %d, its last record is %d", h.IdentityID, h.Seq, r.Seq)
		}
	}
	return all
}

// writerHead returns the head of chain id the writer knows as committed.
func writerHead(s *Store, id string) (head, bool) {
	c := <-s.wconn
	defer func() { s.wconn <- c }()
	h, ok := c.heads.committed[id]
	return h, ok
}

// TestAuditHeadsCarried: after an append the writer knows the chain's
// head, and the next append links to it.
func TestAuditHeadsCarried(t *testing.T) {
	for _, path := range []string{":memory:", filepath.Join(t.TempDir(), "h.db")} {
		s := openChained(t, path)
		ctx := context.Background()
		for range 3 {
			if err := s.AppendAudit(ctx, auditEvent("alice", domain.EventLoginSucceeded), auditEvent("bob", domain.EventLoginSucceeded)); err != nil {
				t.Fatal(err)
			}
		}
		all := verifyAudit(t, s)
		h, ok := writerHead(s, "alice")
		if !ok || h.seq != 3 {
			t.Fatalf("the writer knows alice's head as %+v (%v), want seq 3", h, ok)
		}
		for _, r := range all {
			if r.IdentityID == "alice" && r.Seq == 3 && !bytes.Equal(r.Hash, h.hash) {
				t.Errorf("the writer's head of alice has another hash than record 3")
			}
		}
	}
}

// TestAuditHeadsFollowOtherWriters: another Store (another connection,
// as another process) appending to a chain makes the writer forget what
// it knew (PRAGMA data_version), so both chain on from the true head.
func TestAuditHeadsFollowOtherWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "two.db")
	a, b := openChained(t, path), openChained(t, path)
	ctx := context.Background()
	for i := range 6 {
		w := a
		if i%3 == 2 {
			w = b
		}
		if err := w.AppendAudit(ctx, auditEvent("alice", domain.EventLoginSucceeded)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if all := verifyAudit(t, a); len(all) != 6 {
		t.Fatalf("%d records, want 6", len(all))
	}
}

// TestAuditHeadsForgetRolledBack: a head written by an op that failed
// (its savepoint rolled back, or its transaction) is forgotten; the next
// append links to the head the database holds.
func TestAuditHeadsForgetRolledBack(t *testing.T) {
	for _, path := range []string{":memory:", filepath.Join(t.TempDir(), "r.db")} {
		s := openChained(t, path)
		ctx := context.Background()
		if err := s.AppendAudit(ctx, auditEvent("alice", domain.EventLoginSucceeded)); err != nil {
			t.Fatal(err)
		}
		errBad := errors.New("the op fails after moving the head")
		bad := func(ctx context.Context, tx sqlcore.Tx) error {
			tx.(sqlcore.HeadCache).PutHead("alice", &store.AuditRecord{IdentityID: "alice", Seq: 99, Hash: []byte("not a head")})
			return errBad
		}
		// Alone: its transaction is rolled back.
		if err := s.Write(ctx, 0, bad); !errors.Is(err, errBad) {
			t.Fatalf("Write: %v", err)
		}
		if err := s.AppendAudit(ctx, auditEvent("alice", domain.EventLoginSucceeded)); err != nil {
			t.Fatal(err)
		}
		// In a batch: its savepoint is rolled back, the others commit.
		badAmongAppends(t, s, bad, errBad, 0)
		if err := s.AppendAudit(ctx, auditEvent("alice", domain.EventLoginSucceeded)); err != nil {
			t.Fatal(err)
		}
		if all := verifyAudit(t, s); len(all) != 5 {
			t.Fatalf("%d records, want 5", len(all))
		}
	}
}

// TestAuditHeadsSurviveCheckpoints: a truncating checkpoint on another
// connection (which restarts the write-ahead log and so moves
// data_version) leaves what the writer knows; an append by another
// connection does not.
func TestAuditHeadsSurviveCheckpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ck.db")
	s, other := openChained(t, path), openChained(t, path)
	ctx := context.Background()
	known := func() bool {
		t.Helper()
		var ok bool
		err := s.Write(ctx, 0, func(ctx context.Context, tx sqlcore.Tx) error {
			var err error
			_, ok, err = tx.(sqlcore.HeadCache).CachedHead(ctx, "alice")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for range 2 {
		if err := s.AppendAudit(ctx, auditEvent("alice", domain.EventLoginSucceeded)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.checkpointOn(ctx, s.scrub.db); err != nil {
		t.Fatal(err)
	}
	if !known() {
		t.Error("the writer forgot alice's head after a checkpoint by another connection")
	}
	if err := other.AppendAudit(ctx, auditEvent("alice", domain.EventLoginSucceeded)); err != nil {
		t.Fatal(err)
	}
	if known() {
		t.Error("the writer still knows alice's head after another connection appended to her chain")
	}
	if err := s.AppendAudit(ctx, auditEvent("alice", domain.EventLoginSucceeded)); err != nil {
		t.Fatal(err)
	}
	if all := verifyAudit(t, s); len(all) != 4 {
		t.Fatalf("%d records, want 4", len(all))
	}
}

// TestAuditTopFromAppends: the audit log's highest rowid the writer keeps
// after each commit (taken from its own appends, not read) is the
// database's, or unknown — never another number, which could hide
// another writer's append — also when a failed op's savepoint undid
// appends the transaction made last.
func TestAuditTopFromAppends(t *testing.T) {
	s := openChained(t, filepath.Join(t.TempDir(), "top.db"))
	ctx := context.Background()
	// An append of a raw row, the op failing after it.
	rawAppend := sqlcore.NewStmt("test-audit-append", `INSERT INTO audit (seq, event_type, identity_id, prev_hash, hash, body) VALUES (1000, 'x', 'mallory', x'', x'', x'')`, false)
	rawAppend.AuditAppend = true
	errBad := errors.New("the op fails after appending")
	bad := func(ctx context.Context, tx sqlcore.Tx) error {
		if _, err := tx.Exec(ctx, rawAppend); err != nil {
			return err
		}
		return errBad
	}
	check := func(when string, wantKnown bool) {
		t.Helper()
		var top int64
		if err := s.onWriter(func(c *sql.Conn) error {
			return c.QueryRowContext(ctx, "SELECT COALESCE(MAX(rowid), 0) FROM audit").Scan(&top)
		}); err != nil {
			t.Fatal(err)
		}
		c := <-s.wconn
		h := *c.heads
		s.wconn <- c
		if h.topKnown && h.top != top || wantKnown && !h.topKnown {
			t.Errorf("%s: the writer keeps the top %d (known %v), the database's is %d", when, h.top, h.topKnown, top)
		}
	}
	for i := range 3 {
		if err := s.AppendAudit(ctx, auditEvent("alice", domain.EventLoginSucceeded), auditEvent("bob", domain.EventLoginSucceeded)); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("append %d", i), true)
	}
	for round := range 4 {
		badAmongAppends(t, s, bad, errBad, round)
		check(fmt.Sprintf("batch %d", round), false)
	}
	verifyAudit(t, s)
}

// badAmongAppends runs four ops in one batch: the op bad, which must fail
// with errBad, in turns with appends of an audit record, bad first when
// round is even; and checks that each fails or succeeds alone.
func badAmongAppends(t *testing.T, s *Store, bad func(context.Context, sqlcore.Tx) error, errBad error, round int) {
	t.Helper()
	ctx := context.Background()
	release := holdLeader(t, s)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			if (i+round)%2 == 0 {
				errs[i] = s.Write(ctx, 0, bad)
			} else {
				errs[i] = s.AppendAudit(ctx, auditEvent("alice", domain.EventLoginSucceeded))
			}
		})
	}
	release(len(errs))
	wg.Wait()
	for i, err := range errs {
		if want := (i+round)%2 == 0; want != errors.Is(err, errBad) {
			t.Errorf("round %d op %d: %v", round, i, err)
		}
	}
}

// TestAuditCutFoundAfterRestart: the head of a chain is its last record,
// so records cut behind the store's back move it back at once (there is
// no row of heads left to disagree), and a store opened after the cut
// links its next record to the last one left. The checkpoint that sealed
// the cut records still shows the cut: VerifyLog reports the chain as
// truncated while it ends before the sealed record, and as altered once
// new records pass it.
func TestAuditCutFoundAfterRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cut.db")
	keys, err := secrets.NewKeyring("k1", bytes.Repeat([]byte{0x5c}, secrets.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path, Options{Chain: storetest.Chain{}})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := s.AppendAudit(ctx, auditEvent("alice", domain.EventLoginSucceeded), auditEvent("bob", domain.EventLoginSucceeded)); err != nil {
			t.Fatal(err)
		}
	}
	if cp, err := (&audit.Sealer{Log: s, Keys: keys}).Seal(ctx, 0); err != nil || cp == nil {
		t.Fatalf("Seal = %+v, %v", cp, err)
	}
	bob, err := s.ListAudit(ctx, "bob", 0, 10)
	if err != nil || len(bob) != 4 {
		t.Fatalf("ListAudit(bob) = %d records, %v", len(bob), err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{`DROP TRIGGER audit_append_only_delete`, `DELETE FROM audit WHERE identity_id = 'bob' AND seq > 2`} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	s = openChained(t, path)
	// Events that differ from those cut (a later time).
	later := func() domain.Event {
		e := auditEvent("bob", domain.EventLoginSucceeded)
		e.At = e.At.Add(time.Hour)
		return e
	}
	heads, err := s.AuditHeads(ctx)
	if err != nil || len(heads) != 2 || heads[1].IdentityID != "bob" || heads[1].Seq != 2 || !bytes.Equal(heads[1].Hash, bob[1].Hash) {
		t.Fatalf("AuditHeads after the cut = %+v, %v; want bob's at his record 2", heads, err)
	}
	if err := s.AppendAudit(ctx, later()); err != nil {
		t.Fatal(err)
	}
	after, err := s.ListAudit(ctx, "bob", 0, 10)
	if err != nil || len(after) != 3 || after[2].Seq != 3 || !bytes.Equal(after[2].PrevHash, bob[1].Hash) {
		t.Fatalf("bob's chain after an append = %+v, %v; want record 3 following record 2", after, err)
	}
	rep, err := audit.VerifyLog(ctx, s, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != audit.ProblemTruncated || rep.Problems[0].Chain != "bob" {
		t.Fatalf("VerifyLog after the cut and an append = %+v; want bob's chain truncated (checkpoint 1 sealed his record 4)", rep.Problems)
	}
	t.Logf("found: %s", rep.Problems[0].Message)
	// Appended past the record the checkpoint sealed, the chain holds a
	// record 4 that is not the one sealed.
	if err := s.AppendAudit(ctx, later(), later()); err != nil {
		t.Fatal(err)
	}
	if rep, err = audit.VerifyLog(ctx, s, keys); err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != audit.ProblemRewritten || rep.Problems[0].Chain != "bob" || rep.Problems[0].Seq != 4 {
		t.Fatalf("VerifyLog after appends past the sealed record = %+v; want bob's record 4 not the one sealed", rep.Problems)
	}
	t.Logf("found: %s", rep.Problems[0].Message)
}

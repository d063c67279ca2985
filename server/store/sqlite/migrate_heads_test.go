package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/migration"
	"github.com/authbench/authbench/server/store/storetest"
)

// TestMigrateAuditHeadsFromLog: a database whose chains' heads were rows
// of audit_heads (schema before the audit_heads_from_log migration) is
// migrated when a store opens it: the table is gone, every record and
// checkpoint is kept, AuditHeads lists each chain at its last record as
// audit_heads held it, and the next append of a chain follows that record
// (the chain still verifies).
func TestMigrateAuditHeadsFromLog(t *testing.T) {
	ctx := context.Background()
	path, db, ms := before(t, "audit_heads_from_log", "")
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	heads := map[string]*store.AuditRecord{}
	var order []string
	records := 0
	// Three chains of different lengths: alice, bob and the chain of
	// events of no identity, appended in turns as a server would.
	for i := range 7 {
		for _, id := range []string{"alice", "bob", ""} {
			if id == "" && i%3 != 0 || id == "bob" && i > 4 {
				continue
			}
			if heads[id] == nil {
				order = append(order, id)
			}
			heads[id] = appendV8(t, db, heads[id], id, i, at)
			records++
			at = at.Add(time.Second)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO audit_checkpoints (seq, at, key_id, body, mac) VALUES (1, ?, 'k1', X'0102', X'0304')`, at.UnixNano()); err != nil {
		t.Fatal(err)
	}
	s := migrated(t, path, ms)

	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'audit_heads'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("audit_heads after the migration: %d, %v; want no such table", n, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit`).Scan(&n); err != nil || n != records {
		t.Errorf("audit records after the migration: %d, %v; want %d", n, err, records)
	}
	if cp, err := s.LastAuditCheckpoint(ctx); err != nil || cp.Seq != 1 || !bytes.Equal(cp.Body, []byte{1, 2}) {
		t.Errorf("LastAuditCheckpoint = %+v, %v; want checkpoint 1 as it was", cp, err)
	}
	got, err := s.AuditHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(heads) {
		t.Fatalf("AuditHeads = %+v, want %d chains", got, len(heads))
	}
	// In byte order of the identity ID: "", alice, bob.
	for i, id := range []string{"", "alice", "bob"} {
		h, want := got[i], heads[id]
		if h.IdentityID != id || h.Seq != want.Seq || !bytes.Equal(h.Hash, want.Hash) {
			t.Errorf("head %d = %q at %d, want %q at %d with the hash audit_heads held", i, h.IdentityID, h.Seq, id, want.Seq)
		}
	}
	// Each chain goes on from its last record.
	for _, id := range order {
		if err := s.AppendAudit(ctx, domain.Event{Type: domain.EventLoginSucceeded, IdentityID: id, Actor: domain.System("test"), At: at}); err != nil {
			t.Fatal(err)
		}
		recs, err := s.ListAudit(ctx, id, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		last := recs[len(recs)-1]
		if last.Seq != heads[id].Seq+1 || !bytes.Equal(last.PrevHash, heads[id].Hash) {
			t.Errorf("the append to %q after the migration: record %d linked to %x, want record %d linked to %x", id, last.Seq, last.PrevHash, heads[id].Seq+1, heads[id].Hash)
		}
		if err := storetest.VerifyChain(recs); err != nil {
			t.Errorf("the chain of %q after the migration and an append: %v", id, err)
		}
	}
}

// TestMigrateAuditHeadsRefusesDisagreement: when the rows of audit_heads
// disagree with the log they are the heads of (records cut from the end of
// a chain, appended past its head, or a head row gone), the
// audit_heads_from_log migration refuses to drop them: the store does not
// open, says why, and the database stays at the version before, with the
// table and every record, for audit verify.
func TestMigrateAuditHeadsRefusesDisagreement(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper []string
	}{
		{"last records cut", []string{
			`DROP TRIGGER audit_append_only_delete`,
			`DELETE FROM audit WHERE identity_id = 'alice' AND seq >= 3`,
		}},
		{"head row gone", []string{`DELETE FROM audit_heads WHERE identity_id = 'bob'`}},
		{"head moved back", []string{`UPDATE audit_heads SET seq = 2, hash = (SELECT hash FROM audit WHERE identity_id = 'alice' AND seq = 2) WHERE identity_id = 'alice'`}},
		{"head of no records", []string{`INSERT INTO audit_heads (identity_id, seq, hash) VALUES ('carol', 1, X'00')`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path, db, ms := before(t, "audit_heads_from_log", "")
			at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			heads := map[string]*store.AuditRecord{}
			for i := range 4 {
				for _, id := range []string{"alice", "bob"} {
					heads[id] = appendV8(t, db, heads[id], id, i, at)
					at = at.Add(time.Second)
				}
			}
			var records int
			for _, q := range tc.tamper {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit`).Scan(&records); err != nil {
				t.Fatal(err)
			}
			s, err := Open(ctx, path, Options{Chain: storetest.Chain{}})
			if err == nil {
				s.Close()
				t.Fatal("Open migrated a database whose audit_heads disagree with its log")
			}
			t.Logf("Open: %v", err)
			if !strings.Contains(err.Error(), "audit_heads disagrees with the audit log") {
				t.Errorf("Open: %v; want it to say audit_heads disagrees with the audit log", err)
			}
			var v, n, left int
			if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil || v != indexOf(t, ms, "audit_heads_from_log") {
				t.Errorf("schema version after the refusal: %d, %v; want %d", v, err, indexOf(t, ms, "audit_heads_from_log"))
			}
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'audit_heads'`).Scan(&n); err != nil || n != 1 {
				t.Errorf("audit_heads after the refusal: %d tables, %v; want it kept", n, err)
			}
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit`).Scan(&left); err != nil || left != records {
				t.Errorf("audit records after the refusal: %d, %v; want %d", left, err, records)
			}
		})
	}
}

// indexOf is the number of migrations of ms before the one named name.
func indexOf(t *testing.T, ms []migration.File, name string) int {
	t.Helper()
	n := slices.IndexFunc(ms, func(m migration.File) bool { return strings.HasSuffix(m.Name, "_"+name) })
	if n < 0 {
		t.Fatalf("no %s migration", name)
	}
	return n
}

// appendV8 appends to the chain of identity id, whose head is head (nil:
// none yet), record n at time at as a store of the schema before
// audit_heads_from_log did: the record, and its chain's row of audit_heads
// moved to it. It returns the new head.
func appendV8(t *testing.T, db *sql.DB, head *store.AuditRecord, id string, n int, at time.Time) *store.AuditRecord {
	t.Helper()
	ctx := context.Background()
	e := domain.Event{Type: domain.EventLoginSucceeded, IdentityID: id, Actor: domain.System("test"), At: at,
		Details: map[string]string{"n": fmt.Sprint(n)}}
	r, err := store.Link(storetest.Chain{}, head, e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO audit (seq, at, event_type, identity_id, authenticator_id, prev_hash, hash, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, int64(r.Seq), r.At.UnixNano(), string(r.Type), r.IdentityID, r.AuthenticatorID, r.PrevHash, r.Hash, r.Body); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO audit_heads (identity_id, seq, hash) VALUES (?, ?, ?)
		ON CONFLICT (identity_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, id, int64(r.Seq), r.Hash); err != nil {
		t.Fatal(err)
	}
	return &r
}

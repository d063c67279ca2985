package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/migration"
	"github.com/authbench/authbench/server/store/storetest"
)

type nopChain struct{}

func (nopChain) Link(prev *store.AuditRecord, e domain.Event) (store.AuditRecord, error) {
	seq := uint64(1)
	var ph []byte
	if prev != nil {
		seq, ph = prev.Seq+1, prev.Hash
	}
	return store.AuditRecord{Seq: seq, PrevHash: ph, Hash: []byte{byte(seq), byte(seq >> 8)}, Body: []byte("{}")}, nil
}

func TestLoadMigrations(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatalf("embedded migrations: %v", err)
	}
	if len(ms) == 0 || ms[0].Version != 1 || ms[0].Name != "0001_init" {
		t.Fatalf("embedded migrations: %+v", ms)
	}
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
		err   string // "" for success
		n     int
	}{
		{"ordered", fstest.MapFS{"m/0002_b.sql": {Data: []byte("B")}, "m/0001_a.sql": {Data: []byte("A")}, "m/README": {}}, "", 2},
		{"gap", fstest.MapFS{"m/0001_a.sql": {}, "m/0003_c.sql": {}}, "expected version 2", 0},
		{"duplicate", fstest.MapFS{"m/0001_a.sql": {}, "m/0001_b.sql": {}, "m/0002_c.sql": {}}, "expected version 2", 0},
		{"not starting at 1", fstest.MapFS{"m/0002_a.sql": {}}, "expected version 1", 0},
		{"no number", fstest.MapFS{"m/init.sql": {}}, "positive number", 0},
		{"zero", fstest.MapFS{"m/0000_x.sql": {}}, "positive number", 0},
	} {
		ms, err := loadMigrations(tc.files, "m")
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err == "" && len(ms) != tc.n:
			t.Errorf("%s: %d migrations, want %d", tc.name, len(ms), tc.n)
		case tc.err == "" && (ms[0].SQL != "A" || ms[1].SQL != "B"):
			t.Errorf("%s: wrong order %+v", tc.name, ms)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.err)
		}
	}
}

func TestMigrateIdempotentAndRefusesNewer(t *testing.T) {
	ctx := context.Background()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	known := len(ms)
	path := filepath.Join(t.TempDir(), "m.db")
	s, err := Open(ctx, path, Options{Chain: nopChain{}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != known {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, known)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening applies nothing twice.
	s, err = Open(ctx, path, Options{Chain: nopChain{}})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	var n int
	if err := s.onWriter(func(c *sql.Conn) error {
		return c.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&n)
	}); err != nil || n != known {
		t.Fatalf("schema_migrations rows = %d, %v; want %d", n, err, known)
	}
	// A newer program recorded the next version.
	if err := s.onWriter(func(c *sql.Conn) error {
		_, err := c.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)", known+1)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, path, Options{Chain: nopChain{}})
	var se *SchemaError
	if !errors.As(err, &se) || !errors.Is(err, ErrSchemaTooNew) || se.Version != known+1 || se.Known != known {
		t.Fatalf("Open of a newer database: %v, want a *SchemaError{%d, %d}", err, known+1, known)
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("unclear message: %v", err)
	}
}

// TestMigrateSteps applies a two-step history in order and records both.
func TestMigrateSteps(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:migsteps?mode=memory&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	limitPool(db, 1)
	ms := []migration.File{
		{Version: 1, Name: "0001_a", SQL: "CREATE TABLE a (x INTEGER) STRICT; INSERT INTO a VALUES (1);"},
		{Version: 2, Name: "0002_b", SQL: "ALTER TABLE a ADD COLUMN y TEXT NOT NULL DEFAULT 'b';"},
	}
	now := time.Unix(1700000000, 0)
	if err := migrateWith(ctx, db, ms[:1], now); err != nil {
		t.Fatal(err)
	}
	if err := migrateWith(ctx, db, ms, now); err != nil {
		t.Fatal(err)
	}
	var y string
	if err := db.QueryRowContext(ctx, "SELECT y FROM a").Scan(&y); err != nil || y != "b" {
		t.Fatalf("after two migrations: %q, %v", y, err)
	}
	// A failing migration leaves the version where it was.
	bad := append(ms, migration.File{Version: 3, Name: "0003_bad", SQL: "CREATE TABLE c (x INTEGER); SELECT nonsense FROM nowhere;"})
	if err := migrateWith(ctx, db, bad, now); err == nil || !strings.Contains(err.Error(), "0003_bad") {
		t.Fatalf("a failing migration: %v", err)
	}
	var v int
	db.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v)
	var c int
	db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'c'").Scan(&c)
	if v != 2 || c != 0 {
		t.Errorf("after a failed migration: version %d, table c exists %v; want 2 and rolled back", v, c == 1)
	}
}

// TestMigrateAuditChains: a database holding the single audit chain of
// before per-identity chains (schema before the audit_chains migration) is
// migrated when a store opens it, and its records keep verifying.
func TestMigrateAuditChains(t *testing.T) {
	ctx := context.Background()
	path, db, ms := before(t, "audit_chains", "")
	for _, r := range storetest.LegacyLog() {
		_, err := db.ExecContext(ctx, `INSERT INTO audit (seq, at, event_type, identity_id, authenticator_id, prev_hash, hash, body)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, int64(r.Seq), r.At.UnixNano(), string(r.Type), r.IdentityID, r.AuthenticatorID, r.PrevHash, r.Hash, r.Body)
		if err != nil {
			t.Fatal(err)
		}
	}
	s := migrated(t, path, ms)
	storetest.CheckMigrated(t, s, &storetest.SQLTamperer{DB: db, HeadsInLog: true, Unlock: []string{
		"DROP TRIGGER IF EXISTS audit_append_only_update",
		"DROP TRIGGER IF EXISTS audit_append_only_delete",
	}})
}

// TestMigrateSessionProofs: a database whose sessions kept their proofs in
// session_authenticators (schema before the session_proofs migration) is
// migrated when a store opens it; its sessions still work and still end
// with their authenticators.
func TestMigrateSessionProofs(t *testing.T) {
	ctx := context.Background()
	path, db, ms := before(t, "session_proofs", "&_pragma=foreign_keys(1)")
	if err := storetest.WriteLegacySessions(ctx, db, false); err != nil {
		t.Fatal(err)
	}
	s := migrated(t, path, ms)
	var rowid int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('sessions', 'ceremonies') AND sql LIKE '%WITHOUT ROWID%'").Scan(&rowid); err != nil || rowid != 2 {
		t.Errorf("sessions and ceremonies WITHOUT ROWID after the migration: %d of 2, %v", rowid, err)
	}
	storetest.CheckMigratedSessions(t, s)
}

// before makes a database file migrated up to, not including, the
// migration named name, and returns its path, a handle on it with the
// connection parameters params added (closed when the test ends) and all
// the migrations.
func before(t *testing.T, name, params string) (string, *sql.DB, []migration.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate&_pragma=busy_timeout(10000)"+params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	limitPool(db, 1)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	n := slices.IndexFunc(ms, func(m migration.File) bool { return strings.HasSuffix(m.Name, "_"+name) })
	if n < 0 {
		t.Fatalf("no %s migration", name)
	}
	if err := migrateWith(context.Background(), db, ms[:n], time.Now()); err != nil {
		t.Fatal(err)
	}
	return path, db, ms
}

// migrated opens the database at path, written up to some migration of
// ms by before, as the store does (which migrates it the rest of the
// way), and checks that every migration of ms was applied; the store is
// closed when the test ends.
func migrated(t *testing.T, path string, ms []migration.File) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, path, Options{Chain: storetest.Chain{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(ms) {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}
	return s
}

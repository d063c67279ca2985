package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/sqlite"
	"github.com/authbench/authbench/server/store/storetest"
)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{Chain: storetest.Chain{}})
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	return s
}

func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, ":memory:") })
}

func TestConformanceFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "authbench.db"))
	})
}

// TestAuditTamper: the attacks on the audit log that verification must
// find, done with SQL on the database file behind the store's back.
func TestAuditTamper(t *testing.T) {
	storetest.RunTamper(t, func(t *testing.T) (store.Store, storetest.Tamperer) {
		path := filepath.Join(t.TempDir(), "authbench.db")
		s := open(t, path)
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return s, &storetest.SQLTamperer{DB: db, HeadsInLog: true, Unlock: []string{
			"DROP TRIGGER IF EXISTS audit_append_only_update",
			"DROP TRIGGER IF EXISTS audit_append_only_delete",
		}}
	})
}

// TestQueryPlans: no hot statement reads a whole table, and every lookup
// by credential ID or serial uses its index (EXPLAIN QUERY PLAN).
func TestQueryPlans(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "plans.db"))
	defer s.Close()
	storetest.CheckQueryPlans(t, s)
}

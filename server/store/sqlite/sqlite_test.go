package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
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

// TestUpdateSameStateProgram: the update of an authenticator that leaves
// its state as it is (authenticator-update-same-state, a login's) opens
// no cursor on authenticators_serial_in_use, the partial unique index
// whose predicate names the state, while the update that sets the state
// (authenticator-update) opens one to check and keep the row's entry.
// It reads the programs SQLite compiles (EXPLAIN), cursor by cursor.
func TestUpdateSameStateProgram(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "program.db")
	s := open(t, path)
	defer s.Close()
	plans, err := s.QueryPlans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var root int64
	if err := db.QueryRow(`SELECT rootpage FROM sqlite_schema WHERE name = 'authenticators_serial_in_use'`).Scan(&root); err != nil {
		t.Fatal(err)
	}
	// opensIndex reports whether the program of q opens a cursor on the
	// B-tree whose root page is root.
	opensIndex := func(q string) bool {
		t.Helper()
		args := make([]any, strings.Count(q, "?"))
		rows, err := db.Query("EXPLAIN "+q, args...)
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", q, err)
		}
		defer rows.Close()
		opens := false
		for rows.Next() {
			var (
				addr, p1, p2, p3 int64
				op               string
				p4, p5, comment  sql.NullString
			)
			if err := rows.Scan(&addr, &op, &p1, &p2, &p3, &p4, &p5, &comment); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(op, "Open") && p2 == root {
				opens = true
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return opens
	}
	want := map[string]bool{"authenticator-update": true, "authenticator-update-same-state": false}
	for _, p := range plans {
		w, ok := want[p.Name]
		if !ok {
			continue
		}
		delete(want, p.Name)
		if got := opensIndex(p.SQL); got != w {
			t.Errorf("%s opens a cursor on authenticators_serial_in_use: %v, want %v\n%s", p.Name, got, w, p.SQL)
		}
	}
	for name := range want {
		t.Errorf("no statement %s", name)
	}
}

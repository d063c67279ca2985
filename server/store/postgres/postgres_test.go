package postgres_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/authbench/authbench/internal/pgtest"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/postgres"
	"github.com/authbench/authbench/server/store/storetest"
)

func open(t testing.TB, url, schema string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{Chain: storetest.Chain{}, Schema: schema})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	url := pgtest.URL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, url, pgtest.Schema(t, url, "test_")) })
}

// TestAuditTamper: the attacks on the audit log that verification must
// find, done with SQL from another connection behind the store's back.
func TestAuditTamper(t *testing.T) {
	url := pgtest.URL(t)
	storetest.RunTamper(t, func(t *testing.T) (store.Store, storetest.Tamperer) {
		schema := pgtest.Schema(t, url, "test_")
		s := open(t, url, schema)
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
		db := stdlib.OpenDB(*cfg)
		t.Cleanup(func() { db.Close() })
		return s, &storetest.SQLTamperer{DB: db, Numbered: true, Unlock: []string{
			"DROP TRIGGER IF EXISTS audit_append_only ON audit",
		}}
	})
}

// TestQueryPlans: no hot statement reads a whole table, and every lookup
// by credential ID or serial uses its index (the generic plan of EXPLAIN,
// with sequential scans priced out).
func TestQueryPlans(t *testing.T) {
	url := pgtest.URL(t)
	s := open(t, url, pgtest.Schema(t, url, "test_"))
	defer s.Close()
	storetest.CheckQueryPlans(t, s)
}

// TestPoolSize checks the size of a store's pool: Options.MaxConns, else
// the URL's pool_max_conns (which never reaches the server as a setting),
// else the default.
func TestPoolSize(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "test_")
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	for _, c := range []struct {
		url  string
		opt  int
		want int
	}{
		{url + sep + "pool_max_conns=2", 0, 2},
		{url + sep + "pool_max_conns=2", 7, 7},
		{url, 0, max(4, runtime.GOMAXPROCS(0))},
	} {
		s, err := postgres.Open(context.Background(), c.url, postgres.Options{Chain: storetest.Chain{}, Schema: schema, MaxConns: c.opt})
		if err != nil {
			t.Fatalf("Open(%q, MaxConns %d): %v", c.url, c.opt, err)
		}
		if _, err := s.Identity(context.Background(), "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a read on %q: %v, want ErrNotFound", c.url, err)
		}
		if got := postgres.MaxConns(s); got != c.want {
			t.Errorf("Open(%q, MaxConns %d): a pool of %d, want %d", c.url, c.opt, got, c.want)
		}
		s.Close()
	}
}

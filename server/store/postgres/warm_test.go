package postgres_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/authbench/authbench/internal/pgtest"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/postgres"
	"github.com/authbench/authbench/server/store/storetest"
)

// TestWarmPool: a store whose URL asks for pool_min_conns dials them in
// Open, and each comes with every hot statement prepared and planned
// (generically, never for a request's values), so that no request pays
// for a new connection, its statements' parsing and planning, or its
// catalog caches; a store without it dials on demand, as before. Both
// serve.
func TestWarmPool(t *testing.T) {
	ctx := context.Background()
	base := pgtest.URL(t)
	schema := pgtest.Schema(t, base, "test_")
	u, err := url.Parse(base)
	must(t, err)
	q := u.Query()
	q.Set("pool_min_conns", "2")
	q.Set("pool_max_conns", "3")
	u.RawQuery = q.Encode()
	s, err := postgres.Open(ctx, u.String(), postgres.Options{Chain: storetest.Chain{}, Schema: schema})
	must(t, err)
	defer s.Close()
	if n := postgres.PoolConns(s); n != 2 {
		t.Errorf("after Open the pool holds %d connections, want pool_min_conns = 2", n)
	}
	prepared, generic, custom, err := postgres.Prepared(ctx, s)
	must(t, err)
	t.Logf("a warm connection: %d statements prepared, %d planned generically, %d custom plans", prepared, generic, custom)
	if want := postgres.HotStatements(); prepared < want || generic < want || custom != 0 {
		t.Errorf("a warm connection has %d statements prepared, %d planned generically, %d custom plans; want %d, %d, 0", prepared, generic, custom, want, want)
	}
	// It serves, and so does a store that dials on demand on the same
	// schema.
	cold := open(t, base, schema)
	defer cold.Close()
	newIdentity(t, s, "id-1")
	for _, st := range []*postgres.Store{s, cold} {
		if _, err := st.Identity(ctx, "id-1"); err != nil {
			t.Fatal(err)
		}
		att := store.Attempt{ID: "att-1", AuthenticatorID: "none", ExpiresAt: t0.Add(time.Minute)}
		if err := st.ReserveAttempt(ctx, att, 3, t0); err == nil {
			t.Error("an attempt reserved against no authenticator")
		}
	}
	if n := postgres.PoolConns(cold); n > 1 {
		t.Errorf("a store without pool_min_conns holds %d connections after one call at a time", n)
	}
	_, _, custom, err = postgres.Prepared(ctx, s)
	must(t, err)
	if custom != 0 {
		t.Errorf("%d statements were planned for their values after use", custom)
	}
}

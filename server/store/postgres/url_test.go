package postgres_test

import (
	"context"
	"net"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/internal/pgtest"
	"github.com/authbench/authbench/server/store/postgres"
	"github.com/authbench/authbench/server/store/storetest"
)

// TestParseURL: a server on this machine is reached without TLS unless
// the URL or the environment asks for TLS; any other, a name such as
// localhost included, keeps pgx's default (TLS first, then without).
func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		url, env string
		tls      bool
	}{
		{"postgres://u@127.0.0.1:5432/db", "", false},
		{"postgres://u@localhost/db?pool_max_conns=3", "", true},
		{"postgres://u@[::1]:5433/db", "", false},
		{"postgres://u@/db?host=/var/run/postgresql", "", false},
		{"host=127.0.0.1 user=u dbname=db", "", false},
		{"postgres://u@db.example.com/db", "", true},
		{"postgres://u@127.0.0.1,db.example.com/db", "", true},
		{"postgres://u@127.0.0.1/db?sslmode=require", "", true},
		{"postgres://u@127.0.0.1/db?sslmode=prefer", "", true},
		{"host=127.0.0.1 user=u sslmode=require", "", true},
		{"postgres://u@127.0.0.1/db", "require", true},
	} {
		t.Run(c.url+" PGSSLMODE="+c.env, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("PGSSLMODE", c.env)
			}
			pc, err := postgres.ParseURL(c.url)
			if err != nil {
				t.Fatal(err)
			}
			cfg := pc.ConnConfig
			tls := cfg.TLSConfig != nil
			for _, f := range cfg.Fallbacks {
				if f.TLSConfig != nil {
					tls = true
				}
			}
			if tls != c.tls {
				t.Errorf("TLS tried: %v, want %v (host %s, %d fallbacks)", tls, c.tls, cfg.Host, len(cfg.Fallbacks))
			}
			if c.url == "postgres://u@localhost/db?pool_max_conns=3" && pc.MaxConns != 3 {
				t.Errorf("pool_max_conns: %d, want 3", pc.MaxConns)
			}
		})
	}
}

// TestLoopbackPlain: the store's connections to the test server, when it
// runs on this machine, are plain as the server sees them, and TLS when
// the URL says sslmode=require (where the server offers TLS).
func TestLoopbackPlain(t *testing.T) {
	base := pgtest.URL(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() || u.Query().Has("sslmode") {
		t.Skipf("the test server (%s) is not on a loopback address, or its URL names an sslmode", u.Redacted())
	}
	ctx := context.Background()
	schema := pgtest.Schema(t, base, "test_")
	check := func(url string, want bool) {
		t.Helper()
		s, err := postgres.Open(ctx, url, postgres.Options{Chain: storetest.Chain{}, Schema: schema})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		got, err := postgres.ConnTLS(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: TLS %v, want %v", u.Redacted(), got, want)
		}
	}
	check(base, false)
	q := u.Query()
	q.Set("sslmode", "require")
	u.RawQuery = q.Encode()
	c, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Logf("the test server takes no TLS connection (%v): only the plain half is checked", err)
		return
	}
	c.Close(ctx)
	check(u.String(), true)
}

// TestApplicationName: pg_stat_activity, as another client of the server
// reads it, names the store's backends "authbench", or what the URL's
// application_name says.
func TestApplicationName(t *testing.T) {
	base := pgtest.URL(t)
	ctx := context.Background()
	schema := pgtest.Schema(t, base, "test_")
	other, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", "authbench-test."+schema)
	u.RawQuery = q.Encode()
	for _, c := range []struct{ url, want string }{
		{base, postgres.DefaultApplicationName},
		{u.String(), "authbench-test." + schema},
	} {
		u, _ := url.Parse(c.url)
		s, err := postgres.Open(ctx, c.url, postgres.Options{Chain: storetest.Chain{}, Schema: schema})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		pid, err := postgres.BackendPID(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := other.QueryRow(ctx, "SELECT application_name FROM pg_stat_activity WHERE pid = $1", pid).Scan(&got); err != nil {
			t.Fatalf("pg_stat_activity of backend %d: %v", pid, err)
		}
		if got != c.want {
			t.Errorf("Open with application_name %q in the URL: pg_stat_activity says %q, want %q", u.Query().Get("application_name"), got, c.want)
		}
		s.Close()
	}
}

// Package pgtest gives tests a PostgreSQL of their own to use: the server
// of $AUTHBENCH_POSTGRES_URL (.ci/postgres prints one), and a schema per
// test, dropped when the test ends, so that parallel test processes never
// share tables. Without a reachable server a test skips, or fails under
// AUTHBENCH_REQUIRE (internal/testenv).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/internal/testenv"
)

// Env is the environment variable that names the test server.
const Env = "AUTHBENCH_POSTGRES_URL"

const hint = "set " + Env + "=postgres://… (run .ci/postgres as root and export the URL it prints)"

// URL returns the URL of the test server, or skips (fails under
// AUTHBENCH_REQUIRE) when it is unset or cannot be reached.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(Env)
	if u == "" {
		testenv.Missing(t, "postgresql", Env+" is unset; "+hint)
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		testenv.Missing(t, "postgresql", "cannot connect ("+err.Error()+"); "+hint)
		return ""
	}
	c.Close(ctx)
	return u
}

// Schema returns the name of a new schema for this test on the server of
// base (prefix + random hex), dropped with everything in it when the test
// ends. The schema is not created: the PostgreSQL store creates the schema
// it is opened on.
func Schema(t testing.TB, base, prefix string) string {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// SchemaURL creates a new schema of this test (see Schema) and returns the
// URL of the test server with it first on its search_path, for a program
// that takes only a URL; "" after a skip.
func SchemaURL(t testing.TB, prefix string) string {
	t.Helper()
	base := URL(t)
	if base == "" {
		return ""
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	name := Schema(t, base, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

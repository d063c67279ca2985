package scaletest

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/internal/testenv"
)

// postgresEnv names the variable holding the URL of a PostgreSQL server the
// tests may create databases on (.ci/postgres prints one).
const postgresEnv = "AUTHBENCH_POSTGRES_URL"

// postgresStoreDir is where the PostgreSQL store lives in the tree; until
// it exists, `authbench serve` cannot take a postgres:// URL and the
// PostgreSQL variants are skipped even in CI.
const postgresStoreDir = "server/store/postgres"

// freshPostgres returns the URL of a new, empty database (CREATE DATABASE
// scaletest_<random> on the server of $AUTHBENCH_POSTGRES_URL), dropped
// at the end of the test after the servers have stopped. It skips the test
// while the PostgreSQL store is not in the tree (t.Skip), and when no
// PostgreSQL is configured (testenv.Missing: a failure under
// AUTHBENCH_REQUIRE). newCluster does the same when `authbench serve`
// refuses the postgres:// URL.
func freshPostgres(t testing.TB) string {
	t.Helper()
	authbench(t) // sets modRoot
	if _, err := os.Stat(filepath.Join(modRoot, filepath.FromSlash(postgresStoreDir))); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("the PostgreSQL store (%s) is not in the tree yet, so `authbench serve` cannot use PostgreSQL; the multi-replica variant runs once it lands", postgresStoreDir)
	}
	base := os.Getenv(postgresEnv)
	if base == "" {
		testenv.Missing(t, "postgresql", postgresEnv+" is unset; run .ci/postgres (as root) and export the URL it prints")
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		testenv.Missing(t, "postgresql", "cannot connect to "+postgresEnv+": "+err.Error())
		return ""
	}
	defer conn.Close(context.Background())
	name := uniqueName(t, "scaletest_")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() { dropDatabase(t, base, name) })
	u, err := url.Parse(base)
	fatal(t, err)
	u.Path = "/" + name
	return u.String()
}

// dropDatabase drops database name on the server of base.
func dropDatabase(t testing.TB, base, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Errorf("drop database %s: %v", name, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Errorf("drop database %s: %v", name, err)
	}
}

package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/server/store/internal/migration"
)

// SecretTables returns the tables that hold key material, for tests.
func SecretTables() []string { return append([]string(nil), secretTables...) }

// KnownVersion returns the newest schema version this package knows.
func KnownVersion() int {
	ms, err := migrations()
	if err != nil {
		panic(err)
	}
	return len(ms)
}

// MigrateBefore brings the schema of a database up to the migration whose
// name ends in "_"+name, without it (for testing a migration on a
// database made before it).
func MigrateBefore(ctx context.Context, url, schema, name string) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	n := slices.IndexFunc(ms, func(m migration.File) bool { return strings.HasSuffix(m.Name, "_"+name) })
	if n < 0 {
		return fmt.Errorf("no migration %s", name)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return err
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return migrateWith(ctx, c, schema, ms[:n], time.Now())
}

// MaxConns returns the size of s's connection pool.
func MaxConns(s *Store) int { return int(s.pool.p.Config().MaxConns) }

// ConnTLS reports whether a connection of the store's pool runs over TLS,
// as the server sees it (pg_stat_ssl).
func ConnTLS(ctx context.Context, s *Store) (bool, error) {
	var on bool
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&on)
	})
	return on, err
}

// BackendPID returns the process ID of the PostgreSQL backend of a
// connection of s's pool.
func BackendPID(ctx context.Context, s *Store) (int, error) {
	var pid int
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid)
	})
	return pid, err
}

// PoolConns returns how many connections s's pool holds.
func PoolConns(s *Store) int { return int(s.pool.p.Stat().TotalConns()) }

// HotStatements returns how many statements warmConn prepares.
func HotStatements() int { return len(hotStatements) }

// Prepared returns, for a connection of s's pool, how many statements are
// prepared on it and how many of those PostgreSQL has planned generically
// and never for their values (pg_prepared_statements).
func Prepared(ctx context.Context, s *Store) (prepared, generic, custom int, err error) {
	err = s.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT COUNT(*), COUNT(*) FILTER (WHERE generic_plans > 0), COALESCE(SUM(custom_plans), 0)
FROM pg_prepared_statements`).Scan(&prepared, &generic, &custom)
	})
	return prepared, generic, custom, err
}

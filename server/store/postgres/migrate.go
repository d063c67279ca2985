package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/migration"
	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// migrationFiles holds the schema migrations, applied in the order of the
// number that starts each name (0001_init.sql, 0002_....sql). A migration
// is never edited once released; a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew: the database was migrated by a newer program than this
// one; using it could corrupt it.
var ErrSchemaTooNew = errors.New("the database schema is newer than this program")

// ErrSchemaOld: a database opened read-only has an older schema than this
// program's; only a store that may write migrates it.
var ErrSchemaOld = errors.New("the database schema is older than this program; it is not migrated when opened read-only")

// ErrNotAStore: the database holds no authbench store.
var ErrNotAStore = errors.New("not an authbench database")

// checkSchema checks, reading only, that the database is at this
// program's schema version.
func checkSchema(ctx context.Context, c *pgx.Conn) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	var exists bool
	if err := c.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return fmt.Errorf("postgres: %w: %v", ErrNotAStore, err)
	}
	if !exists {
		return fmt.Errorf("postgres: %w: it has no schema_migrations table", ErrNotAStore)
	}
	var v int
	if err := c.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return fmt.Errorf("postgres: read the schema version: %w", err)
	}
	switch {
	case v > len(ms):
		return &SchemaError{Version: v, Known: len(ms)}
	case v < len(ms):
		return fmt.Errorf("postgres: %w (version %d, this program's %d)", ErrSchemaOld, v, len(ms))
	}
	return nil
}

// SchemaError reports a database whose schema version this program does not
// know. It unwraps to ErrSchemaTooNew.
type SchemaError struct {
	Version int // the version recorded in the database
	Known   int // the newest version this program knows
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("postgres: %v: it is at version %d, this program knows up to %d; run a newer authbench (or restore a backup made with this version)",
		ErrSchemaTooNew, e.Version, e.Known)
}

func (e *SchemaError) Unwrap() error { return ErrSchemaTooNew }

// migrations returns the embedded migrations in order.
func migrations() ([]migration.File, error) { return loadMigrations(migrationFiles, "migrations") }

// loadMigrations reads the migrations in dir of fsys; see migration.Load.
func loadMigrations(fsys fs.FS, dir string) ([]migration.File, error) {
	return migration.Load(fsys, dir, "postgres")
}

// lockKey is the key of the session advisory lock (pg_advisory_lock) that
// serialises the migrations of schema across processes.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("authbench schema migration\x00" + schema))
	return int64(h.Sum64())
}

// migrate brings the schema up to date on c. It holds a session advisory
// lock for the whole run, so several replicas starting together migrate
// once: the first applies the migrations, the others wait and then find
// nothing to do. Each migration runs in its own transaction (PostgreSQL
// DDL is transactional) together with its row in schema_migrations.
func migrate(ctx context.Context, c *pgx.Conn, schema string, now time.Time) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	return migrateWith(ctx, c, schema, ms, now)
}

func migrateWith(ctx context.Context, c *pgx.Conn, schema string, ms []migration.File, now time.Time) (err error) {
	key := lockKey(schema)
	if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	defer func() {
		// If unlocking fails the connection is in doubt; closing it
		// releases the lock on the server.
		if _, uerr := c.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key); uerr != nil {
			_ = c.Close(context.WithoutCancel(ctx))
		}
	}()
	if schema != "" {
		if _, err := c.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			if class(err) == sqlcore.ClassInvalid {
				return fmt.Errorf("postgres: create schema %s: %w: %v", schema, store.ErrInvalid, err)
			}
			return fmt.Errorf("postgres: create schema %s: %w", schema, err)
		}
	}
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at BIGINT  NOT NULL
)`
	if _, err := c.Exec(ctx, create); err != nil {
		return fmt.Errorf("postgres: create schema_migrations: %w", err)
	}
	var v int
	if err := c.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return fmt.Errorf("postgres: read the schema version: %w", err)
	}
	if v > len(ms) {
		return &SchemaError{Version: v, Known: len(ms)}
	}
	for _, m := range ms[v:] {
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("postgres: migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
				m.Version, m.Name, now.UnixNano()); err != nil {
				return fmt.Errorf("postgres: record migration %s: %w", m.Name, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// SchemaVersion returns the schema version of the database (the highest
// version in schema_migrations), or the database error.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: read the schema version: %w", err)
	}
	return v, nil
}

// Indexes returns the names of the indexes of the store's schema that its
// statements create (CREATE INDEX), without those of PRIMARY KEY
// constraints.
func (s *Store) Indexes(ctx context.Context) ([]string, error) {
	var out []string
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		rs, err := c.Query(ctx, `SELECT i.relname FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
WHERE t.relnamespace = current_schema()::regnamespace AND NOT x.indisprimary ORDER BY i.relname`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rs, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list the indexes: %w", err)
	}
	return out, nil
}

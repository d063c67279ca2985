package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/authbench/authbench/server/store/internal/migration"
)

// migrationFiles holds the schema migrations, applied in the order of the
// number that starts each name (0001_init.sql, 0002_....sql). A migration
// is never edited once released; a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew: the database was migrated by a newer program than this
// one; opening it could corrupt it.
var ErrSchemaTooNew = errors.New("the database schema is newer than this program")

// ErrSchemaOld: a database opened read-only has an older schema than this
// program's; only a store that may write migrates it.
var ErrSchemaOld = errors.New("the database schema is older than this program; it is not migrated when opened read-only")

// ErrNotAStore: the file is not a database of an authbench store.
var ErrNotAStore = errors.New("not an authbench database")

// checkSchema checks, reading only, that db is at this program's schema
// version.
func checkSchema(ctx context.Context, db *sql.DB) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'").Scan(&n); err != nil {
		return fmt.Errorf("%w: %v", ErrNotAStore, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: it has no schema_migrations table", ErrNotAStore)
	}
	var v int
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	switch {
	case v > len(ms):
		return &SchemaError{Version: v, Known: len(ms)}
	case v < len(ms):
		return fmt.Errorf("%w (version %d, this program's %d)", ErrSchemaOld, v, len(ms))
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
	return fmt.Sprintf("sqlite: %v: it is at version %d, this program knows up to %d; run a newer authbench (or restore a backup made with this version)",
		ErrSchemaTooNew, e.Version, e.Known)
}

func (e *SchemaError) Unwrap() error { return ErrSchemaTooNew }

// migrations returns the embedded migrations in order. It fails on a name
// without a number, on duplicate numbers, and on gaps.
func migrations() ([]migration.File, error) {
	return loadMigrations(migrationFiles, "migrations")
}

// loadMigrations reads the migrations in dir of fsys; see migration.Load.
func loadMigrations(fsys fs.FS, dir string) ([]migration.File, error) {
	return migration.Load(fsys, dir, "sqlite")
}

// migrate brings the schema of db up to date, in one write transaction per
// migration, recording each in schema_migrations. It refuses a database
// whose recorded version is newer than the newest migration (*SchemaError).
func migrate(ctx context.Context, db *sql.DB, now time.Time) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	return migrateWith(ctx, db, ms, now)
}

func migrateWith(ctx context.Context, db *sql.DB, ms []migration.File, now time.Time) error {
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT`
	if _, err := db.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	for {
		done, err := migrateStep(ctx, db, ms, now)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the next missing migration, if any, and reports
// whether the schema is up to date. The version is read inside the write
// transaction, so two processes opening one database at once apply each
// migration once.
func migrateStep(ctx context.Context, db *sql.DB, ms []migration.File, now time.Time) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return false, fmt.Errorf("sqlite: read the schema version: %w", err)
	}
	switch {
	case v > len(ms):
		return false, &SchemaError{Version: v, Known: len(ms)}
	case v == len(ms):
		return true, nil
	}
	m := ms[v]
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("sqlite: migration %s: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		m.Version, m.Name, now.UnixNano()); err != nil {
		return false, fmt.Errorf("sqlite: record migration %s: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("sqlite: migration %s: commit: %w", m.Name, err)
	}
	return false, nil
}

// SchemaVersion returns the schema version of the open database (the
// highest version in schema_migrations), or the database error.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	c, err := s.reader(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { s.rconns <- c }()
	var v int
	if err := c.c.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: read the schema version: %w", err)
	}
	return v, nil
}

// Indexes returns the names of the indexes of the schema that its
// statements create (CREATE INDEX), without those SQLite makes for a
// PRIMARY KEY or UNIQUE constraint.
func (s *Store) Indexes(ctx context.Context) ([]string, error) {
	c, err := s.reader(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { s.rconns <- c }()
	rs, err := c.c.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("sqlite: list the indexes: %w", err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var name string
		if err := rs.Scan(&name); err != nil {
			return nil, fmt.Errorf("sqlite: list the indexes: %w", err)
		}
		out = append(out, name)
	}
	return out, rs.Err()
}

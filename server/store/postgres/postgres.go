package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authbench/authbench/server/store"
)

var _ store.Store = (*Store)(nil)

// Options configure Open. The zero value is the default, except Chain,
// which is required.
type Options struct {
	// Chain links audit events into the hash chain (server/audit provides
	// it). Required: a store that cannot audit is refused.
	Chain store.Chainer
	// MaxConns is the most connections the Store opens. Default
	// max(4, GOMAXPROCS).
	MaxConns int
	// Now is the clock for the wipe and registration times the store
	// records itself. nil means time.Now.
	Now func() time.Time
	// Logger receives warnings (synchronous_commit found off). nil
	// discards them.
	Logger *slog.Logger
	// Schema is the PostgreSQL schema that holds the tables; Open creates
	// it if needed and puts it first on every connection's search_path.
	// "" leaves the search_path of the URL or the server (normally
	// "public").
	Schema string
	// ReadOnly opens the store for reading only, as a verifier does:
	// every transaction is read-only, nothing is created or migrated, and
	// the schema must be this program's (an error wrapping ErrSchemaOld,
	// or a *SchemaError, otherwise).
	ReadOnly bool
}

// Store is a store.Store on a PostgreSQL database. It is safe for
// concurrent use, and several Stores (in one process or many) may share
// one database.
type Store struct {
	pool   *pool
	chain  store.Chainer
	now    func() time.Time
	log    *slog.Logger
	closed atomic.Bool
}

// Open connects to the PostgreSQL database at url (a postgres:// or
// postgresql:// URL, or a key=value connection string, as pgx parses
// them), brings its schema up to date and returns a Store on it.
//
// It returns an error wrapping store.ErrInvalid when opts.Chain is nil or
// url or opts.Schema cannot be used, a *SchemaError (unwrapping to
// ErrSchemaTooNew) when the database was migrated by a newer program, or
// the error of connecting or migrating.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.Chain == nil {
		return nil, fmt.Errorf("postgres: %w: Options.Chain is required (the audit chain, server/audit)", store.ErrInvalid)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx leaves the password out of its parse errors.
		return nil, fmt.Errorf("postgres: %w: %v", store.ErrInvalid, err)
	}
	if opts.Schema != "" {
		if strings.ContainsRune(opts.Schema, 0) {
			return nil, fmt.Errorf("postgres: %w: schema name with a NUL byte", store.ErrInvalid)
		}
		cfg.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	if opts.ReadOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	n := opts.MaxConns
	if n <= 0 {
		n = max(4, runtime.GOMAXPROCS(0))
	}
	pl, err := newPool(cfg, n)
	if err != nil {
		return nil, err
	}
	s := &Store{pool: pl, chain: opts.Chain, now: opts.Now, log: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	err = s.pool.with(ctx, func(c *pgx.Conn) error {
		if opts.ReadOnly {
			return checkSchema(ctx, c)
		}
		if err := s.checkDurability(ctx, c, cfg); err != nil {
			return err
		}
		return migrate(ctx, c, opts.Schema, s.now())
	})
	if err != nil {
		s.pool.close()
		return nil, err
	}
	return s, nil
}

// checkDurability makes sure commits wait for the WAL flush: if the server
// or the role runs with synchronous_commit = off, the store turns it on
// for its own sessions (an acknowledged OTP watermark or permanent block
// must survive a crash of the database server) and logs a warning.
func (s *Store) checkDurability(ctx context.Context, c *pgx.Conn, cfg *pgx.ConnConfig) error {
	var v string
	if err := c.QueryRow(ctx, "SHOW synchronous_commit").Scan(&v); err != nil {
		return fmt.Errorf("postgres: read synchronous_commit: %w", err)
	}
	if v != "off" {
		return nil
	}
	s.log.WarnContext(ctx, "postgres: synchronous_commit is off for this database; the store turns it on for its sessions")
	cfg.RuntimeParams["synchronous_commit"] = "on"
	if _, err := c.Exec(ctx, "SET synchronous_commit = on"); err != nil {
		return fmt.Errorf("postgres: set synchronous_commit: %w", err)
	}
	return nil
}

// Close waits for the calls in progress, then closes every connection.
// Calls made after Close fail. Closing twice returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.pool.close()
	return nil
}

// dbtx is what *pgx.Conn and pgx.Tx have in common.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// read runs fn with a connection outside any transaction.
func (s *Store) read(ctx context.Context, fn func(db dbtx) error) error {
	if s.closed.Load() {
		return errClosed
	}
	return s.pool.with(ctx, func(c *pgx.Conn) error { return fn(c) })
}

// maxAttempts bounds how often tx runs a transaction that failed with a
// serialization failure or a deadlock.
const maxAttempts = 5

// tx runs fn in a READ COMMITTED transaction and commits it; any error of
// fn rolls it back. A transaction that PostgreSQL aborted with a
// serialization failure (40001) or a deadlock (40P01), or that lost a
// race for an audit sequence number, is run again, up to maxAttempts
// times in all, so fn must start from scratch each time.
func (s *Store) tx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	if s.closed.Load() {
		return errClosed
	}
	var err error
	for attempt := range maxAttempts {
		if attempt > 0 {
			// A short, growing pause lets the other transaction finish.
			t := time.NewTimer(time.Duration(attempt*attempt) * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		err = s.pool.with(ctx, func(c *pgx.Conn) error { return runTx(ctx, c, fn) })
		if !retryable(err) {
			return err
		}
	}
	return err
}

func runTx(ctx context.Context, c *pgx.Conn, fn func(context.Context, pgx.Tx) error) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return dbErr(err, "begin")
	}
	if err := fn(ctx, tx); err != nil {
		// A rollback that fails leaves the connection broken; the pool
		// then closes it, which ends the transaction on the server.
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return dbErr(err, "commit")
	}
	return nil
}

func retryable(err error) bool {
	var race *seqRace
	if errors.As(err, &race) {
		return true
	}
	switch sqlState(err) {
	case "40001", "40P01":
		return true
	}
	return false
}

// seqRace marks a unique violation on the audit sequence number.
type seqRace struct{ err error }

func (e *seqRace) Error() string { return "postgres: audit append raced: " + e.err.Error() }
func (e *seqRace) Unwrap() error { return e.err }

// sqlState returns the SQLSTATE of err, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// constraint returns the constraint named by err, or "".
func constraint(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName
	}
	return ""
}

// dbErr turns a database error into one wrapping the store sentinel it
// means, with what (e.g. "authenticator a-1") in the message. Errors that
// already carry a store sentinel, and context errors, pass unchanged.
func dbErr(err error, what string) error {
	if err == nil {
		return nil
	}
	code := sqlState(err)
	switch {
	case code == "23505": // unique_violation
		return fmt.Errorf("postgres: %s: %w", what, store.ErrDuplicate)
	case code == "23503": // foreign_key_violation
		return fmt.Errorf("postgres: %s: %w (it refers to a record that does not exist)", what, store.ErrNotFound)
	case code == "23514", code == "23502", code == "P0001", strings.HasPrefix(code, "22"):
		// check, not null, a trigger's refusal, a data exception (a NUL
		// byte or invalid UTF-8 in text, a number out of range).
		return fmt.Errorf("postgres: %s: %w: %v", what, store.ErrInvalid, err)
	case code == "40001", code == "40P01":
		return err // retried by tx
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errClosed) ||
		errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrDuplicate) ||
		errors.Is(err, store.ErrInvalid) {
		return err
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

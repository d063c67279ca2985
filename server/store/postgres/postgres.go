package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

var _ store.Store = (*Store)(nil)

// Options configure Open. The zero value is the default, except Chain,
// which is required.
type Options struct {
	// Chain links audit events into the hash chain (server/audit provides
	// it). Required: a store that cannot audit is refused.
	Chain store.Chainer
	// MaxConns is the most connections the Store opens. Default: the
	// URL's pool_max_conns (as pgxpool reads it), else max(4, GOMAXPROCS).
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
	// Tracer, when set, traces the statements of every connection (a
	// pgx.QueryTracer, which may also be a pgx.BatchTracer for the
	// pipelines of the write transactions).
	Tracer pgx.QueryTracer
	// ReadOnly opens the store for reading only, as a verifier does:
	// every transaction is read-only, nothing is created or migrated, and
	// the schema must be this program's (an error wrapping ErrSchemaOld,
	// or a *SchemaError, otherwise).
	ReadOnly bool
}

// Store is a store.Store on a PostgreSQL database: the SQL core
// (server/store/internal/sqlcore) over pgx. It is safe for concurrent use,
// and several Stores (in one process or many) may share one database.
type Store struct {
	*sqlcore.Store
	pool   *pool
	now    func() time.Time
	log    *slog.Logger
	closed atomic.Bool
}

// DefaultApplicationName is the application_name of the store's
// connections when neither the URL nor $PGAPPNAME sets one.
const DefaultApplicationName = "authbench"

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
	// pgxpool takes its own settings (pool_max_conns) out of the URL and
	// leaves the connection's to pgx; a server on this machine is reached
	// without TLS unless the URL asks for it (ParseURL).
	pc, err := ParseURL(url)
	if err != nil {
		// pgx leaves the password out of its parse errors.
		return nil, fmt.Errorf("postgres: %w: %v", store.ErrInvalid, err)
	}
	cfg := pc.ConnConfig
	if opts.Schema != "" {
		if strings.ContainsRune(opts.Schema, 0) {
			return nil, fmt.Errorf("postgres: %w: schema name with a NUL byte", store.ErrInvalid)
		}
		cfg.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	if opts.ReadOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	if _, set := cfg.RuntimeParams["application_name"]; !set {
		// pg_stat_activity and the server's log name the store's
		// backends (the URL's application_name or $PGAPPNAME win), so
		// that an operator finds their sessions, waits and CPU among
		// those of other clients.
		cfg.RuntimeParams["application_name"] = DefaultApplicationName
	}
	if _, set := cfg.RuntimeParams["plan_cache_mode"]; !set {
		// The statements are prepared once per connection; PostgreSQL
		// would plan each for its values at its first five executions on
		// every connection before it settles on the generic plan it then
		// keeps (the plans Store.Explain shows, which the query-plan test
		// holds to the indexes). Planned once, generically, at once.
		cfg.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	cfg.Tracer = opts.Tracer
	n := opts.MaxConns
	switch {
	case n > 0:
	case strings.Contains(url, "pool_max_conns"):
		n = int(pc.MaxConns)
	default:
		n = max(4, runtime.GOMAXPROCS(0))
	}
	keep := 0 // the URL's pool_min_conns
	if !opts.ReadOnly {
		keep = min(int(pc.MinConns), n)
	}
	pl, err := newPool(cfg, n, keep)
	if err != nil {
		return nil, err
	}
	s := &Store{pool: pl, now: opts.Now, log: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.Store = sqlcore.New(s, dialect, sqlcore.Options{Chain: opts.Chain, Now: s.now})
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
	if err := s.pool.startWarm(ctx); err != nil {
		s.pool.close()
		return nil, fmt.Errorf("postgres: dial the pool's %d connections (pool_min_conns): %w", keep, err)
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

// errClosed is returned by calls made after Close.
var errClosed = fmt.Errorf("postgres: %w", sqlcore.ErrClosed)

// Read implements sqlcore.Backend: fn runs on a connection of the pool,
// outside any transaction block.
func (s *Store) Read(ctx context.Context, fn func(ctx context.Context, tx sqlcore.Tx) error) error {
	if s.closed.Load() {
		return errClosed
	}
	return s.pool.with(ctx, func(c *pgx.Conn) error { return fn(ctx, conn{c}) })
}

// maxAttempts bounds how often Write runs a transaction that failed with a
// serialization failure or a deadlock.
const maxAttempts = 5

// Write implements sqlcore.Backend: fn runs in a READ COMMITTED
// transaction, committed when it returns nil and rolled back otherwise. A
// transaction that PostgreSQL aborted with a serialization failure (40001)
// or a deadlock (40P01), or that lost a race for an audit sequence number,
// is run again, up to maxAttempts times in all. A Single write runs its
// statements in autocommit, without a transaction block. BEGIN goes out
// with the transaction's first statement (lazyTx). Every commit waits for
// the WAL flush (synchronous_commit = on) except a Lapse write's, which
// runs with synchronous_commit = off: a crash of the database server may
// lose it, as the write allows, and the next commit that waits takes it
// to the disk; the attempts a Lapse write reserves are in an UNLOGGED
// table (migration 0002) anyway, which writes no WAL and is emptied by a
// crash.
func (s *Store) Write(ctx context.Context, f sqlcore.Flags, fn func(ctx context.Context, tx sqlcore.Tx) error) error {
	if s.closed.Load() {
		return errClosed
	}
	if f&sqlcore.Single != 0 {
		return s.pool.with(ctx, func(c *pgx.Conn) error { return fn(ctx, conn{c}) })
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
		err = s.pool.with(ctx, func(c *pgx.Conn) error { return runTx(ctx, c, f&sqlcore.Lapse != 0, fn) })
		if !dialect.Retryable(err) {
			return err
		}
	}
	return err
}

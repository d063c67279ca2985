package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/authbench/authbench/server/store"
)

var _ store.Store = (*Store)(nil)

// Options configure Open. The zero value is the default, except Chain,
// which is required.
type Options struct {
	// Chain links audit events into the hash chain (server/audit provides
	// it). Required: a store that cannot audit is refused.
	Chain store.Chainer
	// BusyTimeout is how long a write waits for another process holding
	// the database's write lock before it fails (SQLite busy_timeout), and
	// how long a checkpoint waits for readers. Default 10 s. Within one
	// Store, writes queue for the single write connection instead (see
	// the package documentation).
	BusyTimeout time.Duration
	// ReadConns is the number of read connections of a file database.
	// Default max(4, GOMAXPROCS).
	ReadConns int
	// Now is the clock for the wipe and registration times the store
	// records itself. nil means time.Now.
	Now func() time.Time
	// Logger receives warnings (a checkpoint after a wipe that could not
	// complete). nil discards them.
	Logger *slog.Logger
	// ReadOnly opens an existing database file for reading only, as a
	// verifier does: nothing is created or migrated, the schema must be
	// this program's (an error wrapping ErrSchemaOld, or a *SchemaError,
	// otherwise), and every write fails.
	ReadOnly bool
}

// Store is a store.Store on an SQLite database. It is safe for concurrent
// use.
type Store struct {
	w      *sql.DB // one connection; every write, BEGIN IMMEDIATE
	r      *sql.DB // read connections (w itself for an in-memory database)
	mem    bool
	ro     bool
	chain  store.Chainer
	now    func() time.Time
	log    *slog.Logger
	closed atomic.Bool
	gc     groupCommit
}

// memSeq numbers in-memory databases so that each Open gets its own.
var memSeq atomic.Uint64

// Open opens (creating if needed) the SQLite database at path, brings its
// schema up to date, and returns a Store on it. path "" or ":memory:" opens
// a new private in-memory database, gone at Close (for tests).
//
// It returns an error wrapping store.ErrInvalid when opts.Chain is nil, a
// *SchemaError (unwrapping to ErrSchemaTooNew) when the database was
// written by a newer program, or the error of opening or migrating the
// database.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.Chain == nil {
		return nil, fmt.Errorf("sqlite: %w: Options.Chain is required (the audit chain, server/audit)", store.ErrInvalid)
	}
	s := &Store{chain: opts.Chain, now: opts.Now, log: opts.Logger}
	s.gc.token = make(chan struct{}, 1)
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}
	common := url.Values{}
	common.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "secure_delete(1)")
	common.Set("_txlock", "immediate")

	if opts.ReadOnly {
		if err := s.openReadOnly(ctx, path, common, opts.ReadConns); err != nil {
			return nil, err
		}
		return s, nil
	}
	if path == "" || path == ":memory:" {
		// One connection: with database/sql every connection to :memory:
		// would be a database of its own. It is never closed while the
		// Store lives, or the database would vanish.
		s.mem = true
		dsn := "file:authbench-mem-" + strconv.FormatUint(memSeq.Add(1), 10) + "?mode=memory&" + common.Encode()
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("sqlite: open in-memory database: %w", err)
		}
		limitPool(db, 1)
		s.w, s.r = db, db
	} else {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		name := "file:" + (&url.URL{Path: abs}).EscapedPath()
		wq := cloneValues(common)
		// WAL: readers never block the writer nor each other. FULL: the
		// WAL is synced at every commit, so an acknowledged change
		// survives kill -9 and power loss alike.
		wq.Add("_pragma", "journal_mode(WAL)")
		wq.Add("_pragma", "synchronous(FULL)")
		w, err := sql.Open("sqlite", name+"?"+wq.Encode())
		if err != nil {
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		limitPool(w, 1)
		s.w = w
		rq := cloneValues(common)
		rq.Add("_pragma", "query_only(1)")
		r, err := sql.Open("sqlite", name+"?"+rq.Encode())
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		n := opts.ReadConns
		if n <= 0 {
			n = max(4, runtime.GOMAXPROCS(0))
		}
		limitPool(r, n)
		s.r = r
	}
	if err := migrate(ctx, s.w, s.now()); err != nil {
		s.closeDBs()
		if path != "" && path != ":memory:" {
			return nil, fmt.Errorf("sqlite: %s: %w", path, err)
		}
		return nil, err
	}
	return s, nil
}

// openReadOnly opens the existing database file at path with
// SQLite's mode=ro and query_only, and checks its schema version without
// changing anything.
func (s *Store) openReadOnly(ctx context.Context, path string, common url.Values, conns int) error {
	if path == "" || path == ":memory:" {
		return fmt.Errorf("sqlite: %w: a read-only store needs a database file", store.ErrInvalid)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if fi.Size() == 0 {
		return fmt.Errorf("sqlite: %s is empty: %w", path, ErrNotAStore)
	}
	q := cloneValues(common)
	q.Del("_txlock")
	q.Set("mode", "ro")
	q.Add("_pragma", "query_only(1)")
	// A database without a write-ahead log is not in use by a server:
	// opened immutable, SQLite creates no -wal or -shm file beside it. One
	// in use is read through its log, whose files exist already.
	if _, err := os.Stat(abs + "-wal"); errors.Is(err, fs.ErrNotExist) {
		q.Set("immutable", "1")
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: abs}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if conns <= 0 {
		conns = max(4, runtime.GOMAXPROCS(0))
	}
	limitPool(db, conns)
	s.w, s.r, s.ro = db, db, true
	if err := checkSchema(ctx, db); err != nil {
		db.Close()
		return fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return nil
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// limitPool keeps exactly up to n long-lived connections.
func limitPool(db *sql.DB, n int) {
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
}

// Close checkpoints a file database (so the -wal file is folded back and
// truncated) and closes it. An in-memory database is gone afterwards.
// Closing twice returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var errs []error
	if !s.mem && !s.ro {
		if _, err := s.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			errs = append(errs, fmt.Errorf("sqlite: checkpoint: %w", err))
		}
	}
	errs = append(errs, s.closeDBs())
	return errors.Join(errs...)
}

func (s *Store) closeDBs() error {
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// ErrCheckpointBusy: a checkpoint could not copy the whole WAL back into
// the database because readers still use it.
var ErrCheckpointBusy = errors.New("sqlite: checkpoint incomplete: readers hold the write-ahead log")

// Checkpoint copies the write-ahead log into the database file and
// truncates it to zero bytes (PRAGMA wal_checkpoint(TRUNCATE)), waiting up
// to the busy timeout for readers. After a wipe this removes the last
// copies of wiped key material from the -wal file; the store does it by
// itself after every write that deletes or replaces a secret. It returns
// ErrCheckpointBusy when readers kept it from completing, or the database
// error (also after Close). It does nothing for an in-memory database.
func (s *Store) Checkpoint(ctx context.Context) error {
	if s.mem {
		return nil
	}
	var busy, logPages, done int
	err := s.w.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done)
	if err != nil {
		return fmt.Errorf("sqlite: checkpoint: %w", err)
	}
	if busy != 0 {
		return ErrCheckpointBusy
	}
	return nil
}

// scrub checkpoints after a write that removed secret bytes; a failure is
// logged, not returned: the write itself is committed.
func (s *Store) scrub(ctx context.Context) {
	// Not cancelled with the caller: the copies should go even if the
	// caller has stopped waiting. The busy timeout bounds it.
	ctx = context.WithoutCancel(ctx)
	if err := s.Checkpoint(ctx); err != nil {
		s.log.WarnContext(ctx, "sqlite: checkpoint after removing secret material did not complete; old copies may remain in the WAL until the next checkpoint", "err", err)
	}
}

// Group commit. Every write is an op: a function run inside a write
// transaction. Ops queue up; whoever holds the leader token takes every op
// queued at that moment and runs them in ONE transaction (BEGIN IMMEDIATE,
// each op inside its own SAVEPOINT, so a failing op undoes only its own
// work), then commits once: one fsync for the whole batch. While a batch
// commits, the next one queues. An op returns only after the commit of its
// batch, so what a caller was told has happened is durable.

// maxBatch bounds the ops of one transaction, and so its latency.
const maxBatch = 256

const (
	opQueued int32 = iota
	opClaimed
	opCancelled
)

type writeOp struct {
	ctx   context.Context
	fn    func(ctx context.Context, tx *sql.Tx) error
	state atomic.Int32
	err   error
	done  chan struct{}
}

type groupCommit struct {
	token   chan struct{} // capacity 1: held by the leader
	mu      sync.Mutex
	queue   []*writeOp
	batches atomic.Int64 // transactions run, for tests
}

// write runs fn in a write transaction and returns its error, or the error
// of committing. fn must use the ctx it is given (it carries the caller's
// values but never cancels: cancelling one statement of a batch would roll
// back the whole transaction). The caller's ctx applies while the op waits
// to be taken into a batch; once taken, the op runs to the end of the batch.
func (s *Store) write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan struct{})}
	s.gc.mu.Lock()
	s.gc.queue = append(s.gc.queue, op)
	s.gc.mu.Unlock()
	for {
		select {
		case <-op.done:
			return op.err
		case s.gc.token <- struct{}{}:
			select {
			case <-op.done: // the previous leader ran it
			default:
				s.runBatch()
			}
			<-s.gc.token
			// The op is done now, unless more than maxBatch ops were
			// queued before it: then it waits for a later batch.
		case <-ctx.Done():
			if op.state.CompareAndSwap(opQueued, opCancelled) {
				return ctx.Err()
			}
			<-op.done // it is running: wait for the commit
			return op.err
		}
	}
}

// runBatch takes the queued ops and runs them in one transaction. The
// caller holds the leader token.
func (s *Store) runBatch() {
	s.gc.mu.Lock()
	n := min(len(s.gc.queue), maxBatch)
	batch := append([]*writeOp(nil), s.gc.queue[:n]...)
	s.gc.queue = append(s.gc.queue[:0], s.gc.queue[n:]...)
	s.gc.mu.Unlock()

	var ops []*writeOp
	for _, op := range batch {
		if op.state.CompareAndSwap(opQueued, opClaimed) {
			ops = append(ops, op)
		} else {
			close(op.done) // cancelled; nobody reads its result
		}
	}
	defer func() {
		for _, op := range ops {
			close(op.done)
		}
	}()
	if len(ops) == 0 {
		return
	}
	fail := func(err error) {
		for _, op := range ops {
			if op.err == nil {
				op.err = err
			}
		}
	}
	s.gc.batches.Add(1)
	bg := context.WithoutCancel(ops[0].ctx)
	tx, err := s.w.BeginTx(bg, nil)
	if err != nil {
		fail(fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	if len(ops) == 1 {
		op := ops[0]
		if op.err = runOp(context.WithoutCancel(op.ctx), tx, op.fn); op.err != nil {
			_ = tx.Rollback()
			return
		}
	} else {
		for _, op := range ops {
			if err := runSavepoint(context.WithoutCancel(op.ctx), tx, op); err != nil {
				// The transaction is gone (SQLite rolled it back after an
				// I/O error, say): nothing of the batch is committed.
				_ = tx.Rollback()
				fail(err)
				return
			}
		}
	}
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("sqlite: commit: %w", err))
	}
}

// runOp runs fn, retrying it when it lost a race for an audit sequence
// number (another process appended between reading the head and
// inserting; BEGIN IMMEDIATE makes that impossible with SQLite, but the
// retry keeps the chain single-headed whatever the locking).
func runOp(ctx context.Context, tx *sql.Tx, fn func(context.Context, *sql.Tx) error) error {
	var err error
	for range 3 {
		var race *seqRace
		if err = fn(ctx, tx); !errors.As(err, &race) {
			break
		}
	}
	return err
}

// runSavepoint runs op inside a savepoint of tx, undoing its work when it
// fails (op.err). It returns an error only when the transaction itself
// can no longer be used.
func runSavepoint(ctx context.Context, tx *sql.Tx, op *writeOp) error {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT op"); err != nil {
		return fmt.Errorf("sqlite: savepoint: %w", err)
	}
	if op.err = runOp(ctx, tx, op.fn); op.err != nil {
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO op"); err != nil {
			return fmt.Errorf("sqlite: rollback to savepoint: %w (after %w)", err, op.err)
		}
	}
	if _, err := tx.ExecContext(ctx, "RELEASE op"); err != nil {
		return fmt.Errorf("sqlite: release savepoint: %w", err)
	}
	return nil
}

// exec runs one statement as a write op and returns the number of rows it
// changed; the error is the database's, unwrapped.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// reader returns the pool for reads outside transactions.
func (s *Store) reader() (*sql.DB, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	return s.r, nil
}

var errClosed = errors.New("sqlite: the store is closed")

// seqRace marks a unique violation on the audit sequence number.
type seqRace struct{ err error }

func (e *seqRace) Error() string { return "sqlite: audit append raced: " + e.err.Error() }
func (e *seqRace) Unwrap() error { return e.err }

// sqliteCode returns the extended result code of err, or 0.
func sqliteCode(err error) int {
	var se *msqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

// dbErr turns a database error into one wrapping the store sentinel it
// means, with what (e.g. "authenticator a-1") in the message.
func dbErr(err error, what string) error {
	if err == nil {
		return nil
	}
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrDuplicate)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("sqlite: %s: %w (it refers to a record that does not exist)", what, store.ErrNotFound)
	case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL, sqlite3.SQLITE_CONSTRAINT_TRIGGER,
		sqlite3.SQLITE_CONSTRAINT_DATATYPE:
		return fmt.Errorf("sqlite: %s: %w: %v", what, store.ErrInvalid, err)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errClosed) {
		return err
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

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

	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/sqlcore"
	"github.com/authbench/authbench/server/store/sqlite/internal/walvfs"
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

// Store is a store.Store on an SQLite database: the SQL core
// (server/store/internal/sqlcore) over this package's connections and
// group-committing writer. It is safe for concurrent use.
type Store struct {
	*sqlcore.Store
	w      *sql.DB    // the write connection's pool (one connection)
	r      *sql.DB    // the read connections' pool (w itself for an in-memory or read-only database)
	wconn  chan *conn // the write connection, held by the batch that runs
	rconns chan *conn // the read connections (wconn for an in-memory database)
	nconns int        // connections of the store, for Close
	mem    bool
	ro     bool
	now    func() time.Time
	log    *slog.Logger
	closed atomic.Bool
	gc     groupCommit
	scrub  *scrubber // nil for an in-memory or read-only database
	// synchronous is the write connection's synchronous setting now
	// (syncFull or syncNormal); the batch that holds wconn owns it.
	synchronous string
	// busy is the write connection's busy timeout (Options.BusyTimeout).
	busy time.Duration
	// mirror holds the records a login reads (changes.go); nil for a
	// read-only store.
	mirror *sqlcore.Mirror
	// owned is the file this Store holds (acquire), released at Close.
	owned string
	// own is what the writing Stores of the database share (owner.go);
	// nil for a read-only store.
	own *owner
}

// The page cache and memory map of the connections of a file database. A
// read connection loses its cached pages at every commit of the writer (a
// connection trusts its cache only while the log has not moved), so it
// reads nearly every page again: mapped, a page of the database file is a
// memory access, not a pread (pages still in the -wal file are read from
// it). SQLite writes through write(2) all the same, and secure_delete and
// the scrub (scrub.go) are unchanged.
//
// The writer's cache is no larger than the pages its commits come back
// to, because every commit pays for its size: when a B-tree split swaps
// two pages' numbers (balance_nonroot, whenever a page taken from the
// freelist has a lower number than its sibling) SQLite parks one page
// under the number of the lock page (1 GiB into the file) for a moment,
// and the cache then believes it holds pages past the end of the
// database: the commit that ends the transaction (pager_end_transaction)
// drops them by walking every slot of the cache's hash table. With 32 MiB
// that walk cost the writer about 1 ms per commit (0.1 ms per chip of the
// lifecycle); with 8 MiB it is a quarter of that, and the pages the writer
// reads again instead cost less than the difference (BenchmarkLifecycleWAL
// at 10,000 chips, CPU profile: truncation + pread 1.33 s with 32 MiB,
// 1.08 s with 16, 0.77 s with 8).
const (
	writerCacheKiB = 8 << 10 // the write connection's cache_size
	mmapSize       = 1 << 30 // mmap_size of every connection (address space, not memory)
)

// VFS registers with SQLite the VFS the store opens its database files
// with and returns its name, for the URI parameter vfs: the unix VFS, but
// a commit's WAL frames reach the log in one write instead of two per
// frame (internal/walvfs). A program that means to write an SQLite file
// at the store's cost (the load's minimal durable login) opens it so too.
func VFS() (string, error) {
	if err := walvfs.Register(); err != nil {
		return "", fmt.Errorf("sqlite: %w", err)
	}
	return walvfs.Name, nil
}

// useFdatasync makes SQLite commit with fdatasync(2) instead of fsync(2)
// in this process (modernc.org/sqlite keeps SQLite's source default,
// fsync, where SQLite's own builds for Linux use fdatasync): the data and
// the size of the file reach the disk all the same, without waiting for
// its timestamps. Where the platform has no fdatasync nothing changes.
var useFdatasync = sync.OnceFunc(func() { _, _ = msqlite.Fdatasync(true) })

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
	s := &Store{now: opts.Now, log: opts.Logger}
	s.gc.token = make(chan struct{}, 1)
	s.gc.clock.since.Store(nanotime())
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if !opts.ReadOnly {
		if path == "" || path == ":memory:" {
			s.own = newOwner()
		} else {
			abs, err := filepath.Abs(path)
			if err != nil {
				return nil, fmt.Errorf("sqlite: %w", err)
			}
			if s.own, err = acquire(abs); err != nil {
				return nil, fmt.Errorf("sqlite: %w", err)
			}
			s.owned = abs
		}
	}
	opened := false
	defer func() {
		if !opened && s.owned != "" {
			release(s.owned)
			s.owned = ""
		}
	}()
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}
	s.busy = busy
	common := url.Values{}
	common.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "secure_delete(1)")
	common.Set("_txlock", "immediate")
	nread := opts.ReadConns
	if nread <= 0 {
		nread = max(4, runtime.GOMAXPROCS(0))
	}

	if opts.ReadOnly {
		s.Store = sqlcore.New(s, dialect, sqlcore.Options{Chain: opts.Chain, Now: s.now})
		if err := s.openReadOnly(ctx, path, common, nread); err != nil {
			return nil, err
		}
		return s, nil
	}
	useFdatasync()
	var fileName string // the file: URI of a file database
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
		fileName = "file:" + (&url.URL{Path: abs}).EscapedPath()
		name := fileName
		// Every connection of the file (the writer, the readers and the
		// checkpointer) through the VFS that writes a commit's WAL
		// frames with one system call instead of two per frame
		// (internal/walvfs); the files and their syncs are the unix
		// VFS's.
		vfs, err := VFS()
		if err != nil {
			return nil, err
		}
		common.Set("vfs", vfs)
		wq := cloneValues(common)
		// WAL: readers never block the writer nor each other. FULL: the
		// WAL is synced at every commit, so an acknowledged change
		// survives kill -9 and power loss alike (a batch of writes that
		// may lapse is committed with NORMAL, see batch.go).
		wq.Add("_pragma", "journal_mode(WAL)")
		wq.Add("_pragma", "synchronous(FULL)")
		// The statement journal of each op's savepoint (batch.go) in
		// memory: in a file it cost a write per page an op changed (and
		// would leave the old pages, wiped keys among them, in a
		// temporary file).
		wq.Add("_pragma", "temp_store(MEMORY)")
		// Checkpoints run beside the writer (scrub.go); its own only
		// when the log grows past walBackstop pages all the same.
		wq.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(walBackstop)+")")
		// The writer's page cache: it keeps the pages it changes
		// between its transactions (no other connection restarts the
		// log, scrub.go), and SQLite's default, 2 MiB, is a small part
		// of the B-trees a write walks; larger than writerCacheKiB costs
		// every commit more (above).
		wq.Add("_pragma", "cache_size("+strconv.Itoa(-writerCacheKiB)+")")
		wq.Add("_pragma", "mmap_size("+strconv.Itoa(mmapSize)+")")
		w, err := sql.Open("sqlite", name+"?"+wq.Encode())
		if err != nil {
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		limitPool(w, 1)
		s.w = w
		rq := cloneValues(common)
		rq.Add("_pragma", "query_only(1)")
		rq.Add("_pragma", "mmap_size("+strconv.Itoa(mmapSize)+")")
		r, err := sql.Open("sqlite", name+"?"+rq.Encode())
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		limitPool(r, nread)
		s.r = r
	}
	if err := migrate(ctx, s.w, s.now()); err != nil {
		s.closeDBs()
		if path != "" && path != ":memory:" {
			return nil, fmt.Errorf("sqlite: %s: %w", path, err)
		}
		return nil, err
	}
	cols, err := mirrorColumns(ctx, s.w)
	if err == nil {
		s.mirror, err = s.own.mirrorOf(cols)
	}
	if err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	s.Store = sqlcore.New(s, dialect, sqlcore.Options{Chain: opts.Chain, Now: s.now, InFlight: s.own.inFlight, Mirror: s.mirror})
	if err := s.openConns(ctx, nread); err != nil {
		s.closeDBs()
		return nil, err
	}
	if !s.mem {
		if err := s.startScrubber(fileName, common); err != nil {
			s.Close()
			return nil, err
		}
	}
	opened = true
	return s, nil
}

// openConns takes the store's connections from the pools: the write
// connection, and nread read connections (none for an in-memory database,
// whose readers take the write connection between batches).
func (s *Store) openConns(ctx context.Context, nread int) error {
	var all []*conn
	take := func(db *sql.DB) (*conn, error) {
		c, err := db.Conn(ctx)
		if err != nil {
			for _, c := range all {
				c.close()
			}
			return nil, fmt.Errorf("sqlite: connect: %w", err)
		}
		cn, err := newConn(c)
		if err != nil {
			c.Close()
			for _, c := range all {
				c.close()
			}
			return nil, err
		}
		if db == s.w && !s.ro {
			cn.heads = newHeadCache() // the writer's (heads.go)
			if err := cn.followChanges(s.mirror); err != nil {
				c.Close()
				for _, c := range all {
					c.close()
				}
				return nil, err
			}
		}
		all = append(all, cn)
		return cn, nil
	}
	s.wconn = make(chan *conn, 1)
	if !s.ro {
		w, err := take(s.w)
		if err != nil {
			return err
		}
		s.wconn <- w
		s.synchronous = syncFull
	}
	if s.mem {
		s.rconns = s.wconn
	} else {
		s.rconns = make(chan *conn, nread)
		for range nread {
			r, err := take(s.r)
			if err != nil {
				return err
			}
			s.rconns <- r
		}
	}
	s.nconns = len(all)
	return nil
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
	limitPool(db, conns)
	s.w, s.r, s.ro = db, db, true
	if err := checkSchema(ctx, db); err != nil {
		db.Close()
		return fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if err := s.openConns(ctx, conns); err != nil {
		db.Close()
		return err
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

// Close waits for the calls in progress, checkpoints a file database (so
// the -wal file is folded back and truncated) and closes it. An in-memory
// database is gone afterwards. Closing twice returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.printWriterStats()
	// The scrubber first: Close checkpoints on the write connection.
	scrubErr := s.stopScrubber()
	// Take every connection back, waiting for the calls that hold one.
	var conns []*conn
	var w *conn
	if !s.ro {
		w = <-s.wconn
		conns = append(conns, w)
	}
	if !s.mem {
		for len(conns) < s.nconns {
			conns = append(conns, <-s.rconns)
		}
	}
	close(s.wconn)
	if !s.mem {
		close(s.rconns)
	}
	errs := []error{scrubErr}
	if w != nil && !s.mem {
		if _, err := w.c.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			errs = append(errs, fmt.Errorf("sqlite: checkpoint: %w", err))
		}
	}
	for _, c := range conns {
		errs = append(errs, c.close())
	}
	errs = append(errs, s.closeDBs())
	if s.owned != "" {
		release(s.owned)
		s.owned = ""
	}
	return errors.Join(errs...)
}

func (s *Store) closeDBs() error {
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// Closed implements sqlcore.Closer.
func (s *Store) Closed() bool { return s.closed.Load() }

// errClosed is returned by calls made after Close.
var errClosed = fmt.Errorf("sqlite: %w", sqlcore.ErrClosed)

// ErrCheckpointBusy: a checkpoint could not copy the whole WAL back into
// the database because readers still use it.
var ErrCheckpointBusy = errors.New("sqlite: checkpoint incomplete: readers hold the write-ahead log")

// Checkpoint copies the write-ahead log into the database file and
// truncates it to zero bytes (PRAGMA wal_checkpoint(TRUNCATE)) on the
// write connection, between batches, waiting up to the busy timeout for
// readers. After a wipe this removes the last copies of wiped key
// material from the -wal file; the store does it by itself, in the
// background, within ScrubWindow of every write that deletes or replaces
// a secret (scrub.go). It returns ErrCheckpointBusy when readers kept it
// from completing, or the database error (also after Close). It does
// nothing for an in-memory database.
func (s *Store) Checkpoint(ctx context.Context) error {
	if s.mem {
		return nil
	}
	if s.ro {
		return errReadOnly
	}
	return s.truncate(ctx, 0)
}

// Read implements sqlcore.Backend: fn runs on a read connection of the
// pool (between batches, on the write connection of an in-memory
// database).
func (s *Store) Read(ctx context.Context, fn func(ctx context.Context, tx sqlcore.Tx) error) error {
	c, err := s.reader(ctx)
	if err != nil {
		return err
	}
	defer func() { s.rconns <- c }()
	return fn(ctx, c)
}

// Explain implements sqlcore.Backend with EXPLAIN QUERY PLAN.
func (s *Store) Explain(ctx context.Context, q *sqlcore.Stmt) (plan string, scans []string, err error) {
	c, err := s.reader(ctx)
	if err != nil {
		return "", nil, err
	}
	defer func() { s.rconns <- c }()
	return c.explain(ctx, q)
}

// reader takes a read connection from the pool; the caller puts it back.
func (s *Store) reader(ctx context.Context) (*conn, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	select {
	case c, ok := <-s.rconns:
		if !ok {
			return nil, errClosed
		}
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

package sqlcore

import (
	"context"

	"github.com/authbench/authbench/server/store"
)

// Stmt is one statement of the core, in its dialect's form.
type Stmt struct {
	// ID numbers the statement within its set (0, 1, 2, ...), so that a
	// connection can keep its prepared statements in a slice.
	ID int
	// Name names it in query plans and tests.
	Name string
	// SQL is the text, with the dialect's placeholders.
	SQL string
	// Hot marks a statement on a request path (a login, an add, a block):
	// its query plan must not scan a table (Store.QueryPlans).
	Hot bool
	// AuditAppend marks a statement that appends to the audit log and
	// nothing else: the rowid it inserts last is the log's highest
	// (SQLite's writer keeps it, sqlite/heads.go).
	AuditAppend bool
}

// Tx runs statements of the core, in a transaction or on a connection of
// its own. The backends implement it over their drivers, with the
// statements prepared once per connection.
type Tx interface {
	// Exec runs q and returns the number of rows it changed.
	Exec(ctx context.Context, q *Stmt, args ...any) (int64, error)
	// QueryRow runs q, which returns at most one row.
	QueryRow(ctx context.Context, q *Stmt, args ...any) Row
	// Query runs q; the caller closes the rows.
	Query(ctx context.Context, q *Stmt, args ...any) (Rows, error)
}

// Later is what a Tx may offer to save round trips (PostgreSQL): a
// statement whose answer the core only checks, with no other statement in
// between, goes out with the next statement of the transaction, or before
// its commit, in one pipeline. The statements still run in the order they
// were given. The error of q's check is then returned by that next
// statement (its Exec, its Row's Scan, its Query) or by the commit
// (Backend.Write) in place of their own; a statement whose check refuses
// it is never followed by a commit of the transaction.
type Later interface {
	// ExecLater runs q later; wrap makes its error, if it has one. It
	// may go out with the commit: a statement that failed rolls the
	// transaction back.
	ExecLater(ctx context.Context, q *Stmt, wrap func(error) error, args ...any)
	// ExecCheckLater runs q later; check gets the rows it changed and
	// its error, and returns the statement's error (nil when it is fine).
	ExecCheckLater(ctx context.Context, q *Stmt, check func(n int64, err error) error, args ...any)
	// QueryRowLater runs q, which returns at most one row, later; scan
	// reads the row and returns the statement's error.
	QueryRowLater(ctx context.Context, q *Stmt, scan func(Row) error, args ...any)
}

// Row is the result of Tx.QueryRow. Scan returns ErrNoRows when there is
// no row.
type Row interface {
	Scan(dest ...any) error
}

// Rows is the result of Tx.Query.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Flags describe a write to the backend.
type Flags uint8

const (
	// Lapse marks a write whose loss in a crash of the machine (not of
	// the process) weakens nothing, so it need not wait for the disk: a
	// reservation (the check it reserved dies with the machine), its
	// release, a success that resets failures (lost, the failures stay
	// counted). What a later write that does wait for the disk puts
	// there takes it along (the log is written in order). Every other
	// write reaches the disk before it returns.
	Lapse Flags = 1 << iota
	// Scrub marks a write that deletes or replaces secret material: the
	// backend removes the old copies from its files (SQLite's write-ahead
	// log) within its documented window.
	Scrub
	// Single marks a write whose statements each stand alone: the first
	// that changes a row is the write, and what follows only reads to
	// explain the outcome. It needs no transaction block of its own
	// (PostgreSQL runs each statement in autocommit).
	Single
)

// HeadCache is what the write transactions of a backend may offer to carry
// the heads of the audit chains from one append to the next, so that an
// append need not read them (appendAudit). It is for a backend whose
// every write runs on one connection of this process (SQLite's writer):
// the cache must answer exactly what the transaction would read, which
// it can only know when it sees every write, and it must forget what a
// rolled back savepoint or transaction wrote, and all it knows when
// another connection wrote the database.
type HeadCache interface {
	// CachedHead returns the head of the chain of identity id as the
	// transaction would read it (nil for a chain without records), and
	// whether it knows it.
	CachedHead(ctx context.Context, id string) (head *store.AuditRecord, known bool, err error)
	// PutHead records h (nil: no records) as the head of the chain of
	// identity id in the transaction, read or written by it. It keeps
	// h's Seq and a copy of its Hash, not h.
	PutHead(id string, h *store.AuditRecord)
	// DropHead forgets the head of the chain of identity id.
	DropHead(id string)
}

// Backend runs the core's work on a database.
type Backend interface {
	// Write runs fn in a write transaction and commits it. fn may be run
	// more than once (a transaction the database aborted to resolve a
	// conflict, an audit append that lost a race), so it starts from
	// scratch each time. The ctx fn gets carries the caller's values and
	// may not be cancellable. Write returns fn's error, or the error of
	// committing.
	Write(ctx context.Context, f Flags, fn func(ctx context.Context, tx Tx) error) error
	// Read runs fn on a connection outside any write transaction.
	Read(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// Explain returns the query plan of q as lines of text and the tables
	// it reads in full (a scan of the table or of a whole index), for
	// Store.QueryPlans.
	Explain(ctx context.Context, q *Stmt) (plan string, scans []string, err error)
}

package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// lazyTx is a write transaction that sends its statements in as few round
// trips as it can, in one pipeline (pgx.Batch) each:
//   - BEGIN goes out with the first statement, and for a write that need
//     not wait for the disk (sqlcore.Lapse) SET LOCAL synchronous_commit =
//     off as well: its commit then returns before the write-ahead log is
//     flushed, and the next commit that waits for the flush takes it to
//     the disk with it (the log is written in order);
//   - a statement the core runs later (sqlcore.Later: it only checks its
//     answer) goes out with the next statement, or with COMMIT; one whose
//     check may refuse it (a row it reads, the rows it changed) goes out
//     before COMMIT, never with it, so that a refused one is rolled back.
//
// The statements run in the order the core gave them either way; a
// transaction that ran no statement sends nothing at all.
type lazyTx struct {
	c     *pgx.Conn
	lapse bool
	begun bool
	later []laterStmt
	br    pgx.BatchResults // a batch whose last result is still being read
}

// laterStmt is a statement of ExecLater or QueryRowLater, waiting to be
// sent.
type laterStmt struct {
	sql   string
	args  []any
	check func(int64, error) error // ExecLater's
	scan  func(sqlcore.Row) error  // QueryRowLater's
	plain bool                     // check refuses only an error (ExecLater)
}

// read reads the result of l from br and returns l's error.
func (l *laterStmt) read(br pgx.BatchResults) error {
	if l.scan != nil {
		return l.scan(row{br.QueryRow()})
	}
	tag, err := br.Exec()
	return l.check(tag.RowsAffected(), err)
}

// asyncCommit is what a Lapse write's transaction runs after BEGIN.
const asyncCommit = "SET LOCAL synchronous_commit = off"

var (
	_ sqlcore.Tx    = (*lazyTx)(nil)
	_ sqlcore.Later = (*lazyTx)(nil)
)

// ExecLater implements sqlcore.Later.
func (t *lazyTx) ExecLater(ctx context.Context, q *sqlcore.Stmt, wrap func(error) error, args ...any) {
	t.later = append(t.later, laterStmt{sql: q.SQL, args: args, plain: true, check: func(_ int64, err error) error {
		if err != nil {
			return wrap(err)
		}
		return nil
	}})
}

// ExecCheckLater implements sqlcore.Later.
func (t *lazyTx) ExecCheckLater(ctx context.Context, q *sqlcore.Stmt, check func(int64, error) error, args ...any) {
	t.later = append(t.later, laterStmt{sql: q.SQL, args: args, check: check})
}

// QueryRowLater implements sqlcore.Later.
func (t *lazyTx) QueryRowLater(ctx context.Context, q *sqlcore.Stmt, scan func(sqlcore.Row) error, args ...any) {
	t.later = append(t.later, laterStmt{sql: q.SQL, args: args, scan: scan})
}

// send sends what waits to be sent (BEGIN, statements of the Later
// methods) in one pipeline with sql, reads their results and returns the
// batch positioned at sql's result; nil when nothing waits and sql can go
// out alone. sql "" sends what waits alone, and returns nil. The first
// error of a waiting statement (as its check makes it) is returned.
func (t *lazyTx) send(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	if err := t.settle(); err != nil {
		return nil, err
	}
	if t.begun && len(t.later) == 0 {
		return nil, nil
	}
	b := &pgx.Batch{}
	if !t.begun {
		b.Queue("begin")
		if t.lapse {
			b.Queue(asyncCommit)
		}
	}
	head := len(b.QueuedQueries)
	later := t.later
	t.later, t.begun = nil, true
	for _, l := range later {
		b.Queue(l.sql, l.args...)
	}
	if sql != "" {
		b.Queue(sql, args...)
	}
	br := t.c.SendBatch(ctx, b)
	for range head {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, err
		}
	}
	for i := range later {
		if err := later[i].read(br); err != nil {
			br.Close()
			return nil, err
		}
	}
	if sql == "" {
		return nil, br.Close()
	}
	t.br = br
	return br, nil
}

// checked reports whether a statement waiting to be sent has a check that
// may refuse it without an error of the database.
func (t *lazyTx) checked() bool {
	for i := range t.later {
		if t.later[i].scan != nil || !t.later[i].plain {
			return true
		}
	}
	return false
}

// settle reads what is left of the last batch.
func (t *lazyTx) settle() error {
	if t.br == nil {
		return nil
	}
	err := t.br.Close()
	t.br = nil
	return err
}

// Exec implements sqlcore.Tx.
func (t *lazyTx) Exec(ctx context.Context, q *sqlcore.Stmt, args ...any) (int64, error) {
	br, err := t.send(ctx, q.SQL, args)
	if err != nil {
		return 0, err
	}
	if br == nil {
		tag, err := t.c.Exec(ctx, q.SQL, args...)
		return tag.RowsAffected(), err
	}
	tag, err := br.Exec()
	if serr := t.settle(); err == nil {
		err = serr
	}
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// QueryRow implements sqlcore.Tx.
func (t *lazyTx) QueryRow(ctx context.Context, q *sqlcore.Stmt, args ...any) sqlcore.Row {
	br, err := t.send(ctx, q.SQL, args)
	switch {
	case err != nil:
		return errRow{err}
	case br == nil:
		return row{t.c.QueryRow(ctx, q.SQL, args...)}
	}
	return settlingRow{row{br.QueryRow()}, t}
}

// Query implements sqlcore.Tx.
func (t *lazyTx) Query(ctx context.Context, q *sqlcore.Stmt, args ...any) (sqlcore.Rows, error) {
	br, err := t.send(ctx, q.SQL, args)
	switch {
	case err != nil:
		return nil, err
	case br == nil:
		return t.c.Query(ctx, q.SQL, args...)
	}
	rows, err := br.Query()
	if err != nil {
		t.settle()
		return nil, err
	}
	return settlingRows{rows, t}, nil
}

// errCommitRollback is the answer to a COMMIT that rolled back (the
// transaction had failed).
var errCommitRollback = errors.New("postgres: commit: the transaction was rolled back")

// commit sends what waits with COMMIT, and commits the transaction; it
// does nothing when no statement began one.
func (t *lazyTx) commit(ctx context.Context) error {
	if err := t.settle(); err != nil {
		return err
	}
	if !t.begun && len(t.later) == 0 {
		return nil
	}
	if t.checked() {
		// Their checks first: a refused statement is rolled back.
		if _, err := t.send(ctx, "", nil); err != nil {
			return err
		}
	}
	br, err := t.send(ctx, "commit", nil)
	if err != nil {
		return err
	}
	var tag interface{ String() string }
	if br == nil {
		tag, err = t.c.Exec(ctx, "commit")
	} else {
		tag, err = br.Exec()
		if serr := t.settle(); err == nil {
			err = serr
		}
	}
	switch {
	case err != nil:
		if dialect.Retryable(err) {
			return err
		}
		return fmt.Errorf("postgres: commit: %w", err)
	case tag.String() == "ROLLBACK":
		return errCommitRollback
	}
	return nil
}

// rollback ends the transaction, if one is open on the connection.
func (t *lazyTx) rollback(ctx context.Context) error {
	err := t.settle()
	t.later = nil
	if t.c.PgConn().TxStatus() == 'I' {
		return err
	}
	_, rerr := t.c.Exec(ctx, "rollback")
	return errors.Join(err, rerr)
}

// settlingRow reads the rest of its batch once it is scanned.
type settlingRow struct {
	row
	t *lazyTx
}

func (r settlingRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if serr := r.t.settle(); serr != nil && (err == nil || errors.Is(err, sqlcore.ErrNoRows)) {
		return serr
	}
	return err
}

// settlingRows reads the rest of their batch once closed.
type settlingRows struct {
	pgx.Rows
	t *lazyTx
}

func (r settlingRows) Close() {
	r.Rows.Close()
	r.t.settle()
}

// errRow is a Row whose statement failed before it ran.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// runTx runs fn in a transaction on c and commits it (see lazyTx).
func runTx(ctx context.Context, c *pgx.Conn, lapse bool, fn func(context.Context, sqlcore.Tx) error) error {
	t := &lazyTx{c: c, lapse: lapse}
	err := fn(ctx, t)
	if err == nil {
		err = t.commit(ctx)
	}
	if err != nil {
		// A rollback that fails leaves the connection broken; the pool
		// then closes it, which ends the transaction on the server.
		_ = t.rollback(context.WithoutCancel(ctx))
	}
	return err
}

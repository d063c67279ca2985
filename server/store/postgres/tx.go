package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// lazyTx is a write transaction whose BEGIN goes out with its first
// statement, in one round trip (pgx.Batch.BeginTx), and, for a write that
// need not wait for the disk (sqlcore.Lapse), with SET LOCAL
// synchronous_commit = off as well: its commit then returns before the
// write-ahead log is flushed, and the next commit that waits for the
// flush takes it to the disk with it (the log is written in order). A
// transaction that ran no statement sends nothing at all.
type lazyTx struct {
	c     *pgx.Conn
	lapse bool
	tx    pgx.Tx           // nil until the first statement went out
	br    pgx.BatchResults // the batch of the first statement, until it is read
}

// asyncCommit is what a Lapse write's transaction runs after BEGIN.
const asyncCommit = "SET LOCAL synchronous_commit = off"

var _ sqlcore.Tx = (*lazyTx)(nil)

// first sends BEGIN (and asyncCommit) with sql, reads their results and
// returns the batch, positioned at sql's result.
func (t *lazyTx) first(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	if t.lapse {
		b.Queue(asyncCommit)
	}
	b.Queue(sql, args...)
	br := t.c.SendBatch(ctx, b)
	t.tx = br.Tx()
	n := 1
	if t.lapse {
		n = 2
	}
	for range n {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, err
		}
	}
	t.br = br
	return br, nil
}

// settle reads what is left of the first statement's batch.
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
	if err := t.settle(); err != nil {
		return 0, err
	}
	var tag pgconn.CommandTag
	var err error
	if t.tx != nil {
		tag, err = t.tx.Exec(ctx, q.SQL, args...)
	} else {
		var br pgx.BatchResults
		if br, err = t.first(ctx, q.SQL, args); err != nil {
			return 0, err
		}
		tag, err = br.Exec()
		if serr := t.settle(); err == nil {
			err = serr
		}
	}
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// QueryRow implements sqlcore.Tx.
func (t *lazyTx) QueryRow(ctx context.Context, q *sqlcore.Stmt, args ...any) sqlcore.Row {
	if err := t.settle(); err != nil {
		return errRow{err}
	}
	if t.tx != nil {
		return row{t.tx.QueryRow(ctx, q.SQL, args...)}
	}
	br, err := t.first(ctx, q.SQL, args)
	if err != nil {
		return errRow{err}
	}
	return settlingRow{row{br.QueryRow()}, t}
}

// Query implements sqlcore.Tx.
func (t *lazyTx) Query(ctx context.Context, q *sqlcore.Stmt, args ...any) (sqlcore.Rows, error) {
	if err := t.settle(); err != nil {
		return nil, err
	}
	if t.tx != nil {
		return t.tx.Query(ctx, q.SQL, args...)
	}
	br, err := t.first(ctx, q.SQL, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		t.settle()
		return nil, err
	}
	return settlingRows{rows, t}, nil
}

// commit commits the transaction, if a statement began it.
func (t *lazyTx) commit(ctx context.Context) error {
	if err := t.settle(); err != nil {
		return err
	}
	if t.tx == nil {
		return nil
	}
	return t.tx.Commit(ctx)
}

// rollback rolls the transaction back, if a statement began it.
func (t *lazyTx) rollback(ctx context.Context) error {
	err := t.settle()
	if t.tx == nil {
		return err
	}
	return errors.Join(err, t.tx.Rollback(ctx))
}

// settlingRow reads the rest of the first statement's batch once it is
// scanned.
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

// settlingRows reads the rest of the first statement's batch once closed.
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
	if err := fn(ctx, t); err != nil {
		// A rollback that fails leaves the connection broken; the pool
		// then closes it, which ends the transaction on the server.
		_ = t.rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := t.commit(ctx); err != nil {
		if dialect.Retryable(err) {
			return err
		}
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

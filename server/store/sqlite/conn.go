package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// conn is one connection of the store with its prepared statements: a
// statement of the core is parsed once per connection, at its first use,
// and kept until Close (sqlcore.Stmt.ID indexes the cache). A conn is
// used by one goroutine at a time: the writer, or a reader that took it
// from the pool.
type conn struct {
	c     *sql.Conn
	stmts []*sql.Stmt
	// heads are the audit chains' heads the writer carries (heads.go);
	// nil on a read connection.
	heads *headCache
	// changes collects the rows the writer's transaction changes, for
	// the mirror (changes.go); nil on a read connection.
	changes *changeLog
}

var _ sqlcore.Tx = (*conn)(nil)

// stmt returns q prepared on c.
func (c *conn) stmt(ctx context.Context, q *sqlcore.Stmt) (*sql.Stmt, error) {
	if q.ID < len(c.stmts) && c.stmts[q.ID] != nil {
		return c.stmts[q.ID], nil
	}
	st, err := c.c.PrepareContext(ctx, q.SQL)
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", q.Name, err)
	}
	if q.ID >= len(c.stmts) {
		c.stmts = append(c.stmts, make([]*sql.Stmt, q.ID+1-len(c.stmts))...)
	}
	c.stmts[q.ID] = st
	return st, nil
}

// Exec implements sqlcore.Tx.
func (c *conn) Exec(ctx context.Context, q *sqlcore.Stmt, args ...any) (int64, error) {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return 0, err
	}
	c.changes.bind(args)
	mark := c.changes.mark()
	res, err := st.ExecContext(ctx, args...)
	if c.heads != nil {
		c.heads.control(q, err == nil)
	}
	if c.changes != nil {
		c.changes.control(q, err == nil)
		if err != nil {
			c.changes.failed(mark)
		}
	}
	if err != nil {
		return 0, err
	}
	if c.heads != nil && q.AuditAppend {
		c.heads.appendedTo(res)
	}
	return res.RowsAffected()
}

// QueryRow implements sqlcore.Tx.
func (c *conn) QueryRow(ctx context.Context, q *sqlcore.Stmt, args ...any) sqlcore.Row {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return errRow{err}
	}
	// The mark before the statement runs: QueryRowContext runs it (an
	// UPDATE ... RETURNING makes all its changes, or fails, there).
	c.changes.bind(args)
	mark := c.changes.mark()
	return row{st.QueryRowContext(ctx, args...), c.changes, mark}
}

// Query implements sqlcore.Tx.
func (c *conn) Query(ctx context.Context, q *sqlcore.Stmt, args ...any) (sqlcore.Rows, error) {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	c.changes.bind(args)
	mark := c.changes.mark()
	r, err := st.QueryContext(ctx, args...)
	if err != nil {
		c.changes.failed(mark)
		return nil, err
	}
	return rows{r, c.changes, mark}, nil
}

// close closes the prepared statements and the connection.
func (c *conn) close() error {
	var errs []error
	for _, st := range c.stmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	c.stmts = nil
	return errors.Join(append(errs, c.c.Close())...)
}

// row is a row of QueryRow; a statement that fails (in Scan) is noted in
// the writer's change log (changes.go).
type row struct {
	r       *sql.Row
	changes *changeLog
	mark    int
}

func (r row) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return sqlcore.ErrNoRows
	}
	if err != nil {
		r.changes.failed(r.mark)
	}
	return err
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// rows are the rows of Query; a statement that fails is noted as in row.
type rows struct {
	*sql.Rows
	changes *changeLog
	mark    int
}

func (r rows) Scan(dest ...any) error {
	err := r.Rows.Scan(dest...)
	if err != nil {
		r.changes.failed(r.mark)
	}
	return err
}

func (r rows) Err() error {
	err := r.Rows.Err()
	if err != nil {
		r.changes.failed(r.mark)
	}
	return err
}

func (r rows) Close() { _ = r.Rows.Close() }

// explain returns the query plan of q (EXPLAIN QUERY PLAN) as indented
// lines, and the tables it reads in full: its SCAN steps, a whole table or
// a whole index ("SCAN CONSTANT ROW", the row of a SELECT without FROM,
// and "SCAN 2-ROW VALUES CLAUSE", the rows of a multi-row INSERT, read
// nothing).
func (c *conn) explain(ctx context.Context, q *sqlcore.Stmt) (string, []string, error) {
	// The plan does not depend on the parameters' values (SQLite plans a
	// statement once, for any values), but each must be bound: NULLs.
	args := make([]any, strings.Count(q.SQL, "?"))
	rs, err := c.c.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.SQL, args...)
	if err != nil {
		return "", nil, err
	}
	defer rs.Close()
	var (
		b     strings.Builder
		scans []string
		depth = map[int]int{}
	)
	for rs.Next() {
		var id, parent, unused int
		var detail string
		if err := rs.Scan(&id, &parent, &unused, &detail); err != nil {
			return "", nil, err
		}
		depth[id] = depth[parent] + 1
		fmt.Fprintf(&b, "%s%s\n", strings.Repeat("  ", depth[id]-1), detail)
		if t, ok := strings.CutPrefix(detail, "SCAN "); ok && t != "CONSTANT ROW" && !strings.HasSuffix(t, "-ROW VALUES CLAUSE") {
			scans = append(scans, t)
		}
	}
	return b.String(), scans, rs.Err()
}

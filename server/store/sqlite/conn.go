package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// conn is one connection of the store with its prepared statements: a
// statement of the core is parsed once per connection, at its first use,
// and kept until Close (sqlcore.Stmt.ID indexes the cache). A conn is
// used by one goroutine at a time: the writer, or a reader that took it
// from the pool.
//
// The statements run on the driver's connection itself (database/sql's
// driver.Conn under c), not through database/sql: its layer cost a lock,
// a goroutine for a cancellable context, a slice of converted arguments
// and a reflective conversion per value for every statement, which is a
// good part of what a write costs the writer. The store holds c from Open
// to Close and lends it to one goroutine at a time, so database/sql never
// touches the driver's connection meanwhile (it does only for a
// connection idle in its pool). What database/sql did that matters is
// done here: arguments converted as its default converter does
// (driver.DefaultParameterConverter, after the common types), rows
// scanned into the destinations the core uses (scan.go), the context
// honoured (the driver checks it before and interrupts a statement when
// it is cancelled).
type conn struct {
	c *sql.Conn
	// dc is the driver's connection under c.
	dc    driver.ConnPrepareContext
	stmts []*stmt
	// args holds the arguments of the statement that runs, reused.
	args []driver.NamedValue
	// vals holds the values of a row being scanned, reused.
	vals []driver.Value
	// heads are the audit chains' heads the writer carries (heads.go);
	// nil on a read connection.
	heads *headCache
	// changes collects the rows the writer's transaction changes, for
	// the mirror (changes.go); nil on a read connection.
	changes *changeLog
}

// stmt is a statement prepared on a driver connection.
type stmt struct {
	st    driver.Stmt
	exec  driver.StmtExecContext
	query driver.StmtQueryContext
}

var _ sqlcore.Tx = (*conn)(nil)

// newConn returns the conn of c.
func newConn(c *sql.Conn) (*conn, error) {
	cn := &conn{c: c}
	err := c.Raw(func(dc any) error {
		p, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("the driver's connection %T prepares no statements with a context", dc)
		}
		cn.dc = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return cn, nil
}

// stmt returns q prepared on c.
func (c *conn) stmt(ctx context.Context, q *sqlcore.Stmt) (*stmt, error) {
	if q.ID < len(c.stmts) && c.stmts[q.ID] != nil {
		return c.stmts[q.ID], nil
	}
	ds, err := c.dc.PrepareContext(ctx, q.SQL)
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", q.Name, err)
	}
	st := &stmt{st: ds}
	var ok1, ok2 bool
	st.exec, ok1 = ds.(driver.StmtExecContext)
	st.query, ok2 = ds.(driver.StmtQueryContext)
	if !ok1 || !ok2 {
		ds.Close()
		return nil, fmt.Errorf("prepare %s: the driver's statement %T runs nothing with a context", q.Name, ds)
	}
	if q.ID >= len(c.stmts) {
		c.stmts = append(c.stmts, make([]*stmt, q.ID+1-len(c.stmts))...)
	}
	c.stmts[q.ID] = st
	return st, nil
}

// bind converts args into c.args, as database/sql's default converter
// would, and notes them in the change log.
func (c *conn) bind(args []any) ([]driver.NamedValue, error) {
	nv := c.args[:0]
	for i, a := range args {
		v, err := driverValue(a)
		if err != nil {
			clear(nv)
			return nil, fmt.Errorf("sqlite: argument %d: %w", i+1, err)
		}
		nv = append(nv, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	c.args = nv
	c.changes.bind(nv)
	return nv, nil
}

// unbind drops the references the arguments held.
func (c *conn) unbind() { clear(c.args) }

// Exec implements sqlcore.Tx.
func (c *conn) Exec(ctx context.Context, q *sqlcore.Stmt, args ...any) (int64, error) {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return 0, err
	}
	nv, err := c.bind(args)
	if err != nil {
		return 0, err
	}
	mark := c.changes.mark()
	res, err := st.exec.ExecContext(ctx, nv)
	c.unbind()
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

// QueryRow implements sqlcore.Tx. The statement runs here (an UPDATE ...
// RETURNING makes all its changes, or fails, at its first step); Scan
// reads its row.
func (c *conn) QueryRow(ctx context.Context, q *sqlcore.Stmt, args ...any) sqlcore.Row {
	rs, err := c.query(ctx, q, args)
	if err != nil {
		return errRow{err}
	}
	return row{rs}
}

// Query implements sqlcore.Tx.
func (c *conn) Query(ctx context.Context, q *sqlcore.Stmt, args ...any) (sqlcore.Rows, error) {
	rs, err := c.query(ctx, q, args)
	if err != nil {
		return nil, err
	}
	return rs, nil
}

// query runs q and returns its rows.
func (c *conn) query(ctx context.Context, q *sqlcore.Stmt, args []any) (*rows, error) {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	nv, err := c.bind(args)
	if err != nil {
		return nil, err
	}
	mark := c.changes.mark()
	dr, err := st.query.QueryContext(ctx, nv)
	c.unbind()
	if err != nil {
		c.changes.failed(mark)
		return nil, err
	}
	return &rows{c: c, r: dr, mark: mark}, nil
}

// close closes the prepared statements and the connection.
func (c *conn) close() error {
	var errs []error
	for _, st := range c.stmts {
		if st != nil {
			errs = append(errs, st.st.Close())
		}
	}
	c.stmts = nil
	return errors.Join(append(errs, c.c.Close())...)
}

// rows are the rows of a statement on c. A statement that fails (in Next,
// or at Close) is noted in the writer's change log (changes.go).
type rows struct {
	c    *conn
	r    driver.Rows
	mark int
	vals []driver.Value // the current row
	err  error
	done bool
}

// Next implements sqlcore.Rows.
func (r *rows) Next() bool {
	if r.done {
		return false
	}
	if r.vals == nil {
		// The conn's buffer, unless rows still open on it hold it.
		n := len(r.r.Columns())
		if cap(r.c.vals) >= n {
			r.vals, r.c.vals = r.c.vals[:n], nil
		} else {
			r.vals = make([]driver.Value, n)
		}
	}
	if err := r.r.Next(r.vals); err != nil {
		if err != io.EOF {
			r.err = err
		}
		r.close()
		return false
	}
	return true
}

// Scan implements sqlcore.Rows.
func (r *rows) Scan(dest ...any) error {
	if r.done {
		if r.err != nil {
			return r.err
		}
		return errors.New("sqlite: Scan called without calling Next")
	}
	if len(dest) != len(r.vals) {
		err := fmt.Errorf("sqlite: Scan: %d destinations for %d columns", len(dest), len(r.vals))
		r.c.changes.failed(r.mark)
		return err
	}
	for i, v := range r.vals {
		if err := assign(dest[i], v); err != nil {
			err = fmt.Errorf("sqlite: Scan: column %d: %w", i, err)
			r.c.changes.failed(r.mark)
			return err
		}
	}
	return nil
}

// Err implements sqlcore.Rows.
func (r *rows) Err() error {
	if r.err != nil {
		r.c.changes.failed(r.mark)
	}
	return r.err
}

// Close implements sqlcore.Rows.
func (r *rows) Close() { r.close() }

// close resets the statement and keeps its error, once.
func (r *rows) close() {
	if r.done {
		return
	}
	r.done = true
	if err := r.r.Close(); err != nil && r.err == nil {
		r.err = err
	}
	if r.vals != nil {
		clear(r.vals)
		if cap(r.vals) > cap(r.c.vals) {
			r.c.vals = r.vals[:0]
		}
		r.vals = r.vals[:0:0]
	}
}

// row is the row of QueryRow: Scan reads the first row and closes the
// rows. Scan returns sqlcore.ErrNoRows when there is none.
type row struct{ r *rows }

func (r row) Scan(dest ...any) error {
	defer r.r.close()
	if !r.r.Next() {
		if err := r.r.Err(); err != nil {
			return err
		}
		return sqlcore.ErrNoRows
	}
	if err := r.r.Scan(dest...); err != nil {
		return err
	}
	r.r.close()
	return r.r.Err()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

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

// driverValue converts a, an argument of a statement, to a value the
// driver binds, as database/sql's default converter does: the values the
// driver takes as they are, the core's pointers to them and ints at once,
// anything else (a driver.Valuer, a named type) by
// driver.DefaultParameterConverter.
func driverValue(a any) (driver.Value, error) {
	switch v := a.(type) {
	case nil, string, int64, []byte, bool, float64, time.Time:
		return v, nil
	case int:
		return int64(v), nil
	case *int64:
		if v == nil {
			return nil, nil
		}
		return *v, nil
	case *string:
		if v == nil {
			return nil, nil
		}
		return *v, nil
	}
	return driver.DefaultParameterConverter.ConvertValue(a)
}

// assign stores src, a value of a column as the driver reads it (nil,
// int64, float64, string or []byte: SQLite's storage classes), in dest,
// with the conversions of database/sql's Scan: at once for the
// destinations the core scans its columns into, by convert for the rest.
// The driver returns every []byte and string in memory of its own, so
// dest may keep it (database/sql copies a []byte its driver may reuse).
func assign(dest, src any) error {
	switch d := dest.(type) {
	case *string:
		switch v := src.(type) {
		case string:
			*d = v
			return nil
		case []byte:
			*d = string(v)
			return nil
		}
	case *int64:
		if v, ok := src.(int64); ok {
			*d = v
			return nil
		}
	case *[]byte:
		switch v := src.(type) {
		case []byte:
			*d = v
			return nil
		case string:
			*d = []byte(v)
			return nil
		case nil:
			*d = nil
			return nil
		}
	case **int64:
		switch v := src.(type) {
		case nil:
			*d = nil
			return nil
		case int64:
			*d = &v
			return nil
		}
	case *any:
		*d = src
		return nil
	}
	return convert(dest, src)
}

// convert is assign for any destination, by database/sql's rules: a
// string or []byte destination takes a number or bool in its text form; a
// bool destination what driver.Bool converts; a sql.Scanner scans; a
// value of the source's type, or of a type of the same kind, is set; a
// pointer is set to nil for NULL or to a new value converted in turn; a
// number or a string of a named type is parsed from the source's text
// form. Anything else is an error.
func convert(dest, src any) error {
	switch d := dest.(type) {
	case *string:
		if src != nil {
			if k := reflect.TypeOf(src).Kind(); k == reflect.Bool || isNumber(k) {
				*d = asString(src)
				return nil
			}
		}
	case *[]byte:
		if src != nil {
			if k := reflect.TypeOf(src).Kind(); k == reflect.Bool || isNumber(k) {
				*d = []byte(asString(src))
				return nil
			}
		}
	case *bool:
		v, err := driver.Bool.ConvertValue(src)
		if err != nil {
			return err
		}
		*d = v.(bool)
		return nil
	case sql.Scanner:
		return d.Scan(src)
	}
	dp := reflect.ValueOf(dest)
	if dp.Kind() != reflect.Pointer {
		return fmt.Errorf("destination not a pointer: %T", dest)
	}
	if dp.IsNil() {
		return fmt.Errorf("destination is a nil pointer: %T", dest)
	}
	dv := dp.Elem()
	if src != nil {
		sv := reflect.ValueOf(src)
		if sv.Type().AssignableTo(dv.Type()) {
			dv.Set(sv)
			return nil
		}
		if dv.Kind() == sv.Kind() && sv.Type().ConvertibleTo(dv.Type()) {
			dv.Set(sv.Convert(dv.Type()))
			return nil
		}
	}
	k := dv.Kind()
	switch {
	case k == reflect.Pointer:
		if src == nil {
			dv.SetZero()
			return nil
		}
		nv := reflect.New(dv.Type().Elem())
		if err := assign(nv.Interface(), src); err != nil {
			return err
		}
		dv.Set(nv)
		return nil
	case isNumber(k) && src == nil, k == reflect.String && src == nil:
		return fmt.Errorf("converting NULL to %s is unsupported", k)
	case k >= reflect.Int && k <= reflect.Int64:
		t := asString(src)
		v, err := strconv.ParseInt(t, 10, dv.Type().Bits())
		if err != nil {
			return fmt.Errorf("converting %T (%q) to a %s: %w", src, t, k, err)
		}
		dv.SetInt(v)
		return nil
	case k >= reflect.Uint && k <= reflect.Uintptr:
		t := asString(src)
		v, err := strconv.ParseUint(t, 10, dv.Type().Bits())
		if err != nil {
			return fmt.Errorf("converting %T (%q) to a %s: %w", src, t, k, err)
		}
		dv.SetUint(v)
		return nil
	case k == reflect.Float32 || k == reflect.Float64:
		t := asString(src)
		v, err := strconv.ParseFloat(t, dv.Type().Bits())
		if err != nil {
			return fmt.Errorf("converting %T (%q) to a %s: %w", src, t, k, err)
		}
		dv.SetFloat(v)
		return nil
	case k == reflect.String:
		switch v := src.(type) {
		case string:
			dv.SetString(v)
			return nil
		case []byte:
			dv.SetString(string(v))
			return nil
		}
	}
	return fmt.Errorf("unsupported Scan, storing %T into %T", src, dest)
}

func isNumber(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Uintptr || k == reflect.Float32 || k == reflect.Float64
}

// asString is the text form of a column value, as database/sql makes it.
func asString(src any) string {
	switch v := src.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprintf("%v", src)
}

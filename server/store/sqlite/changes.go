package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// The mirror's feed. The records a login reads are held in memory
// (sqlcore.Mirror), shared by the writing Stores of one database file in
// this process; no other process writes the file (owner.go). Every write
// runs on a Store's write connection, whose pre-update hook reports each
// row a statement inserts, updates or deletes — cascades included — with
// its values. The write connection collects the rows of the mirrored
// tables its transaction changes, following the transaction control the
// batches run on it (batch.go), the same way as the audit heads
// (heads.go):
//
//   - the rows of an op's savepoint are forgotten by ROLLBACK TO;
//   - the transaction's rows go to the mirror when its COMMIT succeeds,
//     before the batch's ops return, and are forgotten by ROLLBACK;
//   - a statement that fails after it changed rows (SQLite undoes them)
//     leaves the mirror nothing it can trust: at the commit it forgets
//     all it holds.
//
// The owner's lock runs the transactions of the Stores of one file one at
// a time, each with its hand-over to the mirror (batch.go), so the mirror
// sees the commits in their order.

// changeLog is the write connection's collection of changed rows; only
// the goroutine holding the connection uses it.
type changeLog struct {
	mirror *sqlcore.Mirror
	// key is the position of each mirrored table's key column in its
	// rows as the hook reports them.
	key map[string]int
	// rows are the transaction's changes, in order; those from sp on
	// belong to the open savepoint (sp < 0: none is open).
	rows []sqlcore.RowChange
	sp   int
	// lost marks a transaction whose changes the log cannot tell.
	lost bool
	// vals holds the values of rows' Old and New, reused from one
	// transaction to the next: the mirror copies the values it keeps
	// out of them while it applies a commit (sqlcore.Mirror.Apply).
	vals []any
}

// maxVals is the most values the log keeps room for between transactions.
const maxVals = 4096

// take returns room for n values of a row.
func (l *changeLog) take(n int) []any {
	k := len(l.vals)
	if k+n > cap(l.vals) {
		// The rows taken so far keep the old array.
		l.vals, k = make([]any, 0, max(2*cap(l.vals), n, 64)), 0
	}
	l.vals = l.vals[:k+n]
	return l.vals[k : k+n : k+n]
}

// mirrorColumns returns the columns of the mirrored tables, in the order
// the pre-update hook reports a row's values.
func mirrorColumns(ctx context.Context, db *sql.DB) (map[string][]string, error) {
	out := map[string][]string{}
	for t := range sqlcore.MirrorTables() {
		rs, err := db.QueryContext(ctx, "SELECT name FROM pragma_table_info(?) ORDER BY cid", t)
		if err != nil {
			return nil, fmt.Errorf("the columns of %s: %w", t, err)
		}
		for rs.Next() {
			var name string
			if err := rs.Scan(&name); err != nil {
				rs.Close()
				return nil, fmt.Errorf("the columns of %s: %w", t, err)
			}
			out[t] = append(out[t], name)
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return nil, fmt.Errorf("the columns of %s: %w", t, err)
		}
	}
	return out, nil
}

// followChanges registers the pre-update hook that feeds m on the write
// connection c.
func (c *conn) followChanges(m *sqlcore.Mirror) error {
	if m == nil {
		return nil
	}
	l := &changeLog{mirror: m, key: map[string]int{}, sp: -1}
	for t := range sqlcore.MirrorTables() {
		l.key[t] = m.KeyColumn(t)
	}
	err := c.c.Raw(func(dc any) error {
		h, ok := dc.(interface {
			RegisterPreUpdateHook(msqlite.PreUpdateHookFn)
		})
		if !ok {
			return errors.New("the driver reports no changes (pre-update hook)")
		}
		h.RegisterPreUpdateHook(l.hook)
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	c.changes = l
	return nil
}

// hook is the pre-update hook: it records a change of a mirrored table;
// the changes of other tables return at once. Most tables, mirrored or
// not, are WITHOUT ROWID, for which SQLite reports no meaningful rowid:
// the log reads neither rowids nor their values, only the columns, and
// knows a row by its key column.
func (l *changeLog) hook(d msqlite.SQLitePreUpdateData) {
	key, ok := l.key[d.TableName]
	if !ok || d.DatabaseName != "main" {
		return
	}
	rc := sqlcore.RowChange{Table: d.TableName}
	var err error
	switch d.Op {
	case sqlite3.SQLITE_INSERT:
		rc.Op = sqlcore.RowInsert
		rc.New = l.take(d.Count())
		err = d.New(rc.New...)
	case sqlite3.SQLITE_UPDATE:
		rc.Op = sqlcore.RowUpdate
		rc.Old = l.take(key + 1)
		if err = d.Old(rc.Old...); err == nil {
			rc.New = l.take(d.Count())
			err = d.New(rc.New...)
		}
	case sqlite3.SQLITE_DELETE:
		rc.Op = sqlcore.RowDelete
		rc.Old = l.take(key + 1)
		err = d.Old(rc.Old...)
	default:
		err = fmt.Errorf("operation %d", d.Op)
	}
	if err != nil {
		l.lost = true
		return
	}
	l.rows = append(l.rows, rc)
}

// bind notes the arguments of the next statement, as the driver binds
// them (conn.bind). The hook reads a TEXT value only up to its first NUL
// byte (the driver converts it as a C string), so a row written with such
// a value would be held other than the database has it: the log cannot
// tell what the transaction wrote, and the mirror forgets at its commit.
func (l *changeLog) bind(args []driver.NamedValue) {
	if l == nil || l.lost {
		return
	}
	for _, a := range args {
		if s, ok := a.Value.(string); ok && strings.IndexByte(s, 0) >= 0 {
			l.lost = true
			return
		}
	}
}

// mark returns where the changes of the next statement start.
func (l *changeLog) mark() int {
	if l == nil {
		return 0
	}
	return len(l.rows)
}

// failed notes that the statement begun at mark failed: when it changed
// rows, the log can no longer tell what the transaction changed.
func (l *changeLog) failed(mark int) {
	if l != nil && len(l.rows) > mark {
		l.lost = true
	}
}

// control follows the transaction control statement q that ran on the
// connection (ok: without an error).
func (l *changeLog) control(q *sqlcore.Stmt, ok bool) {
	switch q {
	case stmtBegin, stmtRollback:
		l.reset()
	case stmtSavepoint:
		if ok {
			l.sp = len(l.rows)
		}
	case stmtRollbackTo:
		if l.sp >= 0 {
			l.rows = l.rows[:l.sp]
		}
	case stmtRelease:
		l.sp = -1
	case stmtCommit:
		if !ok {
			return // the batch rolls back
		}
		switch {
		case l.lost:
			l.mirror.Forget()
		case len(l.rows) > 0:
			l.mirror.Apply(l.rows)
		}
		l.reset()
	}
}

func (l *changeLog) reset() {
	clear(l.rows)
	l.rows, l.sp, l.lost = l.rows[:0], -1, false
	clear(l.vals)
	l.vals = l.vals[:0]
	if cap(l.vals) > maxVals {
		l.vals = nil
	}
}

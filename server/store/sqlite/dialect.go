package sqlite

import (
	"errors"
	"strings"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/authbench/authbench/server/store/internal/columns"
	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// dialect is SQLite's part of the SQL core: ? placeholders, no row locks
// (a write transaction holds the database's one write lock, BEGIN
// IMMEDIATE), the head of an audit chain read from the log, and SQLite's
// extended result codes. Times are INTEGER Unix nanoseconds (UTC), NULL
// for the zero time.Time; see package columns.
var dialect = &sqlcore.Dialect{
	Name:  "sqlite",
	Codec: columns.Codec{Name: "sqlite"},
	// The head of a chain is its last record, the last entry of the
	// chain in the log's key (identity_id, seq) (migration 0009): with
	// no row to lock, a row of heads would be one more B-tree page in
	// the WAL at every commit that appends, for what the key holds.
	LockHead:   `SELECT seq, hash FROM audit WHERE identity_id = ? ORDER BY seq DESC LIMIT 1`,
	HeadsInLog: true,
	// authenticators is keyed by (identity_id, id) and has the unique
	// index authenticators_id besides (migration 0008).
	ByKey: " NOT INDEXED",
	Class: class,
	// SQLite names the columns (or the index) a unique violation
	// collided with only in its message.
	Constraint: constraint,
}

// constraint returns what SQLite names in a constraint error: the
// columns (such as "authenticators.identity_id, authenticators.id") or
// the index ("index 'name'") after its last "constraint failed: ",
// without the result code the driver appends; the whole message when it
// has no such part.
func constraint(err error) string {
	msg := err.Error()
	const failed = "constraint failed: "
	i := strings.LastIndex(msg, failed)
	if i < 0 {
		return msg
	}
	msg = msg[i+len(failed):]
	if j := strings.LastIndex(msg, " ("); j > 0 && strings.HasSuffix(msg, ")") {
		msg = msg[:j]
	}
	return msg
}

// sqliteCode returns the extended result code of err, or 0.
func sqliteCode(err error) int {
	var se *msqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

// class tells what an SQLite error means to the core.
func class(err error) sqlcore.Class {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return sqlcore.ClassUnique
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return sqlcore.ClassForeignKey
	case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL, sqlite3.SQLITE_CONSTRAINT_TRIGGER,
		sqlite3.SQLITE_CONSTRAINT_DATATYPE:
		return sqlcore.ClassInvalid
	}
	return sqlcore.ClassOther
}

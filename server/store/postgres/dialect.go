package postgres

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authbench/authbench/server/store/internal/columns"
	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// dialect is PostgreSQL's part of the SQL core: numbered placeholders, row
// locks where a transaction must hold what it read (FOR UPDATE, FOR
// SHARE), a transaction advisory lock on a code device serial, the head of
// an audit chain locked by a row lock, and SQLSTATEs. Times are BIGINT Unix
// nanoseconds (UTC), NULL for the zero time.Time; authenticator counters
// must fit an INTEGER.
var dialect = &sqlcore.Dialect{
	Name:       "postgres",
	Codec:      columns.Codec{Name: "postgres", Int32Counters: true},
	Numbered:   true,
	ForUpdate:  " FOR UPDATE",
	ForShare:   " FOR SHARE",
	LockSerial: `SELECT pg_advisory_xact_lock(hashtextextended('authbench serial ' || ?, 0))`,
	// The head row of a chain is locked, not rewritten: the append moves
	// it once, at the end (audit-head-move), so a login writes one new
	// version of it, not two. A new chain has no row to lock yet: its
	// first appends race on the primary key of audit, (identity_id, seq),
	// and the loser runs again (sqlcore.SeqRace), by then on the row the
	// winner created.
	LockHead: `SELECT seq, hash FROM audit_heads WHERE identity_id = ? FOR NO KEY UPDATE`,
	// One round trip in autocommit: the function of migration 0004.
	Reserve:    `SELECT reserve_attempt(?, ?, ?, ?, ?, ?)`,
	Class:      class,
	Constraint: constraint,
}

// sqlState returns the SQLSTATE of err, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// constraint returns the constraint named by err, or "".
func constraint(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName
	}
	return ""
}

// class tells what a PostgreSQL error means to the core.
func class(err error) sqlcore.Class {
	switch code := sqlState(err); {
	case code == "23505": // unique_violation
		return sqlcore.ClassUnique
	case code == "23503": // foreign_key_violation
		return sqlcore.ClassForeignKey
	case code == "23514", code == "23502", code == "P0001", strings.HasPrefix(code, "22"):
		// check, not null, a trigger's refusal, a data exception (a NUL
		// byte or invalid UTF-8 in text, a number out of range).
		return sqlcore.ClassInvalid
	case code == "40001", code == "40P01": // serialization_failure, deadlock_detected
		return sqlcore.ClassRetry
	}
	return sqlcore.ClassOther
}

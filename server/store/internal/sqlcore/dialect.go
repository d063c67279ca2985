package sqlcore

import (
	"errors"
	"strconv"
	"strings"

	"github.com/authbench/authbench/server/store/internal/columns"
)

// Dialect is what differs between the databases under the core.
type Dialect struct {
	// Name ("sqlite", "postgres") prefixes error messages.
	Name string
	// Codec converts values to and from columns.
	Codec columns.Codec
	// Numbered rewrites ? placeholders as $1, $2, ...
	Numbered bool
	// ForUpdate and ForShare are the row-lock clauses appended to the
	// SELECTs of write transactions that must hold what they read until
	// the commit; "" where a write transaction holds the database's only
	// write lock anyway.
	ForUpdate, ForShare string
	// LockSerial is a statement with one parameter, a code device serial,
	// that takes a lock on it until the end of the transaction; "" for
	// none. The add of a code device (which checks that no tombstone
	// revokes the serial) and the tombstone that revokes it both take it
	// first, so that neither misses the other's commit.
	LockSerial string
	// LockHead is a statement with one parameter, an identity ID, that
	// returns the seq and hash of the head of the identity's audit chain
	// and locks it until the end of the transaction where that is needed.
	// It may create the head row at seq 0 for a new chain (so that there
	// is a row to lock); no row, or seq 0, is a chain without records.
	LockHead string
	// HeadsInLog says that the head of every audit chain is its last
	// record, found through the log's key (identity_id, seq): LockHead
	// reads it there, an append writes its records and nothing more, and
	// AuditHeads reads the last record of each chain. Where it is false,
	// the heads are rows of audit_heads, which every append moves (a row
	// to lock: PostgreSQL).
	HeadsInLog bool
	// Reserve, where the database can, is one statement that reserves an
	// attempt as ReserveAttempt's transaction does (the subject's lock,
	// then the insert, which sees what was committed before the lock was
	// granted), with parameters attempt ID, authenticator ID, serial (one
	// of the two ""), expires_at, now and the limit, returning whether it
	// reserved. It runs in autocommit, in one round trip; "" for none.
	Reserve string
	// ByKey follows the name of a table in a statement that names every
	// column of the table's primary key, so that the database finds the
	// row by its key and reads no index: SQLite's " NOT INDEXED" (its
	// planner would take the unique index of authenticators' IDs over
	// their key, identity_id and id, and read one more B-tree); "" where
	// the planner needs no hint.
	ByKey string
	// Class tells what a driver error means.
	Class func(err error) Class
	// Constraint names the constraint or index a unique violation
	// collided with, as far as the driver says ("" when it does not).
	Constraint func(err error) string

	dialectOnce
}

// Class is the kind of a database error.
type Class int

// The classes of database errors the core tells apart.
const (
	ClassOther      Class = iota
	ClassUnique           // a unique or primary key violation
	ClassForeignKey       // a foreign key violation
	ClassInvalid          // a refused value: check, not null, a trigger's refusal, a data exception
	ClassRetry            // the transaction must run again: a serialization failure or a deadlock
)

// ErrNoRows is what a Row's Scan returns when the query found no row; the
// backends' adapters turn their driver's sentinel into it.
var ErrNoRows = errors.New("no rows in result set")

// rewrite turns the ? placeholders of q into $1, $2, ... when the dialect
// numbers them. The statements of the core have no ? in literals.
func (d *Dialect) rewrite(q string) string {
	if !d.Numbered || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

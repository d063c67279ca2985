package sqlcore

import "sync/atomic"

// stmtIDs numbers every statement made in the process, so that a
// connection's cache can be a slice indexed by Stmt.ID whatever set the
// statement belongs to (the core's, or a backend's own).
var stmtIDs atomic.Int64

// NewStmt returns a statement with the next ID. The backends make their
// own statements (transaction control, pragmas) with it, once.
func NewStmt(name, sql string, hot bool) *Stmt {
	return &Stmt{ID: int(stmtIDs.Add(1) - 1), Name: name, SQL: sql, Hot: hot}
}

// set collects the statements of one dialect as they are made.
type set struct {
	d   *Dialect
	all []*Stmt
}

// stmt makes a statement of the set: q is written with ? placeholders.
func (s *set) stmt(name string, hot bool, q string) *Stmt {
	st := NewStmt(name, s.d.rewrite(q), hot)
	s.all = append(s.all, st)
	return st
}

package sqlite

import (
	"context"
	"database/sql/driver"
	"fmt"

	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// The heads of the audit chains, carried by the writer. Every write of a
// Store runs on its one write connection, so the writer knows the head of
// every chain it appended to without reading it again: an audited op then
// inserts its records, which are the new heads (the head of a chain is its
// last record, migration 0009), and reads nothing (sqlcore.HeadCache). What it knows follows the transaction control the
// batches run on the connection (batch.go):
//
//   - a head read or written inside an op's savepoint is the savepoint's
//     until RELEASE hands it to the transaction, and ROLLBACK TO forgets
//     it (an op that failed);
//   - the transaction's heads become known for good at COMMIT; ROLLBACK
//     forgets them;
//   - the first head asked for in a transaction checks that no other
//     connection (another Store on the same file, another process)
//     appended to the audit log since the writer's last commit; if one
//     did, all that is known is forgotten. PRAGMA data_version tells
//     whether anything changed the file at all (it also moves when a
//     checkpoint on another connection restarts the write-ahead log;
//     the store's own truncations run on the writer, scrub.go); when it
//     moved, the audit log's highest rowid, as each of the
//     writer's commits that appended to it left it, tells whether anybody
//     else appended: the log is append-only (its triggers refuse updates
//     and deletes) and every append's records are its chains' heads.
//     The writer takes that rowid from its own appends (the
//     last rowid a sqlcore.Stmt.AuditAppend statement inserted: a rowid
//     table without deletes numbers new rows past its highest), so a
//     commit reads nothing more; after a ROLLBACK TO that undid appends it
//     does not know it, and the next check forgets. The write
//     transaction holds the database's write lock from its BEGIN
//     IMMEDIATE, so nothing can change the file between that check and
//     the commit.
//
// The cache holds at most maxHeads chains; past that it forgets some.

// maxHeads bounds the chains whose heads the writer keeps.
const maxHeads = 1 << 16

// stmtDataVersion reads the counter of changes to the file by other
// connections; stmtAuditTop the audit log's highest rowid.
var (
	stmtDataVersion = sqlcore.NewStmt("data-version", "PRAGMA data_version", false)
	stmtAuditTop    = sqlcore.NewStmt("audit-top", "SELECT COALESCE(MAX(rowid), 0) FROM audit", false)
)

// head is the head of one chain: seq 0 for a chain without records.
type head struct {
	seq  uint64
	hash []byte
}

// headCache is the write connection's; only the goroutine holding the
// connection uses it.
type headCache struct {
	committed map[string]head // as of the last commit on the connection
	tx        map[string]head // written (or read) by the transaction, outside a savepoint or released
	sp        map[string]head // of the open savepoint; nil when none is open
	// checked is set once the transaction checked for other writers.
	checked bool
	version int64 // data_version at the last check
	known   bool  // version is set
	// top is the audit log's highest rowid as of the last check or the
	// last commit that appended (topKnown: it is set); appended marks a
	// transaction that appended, pending the rowid of its last append
	// (pendingOK: it is known).
	top, pending        int64
	topKnown, pendingOK bool
	appended            bool
	// spare is the savepoint's map, kept empty between savepoints.
	spare map[string]head
}

func newHeadCache() *headCache {
	return &headCache{committed: map[string]head{}, tx: map[string]head{}}
}

// control follows the transaction control statement q that ran on the
// connection (ok: without an error).
func (h *headCache) control(q *sqlcore.Stmt, ok bool) {
	switch q {
	case stmtBegin:
		clear(h.tx)
		h.sp, h.checked, h.appended = nil, false, false
	case stmtSavepoint:
		if ok {
			if h.spare == nil {
				h.spare = map[string]head{}
			}
			clear(h.spare)
			h.sp = h.spare
		}
	case stmtRollbackTo:
		if h.sp != nil {
			clear(h.sp)
		}
		if h.appended {
			h.pendingOK = false // the undone appends may have been the last
		}
	case stmtRelease:
		if ok && h.sp != nil {
			for id, v := range h.sp {
				h.tx[id] = v
			}
		}
		h.sp = nil
	case stmtCommit:
		if ok {
			h.commit()
		}
	case stmtRollback:
		clear(h.tx)
		h.sp, h.appended = nil, false
	}
}

// appendedTo notes the result of an audit append (a statement marked
// sqlcore.Stmt.AuditAppend that succeeded) in the transaction. An unknown
// rowid only makes the next check forget.
func (h *headCache) appendedTo(res driver.Result) {
	id, err := res.LastInsertId()
	h.appended, h.pending, h.pendingOK = true, id, err == nil
}

// commit makes the transaction's heads known, within maxHeads.
func (h *headCache) commit() {
	for id, v := range h.tx {
		h.committed[id] = v
	}
	clear(h.tx)
	h.sp = nil
	if h.appended {
		h.top, h.topKnown = h.pending, h.pendingOK
		h.appended = false
	}
	for id := range h.committed {
		if len(h.committed) <= maxHeads {
			break
		}
		delete(h.committed, id)
	}
}

// layer returns where a head read or written now belongs.
func (h *headCache) layer() map[string]head {
	if h.sp != nil {
		return h.sp
	}
	return h.tx
}

var _ sqlcore.HeadCache = (*conn)(nil)

// CachedHead implements sqlcore.HeadCache.
func (c *conn) CachedHead(ctx context.Context, id string) (*store.AuditRecord, bool, error) {
	h := c.heads
	if h == nil {
		return nil, false, nil
	}
	if !h.checked {
		if err := h.check(ctx, c); err != nil {
			return nil, false, err
		}
	}
	v, ok := h.sp[id]
	if !ok {
		v, ok = h.tx[id]
	}
	if !ok {
		v, ok = h.committed[id]
	}
	if !ok {
		return nil, false, nil
	}
	if v.seq == 0 {
		return nil, true, nil
	}
	return &store.AuditRecord{IdentityID: id, Seq: v.seq, Hash: v.hash}, true, nil
}

// check forgets the heads known when another connection may have appended
// to the audit log since the writer's last commit (see above).
func (h *headCache) check(ctx context.Context, c *conn) error {
	var v int64
	if err := c.QueryRow(ctx, stmtDataVersion).Scan(&v); err != nil {
		return fmt.Errorf("sqlite: data_version: %w", err)
	}
	if !h.known || v != h.version {
		var top int64
		if err := c.QueryRow(ctx, stmtAuditTop).Scan(&top); err != nil {
			return fmt.Errorf("sqlite: the audit log's last rowid: %w", err)
		}
		if !h.topKnown || top != h.top {
			clear(h.committed)
		}
		h.top, h.topKnown = top, true
	}
	h.version, h.known, h.checked = v, true, true
	return nil
}

// PutHead implements sqlcore.HeadCache.
func (c *conn) PutHead(id string, r *store.AuditRecord) {
	if c.heads == nil {
		return
	}
	var v head
	if r != nil {
		v = head{seq: r.Seq, hash: append([]byte(nil), r.Hash...)}
	}
	c.heads.layer()[id] = v
}

// DropHead implements sqlcore.HeadCache.
func (c *conn) DropHead(id string) {
	h := c.heads
	if h == nil {
		return
	}
	delete(h.committed, id)
	delete(h.tx, id)
	delete(h.sp, id)
}

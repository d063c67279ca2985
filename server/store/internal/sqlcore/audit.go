package sqlcore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// auditPage is how many records AuditRecords reads at a time.
const auditPage = 256

// checkpointPage is how many checkpoints AuditCheckpoints reads at a time
// (a full checkpoint may be large).
const checkpointPage = 16

// appendAudit links each event to the head of its identity's chain and
// inserts them (up to maxAuditRows in one statement), then moves the
// heads (rows of audit_heads; where the dialect's HeadsInLog, the records
// inserted are the heads, and nothing more is written), in the write
// transaction tx. It reads the head of each chain it appends to with the
// dialect's LockHead (PostgreSQL locks the head row, creating it for a
// new chain; SQLite reads the chain's last record, and its write
// transaction holds the database's write lock), in byte order of the
// identity ID, and the locks last to the end of tx: appends to one
// chain are serialised while appends to other chains (other people) go on
// at the same time, on any replica. (identity_id, seq) is the primary key
// as well: an append that raced anyway fails with *SeqRace and the backend
// runs the transaction again.
//
// Every transaction takes the heads last (after the rows it changes) and
// in one order, so two transactions never wait for each other in a cycle
// over them.
//
// Where tx is a HeadCache (SQLite's one writer) a head it knows is not
// read, and every head read or moved is handed to it.
func (s *Store) appendAudit(ctx context.Context, tx Tx, events []domain.Event) error {
	if len(events) == 0 {
		return nil
	}
	var chainBuf [4]string
	chains := columns.AuditChains(chainBuf[:0], events)
	// heads[i] is the head of chains[i] (sorted: found by binary search).
	var headBuf [4]*store.AuditRecord
	heads := headBuf[:0]
	cache, _ := tx.(HeadCache)
	for _, id := range chains {
		if cache != nil {
			h, ok, err := cache.CachedHead(ctx, id)
			if err != nil {
				return err
			}
			if ok {
				heads = append(heads, h)
				continue
			}
		}
		h, err := s.lockAuditHead(ctx, tx, id)
		if err != nil {
			return err
		}
		heads = append(heads, h)
		if cache != nil {
			cache.PutHead(id, h)
		}
	}
	n := min(len(events), maxAuditRows)
	args := make([]any, 0, 8*n)
	recs := make([]store.AuditRecord, 0, n)
	for i, e := range events {
		c, _ := slices.BinarySearch(chains, e.IdentityID)
		r, err := store.Link(s.chain, heads[c], e)
		if err != nil {
			return err
		}
		if args, err = s.col.AppendAuditArgs(args, &r); err != nil {
			return err
		}
		recs = append(recs, r)
		heads[c] = &recs[len(recs)-1] // recs never grows past its room
		if len(recs) == cap(recs) || i == len(events)-1 {
			if err := s.insertAudit(ctx, tx, cache, recs, args); err != nil {
				return err
			}
			// A later statement keeps args and recs, and heads point
			// into recs: the next records go to new ones.
			n = min(len(events)-i-1, maxAuditRows)
			args, recs = make([]any, 0, 8*n), make([]store.AuditRecord, 0, n)
		}
	}
	for c, id := range chains {
		h := heads[c]
		if s.d.HeadsInLog {
			// The records just inserted are the heads.
			if cache != nil {
				cache.PutHead(id, h)
			}
			continue
		}
		if err := s.execLater(ctx, tx, s.q.auditHeadMove, func(err error) error {
			return s.dbErr(err, fmt.Sprintf("move the audit head of %q", id))
		}, id, int64(h.Seq), h.Hash); err != nil {
			return err
		}
		if cache != nil {
			cache.PutHead(id, h)
		}
	}
	return nil
}

// maxAuditRows is the most records one INSERT appends; an append of more
// events takes several.
const maxAuditRows = 4

// insertAudit inserts the linked records recs, whose column values are
// args, in one statement (run later where the backend can: args are
// kept).
func (s *Store) insertAudit(ctx context.Context, tx Tx, cache HeadCache, recs []store.AuditRecord, args []any) error {
	return s.execLater(ctx, tx, s.q.auditInsert[len(recs)-1], func(err error) error {
		r := &recs[0]
		what := fmt.Sprintf("append audit record %d of %q", r.Seq, r.IdentityID)
		if len(recs) > 1 {
			what = fmt.Sprintf("append %d audit records from record %d of %q", len(recs), r.Seq, r.IdentityID)
		}
		err = s.dbErr(err, what)
		if errors.Is(err, store.ErrDuplicate) {
			if cache != nil {
				for i := range recs {
					cache.DropHead(recs[i].IdentityID)
				}
			}
			return &SeqRace{err}
		}
		return err
	}, args...)
}

// lockAuditHead returns the head of the chain of identity id (nil for a
// chain without records yet), locked as the dialect does.
func (s *Store) lockAuditHead(ctx context.Context, tx Tx, id string) (*store.AuditRecord, error) {
	h := store.AuditRecord{IdentityID: id}
	var seq int64
	err := tx.QueryRow(ctx, s.q.auditHead, id).Scan(&seq, &h.Hash)
	switch {
	case errors.Is(err, ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, s.dbErr(err, fmt.Sprintf("lock the audit head of %q", id))
	case seq == 0:
		return nil, nil
	}
	if h.Seq, err = s.col.FromI64(seq, "audit head seq"); err != nil {
		return nil, err
	}
	return &h, nil
}

// AppendAudit implements store.AuditLog.
func (s *Store) AppendAudit(ctx context.Context, events ...domain.Event) error {
	if len(events) == 0 {
		return nil
	}
	return s.write(ctx, 0, func(ctx context.Context, tx Tx) error { return s.appendAudit(ctx, tx, events) })
}

// ListAudit implements store.AuditLog.
func (s *Store) ListAudit(ctx context.Context, identityID string, after uint64, limit int) ([]store.AuditRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	a, err := s.col.U63(after, "seq")
	if err != nil {
		return nil, err
	}
	return s.queryAudit(ctx, s.q.auditList, identityID, a, int64(limit))
}

// AuditRecords implements store.AuditLog.
func (s *Store) AuditRecords(ctx context.Context) iter.Seq2[store.AuditRecord, error] {
	return func(yield func(store.AuditRecord, error) bool) {
		var (
			page []store.AuditRecord
			err  error
		)
		for first := true; ; first = false {
			if first {
				page, err = s.queryAudit(ctx, s.q.auditFirst, int64(auditPage))
			} else {
				last := page[len(page)-1]
				page, err = s.queryAudit(ctx, s.q.auditAfter, last.IdentityID, int64(last.Seq), int64(auditPage))
			}
			if err != nil {
				yield(store.AuditRecord{}, err)
				return
			}
			for _, r := range page {
				if !yield(r, nil) {
					return
				}
			}
			if len(page) < auditPage {
				return
			}
		}
	}
}

// AuditHeads implements store.AuditLog.
func (s *Store) AuditHeads(ctx context.Context) ([]store.AuditHead, error) {
	var out []store.AuditHead
	err := s.read(ctx, func(ctx context.Context, tx Tx) error {
		out = nil
		rows, err := tx.Query(ctx, s.q.auditHeads)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h store.AuditHead
			var seq int64
			if err := rows.Scan(&h.IdentityID, &seq, &h.Hash); err != nil {
				return err
			}
			if h.Seq, err = s.col.FromI64(seq, "audit head seq"); err != nil {
				return err
			}
			out = append(out, h)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.dbErr(err, "read the audit heads")
	}
	return out, nil
}

func (s *Store) queryAudit(ctx context.Context, q *Stmt, args ...any) ([]store.AuditRecord, error) {
	return queryRows(ctx, s, "read the audit log", func(r *columns.AuditRow) (store.AuditRecord, error) { return s.col.Audit(r) }, q, args...)
}

// PutAuditCheckpoint implements store.AuditCheckpoints.
func (s *Store) PutAuditCheckpoint(ctx context.Context, c store.AuditCheckpoint) error {
	args, err := s.col.CheckpointArgs(&c)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, 0, s.q.checkpointInsert, args...)
	return s.dbErr(err, fmt.Sprintf("audit checkpoint %d", c.Seq))
}

// AuditCheckpoints implements store.AuditCheckpoints.
func (s *Store) AuditCheckpoints(ctx context.Context, from uint64) iter.Seq2[store.AuditCheckpoint, error] {
	return func(yield func(store.AuditCheckpoint, error) bool) {
		next, err := s.col.U63(from, "checkpoint seq")
		if err != nil {
			yield(store.AuditCheckpoint{}, err)
			return
		}
		for {
			page, err := s.queryCheckpoints(ctx, s.q.checkpointsFrom, next, int64(checkpointPage))
			if err != nil {
				yield(store.AuditCheckpoint{}, err)
				return
			}
			for _, c := range page {
				if !yield(c, nil) {
					return
				}
			}
			if len(page) < checkpointPage {
				return
			}
			next = int64(page[len(page)-1].Seq) + 1
		}
	}
}

// LastAuditCheckpoint implements store.AuditCheckpoints.
func (s *Store) LastAuditCheckpoint(ctx context.Context) (store.AuditCheckpoint, error) {
	cs, err := s.queryCheckpoints(ctx, s.q.checkpointLast)
	if err != nil || len(cs) == 0 {
		return store.AuditCheckpoint{}, err
	}
	return cs[0], nil
}

func (s *Store) queryCheckpoints(ctx context.Context, q *Stmt, args ...any) ([]store.AuditCheckpoint, error) {
	return queryRows(ctx, s, "read the audit checkpoints", func(r *columns.CheckpointRow) (store.AuditCheckpoint, error) { return s.col.Checkpoint(r) }, q, args...)
}

// row is a columns row type: a pointer with the scan destinations of its
// columns.
type row[R any] interface {
	*R
	Dest() []any
}

// queryRows runs q on a read connection and converts each row (of
// columns type R) with conv; what names the read in an error.
func queryRows[T, R any, PR row[R]](ctx context.Context, s *Store, what string, conv func(PR) (T, error), q *Stmt, args ...any) ([]T, error) {
	var out []T
	err := s.read(ctx, func(ctx context.Context, tx Tx) error {
		out = nil
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r := PR(new(R))
			if err := rows.Scan(r.Dest()...); err != nil {
				return err
			}
			v, err := conv(r)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.dbErr(err, what)
	}
	return out, nil
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

const auditCols = `seq, at, event_type, identity_id, authenticator_id, prev_hash, hash, body`

// auditPage is how many records AuditRecords reads at a time.
const auditPage = 256

// appendAudit links each event to the head of its identity's chain and
// inserts them, then moves the heads, in the transaction tx. It first
// locks the head row of each chain it appends to (creating it for a new
// chain), in byte order of the identity ID, and holds the locks to the end
// of tx: under READ COMMITTED the head it reads under the lock is the true
// one, and appends to one chain are serialised while appends to other
// chains (other people) go on at the same time, on any replica.
// (identity_id, seq) is the primary key as well: an append that raced
// anyway fails with *seqRace and tx runs the transaction again.
//
// The locks are taken last in every transaction (after the rows the
// transaction changes) and in one order, so two transactions never wait
// for each other in a cycle over them.
func (s *Store) appendAudit(ctx context.Context, tx pgx.Tx, events []domain.Event) error {
	if len(events) == 0 {
		return nil
	}
	chains := columns.AuditChains(events)
	heads := make(map[string]*store.AuditRecord, len(chains))
	for _, id := range chains {
		h, err := lockAuditHead(ctx, tx, id)
		if err != nil {
			return err
		}
		heads[id] = h
	}
	for _, e := range events {
		r, err := store.Link(s.chain, heads[e.IdentityID], e)
		if err != nil {
			return err
		}
		args, err := col.AuditArgs(&r)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO audit (`+auditCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, args...)
		if err != nil {
			err = dbErr(err, fmt.Sprintf("append audit record %d of %q", r.Seq, r.IdentityID))
			if errors.Is(err, store.ErrDuplicate) {
				return &seqRace{err}
			}
			return err
		}
		heads[e.IdentityID] = &r
	}
	for _, id := range chains {
		h := heads[id]
		if _, err := tx.Exec(ctx, `UPDATE audit_heads SET seq = $2, hash = $3 WHERE identity_id = $1`, id, int64(h.Seq), h.Hash); err != nil {
			return dbErr(err, fmt.Sprintf("move the audit head of %q", id))
		}
	}
	return nil
}

// lockAuditHead locks the head row of the chain of identity id, creating
// it (at seq 0, no record yet) when the chain is new, and returns the head
// (nil for a new chain). Of two transactions creating one chain, the
// second waits for the first and then locks the row it committed.
func lockAuditHead(ctx context.Context, tx pgx.Tx, id string) (*store.AuditRecord, error) {
	h := store.AuditRecord{IdentityID: id}
	var seq int64
	err := tx.QueryRow(ctx, `INSERT INTO audit_heads AS h (identity_id, seq, hash) VALUES ($1, 0, ''::bytea)
		ON CONFLICT (identity_id) DO UPDATE SET seq = h.seq RETURNING seq, hash`, id).Scan(&seq, &h.Hash)
	if err != nil {
		return nil, dbErr(err, fmt.Sprintf("lock the audit head of %q", id))
	}
	if seq == 0 {
		return nil, nil
	}
	if h.Seq, err = col.FromI64(seq, "audit head seq"); err != nil {
		return nil, err
	}
	return &h, nil
}

// AppendAudit implements store.AuditLog.
func (s *Store) AppendAudit(ctx context.Context, events ...domain.Event) error {
	if len(events) == 0 {
		return nil
	}
	return s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error { return s.appendAudit(ctx, tx, events) })
}

// ListAudit implements store.AuditLog.
func (s *Store) ListAudit(ctx context.Context, identityID string, after uint64, limit int) ([]store.AuditRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	a, err := col.U63(after, "seq")
	if err != nil {
		return nil, err
	}
	return s.queryAudit(ctx, `SELECT `+auditCols+` FROM audit WHERE identity_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		identityID, a, limit)
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
				page, err = s.queryAudit(ctx, `SELECT `+auditCols+` FROM audit ORDER BY identity_id, seq LIMIT $1`, auditPage)
			} else {
				last := page[len(page)-1]
				page, err = s.queryAudit(ctx, `SELECT `+auditCols+` FROM audit WHERE (identity_id, seq) > ($1, $2)
					ORDER BY identity_id, seq LIMIT $3`, last.IdentityID, int64(last.Seq), auditPage)
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
	err := s.read(ctx, func(db dbtx) error {
		out = nil
		rows, err := db.Query(ctx, `SELECT identity_id, seq, hash FROM audit_heads WHERE seq > 0 ORDER BY identity_id`)
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
			if h.Seq, err = col.FromI64(seq, "audit head seq"); err != nil {
				return err
			}
			out = append(out, h)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, dbErr(err, "read the audit heads")
	}
	return out, nil
}

func (s *Store) queryAudit(ctx context.Context, query string, args ...any) ([]store.AuditRecord, error) {
	var out []store.AuditRecord
	err := s.read(ctx, func(db dbtx) error {
		rows, err := db.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanAudit(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, dbErr(err, "read the audit log")
	}
	return out, nil
}

func scanAudit(sc scanner) (store.AuditRecord, error) {
	var r columns.AuditRow
	if err := sc.Scan(r.Dest()...); err != nil {
		return store.AuditRecord{}, err
	}
	return col.Audit(&r)
}

// PutAuditCheckpoint implements store.AuditCheckpoints.
func (s *Store) PutAuditCheckpoint(ctx context.Context, c store.AuditCheckpoint) error {
	args, err := col.CheckpointArgs(&c)
	if err != nil {
		return err
	}
	err = s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO audit_checkpoints (`+columns.CheckpointCols+`) VALUES ($1, $2, $3, $4, $5)`, args...)
		return err
	})
	return dbErr(err, fmt.Sprintf("audit checkpoint %d", c.Seq))
}

// AuditCheckpoints implements store.AuditCheckpoints.
func (s *Store) AuditCheckpoints(ctx context.Context, from uint64) iter.Seq2[store.AuditCheckpoint, error] {
	return func(yield func(store.AuditCheckpoint, error) bool) {
		next, err := col.U63(from, "checkpoint seq")
		if err != nil {
			yield(store.AuditCheckpoint{}, err)
			return
		}
		for {
			page, err := s.queryCheckpoints(ctx, `SELECT `+columns.CheckpointCols+` FROM audit_checkpoints
				WHERE seq >= $1 ORDER BY seq LIMIT $2`, next, checkpointPage)
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

// checkpointPage is how many checkpoints AuditCheckpoints reads at a time
// (a full checkpoint may be large).
const checkpointPage = 16

// LastAuditCheckpoint implements store.AuditCheckpoints.
func (s *Store) LastAuditCheckpoint(ctx context.Context) (store.AuditCheckpoint, error) {
	cs, err := s.queryCheckpoints(ctx, `SELECT `+columns.CheckpointCols+` FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`)
	if err != nil || len(cs) == 0 {
		return store.AuditCheckpoint{}, err
	}
	return cs[0], nil
}

func (s *Store) queryCheckpoints(ctx context.Context, query string, args ...any) ([]store.AuditCheckpoint, error) {
	var out []store.AuditCheckpoint
	err := s.read(ctx, func(db dbtx) error {
		out = nil
		rows, err := db.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r columns.CheckpointRow
			if err := rows.Scan(r.Dest()...); err != nil {
				return err
			}
			c, err := col.Checkpoint(&r)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, dbErr(err, "read the audit checkpoints")
	}
	return out, nil
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

const auditCols = `seq, at, event_type, identity_id, authenticator_id, prev_hash, hash, body`

// auditPage is how many records AuditRecords reads at a time.
const auditPage = 256

// appendAudit links each event to the head of its identity's chain and
// inserts them, then moves the heads, in the write transaction tx. The
// heads are read inside tx, which holds the database's write lock (BEGIN
// IMMEDIATE), so appends are serialised anyway; (identity_id, seq) is the
// primary key as well, so an append that raced fails with *seqRace and
// write retries the transaction. The chains are read and moved in byte
// order of the identity ID, as the PostgreSQL store locks them.
func (s *Store) appendAudit(ctx context.Context, tx *sql.Tx, events []domain.Event) error {
	if len(events) == 0 {
		return nil
	}
	chains := columns.AuditChains(events)
	heads := make(map[string]*store.AuditRecord, len(chains))
	for _, id := range chains {
		h, err := readAuditHead(ctx, tx, id)
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
		_, err = tx.ExecContext(ctx, `INSERT INTO audit (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, args...)
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
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_heads (identity_id, seq, hash) VALUES (?, ?, ?)
			ON CONFLICT (identity_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, id, int64(h.Seq), h.Hash)
		if err != nil {
			return dbErr(err, fmt.Sprintf("move the audit head of %q", id))
		}
	}
	return nil
}

// readAuditHead returns the head of the chain of identity id, nil for a
// chain without records yet.
func readAuditHead(ctx context.Context, tx *sql.Tx, id string) (*store.AuditRecord, error) {
	h := store.AuditRecord{IdentityID: id}
	var seq int64
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_heads WHERE identity_id = ?`, id).Scan(&seq, &h.Hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, dbErr(err, fmt.Sprintf("audit head of %q", id))
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
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error { return s.appendAudit(ctx, tx, events) })
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
	return s.queryAudit(ctx, `SELECT `+auditCols+` FROM audit WHERE identity_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
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
				page, err = s.queryAudit(ctx, `SELECT `+auditCols+` FROM audit ORDER BY identity_id, seq LIMIT ?`, auditPage)
			} else {
				last := page[len(page)-1]
				page, err = s.queryAudit(ctx, `SELECT `+auditCols+` FROM audit WHERE (identity_id, seq) > (?, ?)
					ORDER BY identity_id, seq LIMIT ?`, last.IdentityID, int64(last.Seq), auditPage)
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
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT identity_id, seq, hash FROM audit_heads ORDER BY identity_id`)
	if err != nil {
		return nil, dbErr(err, "read the audit heads")
	}
	defer rows.Close()
	var out []store.AuditHead
	for rows.Next() {
		var h store.AuditHead
		var seq int64
		if err := rows.Scan(&h.IdentityID, &seq, &h.Hash); err != nil {
			return nil, dbErr(err, "read the audit heads")
		}
		if h.Seq, err = col.FromI64(seq, "audit head seq"); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "read the audit heads")
	}
	return out, nil
}

func (s *Store) queryAudit(ctx context.Context, query string, args ...any) ([]store.AuditRecord, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbErr(err, "read the audit log")
	}
	defer rows.Close()
	var out []store.AuditRecord
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, dbErr(err, "read the audit log")
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
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
	_, err = s.exec(ctx, `INSERT INTO audit_checkpoints (`+columns.CheckpointCols+`) VALUES (?, ?, ?, ?, ?)`, args...)
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
				WHERE seq >= ? ORDER BY seq LIMIT ?`, next, checkpointPage)
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
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbErr(err, "read the audit checkpoints")
	}
	defer rows.Close()
	var out []store.AuditCheckpoint
	for rows.Next() {
		var r columns.CheckpointRow
		if err := rows.Scan(r.Dest()...); err != nil {
			return nil, dbErr(err, "read the audit checkpoints")
		}
		c, err := col.Checkpoint(&r)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "read the audit checkpoints")
	}
	return out, nil
}

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

// appendAudit links events to the head of the chain and inserts them, in
// the write transaction tx. The head is read inside tx, which holds the
// database's write lock (BEGIN IMMEDIATE), so appends are serialised; seq
// is the primary key as well, so an append that raced anyway fails with
// *seqRace and write retries the transaction.
func (s *Store) appendAudit(ctx context.Context, tx *sql.Tx, events []domain.Event) error {
	if len(events) == 0 {
		return nil
	}
	head, err := scanAudit(tx.QueryRowContext(ctx, `SELECT `+auditCols+` FROM audit ORDER BY seq DESC LIMIT 1`))
	var prev *store.AuditRecord
	switch {
	case err == nil:
		prev = &head
	case !errors.Is(err, sql.ErrNoRows):
		return dbErr(err, "audit head")
	}
	for _, e := range events {
		r, err := store.Link(s.chain, prev, e)
		if err != nil {
			return err
		}
		args, err := col.AuditArgs(&r)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO audit (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		if err != nil {
			err = dbErr(err, fmt.Sprintf("append audit record %d", r.Seq))
			if errors.Is(err, store.ErrDuplicate) {
				return &seqRace{err}
			}
			return err
		}
		prev = &r
	}
	return nil
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
func (s *Store) AuditRecords(ctx context.Context, from uint64) iter.Seq2[store.AuditRecord, error] {
	return func(yield func(store.AuditRecord, error) bool) {
		next, err := col.U63(from, "seq")
		if err != nil {
			yield(store.AuditRecord{}, err)
			return
		}
		for {
			page, err := s.queryAudit(ctx, `SELECT `+auditCols+` FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?`, next, auditPage)
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
			next = int64(page[len(page)-1].Seq) + 1
		}
	}
}

// AuditHead implements store.AuditLog.
func (s *Store) AuditHead(ctx context.Context) (store.AuditRecord, error) {
	rs, err := s.queryAudit(ctx, `SELECT `+auditCols+` FROM audit ORDER BY seq DESC LIMIT 1`)
	if err != nil || len(rs) == 0 {
		return store.AuditRecord{}, err
	}
	return rs[0], nil
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

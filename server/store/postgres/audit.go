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

// appendAudit links events to the head of the chain and inserts them, in
// the transaction tx. It first locks the one row of audit_head (SELECT ...
// FOR UPDATE), which every append of every replica takes, and holds it to
// the end of tx; only then does it read the last record. Under READ
// COMMITTED each statement sees what was committed before it started, so
// the head read after the lock is the true head, and appends are
// serialised. seq is the primary key as well: an append that raced anyway
// fails with *seqRace and tx runs the transaction again.
//
// The lock is taken last in every transaction (after the rows the
// transaction changes), and held through the commit, so audited writes
// commit one at a time across all replicas: the price of a chain with a
// single head.
func (s *Store) appendAudit(ctx context.Context, tx pgx.Tx, events []domain.Event) error {
	if len(events) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT id FROM audit_head WHERE id = 1 FOR UPDATE`); err != nil {
		return dbErr(err, "lock the audit head")
	}
	head, err := scanAudit(tx.QueryRow(ctx, `SELECT `+auditCols+` FROM audit ORDER BY seq DESC LIMIT 1`))
	var prev *store.AuditRecord
	switch {
	case err == nil:
		prev = &head
	case !errors.Is(err, pgx.ErrNoRows):
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
		_, err = tx.Exec(ctx, `INSERT INTO audit (`+auditCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, args...)
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
func (s *Store) AuditRecords(ctx context.Context, from uint64) iter.Seq2[store.AuditRecord, error] {
	return func(yield func(store.AuditRecord, error) bool) {
		next, err := col.U63(from, "seq")
		if err != nil {
			yield(store.AuditRecord{}, err)
			return
		}
		for {
			page, err := s.queryAudit(ctx, `SELECT `+auditCols+` FROM audit WHERE seq >= $1 ORDER BY seq LIMIT $2`, next, auditPage)
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

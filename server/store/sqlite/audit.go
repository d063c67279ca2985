package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
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
		args, err := auditArgs(&r)
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
	a, err := u63(after, "seq")
	if err != nil {
		return nil, err
	}
	return s.queryAudit(ctx, `SELECT `+auditCols+` FROM audit WHERE identity_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		identityID, a, limit)
}

// AuditRecords implements store.AuditLog.
func (s *Store) AuditRecords(ctx context.Context, from uint64) iter.Seq2[store.AuditRecord, error] {
	return func(yield func(store.AuditRecord, error) bool) {
		next, err := u63(from, "seq")
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

// auditArgs returns the values of the columns auditCols for r, in order.
func auditArgs(r *store.AuditRecord) ([]any, error) {
	seq, err := u63(r.Seq, "audit seq")
	if err != nil {
		return nil, err
	}
	at, err := tm(r.At)
	if err != nil {
		return nil, err
	}
	ph, h, body := r.PrevHash, r.Hash, r.Body
	if ph == nil {
		ph = []byte{} // a genesis without a value; NULL is refused
	}
	if h == nil {
		h = []byte{}
	}
	if body == nil {
		body = []byte{}
	}
	return []any{seq, at, string(r.Type), r.IdentityID, r.AuthenticatorID, ph, h, body}, nil
}

func scanAudit(sc scanner) (store.AuditRecord, error) {
	var (
		r    store.AuditRecord
		seq  int64
		at   sql.NullInt64
		typ  string
		body []byte
	)
	if err := sc.Scan(&seq, &at, &typ, &r.IdentityID, &r.AuthenticatorID, &r.PrevHash, &r.Hash, &body); err != nil {
		return store.AuditRecord{}, err
	}
	var err error
	if r.Seq, err = fromI64(seq, "audit seq"); err != nil {
		return store.AuditRecord{}, err
	}
	// An empty BLOB reads back as nil; the columns are NOT NULL.
	if r.PrevHash == nil {
		r.PrevHash = []byte{}
	}
	if r.Hash == nil {
		r.Hash = []byte{}
	}
	if body == nil {
		body = []byte{}
	}
	r.At = fromNanos(at)
	r.Type = domain.EventType(typ)
	r.Body = body
	return r, nil
}

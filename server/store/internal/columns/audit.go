package columns

import (
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// AuditArgs returns the values of the audit columns (seq, at, event_type,
// identity_id, authenticator_id, prev_hash, hash, body) for r, in order.
// The byte columns are NOT NULL: nil is stored as empty. It returns an
// error wrapping store.ErrInvalid for a value out of range.
func (c Codec) AuditArgs(r *store.AuditRecord) ([]any, error) {
	seq, err := c.U63(r.Seq, "audit seq")
	if err != nil {
		return nil, err
	}
	at, err := c.Time(r.At)
	if err != nil {
		return nil, err
	}
	return []any{seq, at, string(r.Type), r.IdentityID, r.AuthenticatorID, NonNil(r.PrevHash), NonNil(r.Hash), NonNil(r.Body)}, nil
}

// AuditRow receives an audit row, in the column order of AuditArgs.
type AuditRow struct {
	R    store.AuditRecord
	Seq  int64
	At   *int64
	Type string
	Body []byte
}

// Dest returns the scan destinations of r, in column order.
func (r *AuditRow) Dest() []any {
	return []any{&r.Seq, &r.At, &r.Type, &r.R.IdentityID, &r.R.AuthenticatorID, &r.R.PrevHash, &r.R.Hash, &r.Body}
}

// Audit decodes a scanned row. An empty byte column decodes as an empty,
// non-nil slice. It returns an error wrapping store.ErrInvalid for a
// negative seq.
func (c Codec) Audit(r *AuditRow) (store.AuditRecord, error) {
	out := r.R
	var err error
	if out.Seq, err = c.FromI64(r.Seq, "audit seq"); err != nil {
		return store.AuditRecord{}, err
	}
	out.PrevHash, out.Hash = NonNil(out.PrevHash), NonNil(out.Hash)
	out.At = FromNanos(r.At)
	out.Type = domain.EventType(r.Type)
	out.Body = NonNil(r.Body)
	return out, nil
}

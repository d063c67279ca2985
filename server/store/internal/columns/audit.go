package columns

import (
	"slices"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// AuditArgs returns the values of the audit columns (seq, at, event_type,
// identity_id, authenticator_id, prev_hash, hash, body) for r, in order.
// The byte columns are NOT NULL: nil is stored as empty. It returns an
// error wrapping store.ErrInvalid for a value out of range.
func (c Codec) AuditArgs(r *store.AuditRecord) ([]any, error) {
	return c.AppendAuditArgs(make([]any, 0, 8), r)
}

// AppendAuditArgs appends the values AuditArgs returns to args. On an
// error it returns args as they were.
func (c Codec) AppendAuditArgs(args []any, r *store.AuditRecord) ([]any, error) {
	seq, err := c.U63(r.Seq, "audit seq")
	if err != nil {
		return args, err
	}
	at, err := c.Time(r.At)
	if err != nil {
		return args, err
	}
	return append(args, seq, at, string(r.Type), r.IdentityID, r.AuthenticatorID, NonNil(r.PrevHash), NonNil(r.Hash), NonNil(r.Body)), nil
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

// CheckpointCols are the columns of audit_checkpoints, in the order of
// CheckpointArgs and CheckpointRow.
const CheckpointCols = `seq, at, key_id, body, mac`

// CheckpointArgs returns the column values of c, in CheckpointCols order.
// It returns an error wrapping store.ErrInvalid when c cannot be stored.
func (c Codec) CheckpointArgs(cp *store.AuditCheckpoint) ([]any, error) {
	if err := cp.Check(); err != nil {
		return nil, err
	}
	at, err := c.Time(cp.At)
	if err != nil {
		return nil, err
	}
	return []any{int64(cp.Seq), at, cp.KeyID, cp.Body, cp.MAC}, nil
}

// CheckpointRow receives an audit_checkpoints row, in CheckpointCols
// order.
type CheckpointRow struct {
	R   store.AuditCheckpoint
	Seq int64
	At  *int64
}

// Dest returns the scan destinations of r, in column order.
func (r *CheckpointRow) Dest() []any { return []any{&r.Seq, &r.At, &r.R.KeyID, &r.R.Body, &r.R.MAC} }

// Checkpoint decodes a scanned row. It returns an error wrapping
// store.ErrInvalid for a negative seq.
func (c Codec) Checkpoint(r *CheckpointRow) (store.AuditCheckpoint, error) {
	out := r.R
	var err error
	if out.Seq, err = c.FromI64(r.Seq, "audit checkpoint seq"); err != nil {
		return store.AuditCheckpoint{}, err
	}
	out.At = FromNanos(r.At)
	return out, nil
}

// AuditChains returns the chains events append to (their identity IDs),
// each once, in byte order: the order in which a store reads, locks and
// moves their heads.
//
// ids must be empty; its room is used (a caller's buffer saves an
// allocation).
func AuditChains(ids []string, events []domain.Event) []string {
	for _, e := range events {
		ids = append(ids, e.IdentityID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

package service

import (
	"bytes"
	"context"
	"fmt"

	"github.com/authbench/authbench/server/audit"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// AuditPage is one page of an identity's audit log.
type AuditPage struct {
	Events []EventView `json:"events"`
	// Next is the Seq to pass as after for the next page; nil when this
	// page was the last.
	Next *uint64 `json:"next,omitempty"`
}

// ListAudit returns up to limit audit events about identity identityID
// with Seq above after (support, or a session of identityID). limit <= 0
// means 100; at most 1000. It returns an error wrapping ErrForbidden,
// ErrInvalid, ErrNotFound, or the store's error.
func (s *Service) ListAudit(ctx context.Context, by domain.Actor, identityID string, after uint64, limit int) (AuditPage, error) {
	if err := authorize(by, identityID, false); err != nil {
		return AuditPage{}, err
	}
	switch {
	case limit <= 0:
		limit = 100
	case limit > maxAuditLimit:
		return AuditPage{}, invalid("limit is at most %d", maxAuditLimit)
	}
	if after > 1<<63-1 {
		return AuditPage{}, invalid("after is out of range")
	}
	if _, err := s.st.Identity(ctx, identityID); err != nil {
		return AuditPage{}, storeErr(err, "identity "+identityID)
	}
	recs, err := s.st.ListAudit(ctx, identityID, after, limit)
	if err != nil {
		return AuditPage{}, storeErr(err, "audit of "+identityID)
	}
	p := AuditPage{Events: make([]EventView, 0, len(recs))}
	for i := range recs {
		v, err := viewEvent(&recs[i])
		if err != nil {
			return AuditPage{}, err
		}
		p.Events = append(p.Events, v)
	}
	if len(recs) == limit {
		next := recs[len(recs)-1].Seq
		p.Next = &next
	}
	return p, nil
}

// AuditVerification is the result of VerifyAudit.
type AuditVerification struct {
	OK      bool        `json:"ok"`
	Records int         `json:"records"`
	Break   *AuditBreak `json:"break,omitempty"`
}

// AuditBreak says where the chain breaks first.
type AuditBreak struct {
	Seq     uint64 `json:"seq"`
	Problem string `json:"problem"`
}

// VerifyAudit checks the whole audit hash chain from its first record
// (support only; DESIGN §5): every record's body must parse, repeat the
// indexed columns the store keeps, follow the previous record and hash to
// its hash. Records is the number checked before the first break (or all
// of them). It returns an error wrapping ErrForbidden, or the store's
// error.
func (s *Service) VerifyAudit(ctx context.Context, by domain.Actor) (AuditVerification, error) {
	if err := authorize(by, "", true); err != nil {
		return AuditVerification{}, err
	}
	return VerifyAuditLog(ctx, s.st)
}

// VerifyAuditLog walks the whole audit log of st from the first record and
// checks the hash chain and that each stored record's columns agree with
// its body. It reports the first break, or OK with the number of records; it
// returns an error only when the log cannot be read. It needs no actor: the
// `authbench audit verify` command runs it on a database file directly.
func VerifyAuditLog(ctx context.Context, st store.AuditLog) (AuditVerification, error) {
	var c audit.Checker
	n := 0
	for r, err := range st.AuditRecords(ctx, 1) {
		if err != nil {
			return AuditVerification{}, storeErr(err, "audit record")
		}
		if p := recordProblem(&r); p != "" {
			return AuditVerification{Records: n, Break: &AuditBreak{Seq: r.Seq, Problem: p}}, nil
		}
		rec, _ := audit.ParseRecord(r.Body) // checked by recordProblem
		if b := c.Check(*rec); b != nil {
			return AuditVerification{Records: n, Break: &AuditBreak{Seq: r.Seq, Problem: b.Error()}}, nil
		}
		n++
	}
	return AuditVerification{OK: true, Records: n}, nil
}

// recordProblem compares the columns of a stored record with its body.
func recordProblem(r *store.AuditRecord) string {
	rec, err := audit.ParseRecord(r.Body)
	if err != nil {
		return fmt.Sprintf("record %d: the body is not an audit record", r.Seq)
	}
	switch {
	case rec.Seq != r.Seq:
		return fmt.Sprintf("record %d: the body says seq %d", r.Seq, rec.Seq)
	case !bytes.Equal(rec.Hash[:], r.Hash) || !bytes.Equal(rec.PrevHash[:], r.PrevHash):
		return fmt.Sprintf("record %d: the stored hashes differ from the body's", r.Seq)
	case rec.IdentityID != r.IdentityID || rec.AuthenticatorID != r.AuthenticatorID || rec.Type != r.Type:
		return fmt.Sprintf("record %d: the indexed columns differ from the body", r.Seq)
	}
	return ""
}

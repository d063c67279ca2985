package service

import (
	"context"
	"time"

	"github.com/authbench/authbench/server/audit"
	"github.com/authbench/authbench/server/domain"
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
	OK          bool `json:"ok"`
	Records     int  `json:"records"`     // records read
	Chains      int  `json:"chains"`      // chains read (identities, and events of no identity)
	Legacy      int  `json:"legacy"`      // version 1 records, from before per-identity chains
	Checkpoints int  `json:"checkpoints"` // checkpoints read
	// LastCheckpoint is the newest checkpoint; nil when there is none.
	LastCheckpoint *audit.CheckpointInfo `json:"last_checkpoint,omitempty"`
	// Unsealed counts the records no checkpoint seals yet: the window in
	// which records can be cut or rewritten without notice.
	Unsealed int `json:"unsealed"`
	// Break is the first problem, Problems all of them (at most
	// audit.MaxProblems; More counts those left out).
	Break    *AuditBreak  `json:"break,omitempty"`
	Problems []AuditBreak `json:"problems,omitempty"`
	More     int          `json:"more,omitempty"`
}

// AuditBreak is one problem VerifyAudit found: what (Kind, Problem) and
// where (record Seq of the chain of IdentityID, or of the version 1 chain
// when Legacy; Checkpoint).
type AuditBreak = audit.Problem

// VerifyAudit checks the whole audit log (support only; DESIGN §5) as
// VerifyAuditLog does, with the server's keyring. It returns an error
// wrapping ErrForbidden, or the store's error.
func (s *Service) VerifyAudit(ctx context.Context, by domain.Actor) (AuditVerification, error) {
	if err := authorize(by, "", true); err != nil {
		return AuditVerification{}, err
	}
	return VerifyAuditLog(ctx, s.st, s.keys)
}

// VerifyAuditLog checks the audit log of st with audit.VerifyLog: every
// identity's chain from its first record, the checkpoints (their numbers,
// links and MACs under keys), and that every record a checkpoint sealed is
// still there unchanged, so that deleted newest records and a re-chained
// history are found. It returns an error only when the log cannot be read.
// It needs no actor: the `authbench audit verify` command runs it on a
// database directly, with the master key.
func VerifyAuditLog(ctx context.Context, st audit.Log, keys audit.Keyring) (AuditVerification, error) {
	rep, err := audit.VerifyLog(ctx, st, keys)
	if err != nil {
		return AuditVerification{}, err
	}
	v := AuditVerification{OK: rep.OK(), Records: rep.Records, Chains: rep.Chains, Legacy: rep.Legacy,
		Checkpoints: rep.Checkpoints, LastCheckpoint: rep.Newest, Unsealed: rep.Unsealed, Problems: rep.Problems, More: rep.More}
	if len(rep.Problems) > 0 {
		v.Break = &rep.Problems[0]
	}
	return v, nil
}

// SealAudit writes a checkpoint of the audit chains' heads when a chain
// moved since the newest one (audit.Sealer), and returns it (nil when
// there was nothing to seal, or another replica wrote one less than
// minAge ago). The server calls it periodically and at shutdown. It
// returns the error of the store or the keyring.
func (s *Service) SealAudit(ctx context.Context, minAge time.Duration) (*audit.Checkpoint, error) {
	return s.sealer.Seal(ctx, minAge)
}

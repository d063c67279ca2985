package service

import (
	"fmt"

	"github.com/authbench/authbench/server/audit"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// Chain links audit events into the hash chain of server/audit: each
// record's Body is audit.Record's stored form (PrevHash | Canonical |
// Hash), which VerifyAudit and ListAudit read back. Open the store with it
// (sqlite.Options.Chain).
type Chain struct{}

var _ store.Chainer = Chain{}

// Link implements store.Chainer with audit.Next. It returns an error when
// prev's hash is not 32 bytes.
func (Chain) Link(prev *store.AuditRecord, e domain.Event) (store.AuditRecord, error) {
	var p *audit.Record
	seq := uint64(1)
	if prev != nil {
		p = &audit.Record{Seq: prev.Seq}
		if len(prev.Hash) != len(p.Hash) {
			return store.AuditRecord{}, fmt.Errorf("service: audit record %d has a hash of %d bytes", prev.Seq, len(prev.Hash))
		}
		copy(p.Hash[:], prev.Hash)
		seq = prev.Seq + 1
	}
	r := audit.Next(p, e, seq)
	body, _ := r.MarshalBinary() // never fails
	return store.AuditRecord{Seq: r.Seq, PrevHash: append([]byte(nil), r.PrevHash[:]...), Hash: append([]byte(nil), r.Hash[:]...), Body: body}, nil
}

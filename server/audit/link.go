package audit

import (
	"bytes"
	"fmt"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// Chain is the store.Chainer of the server: it links each event into the
// chain of its identity with Next, and each record's Body is the Record's
// stored form (PrevHash | Canonical | Hash), which FromStore reads back.
// Open the stores with it (sqlite.Options.Chain, postgres.Options.Chain).
type Chain struct{}

var _ store.Chainer = Chain{}

// Link implements store.Chainer with Next. It returns an error when prev's
// hash is not 32 bytes.
func (Chain) Link(prev *store.AuditRecord, e domain.Event) (store.AuditRecord, error) {
	var p *Record
	seq := uint64(1)
	if prev != nil {
		p = &Record{Seq: prev.Seq}
		if len(prev.Hash) != len(p.Hash) {
			return store.AuditRecord{}, fmt.Errorf("audit: the head of the chain of %s (record %d) has a hash of %d bytes", ChainName(prev.IdentityID), prev.Seq, len(prev.Hash))
		}
		copy(p.Hash[:], prev.Hash)
		seq = prev.Seq + 1
	}
	r, body := nextBody(p, &e, seq)
	// Both hashes in one array, each slice capped.
	hs := make([]byte, 2*len(r.Hash))
	copy(hs, r.PrevHash[:])
	copy(hs[len(r.Hash):], r.Hash[:])
	return store.AuditRecord{Seq: r.Seq, PrevHash: hs[:len(r.Hash):len(r.Hash)], Hash: hs[len(r.Hash):], Body: body}, nil
}

// FromStore reads the Record in the Body of a stored record and checks
// that the columns the store indexes (Seq, hashes, identity, authenticator,
// type) repeat it. It returns an error wrapping ErrMalformed that says
// what differs.
func FromStore(r *store.AuditRecord) (*Record, error) {
	rec, err := ParseRecord(r.Body)
	if err != nil {
		return nil, fmt.Errorf("audit: record %d: the body is not an audit record: %w", r.Seq, err)
	}
	bad := func(what string) (*Record, error) {
		return nil, fmt.Errorf("audit: %w: record %d: %s", ErrMalformed, r.Seq, what)
	}
	switch {
	case rec.Seq != r.Seq:
		return bad(fmt.Sprintf("the body says seq %d", rec.Seq))
	case !bytes.Equal(rec.Hash[:], r.Hash) || !bytes.Equal(rec.PrevHash[:], r.PrevHash):
		return bad("the stored hashes differ from the body's")
	case rec.IdentityID != r.IdentityID || rec.AuthenticatorID != r.AuthenticatorID || rec.Type != r.Type:
		return bad("the indexed columns differ from the body")
	}
	return rec, nil
}

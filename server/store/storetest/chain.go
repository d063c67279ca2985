package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// FailReason, as the Reason of an event, makes Chain refuse to link it:
// the suite uses it to make a write fail half-way and check that nothing
// of it was stored.
const FailReason = "storetest: injected failure"

// ErrInjected is the error Chain returns for an event with FailReason.
var ErrInjected = errors.New("storetest: injected audit failure")

// Chain is a simple store.Chainer for tests: Body is the event as JSON,
// Hash is SHA-256(PrevHash || Seq as 8 bytes big-endian || Body), and the
// first record's PrevHash is 32 zero bytes. It is not server/audit's
// canonical form; the suite needs every store under test to use Chain so
// that it can verify the hashes.
type Chain struct{}

var _ store.Chainer = Chain{}

// Link implements store.Chainer. It returns ErrInjected for an event whose
// Reason is FailReason, or the error of encoding the event.
func (Chain) Link(prev *store.AuditRecord, e domain.Event) (store.AuditRecord, error) {
	if e.Reason == FailReason {
		return store.AuditRecord{}, ErrInjected
	}
	body, err := json.Marshal(e)
	if err != nil {
		return store.AuditRecord{}, fmt.Errorf("storetest: encode event: %w", err)
	}
	seq, ph := uint64(1), make([]byte, sha256.Size)
	if prev != nil {
		seq, ph = prev.Seq+1, bytes.Clone(prev.Hash)
	}
	return store.AuditRecord{Seq: seq, PrevHash: ph, Hash: chainHash(ph, seq, body), Body: body}, nil
}

func chainHash(prev []byte, seq uint64, body []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	h.Write(b[:])
	h.Write(body)
	return h.Sum(nil)
}

// VerifyChain checks that records are the whole log as Chain builds it: Seq
// 1, 2, 3, ... without gaps, each PrevHash the previous Hash (32 zero bytes
// first), each Hash right for its Body, and each Body the JSON of an event
// whose type, identity, authenticator and time match the record. It
// returns the first problem found.
func VerifyChain(records []store.AuditRecord) error {
	prev := make([]byte, sha256.Size)
	for i, r := range records {
		switch {
		case r.Seq != uint64(i+1):
			return fmt.Errorf("record %d: seq %d, want %d (gap or reordering)", i, r.Seq, i+1)
		case !bytes.Equal(r.PrevHash, prev):
			return fmt.Errorf("record %d: prev_hash does not match the hash of record %d", r.Seq, r.Seq-1)
		case !bytes.Equal(r.Hash, chainHash(r.PrevHash, r.Seq, r.Body)):
			return fmt.Errorf("record %d: hash mismatch: contents altered", r.Seq)
		}
		var e domain.Event
		if err := json.Unmarshal(r.Body, &e); err != nil {
			return fmt.Errorf("record %d: body: %v", r.Seq, err)
		}
		if e.Type != r.Type || e.IdentityID != r.IdentityID || e.AuthenticatorID != r.AuthenticatorID || !e.At.Equal(r.At) {
			return fmt.Errorf("record %d: index fields %s/%s/%s/%v do not match the body's event %s/%s/%s/%v", r.Seq,
				r.Type, r.IdentityID, r.AuthenticatorID, r.At, e.Type, e.IdentityID, e.AuthenticatorID, e.At)
		}
		prev = r.Hash
	}
	return nil
}

package storetest

import (
	"errors"
	"fmt"
	"time"

	"github.com/authbench/authbench/server/audit"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// FailReason, as the Reason of an event, makes Chain refuse to link it:
// the suite uses it to make a write fail half-way and check that nothing
// of it was stored.
const FailReason = "storetest: injected failure"

// ErrInjected is the error Chain returns for an event with FailReason.
var ErrInjected = errors.New("storetest: injected audit failure")

// Chain is the server's chainer (server/audit.Chain: one hash chain per
// identity) that refuses events with FailReason. The suite needs every
// store under test to use it, so that it can verify the chains and seal
// and check them with server/audit.
type Chain struct{}

var _ store.Chainer = Chain{}

// Link implements store.Chainer. It returns ErrInjected for an event whose
// Reason is FailReason, or the error of audit.Chain.
func (Chain) Link(prev *store.AuditRecord, e domain.Event) (store.AuditRecord, error) {
	if e.Reason == FailReason {
		return store.AuditRecord{}, ErrInjected
	}
	return audit.Chain{}.Link(prev, e)
}

// VerifyChain checks that records are whole chains as AuditRecords yields
// them: the records of each identity together, in Seq order from 1
// without gaps, each PrevHash the previous Hash (32 zero bytes first), each
// Hash right for its Body (audit.Checker), and each Body the event its
// index fields (type, identity, authenticator, time to the microsecond)
// say. It returns the first problem found.
func VerifyChain(records []store.AuditRecord) error {
	seen := map[string]bool{}
	var c *audit.Checker
	for i, r := range records {
		if i == 0 || r.IdentityID != records[i-1].IdentityID {
			if seen[r.IdentityID] {
				return fmt.Errorf("the records of %s are not together", audit.ChainName(r.IdentityID))
			}
			seen[r.IdentityID] = true
			c = new(audit.Checker)
		}
		rec, err := audit.FromStore(&r)
		if err != nil {
			return err
		}
		if !rec.Time.Equal(r.At.Truncate(time.Microsecond)) {
			return fmt.Errorf("chain of %s, record %d: time %v, the body says %v", audit.ChainName(r.IdentityID), r.Seq, r.At, rec.Time)
		}
		if b := c.Check(*rec); b != nil {
			return b
		}
	}
	return nil
}

package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// ChipOwner is one identity whose chip goes through the writes of the
// server's chip lifecycle (enroll, block, re-add) as the service makes
// them, for the tests and benchmarks that count or time what those writes
// cost a store: Enroll is the CreateRegistered of an activation (a new
// authenticator, active, with its element, its ceremony marked spent, two
// audit events), Block the ApplyChange of a permanent block (the record
// blocked, the element wiped, a tombstone, one event).
type ChipOwner struct {
	S        store.Store
	Identity domain.Identity
	// Chip is the identity's chip as the last write left it.
	Chip domain.Authenticator
	// Version is the version of the identity's authenticator set.
	Version uint64
	n       int
}

var lifecycleActor = domain.Support("op-lifecycle")

// NewChipOwner creates identity id with an active password, as an
// enrolled person has.
func NewChipOwner(ctx context.Context, s store.Store, id string, now time.Time) (*ChipOwner, error) {
	ic, err := domain.NewIdentity(id, domain.System("storetest"), now)
	if err != nil {
		return nil, err
	}
	pw := domain.Authenticator{ID: "pw-" + id, IdentityID: id, Kind: device.KindPassword, State: domain.StateActive,
		CreatedAt: now, ActivatedAt: now, Version: 1}
	if err := s.CreateIdentity(ctx, ic, store.NewAuthenticator{Change: domain.Change{Authenticator: pw}, Element: ElementFor(device.KindPassword, pw.ID)}); err != nil {
		return nil, err
	}
	return &ChipOwner{S: s, Identity: ic.Identity, Version: 1}, nil
}

// Enroll stores a new active chip of the identity with a credential of its
// own, as an activation (and a re-add) does: CreateRegistered at the set's
// version, its ceremony spent.
func (o *ChipOwner) Enroll(ctx context.Context, now time.Time) error {
	o.n++
	aid := fmt.Sprintf("chip-%s-%d", o.Identity.ID, o.n)
	p := domain.DefaultPolicy()
	var existing []domain.Authenticator
	if o.Chip.ID != "" {
		existing = append(existing, o.Chip)
	}
	add, err := p.Add(o.Identity, existing, nil, domain.AddRequest{ID: aid, Kind: device.KindChip,
		Ref: domain.Ref{CredentialID: "cred-" + aid}, Label: "chip"}, lifecycleActor, now)
	if err != nil {
		return err
	}
	act, err := p.Activate(o.Identity, add.Authenticator, lifecycleActor, now)
	if err != nil {
		return err
	}
	c := domain.Change{Authenticator: act.Authenticator, Events: append(add.Events, act.Events...)}
	// The mark of a spent ceremony: a hash of the token, as the service's.
	h := sha256.Sum256([]byte("registration-" + aid))
	spent := store.Ceremony{Key: "spent:" + hex.EncodeToString(h[:]), IdentityID: o.Identity.ID, ExpiresAt: now.Add(5 * time.Minute)}
	if err := o.S.CreateRegistered(ctx, c, ElementFor(device.KindChip, aid), o.Version, spent); err != nil {
		return err
	}
	o.Chip = c.Authenticator
	o.Version++
	return nil
}

// Block blocks the identity's chip for good (lost), as the owner's block
// does.
func (o *ChipOwner) Block(ctx context.Context, now time.Time) error {
	c, err := domain.DefaultPolicy().Block(o.Chip, lifecycleActor, domain.ReasonLost, now)
	if err != nil {
		return err
	}
	if err := o.S.ApplyChange(ctx, c); err != nil {
		return err
	}
	o.Chip = c.Authenticator
	return nil
}

// WarmChipOwner creates identity id as NewChipOwner does, and identity
// warm, whose chip then goes through a whole lifecycle (enroll, block,
// re-add): id's lifecycle, measured afterwards, prepares no statement and
// changes no page of the database for the first time.
func WarmChipOwner(ctx context.Context, s store.Store, id, warm string, now time.Time) (*ChipOwner, error) {
	o, err := NewChipOwner(ctx, s, id, now)
	if err != nil {
		return nil, err
	}
	w, err := NewChipOwner(ctx, s, warm, now)
	if err != nil {
		return nil, err
	}
	for _, step := range []func(context.Context, time.Time) error{w.Enroll, w.Block, w.Enroll} {
		if err := step(ctx, now); err != nil {
			return nil, err
		}
	}
	return o, nil
}

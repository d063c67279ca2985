package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// chipKind is the MitID chip: a FIDO U2F/CTAP2 security key. Adding it
// starts a WebAuthn registration (Level 3 §7.1); the authenticator is
// stored, active, once the attestation verifies, because the credential ID
// that identifies it exists only then. It logs in as the second factor of
// a password login, with an assertion (§7.2) whose signature counter must
// increase. The WebAuthn verification itself is in webauthn.go.
type chipKind struct{ s *Service }

var _ kind = (*chipKind)(nil)

// add checks that a chip may be added and starts its registration.
func (k *chipKind) add(ctx context.Context, by domain.Actor, set *store.AuthenticatorSet, aid string, req AddRequest) (AddResult, error) {
	s := k.s
	id := &set.Identity
	// The credential ID is not known yet; a placeholder lets the domain
	// check the actor, the identity's state and the quota now. activate
	// checks again with the real credential.
	c, err := s.addChange(ctx, set, newAuth{id: aid, kind: device.KindChip, ref: domain.Ref{CredentialID: "pending:" + aid}, label: req.Label}, by)
	if err != nil {
		return AddResult{}, err
	}
	challenge, err := s.random(challengeLen)
	if err != nil {
		return AddResult{}, err
	}
	key, err := s.sealRegistration(id.ID, &registrationCeremony{AuthenticatorID: aid, Label: req.Label, Challenge: challenge})
	if err != nil {
		return AddResult{}, err
	}
	opts := s.creationOptions(id.ID, challenge, set.Authenticators)
	pending := c.Authenticator
	pending.CredentialID = ""
	return AddResult{
		Authenticator: viewAuthenticator(&pending, nil),
		Activation:    ChipActivation{Ceremony: key, PublicKey: opts},
	}, nil
}

// activate verifies the chip's registration and stores it, active.
func (k *chipKind) activate(ctx context.Context, by domain.Actor, set *store.AuthenticatorSet, a *domain.Authenticator, aid string, req ActivateRequest) (AuthenticatorView, error) {
	s := k.s
	id := &set.Identity
	if a != nil {
		if req.Code != "" || req.Signature != "" {
			return AuthenticatorView{}, invalid("a chip is not activated with a code or a signature")
		}
		return s.activateWith(ctx, by, *id, *a)
	}
	if req.Code != "" || req.Signature != "" {
		return AuthenticatorView{}, invalid("a chip is activated with a ceremony and a credential")
	}
	d, spent, err := s.openRegistration(req.Ceremony, id.ID, aid)
	if err != nil {
		return AuthenticatorView{}, err
	}
	reg, err := s.verifyRegistration(req.Credential, d.Challenge)
	if err != nil {
		s.log.InfoContext(ctx, "chip registration refused", "identity", id.ID, "authenticator", aid, "err", err)
		// The token is spent all the same: it cannot be tried again.
		if serr := s.putSpent(ctx, spent, "registration ceremony"); serr != nil {
			return AuthenticatorView{}, serr
		}
		return AuthenticatorView{}, err
	}
	format := reg.Format
	if !reg.Trusted {
		format += untrustedSuffix
	}
	el := store.Element{Chip: &store.ChipElement{
		PublicKey:         reg.PublicKey,
		AAGUID:            reg.AAGUID[:],
		SignCount:         reg.SignCount,
		AttestationFormat: format,
		BackupEligible:    reg.BackupEligible,
		BackupState:       reg.BackupState,
	}}
	// A chip is told apart by its credential ID, which the store keeps
	// unique forever. A serial number in the attestation certificate is
	// not used: by default a certificate is a batch certificate shared by
	// every chip of a model (FIDO's privacy rules), so it names no chip.
	ref := domain.Ref{CredentialID: domain.EncodeCredentialID(reg.CredentialID)}
	n, err := s.createActive(ctx, set, aid, device.KindChip, ref, d.Label, by, el, &spent)
	if err != nil {
		return AuthenticatorView{}, err
	}
	// Stored as it is here: nothing to read back.
	return viewAuthenticator(&n, &el), nil
}

// check verifies the assertion of a login with chip a; the signature
// counter is advanced when the success is written (the chip guard).
func (k *chipKind) check(ctx context.Context, a *domain.Authenticator, c *loginCeremony, p *proof, reserve func() error) (verdict, error) {
	s := k.s
	if p.credential == nil {
		return verdict{}, invalid("credential is missing")
	}
	el, err := s.elementOf(ctx, a, p)
	if err != nil || el.Chip == nil || len(el.Chip.PublicKey) == 0 {
		return verdict{}, storeErr(errOr(err, store.ErrNotFound), "the credential of chip "+a.ID)
	}
	if id := p.credential.RawID; id != "" && id != a.CredentialID {
		// A credential of this chip that was blocked for good: say so
		// rather than "not this authenticator's".
		ts, err := s.st.FindTombstones(ctx, domain.Ref{CredentialID: id})
		if err != nil {
			return verdict{}, storeErr(err, "tombstones")
		}
		for _, t := range ts {
			if t.IdentityID == a.IdentityID {
				return verdict{}, fmt.Errorf("service: %w: blocked on %s; log in with the chip's new credential",
					domain.ErrCredentialRevoked, t.BlockedAt.UTC().Format("2006-01-02"))
			}
		}
	}
	if err := reserve(); err != nil {
		return verdict{}, err
	}
	s.checked(device.KindChip)
	as, err := s.verifyAssertion(p.credential, c.Challenge, a.CredentialID, el.Chip.PublicKey, el.Chip.BackupEligible)
	var fail *errAssertion
	if errors.As(err, &fail) {
		// The challenge is spent: the token cannot be tried again.
		if err := s.spend(ctx, a.IdentityID, c); err != nil {
			return verdict{}, err
		}
		return failed(domain.CauseBadSignature, fail.check), nil
	}
	if err != nil {
		return verdict{}, err
	}
	return verdict{chip: &store.ChipGuard{Count: as.SignCount}, el: el}, nil
}

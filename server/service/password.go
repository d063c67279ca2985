package service

import (
	"context"
	"fmt"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store"
)

// passwordKind is the MitID password: an argon2id verifier (RFC 9106,
// server/secrets). It is active as soon as it is added, and it is the
// first factor of the password login.
type passwordKind struct{ s *Service }

var _ kind = (*passwordKind)(nil)

// add adds an active password. The lifecycle rules (the identity's state,
// the quota of one password) are checked before the password is hashed,
// so a refused request costs no argon2id work.
func (k *passwordKind) add(ctx context.Context, by domain.Actor, set *store.AuthenticatorSet, aid string, req AddRequest) (AddResult, error) {
	s := k.s
	// The text is checked (NFC, valid UTF-8, length) before anything else;
	// it is hashed only once the add is allowed.
	if _, err := secrets.NormalizePassword(req.Password); err != nil {
		return AddResult{}, passwordErr(err)
	}
	n := newAuth{id: aid, kind: device.KindPassword, label: req.Label, activate: true}
	c, err := s.addChange(ctx, set, n, by)
	if err != nil {
		return AddResult{}, err
	}
	verifier, err := s.hasher.Hash(req.Password)
	if err != nil {
		return AddResult{}, passwordErr(err)
	}
	if c, err = s.create(ctx, set, n, c, store.Element{Password: &store.PasswordElement{Verifier: verifier}}, by); err != nil {
		return AddResult{}, err
	}
	v, err := s.view(ctx, &c.Authenticator)
	if err != nil {
		return AddResult{}, err
	}
	return AddResult{Authenticator: v, Activation: struct{}{}}, nil
}

// activate has nothing to do: a password is active from the start.
func (k *passwordKind) activate(ctx context.Context, by domain.Actor, set *store.AuthenticatorSet, a *domain.Authenticator, aid string, req ActivateRequest) (AuthenticatorView, error) {
	if req.Ceremony != "" || req.Credential != nil || req.Code != "" || req.Signature != "" {
		return AuthenticatorView{}, invalid("a password is active from the start; there is nothing to activate it with")
	}
	return k.s.activateWith(ctx, by, set.Identity, *a)
}

// check verifies a password against the argon2id verifier.
func (k *passwordKind) check(ctx context.Context, a *domain.Authenticator, _ *loginCeremony, p *proof, reserve func() error) (verdict, error) {
	s := k.s
	if p.password == "" {
		return verdict{}, invalid("password is missing")
	}
	// Text the server would never hash (not UTF-8, too long) is refused
	// before an attempt is reserved: it is no guess and counts nothing.
	if _, err := secrets.NormalizePassword(p.password); err != nil {
		return verdict{}, passwordErr(err)
	}
	if err := reserve(); err != nil {
		return verdict{}, err
	}
	el, err := s.elementOf(ctx, a, p)
	if err != nil || el.Password == nil || el.Password.Verifier == "" {
		return verdict{}, storeErr(errOr(err, store.ErrNotFound), "the verifier of password "+a.ID)
	}
	// Verified under the server's own parameters: a verifier made with
	// them needs no rehash (with secrets.VerifyPassword, a server that
	// hashes with other parameters than the defaults rewrote the verifier
	// at every login).
	ok, rehash, err := s.hasher.Verify(el.Password.Verifier, p.password)
	if err != nil {
		return verdict{}, fmt.Errorf("service: the verifier of password %s: %w", a.ID, err)
	}
	// Counted once evaluated: a *BusyError (no room under the argon2id
	// memory budget) evaluated nothing.
	s.checked(device.KindPassword)
	if !ok {
		return failed(domain.CauseWrongPassword, ""), nil
	}
	if rehash {
		s.rehash(ctx, a.ID, el.Password.Verifier, p.password)
	}
	return verdict{el: el}, nil
}

// rehash replaces a verifier made with old parameters; a failure only
// means it is tried again at the next login.
func (s *Service) rehash(ctx context.Context, aid, old, secret string) {
	v, err := s.hasher.Hash(secret)
	if err == nil {
		err = s.st.UpdateVerifier(ctx, aid, old, v)
	}
	if err != nil {
		s.log.DebugContext(ctx, "verifier not rehashed", "authenticator", aid, "err", err)
	}
}

package service

import (
	"context"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// kind is what one kind of authenticator does its own way; everything
// else (authorization, loading, the lifecycle rules, attempts, sessions,
// the store writes) is shared, in authenticator.go and login.go. Each kind
// lives in its own file: password.go, app.go, chip.go, code.go.
type kind interface {
	// add adds an authenticator of this kind, with ID aid, to the
	// identity of set (as read for this request, with its authenticators)
	// for by: it checks req's fields, runs the lifecycle rules
	// (Service.addChange: the identity's state, quotas, revoked serials
	// and credentials) before any costly work such as hashing a PIN or a
	// password, and stores the authenticator, pending or active.
	add(ctx context.Context, by domain.Actor, set *store.AuthenticatorSet, aid string, req AddRequest) (AddResult, error)
	// activate makes authenticator aid of the identity of set active with
	// the proof of possession in req. a is the stored authenticator (of
	// set), nil for a chip, which is stored only once its registration is
	// verified.
	activate(ctx context.Context, by domain.Actor, set *store.AuthenticatorSet, a *domain.Authenticator, aid string, req ActivateRequest) (AuthenticatorView, error)
	// check checks the login proof p against the active authenticator a,
	// for the login ceremony c (nil for the password, which is checked
	// first and needs none). It refuses malformed
	// proofs first, then calls reserve (which reserves the attempt, see
	// Service.prove) right before it evaluates the proof against the
	// secret, and returns the verdict. An error from reserve is returned
	// as it is.
	check(ctx context.Context, a *domain.Authenticator, c *loginCeremony, p *proof, reserve func() error) (verdict, error)
}

// proof is what a login step sent to prove one authenticator; which field
// applies depends on the kind.
type proof struct {
	password   string                  // password
	code       string                  // code device
	pin        string                  // app
	signature  string                  // app
	credential *AuthenticationResponse // chip
	// el is the authenticator's element when the caller read it with the
	// authenticator (elementOf reads it otherwise).
	el *store.Element
}

// elementOf returns the element of a: the one read with it (p.el), or
// read now.
func (s *Service) elementOf(ctx context.Context, a *domain.Authenticator, p *proof) (store.Element, error) {
	if p.el != nil {
		return *p.el, nil
	}
	return s.st.ElementOfKind(ctx, a.ID, a.Kind)
}

// verdict is the outcome of a check: a failed attempt to record, or what
// the success still has to write.
type verdict struct {
	fail *domain.Failure // nil on success
	// The replay guard of a code device or a chip, on success.
	otp  *store.OTPGuard
	chip *store.ChipGuard
	// el is the element as read, for the answer.
	el store.Element
}

// failed returns the verdict of a failed attempt with cause c; check, when
// not empty, names the check that failed.
func failed(c domain.Cause, check string) verdict {
	f := &domain.Failure{Cause: c}
	if check != "" {
		f.Details = map[string]string{"check": check}
	}
	return verdict{fail: f}
}

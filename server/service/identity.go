package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// CreateIdentityRequest is the body of POST /v1/identities.
type CreateIdentityRequest struct {
	// ID is the new identity's ID; empty means a generated one.
	ID string `json:"id,omitempty"`
	// Password, when set, adds an active password authenticator.
	Password string `json:"password,omitempty"`
}

// CreateIdentity creates an identity (support only), with an active
// password authenticator when req.Password is set. It returns the
// identity, or an error wrapping ErrForbidden, ErrInvalid (a malformed ID
// or an unacceptable password), ErrIdentityTaken (the ID is taken),
// or the store's error.
func (s *Service) CreateIdentity(ctx context.Context, by domain.Actor, req CreateIdentityRequest) (IdentityView, error) {
	if err := authorize(by, req.ID, true); err != nil {
		return IdentityView{}, err
	}
	id := req.ID
	if id == "" {
		var err error
		if id, err = s.newID("id"); err != nil {
			return IdentityView{}, err
		}
	}
	if err := CheckID("the identity ID", id); err != nil {
		return IdentityView{}, err
	}
	// A taken ID is refused before the password is hashed.
	if _, err := s.st.Identity(ctx, id); err == nil {
		return IdentityView{}, fmt.Errorf("service: %w: %s", ErrIdentityTaken, id)
	} else if !errors.Is(err, store.ErrNotFound) {
		return IdentityView{}, storeErr(err, "identity "+id)
	}
	var verifier string
	if req.Password != "" {
		v, err := s.hasher.Hash(req.Password)
		if err != nil {
			return IdentityView{}, passwordErr(err)
		}
		verifier = v
	}
	now := s.clock()
	c, err := domain.NewIdentity(id, by, now)
	if err != nil {
		return IdentityView{}, err
	}
	// The password is stored in the transaction that stores the identity:
	// a crash between two writes would leave an identity without its
	// password, and the client's retry would find the ID taken.
	var first []store.NewAuthenticator
	if verifier != "" {
		pw, err := s.firstAuthenticator(ctx, c.Identity, device.KindPassword, by, now)
		if err != nil {
			return IdentityView{}, err
		}
		first = append(first, store.NewAuthenticator{Change: pw,
			Element: store.Element{Password: &store.PasswordElement{Verifier: verifier}}})
	}
	if err := s.st.CreateIdentity(ctx, c, first...); err != nil {
		if errors.Is(err, store.ErrDuplicate) {
			return IdentityView{}, fmt.Errorf("service: %w: %s", ErrIdentityTaken, id)
		}
		return IdentityView{}, storeErr(err, "identity "+id)
	}
	s.logChange(ctx, c.Events)
	v := newIdentityView(&c.Identity, len(first))
	for i := range first {
		s.logChange(ctx, first[i].Change.Events)
		// Stored as they are here: nothing to read back.
		v.Authenticators = append(v.Authenticators, viewAuthenticator(&first[i].Change.Authenticator, &first[i].Element))
	}
	return v, nil
}

// firstAuthenticator returns the change that adds and activates a new
// authenticator of kind kind (without a reference: a password) to the
// identity id that is being created, which has no authenticators yet.
func (s *Service) firstAuthenticator(ctx context.Context, id domain.Identity, kind device.Kind, by domain.Actor, now time.Time) (domain.Change, error) {
	aid, err := s.newID(idPrefix[kind])
	if err != nil {
		return domain.Change{}, err
	}
	c, err := s.policy.Add(id, nil, nil, domain.AddRequest{ID: aid, Kind: kind}, by, now)
	if err != nil {
		s.auditRefusal(ctx, err, by)
		return domain.Change{}, err
	}
	act, err := s.policy.Activate(id, c.Authenticator, by, now)
	if err != nil {
		s.auditRefusal(ctx, err, by)
		return domain.Change{}, err
	}
	return domain.Change{Authenticator: act.Authenticator, Events: append(c.Events, act.Events...)}, nil
}

// Identity returns identity id with its authenticators, to support or to
// a session of id. It returns an error wrapping ErrForbidden or
// ErrNotFound, or the store's error.
func (s *Service) Identity(ctx context.Context, by domain.Actor, id string) (IdentityView, error) {
	if err := authorize(by, id, false); err != nil {
		return IdentityView{}, err
	}
	return s.identityView(ctx, id)
}

func (s *Service) identityView(ctx context.Context, id string) (IdentityView, error) {
	set, err := s.authenticatorSet(ctx, id)
	if err != nil {
		return IdentityView{}, err
	}
	list := set.Authenticators
	v := newIdentityView(&set.Identity, len(list))
	for k := range list {
		av, err := s.view(ctx, &list[k])
		if err != nil {
			return IdentityView{}, err
		}
		v.Authenticators = append(v.Authenticators, av)
	}
	return v, nil
}

// newIdentityView returns the view of i, with room for n authenticators.
func newIdentityView(i *domain.Identity, n int) IdentityView {
	return IdentityView{
		ID:             i.ID,
		State:          string(i.State),
		BlockedReason:  string(i.BlockedReason),
		CreatedAt:      utc(i.CreatedAt),
		Version:        i.Version,
		Authenticators: make([]AuthenticatorView, 0, n),
	}
}

// view loads the element of a and returns the view of both.
func (s *Service) view(ctx context.Context, a *domain.Authenticator) (AuthenticatorView, error) {
	el, err := s.st.ElementOfKind(ctx, a.ID, a.Kind)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return viewAuthenticator(a, nil), nil
	case err != nil:
		return AuthenticatorView{}, storeErr(err, "the element of "+a.ID)
	}
	return viewAuthenticator(a, &el), nil
}

// changedView returns the view of the authenticator of change c, just
// stored. When c wiped its element, the view says so without reading it:
// every stored authenticator has an element but a code device that never
// proved possession, whose element (if any) is read as view does.
func (s *Service) changedView(ctx context.Context, c *domain.Change) (AuthenticatorView, error) {
	a := &c.Authenticator
	if !c.WipeSecret || c.Remove || a.Kind == device.KindCodeDisplay || a.Kind == device.KindAudioCodeReader {
		return s.view(ctx, a)
	}
	return viewAuthenticator(a, &store.Element{WipedAt: s.clock()}), nil
}

// BlockIdentity blocks identity id temporarily on suspected misuse
// (support only; DESIGN §1): no login succeeds until support lifts it. It
// returns an error wrapping ErrForbidden, ErrInvalid, ErrNotFound,
// domain.ErrIdentityBlocked (already blocked), or the store's error.
func (s *Service) BlockIdentity(ctx context.Context, by domain.Actor, id, reason string) (IdentityView, error) {
	if err := authorize(by, id, true); err != nil {
		return IdentityView{}, err
	}
	if reason == "" {
		return IdentityView{}, invalid("a reason is required")
	}
	if err := checkText("the reason", reason, MaxReasonLen); err != nil {
		return IdentityView{}, err
	}
	_, err := s.applyIdentity(ctx, id, by, func(i domain.Identity) (domain.IdentityChange, error) {
		return s.policy.BlockIdentity(i, by, domain.Reason(reason), s.clock())
	})
	if err != nil {
		return IdentityView{}, err
	}
	return s.identityView(ctx, id)
}

// UnblockIdentity lifts the temporary block of identity id (support only).
// It returns an error wrapping ErrForbidden, ErrInvalid, ErrNotFound,
// domain.ErrInvalidTransition (not blocked), or the store's error.
func (s *Service) UnblockIdentity(ctx context.Context, by domain.Actor, id, note string) (IdentityView, error) {
	if err := authorize(by, id, true); err != nil {
		return IdentityView{}, err
	}
	if err := checkText("the note", note, MaxReasonLen); err != nil {
		return IdentityView{}, err
	}
	_, err := s.applyIdentity(ctx, id, by, func(i domain.Identity) (domain.IdentityChange, error) {
		return s.policy.UnblockIdentity(i, by, note, s.clock())
	})
	if err != nil {
		return IdentityView{}, err
	}
	return s.identityView(ctx, id)
}

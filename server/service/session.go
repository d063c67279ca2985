package service

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store"
)

// Sessions (DESIGN §1): a login yields a session that records what proved
// it (the authenticators, the level). Self-service needs a two-factor
// session. A session ends at logout (Logout, EndSession), at expiry, when
// any authenticator that proved it stops being active, and when the
// identity is blocked; the store enforces the last two in the writes that
// change those states and again in the query that finds a session at
// every use, so it holds across replicas.

// SessionView is a session as its owner sees it: never its token.
type SessionView struct {
	ID             string    `json:"id"`
	Level          string    `json:"level"`
	Authenticators []string  `json:"authenticators"`
	CreatedAt      time.Time `json:"created_at"`
	ExpiresAt      time.Time `json:"expires_at"`
	// Current marks the session of the request.
	Current bool `json:"current,omitempty"`
}

// SessionList is the answer to Sessions.
type SessionList struct {
	Sessions []SessionView `json:"sessions"`
}

// EndedSession is the answer to EndSession and Logout.
type EndedSession struct {
	Ended string `json:"ended"`
}

// Authenticate returns the owner actor of the self-service session whose
// bearer token is token: domain.Owner(identity, the authenticators that
// proved it). It returns an error wrapping ErrUnauthorized for an unknown,
// expired or ended session (ended by a logout, the identity's block, or
// the suspension or block of an authenticator that proved it),
// ErrForbidden for a session proven with fewer than two factors, or the
// store's error.
func (s *Service) Authenticate(ctx context.Context, token string) (domain.Actor, error) {
	se, err := s.session(ctx, token)
	if err != nil {
		return domain.Actor{}, err
	}
	if se.Level != store.LevelTwoFactor {
		return domain.Actor{}, fmt.Errorf("service: %w: this session was proven with one factor; self-service needs two (the password and a code device or chip, or the MitID app)", ErrForbidden)
	}
	return domain.Owner(se.IdentityID, se.Authenticators...), nil
}

// session returns the usable session of token.
func (s *Service) session(ctx context.Context, token string) (store.Session, error) {
	// A token of neither form (secrets.TokenKey) names no session: it is
	// refused without a read.
	key, ok := secrets.TokenKey(token)
	if !ok {
		return store.Session{}, fmt.Errorf("service: %w: unknown, expired or ended session", ErrUnauthorized)
	}
	se, err := s.st.Session(ctx, key, s.clock())
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, fmt.Errorf("service: %w: unknown, expired or ended session", ErrUnauthorized)
	}
	if err != nil {
		return store.Session{}, storeErr(err, "session")
	}
	return se, nil
}

// Sessions lists the sessions of identity identityID (support, or a
// session of identityID; token, the caller's bearer token, marks its own
// session Current). It returns an error wrapping ErrForbidden, ErrNotFound,
// or the store's error.
func (s *Service) Sessions(ctx context.Context, by domain.Actor, identityID, token string) (SessionList, error) {
	if err := authorize(by, identityID, false); err != nil {
		return SessionList{}, err
	}
	if _, err := s.st.Identity(ctx, identityID); err != nil {
		return SessionList{}, storeErr(err, "identity "+identityID)
	}
	list, err := s.st.ListSessions(ctx, identityID, s.clock())
	if err != nil {
		return SessionList{}, storeErr(err, "sessions of "+identityID)
	}
	mine, _ := secrets.TokenKey(token)
	out := SessionList{Sessions: make([]SessionView, 0, len(list))}
	for _, se := range list {
		out.Sessions = append(out.Sessions, SessionView{
			ID: se.ID, Level: se.Level, Authenticators: se.Authenticators,
			CreatedAt: utc(se.CreatedAt), ExpiresAt: utc(se.ExpiresAt),
			Current: by.Kind == domain.ActorOwner && subtle.ConstantTimeCompare(se.TokenHash, mine) == 1,
		})
	}
	return out, nil
}

// EndSession ends session sessionID of identity identityID (support, or a
// session of identityID: a person ends a session they left open
// elsewhere). It returns an error wrapping ErrForbidden, ErrInvalid,
// ErrNotFound (no such session of the identity), or the store's error.
func (s *Service) EndSession(ctx context.Context, by domain.Actor, identityID, sessionID string) (EndedSession, error) {
	if err := authorize(by, identityID, false); err != nil {
		return EndedSession{}, err
	}
	if err := CheckID("the session ID", sessionID); err != nil {
		return EndedSession{}, err
	}
	if err := s.st.EndSession(ctx, identityID, sessionID); err != nil {
		return EndedSession{}, storeErr(err, "session "+sessionID)
	}
	s.log.InfoContext(ctx, "session ended", "identity", identityID, "session", sessionID, "actor", by.String())
	return EndedSession{Ended: sessionID}, nil
}

// Logout ends the session of bearer token token. It returns an error
// wrapping ErrUnauthorized when there is no such session, or the store's
// error.
func (s *Service) Logout(ctx context.Context, token string) (EndedSession, error) {
	se, err := s.session(ctx, token)
	if err != nil {
		return EndedSession{}, err
	}
	if err := s.st.DeleteSession(ctx, se.TokenHash); err != nil {
		return EndedSession{}, storeErr(err, "session")
	}
	s.log.InfoContext(ctx, "logout", "identity", se.IdentityID, "session", se.ID)
	return EndedSession{Ended: se.ID}, nil
}

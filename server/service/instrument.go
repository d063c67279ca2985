package service

import (
	"context"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// Metrics receives what the service does, for a metrics endpoint
// (server/api's /metrics). Implementations are safe for concurrent use.
type Metrics interface {
	// StoreCall records the latency of a store call and whether it failed.
	StoreCall(op string, d time.Duration, err error)
	// Events records the lifecycle events the store has just stored.
	Events(events []domain.Event)
	// Checked records one evaluation of a secret against its verifier (a
	// password or PIN against its argon2id verifier, a code against the
	// TOTP secret, a chip assertion or app signature against the public
	// key). It is called right before the evaluation, after every check
	// that refuses without evaluating (state, rate limits, reservations).
	Checked(kind string)
}

// LoginCounter is an ability a Metrics may have: counting the success
// of an authenticator of kind as Events counts an EventLoginSucceeded of
// it, without the event. The service uses it for a password proven in
// the first step of a login, whose success is written later, with the
// second factor's, and so has no event stored yet.
type LoginCounter interface {
	LoginSucceeded(kind string)
}

// countSuccess counts the success of a, checked now but not written
// yet, as the metrics count a written one: with LoginSucceeded when they
// have it, else with the events domain.Policy.RecordSuccess would store.
func (s *Service) countSuccess(a domain.Authenticator, now time.Time) {
	if s.metrics == nil {
		return
	}
	if lc, ok := s.metrics.(LoginCounter); ok {
		// What RecordSuccess refuses for an active authenticator.
		if a.Validate() == nil {
			lc.LoginSucceeded(string(a.Kind))
		}
		return
	}
	if c, err := s.policy.RecordSuccess(a, now); err == nil {
		s.metrics.Events(c.Events)
	}
}

// checked reports an evaluation of a secret of kind k to the metrics.
func (s *Service) checked(k device.Kind) {
	if s.metrics != nil {
		s.metrics.Checked(string(k))
	}
}

// instrument returns st with the latency of its calls on the request paths
// recorded, and the lifecycle events it stores reported (logins,
// suspensions, blocks).
func instrument(st store.Store, m Metrics) store.Store { return &instrumented{Store: st, m: m} }

// instrumented wraps the store calls of the request paths; the others pass
// through untimed.
type instrumented struct {
	store.Store
	m Metrics
}

func (s *instrumented) time(op string, start time.Time, err error) {
	s.m.StoreCall(op, time.Since(start), err)
}

func (s *instrumented) stored(err error, events []domain.Event) {
	if err == nil {
		s.m.Events(events)
	}
}

func (s *instrumented) CreateIdentity(ctx context.Context, c domain.IdentityChange, first ...store.NewAuthenticator) error {
	t := time.Now()
	err := s.Store.CreateIdentity(ctx, c, first...)
	s.time("create_identity", t, err)
	return err
}

func (s *instrumented) Identity(ctx context.Context, id string) (domain.Identity, error) {
	t := time.Now()
	v, err := s.Store.Identity(ctx, id)
	s.time("identity", t, err)
	return v, err
}

func (s *instrumented) UpdateIdentity(ctx context.Context, c domain.IdentityChange) error {
	t := time.Now()
	err := s.Store.UpdateIdentity(ctx, c)
	s.time("update_identity", t, err)
	return err
}

func (s *instrumented) CreateAuthenticator(ctx context.Context, c domain.Change, el store.Element) error {
	t := time.Now()
	err := s.Store.CreateAuthenticator(ctx, c, el)
	s.time("create_authenticator", t, err)
	s.stored(err, c.Events)
	return err
}

func (s *instrumented) CreateAuthenticatorAt(ctx context.Context, c domain.Change, el store.Element, version uint64) error {
	t := time.Now()
	err := s.Store.CreateAuthenticatorAt(ctx, c, el, version)
	s.time("create_authenticator", t, err)
	s.stored(err, c.Events)
	return err
}

func (s *instrumented) CreateRegistered(ctx context.Context, c domain.Change, el store.Element, version uint64, spent store.Ceremony) error {
	t := time.Now()
	err := s.Store.CreateRegistered(ctx, c, el, version, spent)
	s.time("create_authenticator", t, err)
	s.stored(err, c.Events)
	return err
}

func (s *instrumented) AuthenticatorWithIdentity(ctx context.Context, id string) (domain.Identity, domain.Authenticator, error) {
	t := time.Now()
	v, a, err := s.Store.AuthenticatorWithIdentity(ctx, id)
	s.time("authenticator_with_identity", t, err)
	return v, a, err
}

func (s *instrumented) Authenticator(ctx context.Context, id string) (domain.Authenticator, error) {
	t := time.Now()
	v, err := s.Store.Authenticator(ctx, id)
	s.time("authenticator", t, err)
	return v, err
}

func (s *instrumented) ListAuthenticators(ctx context.Context, identityID string) ([]domain.Authenticator, error) {
	t := time.Now()
	v, err := s.Store.ListAuthenticators(ctx, identityID)
	s.time("list_authenticators", t, err)
	return v, err
}

func (s *instrumented) ApplyChange(ctx context.Context, c domain.Change) error {
	t := time.Now()
	err := s.Store.ApplyChange(ctx, c)
	s.time("apply_change", t, err)
	s.stored(err, c.Events)
	return err
}

func (s *instrumented) Element(ctx context.Context, id string) (store.Element, error) {
	t := time.Now()
	v, err := s.Store.Element(ctx, id)
	s.time("element", t, err)
	return v, err
}

func (s *instrumented) ElementOfKind(ctx context.Context, id string, k device.Kind) (store.Element, error) {
	t := time.Now()
	v, err := s.Store.ElementOfKind(ctx, id, k)
	s.time("element", t, err)
	return v, err
}

func (s *instrumented) AuthenticatorWithElement(ctx context.Context, id string, k device.Kind) (domain.Identity, domain.Authenticator, *store.Element, error) {
	t := time.Now()
	i, a, el, err := s.Store.AuthenticatorWithElement(ctx, id, k)
	s.time("authenticator_with_element", t, err)
	return i, a, el, err
}

func (s *instrumented) PutCeremony(ctx context.Context, c store.Ceremony) error {
	t := time.Now()
	err := s.Store.PutCeremony(ctx, c)
	s.time("put_ceremony", t, err)
	return err
}

func (s *instrumented) TakeCeremony(ctx context.Context, key string, now time.Time) (store.Ceremony, error) {
	t := time.Now()
	c, err := s.Store.TakeCeremony(ctx, key, now)
	s.time("take_ceremony", t, err)
	return c, err
}

func (s *instrumented) PutSession(ctx context.Context, se store.Session) error {
	t := time.Now()
	err := s.Store.PutSession(ctx, se)
	s.time("put_session", t, err)
	return err
}

func (s *instrumented) Session(ctx context.Context, hash []byte, now time.Time) (store.Session, error) {
	t := time.Now()
	se, err := s.Store.Session(ctx, hash, now)
	s.time("session", t, err)
	return se, err
}

func (s *instrumented) AppendAudit(ctx context.Context, events ...domain.Event) error {
	t := time.Now()
	err := s.Store.AppendAudit(ctx, events...)
	s.time("append_audit", t, err)
	s.stored(err, events)
	return err
}

func (s *instrumented) ListAudit(ctx context.Context, identityID string, after uint64, limit int) ([]store.AuditRecord, error) {
	t := time.Now()
	v, err := s.Store.ListAudit(ctx, identityID, after, limit)
	s.time("list_audit", t, err)
	return v, err
}

func (s *instrumented) ReserveAttempt(ctx context.Context, a store.Attempt, max int, now time.Time) error {
	t := time.Now()
	err := s.Store.ReserveAttempt(ctx, a, max, now)
	s.time("reserve_attempt", t, err)
	return err
}

func (s *instrumented) EndAttempt(ctx context.Context, id string, c *domain.Change) error {
	t := time.Now()
	err := s.Store.EndAttempt(ctx, id, c)
	s.time("end_attempt", t, err)
	if c != nil {
		s.stored(err, c.Events)
	}
	return err
}

func (s *instrumented) FailImportAttempt(ctx context.Context, id, serial string, events []domain.Event) (int, error) {
	t := time.Now()
	n, err := s.Store.FailImportAttempt(ctx, id, serial, events)
	s.time("fail_import_attempt", t, err)
	s.stored(err, events)
	return n, err
}

func (s *instrumented) CommitLogin(ctx context.Context, l store.Login) (bool, error) {
	t := time.Now()
	ok, err := s.Store.CommitLogin(ctx, l)
	s.time("commit_login", t, err)
	if ok {
		s.stored(err, l.Change.Events)
	}
	return ok, err
}

func (s *instrumented) ActivateCodeDevice(ctx context.Context, a store.CodeActivation) error {
	t := time.Now()
	err := s.Store.ActivateCodeDevice(ctx, a)
	s.time("activate_code_device", t, err)
	s.stored(err, a.Change.Events)
	return err
}

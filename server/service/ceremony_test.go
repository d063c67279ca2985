package service_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
)

// factor returns the ceremony of second factor aid of identity id, after
// the right password.
func (e *env) factor(id, aid string) service.FactorLogin {
	e.t.Helper()
	r := must[service.PasswordLoginResult](e.t)(e.svc.LoginPassword(e.ctx, id, service.PasswordLoginRequest{Password: thePassword, Second: aid}))
	return *r.Next
}

// Logins keep no state between their steps: the ceremonies are sealed
// login tokens. A chip's token is single use (also under concurrency, also
// after a failure) and bound to its identity; a code device's token may be
// finished again, but each code is accepted once.
func TestLoginTokens(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	e.identity("bob")
	c := newChip(t, "token-chip", chipOpts())
	ch := must[service.AuthenticatorView](t)(e.addChip("alice", support, c, nil))

	b := e.factor("alice", ch.ID)
	resp, err := servicetest.Assert(e.ctx, c, origin, b.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	req := service.FinishLoginRequest{Ceremony: b.Ceremony, Credential: resp}
	var ok, expired int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := e.svc.FinishLogin(e.ctx, "alice", req)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, service.ErrCeremonyExpired):
				expired++
			default:
				t.Errorf("concurrent finish: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || expired != 7 {
		t.Fatalf("one chip token finished 8 times at once: %d successes, %d expired; want 1 and 7", ok, expired)
	}
	if a := e.auth(ch.ID); a.Failures != 0 {
		t.Fatalf("replays were counted as failures: %+v", a)
	}

	// A failed finish spends the token too.
	b = e.factor("alice", ch.ID)
	bad := *resp
	if _, err := e.svc.FinishLogin(e.ctx, "alice", service.FinishLoginRequest{Ceremony: b.Ceremony, Credential: &bad}); err == nil {
		t.Fatal("an assertion over another challenge was accepted")
	}
	resp, err = servicetest.Assert(e.ctx, c, origin, b.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.FinishLogin(e.ctx, "alice", service.FinishLoginRequest{Ceremony: b.Ceremony, Credential: resp}); !errors.Is(err, service.ErrCeremonyExpired) {
		t.Fatalf("a token finished after a failure: %v", err)
	}

	// Bound to identity and authenticator, tamper-evident, and it expires.
	b = e.factor("alice", ch.ID)
	if !strings.HasPrefix(b.Ceremony, "t3.") {
		t.Fatalf("chip ceremony %q is not a login token", b.Ceremony)
	}
	for _, tc := range []struct{ id, cer string }{
		{"bob", b.Ceremony},
		{"alice", b.Ceremony[:len(b.Ceremony)-2] + "AA"},
		{"alice", "spent:" + b.Ceremony},
		{"alice", "t2.x"},
		{"alice", "t1.x"},
	} {
		_, err := e.svc.FinishLogin(e.ctx, tc.id, service.FinishLoginRequest{Ceremony: tc.cer, Credential: resp})
		if !errors.Is(err, service.ErrCeremonyExpired) && !errors.Is(err, service.ErrNotFound) {
			t.Errorf("%s %q: %v", tc.id, tc.cer, err)
		}
	}
	e.clk.Advance(service.DefaultCeremonyTTL + time.Second)
	resp, _ = servicetest.Assert(e.ctx, c, origin, b.PublicKey)
	if _, err := e.svc.FinishLogin(e.ctx, "alice", service.FinishLoginRequest{Ceremony: b.Ceremony, Credential: resp}); !errors.Is(err, service.ErrCeremonyExpired) {
		t.Fatalf("expired token: %v", err)
	}

	// Code device: the token can be reused, a code cannot.
	dev := codeDevice("KV-TOKEN")
	kv := must[service.AuthenticatorView](t)(e.addCode("bob", support, dev))
	e.clk.Advance(30 * time.Second)
	b = e.factor("bob", kv.ID)
	code := dev.Code(e.clk.Now())
	if _, err := e.svc.FinishLogin(e.ctx, "bob", service.FinishLoginRequest{Ceremony: b.Ceremony, Code: code}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.FinishLogin(e.ctx, "bob", service.FinishLoginRequest{Ceremony: b.Ceremony, Code: code}); failure(t, err).Cause != domain.CauseReplayedCode {
		t.Fatalf("replayed code: %v", err)
	}
	e.clk.Advance(30 * time.Second)
	if _, err := e.svc.FinishLogin(e.ctx, "bob", service.FinishLoginRequest{Ceremony: b.Ceremony, Code: dev.Code(e.clk.Now())}); err != nil {
		t.Fatalf("the next code with the same token: %v", err)
	}
}

// A chip's registration token is sealed, not stored, and still single use:
// of 8 concurrent activations with one token one stores the chip; after a
// refused registration the token cannot be tried again; it is bound to its
// identity and authenticator, and it expires.
func TestRegistrationTokens(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"alice", "bob", "carol", "dave"} {
		e.identity(id)
	}
	begin := func(id string) (service.AddResult, service.ChipActivation) {
		res := must[service.AddResult](t)(e.svc.AddAuthenticator(e.ctx, support, id, service.AddRequest{Kind: "chip", Label: "keys"}))
		return res, res.Activation.(service.ChipActivation)
	}

	res, act := begin("alice")
	var ok, refused int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 8 {
		c := newChip(t, fmt.Sprintf("reg-chip-%d", i), chipOpts())
		reg, err := servicetest.Register(e.ctx, c, origin, act.PublicKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			_, err := e.svc.Activate(e.ctx, support, "alice", res.Authenticator.ID, service.ActivateRequest{Ceremony: act.Ceremony, Credential: reg})
			mu.Lock()
			defer mu.Unlock()
			// The late ones find the token spent, or the chip stored
			// (already added, already active).
			switch {
			case err == nil:
				ok++
			case errors.Is(err, service.ErrCeremonyExpired), errors.Is(err, domain.ErrAlreadyAdded),
				errors.Is(err, domain.ErrInvalidTransition):
				refused++
			default:
				t.Errorf("concurrent activation: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || refused != 7 {
		t.Fatalf("one registration token used 8 times at once: %d successes, %d refused; want 1 and 7", ok, refused)
	}
	if as, err := e.st.ListAuthenticators(e.ctx, "alice"); err != nil || len(as) != 2 { // the password and one chip
		t.Fatalf("alice has %d authenticators (%v), want her password and one chip", len(as), err)
	}

	// A refused registration (the attestation of another challenge)
	// spends the token.
	c := newChip(t, "reg-chip-x", chipOpts())
	res, act = begin("bob")
	_, other := begin("carol")
	wrong, err := servicetest.Register(e.ctx, c, origin, other.PublicKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Activate(e.ctx, support, "bob", res.Authenticator.ID, service.ActivateRequest{Ceremony: act.Ceremony, Credential: wrong}); err == nil {
		t.Fatal("a registration over another challenge was accepted")
	}
	right, err := servicetest.Register(e.ctx, c, origin, act.PublicKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Activate(e.ctx, support, "bob", res.Authenticator.ID, service.ActivateRequest{Ceremony: act.Ceremony, Credential: right}); !errors.Is(err, service.ErrCeremonyExpired) {
		t.Fatalf("the token of a refused registration, again: %v", err)
	}

	// Bound to the identity and the authenticator; expires.
	res, act = begin("dave")
	reg, err := servicetest.Register(e.ctx, c, origin, act.PublicKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Activate(e.ctx, support, "carol", res.Authenticator.ID, service.ActivateRequest{Ceremony: act.Ceremony, Credential: reg}); !errors.Is(err, service.ErrCeremonyExpired) {
		t.Fatalf("dave's token for carol: %v", err)
	}
	if _, err := e.svc.Activate(e.ctx, support, "dave", "chip-other", service.ActivateRequest{Ceremony: act.Ceremony, Credential: reg}); !errors.Is(err, service.ErrInvalid) {
		t.Fatalf("the token for another authenticator: %v", err)
	}
	e.clk.Advance(service.DefaultCeremonyTTL + time.Second)
	if _, err := e.svc.Activate(e.ctx, support, "dave", res.Authenticator.ID, service.ActivateRequest{Ceremony: act.Ceremony, Credential: reg}); !errors.Is(err, service.ErrCeremonyExpired) {
		t.Fatalf("an expired token: %v", err)
	}
}

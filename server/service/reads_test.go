package service_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
	"github.com/authbench/authbench/server/store"
)

// callLog records the names of the store calls a wrapping store makes, in
// order.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) call(name string) {
	l.mu.Lock()
	l.calls = append(l.calls, name)
	l.mu.Unlock()
}

// take returns the calls recorded since the last take.
func (l *callLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.calls
	l.calls = nil
	return out
}

// readCounter is a store that records the reads of the add, activate and
// block paths, by method.
type readCounter struct {
	store.Store
	callLog
}

func (r *readCounter) read(name string) { r.call(name) }

func (r *readCounter) Identity(ctx context.Context, id string) (domain.Identity, error) {
	r.read("Identity")
	return r.Store.Identity(ctx, id)
}

func (r *readCounter) AuthenticatorSet(ctx context.Context, id string) (store.AuthenticatorSet, error) {
	r.read("AuthenticatorSet")
	return r.Store.AuthenticatorSet(ctx, id)
}

func (r *readCounter) Authenticator(ctx context.Context, id string) (domain.Authenticator, error) {
	r.read("Authenticator")
	return r.Store.Authenticator(ctx, id)
}

func (r *readCounter) ListAuthenticators(ctx context.Context, id string) ([]domain.Authenticator, error) {
	r.read("ListAuthenticators")
	return r.Store.ListAuthenticators(ctx, id)
}

func (r *readCounter) FindAuthenticators(ctx context.Context, ref domain.Ref) ([]domain.Authenticator, error) {
	r.read("FindAuthenticators")
	return r.Store.FindAuthenticators(ctx, ref)
}

func (r *readCounter) FindTombstones(ctx context.Context, ref domain.Ref) ([]domain.Tombstone, error) {
	r.read("FindTombstones")
	return r.Store.FindTombstones(ctx, ref)
}

func (r *readCounter) Element(ctx context.Context, id string) (store.Element, error) {
	r.read("Element")
	return r.Store.Element(ctx, id)
}

func countReads(r *readCounter) envOption {
	return func(o *service.Options) { r.Store, o.Store = o.Store, r }
}

// TestChipLifecycleReads: each request of a chip's lifecycle reads the
// store once (the identity with its authenticators, or the authenticator
// it changes) and answers with what it read and wrote, and its answers
// are what a later read shows.
func TestChipLifecycleReads(t *testing.T) {
	r := &readCounter{}
	e := newEnv(t, countReads(r))
	created := e.identity("alice")
	if got := must[service.IdentityView](t)(e.svc.Identity(e.ctx, support, "alice")); !reflect.DeepEqual(got, created) {
		t.Errorf("CreateIdentity answered\n%+v\nthe identity reads\n%+v", created, got)
	}
	c := newChip(t, "chip-1", chipOpts())
	want := func(step string, reads ...string) {
		t.Helper()
		if got := r.take(); fmt.Sprint(got) != fmt.Sprint(reads) {
			t.Errorf("%s read %v, want %v", step, got, reads)
		}
	}
	for round := range 2 {
		r.take()
		res, err := e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "chip", Label: "key ring"})
		if err != nil {
			t.Fatal(err)
		}
		want(fmt.Sprintf("add %d", round), "AuthenticatorSet")
		act := res.Activation.(service.ChipActivation)
		reg, err := servicetest.Register(e.ctx, c, origin, act.PublicKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := e.svc.Activate(e.ctx, support, "alice", res.Authenticator.ID, service.ActivateRequest{Ceremony: act.Ceremony, Credential: reg})
		if err != nil {
			t.Fatal(err)
		}
		want(fmt.Sprintf("activate %d", round), "AuthenticatorSet")
		if got := e.auth(a.ID); !reflect.DeepEqual(got, a) {
			t.Errorf("Activate answered\n%+v\nthe authenticator reads\n%+v", a, got)
		}
		if round == 1 {
			break
		}
		r.take()
		b, err := e.svc.Block(e.ctx, support, "alice", a.ID, service.BlockRequest{Reason: "lost"})
		if err != nil {
			t.Fatal(err)
		}
		want("block", "Authenticator")
		if got := e.auth(a.ID); !reflect.DeepEqual(got, b) || b.Element != (service.WipedSummary{Wiped: true}) {
			t.Errorf("Block answered\n%+v\nthe authenticator reads\n%+v", b, got)
		}
	}
}

// TestChipCredentialTakenOrRevoked: a chip's registration is checked
// against the identity's own authenticators before it is stored; a
// credential another identity holds, or one revoked, is refused by the
// store, and the refusal names the rule as the lifecycle rules do.
func TestChipCredentialTakenOrRevoked(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	c := newChip(t, "chip-1", chipOpts())
	old := must[service.AuthenticatorView](t)(e.addChip("alice", support, c, nil))
	must[service.AuthenticatorView](t)(e.svc.Block(e.ctx, support, "alice", old.ID, service.BlockRequest{Reason: "compromised"}))
	// A chip that makes alice's revoked credential again.
	e.identity("bob")
	if _, err := e.addChip("bob", support, newChip(t, "chip-1", chipOpts()), nil); !errors.Is(err, domain.ErrCredentialRevoked) {
		t.Fatalf("bob adds alice's revoked credential: %v, want %v", err, domain.ErrCredentialRevoked)
	}
	// A credential in use by another identity.
	must[service.AuthenticatorView](t)(e.addChip("alice", support, newChip(t, "chip-3", chipOpts()), nil))
	if _, err := e.addChip("bob", support, newChip(t, "chip-3", chipOpts()), nil); !errors.Is(err, domain.ErrAlreadyAdded) {
		t.Fatalf("bob adds alice's credential: %v, want %v", err, domain.ErrAlreadyAdded)
	}
	// Neither was stored; bob adds a chip of his own.
	if v := must[service.IdentityView](t)(e.svc.Identity(e.ctx, support, "bob")); len(v.Authenticators) != 1 {
		t.Fatalf("bob has %+v, want his password only", v.Authenticators)
	}
	must[service.AuthenticatorView](t)(e.addChip("bob", support, newChip(t, "chip-4", chipOpts()), nil))
}

// loginCalls is a store that records the calls of a password's check, in
// order: its reads and the reservation of its attempt.
type loginCalls struct {
	store.Store
	callLog
}

func (r *loginCalls) AuthenticatorSet(ctx context.Context, id string) (store.AuthenticatorSet, error) {
	r.call("AuthenticatorSet")
	return r.Store.AuthenticatorSet(ctx, id)
}

func (r *loginCalls) AuthenticatorSetWithPasswords(ctx context.Context, id string) (store.AuthenticatorSet, []*store.Element, error) {
	r.call("AuthenticatorSetWithPasswords")
	return r.Store.AuthenticatorSetWithPasswords(ctx, id)
}

func (r *loginCalls) Authenticator(ctx context.Context, id string) (domain.Authenticator, error) {
	r.call("Authenticator")
	return r.Store.Authenticator(ctx, id)
}

func (r *loginCalls) Element(ctx context.Context, id string) (store.Element, error) {
	r.call("Element")
	return r.Store.Element(ctx, id)
}

func (r *loginCalls) ElementOfKind(ctx context.Context, id string, k device.Kind) (store.Element, error) {
	r.call("ElementOfKind")
	return r.Store.ElementOfKind(ctx, id, k)
}

func (r *loginCalls) ReserveAttempt(ctx context.Context, a store.Attempt, max int, now time.Time) error {
	r.call("ReserveAttempt")
	return r.Store.ReserveAttempt(ctx, a, max, now)
}

// TestPasswordLoginReads: the password step of a login reads the store
// once, the identity's set with the verifier of its password, and then
// reserves the attempt; it reads nothing more before it evaluates the
// password, right or wrong, and a wrong one is counted.
func TestPasswordLoginReads(t *testing.T) {
	r := &loginCalls{}
	e := newEnv(t, func(o *service.Options) { r.Store, o.Store = o.Store, r })
	pw := password(e.identity("alice"))
	want := []string{"AuthenticatorSetWithPasswords", "ReserveAttempt"}
	r.take()
	if _, err := e.loginPassword("alice", thePassword); err != nil {
		t.Fatal(err)
	}
	if got := r.take(); !reflect.DeepEqual(got, want) {
		t.Errorf("a right password: the store calls were %v, want %v", got, want)
	}
	var fe *service.FailureError
	if _, err := e.loginPassword("alice", "wrong horse"); !errors.As(err, &fe) || fe.Failures != 1 {
		t.Fatalf("a wrong password answered %v, want a failure counted against the password", err)
	}
	// The failure is recorded with the password as it is then (one more
	// read, after the evaluation).
	if got := r.take(); len(got) < 2 || !reflect.DeepEqual(got[:2], want) {
		t.Errorf("a wrong password: the store calls were %v, want %v first", got, want)
	}
	if a := e.auth(pw); a.Failures != 1 {
		t.Errorf("the password reads %d failures after a wrong one, want 1", a.Failures)
	}
}

package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/store"
)

var errCrash = errors.New("injected: the server died before the commit")

// writeRecorder passes every call to the store it wraps, recording the
// writes that create identities and authenticators. While crash is set,
// CreateIdentity stores nothing and fails, as a kill -9 before the commit
// would.
type writeRecorder struct {
	store.Store
	mu     sync.Mutex
	writes []string
	crash  bool
}

func (r *writeRecorder) record(w string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, w)
	return r.crash
}

func (r *writeRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.writes
	r.writes = nil
	return w
}

func (r *writeRecorder) CreateIdentity(ctx context.Context, c domain.IdentityChange, first ...store.NewAuthenticator) error {
	w := "identity " + c.Identity.ID
	for _, n := range first {
		w += fmt.Sprintf(" + %s %s", n.Change.Authenticator.Kind, n.Change.Authenticator.State)
	}
	if r.record(w) {
		return errCrash
	}
	return r.Store.CreateIdentity(ctx, c, first...)
}

func (r *writeRecorder) CreateAuthenticator(ctx context.Context, c domain.Change, el store.Element) error {
	r.record("authenticator " + c.Authenticator.ID)
	return r.Store.CreateAuthenticator(ctx, c, el)
}

func (r *writeRecorder) CreateAuthenticatorAt(ctx context.Context, c domain.Change, el store.Element, version uint64) error {
	r.record("authenticator " + c.Authenticator.ID)
	return r.Store.CreateAuthenticatorAt(ctx, c, el, version)
}

// TestCreateIdentityWithPasswordIsOneWrite checks that an identity and its
// password are stored by one store call (one transaction): a crash can
// leave both or neither, never an identity without its password that the
// client's retry would then find taken.
func TestCreateIdentityWithPasswordIsOneWrite(t *testing.T) {
	rec := &writeRecorder{}
	e := newEnv(t, func(o *service.Options) { rec.Store = o.Store; o.Store = rec })

	for _, tc := range []struct {
		req  service.CreateIdentityRequest
		want string
	}{
		{service.CreateIdentityRequest{ID: "alice", Password: "correct horse"}, "identity alice + password active"},
		{service.CreateIdentityRequest{ID: "bob"}, "identity bob"},
	} {
		v, err := e.svc.CreateIdentity(e.ctx, support, tc.req)
		if err != nil {
			t.Fatalf("CreateIdentity(%s): %v", tc.req.ID, err)
		}
		if w := rec.take(); len(w) != 1 || w[0] != tc.want {
			t.Errorf("CreateIdentity(%s) wrote %q, want the one write %q", tc.req.ID, w, tc.want)
		}
		if n := len(v.Authenticators); (tc.req.Password != "") != (n == 1) || n > 1 {
			t.Errorf("CreateIdentity(%s) has %d authenticators", tc.req.ID, n)
		}
	}
	pw := password(must[service.IdentityView](t)(e.svc.Identity(e.ctx, support, "alice")))
	if pw == "" {
		t.Fatal("alice has no password")
	}
	if _, err := e.loginPassword("alice", "correct horse"); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
	page := must[service.AuditPage](t)(e.svc.ListAudit(e.ctx, support, "alice", 0, 10))
	var got []string
	for _, ev := range page.Events {
		got = append(got, ev.Type)
	}
	want := []string{string(domain.EventIdentityCreated), string(domain.EventAdded), string(domain.EventActivated)}
	if fmt.Sprint(got[:min(len(got), 3)]) != fmt.Sprint(want) {
		t.Errorf("audit of alice starts with %q, want %q", got, want)
	}

	// A crash before the commit stores nothing, so the retry succeeds.
	rec.crash = true
	if _, err := e.svc.CreateIdentity(e.ctx, support, service.CreateIdentityRequest{ID: "carol", Password: "pw of carol"}); !errors.Is(err, errCrash) {
		t.Fatalf("CreateIdentity(carol) with a crash: %v", err)
	}
	if _, err := e.svc.Identity(e.ctx, support, "carol"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("carol after the crash: %v, want ErrNotFound", err)
	}
	rec.crash = false
	v, err := e.svc.CreateIdentity(e.ctx, support, service.CreateIdentityRequest{ID: "carol", Password: "pw of carol"})
	if err != nil {
		t.Fatalf("CreateIdentity(carol) again: %v", err)
	}
	if len(v.Authenticators) != 1 || v.Authenticators[0].Kind != "password" || v.Authenticators[0].State != domain.StateActive {
		t.Errorf("carol after the retry: %+v, want one active password", v.Authenticators)
	}
	if _, err := e.svc.CreateIdentity(e.ctx, support, service.CreateIdentityRequest{ID: "carol", Password: "x"}); !errors.Is(err, service.ErrIdentityTaken) {
		t.Errorf("CreateIdentity(carol) a third time: %v, want ErrIdentityTaken", err)
	}
}

// TestVerifierRehashedOnlyWhenParamsDiffer: a login under the server's own
// argon2id parameters leaves the verifier alone; one made with other
// parameters is replaced once, at the next right password, by one under
// the server's.
func TestVerifierRehashedOnlyWhenParamsDiffer(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	verifier := func() string {
		t.Helper()
		el, err := e.st.Element(e.ctx, pw)
		if err != nil || el.Password == nil {
			t.Fatalf("element of %s: %v", pw, err)
		}
		return el.Password.Verifier
	}
	first := verifier()
	if _, err := e.loginPassword("alice", thePassword); err != nil {
		t.Fatal(err)
	}
	if v := verifier(); v != first {
		t.Errorf("a login under the server's parameters rewrote the verifier")
	}

	old, err := secrets.Params{Memory: 128, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}.Hash(thePassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.UpdateVerifier(e.ctx, pw, first, old); err != nil {
		t.Fatal(err)
	}
	if _, err := e.loginPassword("alice", thePassword); err != nil {
		t.Fatal(err)
	}
	v := verifier()
	if v == old {
		t.Fatal("a verifier with other parameters was not rehashed")
	}
	if ok, rehash, err := secrets.FastParams().Verify(v, thePassword); !ok || rehash || err != nil {
		t.Errorf("the new verifier under the server's parameters: ok %v, rehash %v, %v", ok, rehash, err)
	}
}

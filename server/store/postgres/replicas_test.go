package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/postgres"
	"github.com/authbench/authbench/server/store/storetest"
)

var (
	t0  = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	sys = domain.System("test")
)

// replicas opens n Stores (n pools) on one fresh schema: n replicas of a
// server sharing a database.
func replicas(t *testing.T, n int) []*postgres.Store {
	t.Helper()
	url := dbURL(t)
	schema := newSchema(t, url)
	out := make([]*postgres.Store, n)
	for i := range out {
		out[i] = open(t, url, schema)
		t.Cleanup(func() { out[i].Close() })
	}
	return out
}

// race runs fn(i) in n goroutines released at once and returns their
// results.
func race[T any](n int, fn func(i int) T) []T {
	out := make([]T, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newIdentity(t testing.TB, s store.Store, id string) domain.Identity {
	t.Helper()
	c, err := domain.NewIdentity(id, sys, t0)
	must(t, err)
	must(t, s.CreateIdentity(context.Background(), c))
	return c.Identity
}

func element(kind device.Kind, id string) store.Element {
	switch kind {
	case device.KindChip:
		return store.Element{Chip: &store.ChipElement{PublicKey: []byte("COSE-" + id)}}
	case device.KindCodeDisplay, device.KindAudioCodeReader:
		return store.Element{Code: &store.CodeElement{Secret: store.Sealed{KeyID: "k1", Blob: []byte("SEALED-" + id)},
			OTPParams: store.OTPParams{Digits: 6, Period: 30 * time.Second, Algorithm: otp.SHA1}}}
	case device.KindApp:
		return store.Element{App: &store.AppElement{PublicKey: []byte("APPKEY-" + id), PINVerifier: "$argon2id$pin-" + id}}
	}
	return store.Element{Password: &store.PasswordElement{Verifier: "$argon2id$pw-" + id}}
}

func ref(kind device.Kind, id string) domain.Ref {
	switch kind {
	case device.KindChip:
		return domain.Ref{CredentialID: "cred-" + id}
	case device.KindCodeDisplay, device.KindAudioCodeReader:
		return domain.Ref{Serial: "KV-" + id}
	case device.KindApp:
		return domain.Ref{CredentialID: "appkey-" + id}
	}
	return domain.Ref{}
}

// TestReplicasOTPStepOnce: 64 goroutines spread over two replicas present
// one time step at once; exactly one is accepted (RFC 6238 §5.2, DESIGN §1
// "also when two replicas see it at the same instant").
func TestReplicasOTPStepOnce(t *testing.T) {
	ss := replicas(t, 2)
	ctx := context.Background()
	newIdentity(t, ss[0], "id-1")
	a := domain.Authenticator{ID: "kv-1", IdentityID: "id-1", Kind: device.KindCodeDisplay, State: domain.StatePending,
		Ref: ref(device.KindCodeDisplay, "1"), CreatedAt: t0, Version: 1}
	must(t, ss[0].CreateAuthenticator(ctx, domain.Change{Authenticator: a}, element(device.KindCodeDisplay, "1")))
	for _, step := range []uint64{100, 101, 1 << 40} {
		res := race(64, func(i int) error {
			ok, err := ss[i%2].AdvanceOTPStep(ctx, "kv-1", step, i%3-1)
			if err != nil {
				return err
			}
			if !ok {
				return store.ErrConflict // a loser, counted below
			}
			return nil
		})
		wins := 0
		for i, err := range res {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("step %d, goroutine %d: %v", step, i, err)
			}
		}
		if wins != 1 {
			t.Errorf("step %d: %d of 64 accepted, want exactly 1", step, wins)
		}
		for _, s := range ss {
			el, err := s.Element(ctx, "kv-1")
			must(t, err)
			if el.Code.HighestStep != step {
				t.Errorf("highest step %d, want %d", el.Code.HighestStep, step)
			}
		}
	}
}

// TestReplicasQuota runs the add loop of a server (read the set,
// domain.Policy.Add, CreateAuthenticatorAt, retry on ErrConflict) from
// 64 goroutines over two replicas: exactly the quota is stored.
func TestReplicasQuota(t *testing.T) {
	ss := replicas(t, 2)
	ctx := context.Background()
	id := newIdentity(t, ss[0], "id-1")
	p := domain.DefaultPolicy()
	add := func(s store.Store, kind device.Kind, aid string) error {
		for range 200 { // each conflict means another add was stored
			set, err := s.AuthenticatorSet(ctx, id.ID)
			if err != nil {
				return err
			}
			c, err := p.Add(id, set.Authenticators, nil, domain.AddRequest{ID: aid, Kind: kind, Ref: ref(kind, aid)}, sys, t0)
			if err != nil {
				return err
			}
			if err = s.CreateAuthenticatorAt(ctx, c, element(kind, aid), set.Version); !errors.Is(err, store.ErrConflict) {
				return err
			}
		}
		return fmt.Errorf("add %s: conflicts without end", aid)
	}
	kinds := []device.Kind{device.KindApp, device.KindChip, device.KindCodeDisplay, device.KindAudioCodeReader}
	errs := race(64, func(i int) error {
		return add(ss[i%2], kinds[(i/2)%len(kinds)], fmt.Sprint("a-", i))
	})
	count := map[device.Kind]int{}
	for i, err := range errs {
		k := kinds[(i/2)%len(kinds)]
		if k == device.KindAudioCodeReader {
			k = device.KindCodeDisplay
		}
		switch {
		case err == nil:
			count[k]++
		case !errors.Is(err, domain.ErrQuotaExceeded):
			t.Errorf("add %d: %v, want nil or %q", i, err, domain.ErrQuotaExceeded)
		}
	}
	want := map[device.Kind]int{device.KindApp: 3, device.KindChip: 1, device.KindCodeDisplay: 1}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("adds stored per quota: %v, want %v", count, want)
	}
	set, err := ss[1].AuthenticatorSet(ctx, id.ID)
	must(t, err)
	if len(set.Authenticators) != 5 || set.Version != 5 {
		t.Errorf("set: version %d with %d authenticators, want 5 and 5", set.Version, len(set.Authenticators))
	}
}

// TestReplicasAuditChain appends from 64 goroutines over two replicas:
// the log is one gap-free chain that verifies.
func TestReplicasAuditChain(t *testing.T) {
	ss := replicas(t, 2)
	ctx := context.Background()
	const n, per = 64, 3
	errs := race(n, func(i int) error {
		var evs []domain.Event
		for j := range per {
			evs = append(evs, domain.Event{Type: domain.EventAdded, IdentityID: fmt.Sprint("id-", i), Actor: sys,
				At: t0.Add(time.Duration(i*per+j) * time.Millisecond)})
		}
		return ss[i%2].AppendAudit(ctx, evs...)
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("append %d: %v", i, err)
		}
	}
	var recs []store.AuditRecord
	for r, err := range ss[1].AuditRecords(ctx, 1) {
		must(t, err)
		recs = append(recs, r)
	}
	if len(recs) != n*per {
		t.Fatalf("%d records, want %d", len(recs), n*per)
	}
	if err := storetest.VerifyChain(recs); err != nil {
		t.Fatal(err)
	}
	// The events of one append are consecutive.
	for i := 0; i < len(recs); i += per {
		for j := 1; j < per; j++ {
			if recs[i+j].IdentityID != recs[i].IdentityID {
				t.Fatalf("records %d..%d interleave appends", recs[i].Seq, recs[i+per-1].Seq)
			}
		}
	}
}

// knownMigrations is the number of migrations in migrations/.
const knownMigrations = 2

// TestReplicasMigrateOnce opens four Stores on a new schema at once: the
// advisory lock lets one of them migrate, and the others find it done.
func TestReplicasMigrateOnce(t *testing.T) {
	url := dbURL(t)
	schema := newSchema(t, url)
	ss := race(4, func(int) *postgres.Store { return open(t, url, schema) })
	for _, s := range ss {
		v, err := s.SchemaVersion(context.Background())
		must(t, err)
		if v != knownMigrations {
			t.Errorf("schema version %d, want %d", v, knownMigrations)
		}
		must(t, s.Close())
	}
}

// TestCloseLeavesNoGoroutines uses a Store from many goroutines, closes it,
// and checks that nothing it started is left running, and that calls
// after Close fail.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	url := dbURL(t)
	schema := newSchema(t, url)
	before := runtime.NumGoroutine()
	s := open(t, url, schema)
	ctx := context.Background()
	newIdentity(t, s, "id-1")
	race(16, func(i int) error {
		_, err := s.Identity(ctx, "id-1")
		return err
	})
	// A call cancelled mid-way leaves its connection broken; the pool
	// must drop it.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Identity(cctx, "id-1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Identity with a cancelled context: %v", err)
	}
	must(t, s.Close())
	must(t, s.Close())
	if _, err := s.Identity(ctx, "id-1"); err == nil {
		t.Error("Identity after Close: no error")
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

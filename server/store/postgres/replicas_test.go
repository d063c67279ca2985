package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/internal/pgtest"
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
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "test_")
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

// TestReplicasOTPLoginOnce: 64 code logins spread over two replicas
// present one time step at once, each retrying from a fresh read of the
// record when it moved (store.ErrConflict); exactly one is accepted and
// the others are refused as replays, by the watermark that moves in the
// record's UPDATE (migration 0009), on either replica.
func TestReplicasOTPLoginOnce(t *testing.T) {
	ss := replicas(t, 2)
	ctx := context.Background()
	newIdentity(t, ss[0], "id-1")
	a := domain.Authenticator{ID: "kv-1", IdentityID: "id-1", Kind: device.KindCodeDisplay, State: domain.StateActive,
		Ref: ref(device.KindCodeDisplay, "1"), CreatedAt: t0, ActivatedAt: t0, Version: 1}
	must(t, ss[0].CreateAuthenticator(ctx, domain.Change{Authenticator: a}, element(device.KindCodeDisplay, "1")))
	for _, step := range []uint64{100, 101, 1 << 40} {
		acc, refused, err := storetest.OTPLoginRace(ctx, []store.Store{ss[0], ss[1]}, "kv-1", step, 64, t0)
		if err != nil {
			t.Errorf("step %d: %v", step, err)
		}
		if acc != 1 || acc+refused != 64 {
			t.Errorf("step %d: %d of 64 accepted, %d refused; want exactly 1 accepted, the rest refused", step, acc, refused)
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

// TestReplicasAuditChain appends from 64 goroutines over two replicas to
// 8 identities: every identity's chain is gap-free and verifies, and the
// events of one append are consecutive in it.
func TestReplicasAuditChain(t *testing.T) {
	ss := replicas(t, 2)
	ctx := context.Background()
	const n, per, ids = 64, 3, 8
	errs := race(n, func(i int) error {
		var evs []domain.Event
		for j := range per {
			evs = append(evs, domain.Event{Type: domain.EventAdded, IdentityID: fmt.Sprint("id-", i%ids), Actor: sys,
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
	for r, err := range ss[1].AuditRecords(ctx) {
		must(t, err)
		recs = append(recs, r)
	}
	if len(recs) != n*per {
		t.Fatalf("%d records, want %d", len(recs), n*per)
	}
	if err := storetest.VerifyChain(recs); err != nil {
		t.Fatal(err)
	}
	// Each chain has its 8 appends, and the events of one append are
	// consecutive (their times count up by one millisecond).
	for i := 0; i < len(recs); i += per {
		if recs[i].Seq%per != 1 {
			t.Fatalf("chain of %s: an append starts at record %d", recs[i].IdentityID, recs[i].Seq)
		}
		for j := 1; j < per; j++ {
			if r := recs[i+j]; r.IdentityID != recs[i].IdentityID || !r.At.Equal(recs[i].At.Add(time.Duration(j)*time.Millisecond)) {
				t.Fatalf("chain of %s: records %d..%d interleave appends", r.IdentityID, recs[i].Seq, recs[i+per-1].Seq)
			}
		}
	}
}

// TestReplicasMigrateOnce opens four Stores on a new schema at once: the
// advisory lock lets one of them migrate, and the others find it done.
func TestReplicasMigrateOnce(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "test_")
	ss := race(4, func(int) *postgres.Store { return open(t, url, schema) })
	for _, s := range ss {
		v, err := s.SchemaVersion(context.Background())
		must(t, err)
		if v != postgres.KnownVersion() {
			t.Errorf("schema version %d, want %d", v, postgres.KnownVersion())
		}
		must(t, s.Close())
	}
}

// TestCloseLeavesNoGoroutines uses a Store from many goroutines, closes it,
// and checks that nothing it started is left running, and that calls
// after Close fail.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "test_")
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

// TestAuditChainsDoNotWait: while a transaction holds the head of alice's
// audit chain (as an append of hers does until it commits), an audited
// write for bob goes through on another replica, and one for alice waits
// for the lock: writes of different people never wait for each other.
func TestAuditChainsDoNotWait(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "test_")
	ctx := context.Background()
	a, b := open(t, url, schema), open(t, url, schema)
	defer a.Close()
	defer b.Close()
	newIdentity(t, a, "alice")
	newIdentity(t, a, "bob")
	ev := func(id string) domain.Event {
		return domain.Event{Type: domain.EventLoginFailed, IdentityID: id, AuthenticatorID: "pw-1", Actor: sys, At: t0}
	}

	c, tx := holdRow(t, url, schema, `SELECT 1 FROM audit_heads WHERE identity_id = 'alice' FOR UPDATE`)
	var holder int
	must(t, tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holder))

	// Bob's write does not wait (it would hit the timeout if it did).
	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := b.AppendAudit(short, ev("bob")); err != nil {
		t.Fatalf("bob's audited write while alice's chain is held: %v", err)
	}
	// Alice's waits for the holder: PostgreSQL shows it blocked by it.
	done := make(chan error, 1)
	go func() { done <- b.AppendAudit(ctx, ev("alice")) }()
	for waited := false; !waited; {
		select {
		case err := <-done:
			t.Fatalf("alice's write went through while her chain was held: %v", err)
		case <-short.Done():
			t.Fatal("alice's write never showed as waiting for the holder of her chain")
		case <-time.After(20 * time.Millisecond):
		}
		must(t, c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid)))`, holder).Scan(&waited))
	}
	must(t, tx.Rollback(ctx))
	if err := <-done; err != nil {
		t.Fatalf("alice's write after the holder ended: %v", err)
	}
	recs, err := a.ListAudit(ctx, "alice", 0, 10)
	must(t, err)
	if len(recs) != 2 {
		t.Errorf("alice's chain has %d records, want 2", len(recs))
	}
}

// holdRow connects to the schema of url on a connection of its own (closed
// when the test ends), begins a transaction (rolled back then, unless the
// test ends it first) and runs lock in it, a statement that locks a row:
// the holder of a lock that writes of a store must wait for.
func holdRow(t *testing.T, url, schema, lock string, args ...any) (*pgx.Conn, pgx.Tx) {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(url)
	must(t, err)
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	c, err := pgx.ConnectConfig(ctx, cfg)
	must(t, err)
	t.Cleanup(func() { c.Close(ctx) })
	tx, err := c.Begin(ctx)
	must(t, err)
	t.Cleanup(func() { tx.Rollback(ctx) })
	if _, err := tx.Exec(ctx, lock, args...); err != nil {
		t.Fatal(err)
	}
	return c, tx
}

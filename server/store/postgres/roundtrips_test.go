package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/internal/pgtest"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/postgres"
	"github.com/authbench/authbench/server/store/storetest"
)

// roundTrips counts the round trips of a store's connections (n: a
// statement sent alone, or a pipeline (pgx.Batch) of statements) and the
// statements they carry.
type roundTrips struct{ n, stmts atomic.Int64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	r.stmts.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	r.stmts.Add(1)
}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// TestLoginRoundTrips counts the round trips of the writes of a code
// login: the reservation of its attempt (one call of reserve_attempt, in
// autocommit), the end of an attempt without a change (one statement), and
// the commit of the login: BEGIN, the guard, the proofs, the end of the
// attempt, the record and the audit head in one pipeline (the statements
// the core only checks travel with the one whose answer it needs, the
// head), then the audit records and the session with COMMIT. A regression
// to one round trip per statement fails here. Counted as pgx sends them:
// the preparation of a statement on its first use on a connection, one
// more, is not counted.
func TestLoginRoundTrips(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	rt := &roundTrips{}
	s, err := postgres.Open(ctx, url, postgres.Options{Chain: storetest.Chain{}, Schema: pgtest.Schema(t, url, "test_"), MaxConns: 1, Tracer: rt})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	p := domain.DefaultPolicy()
	ic, err := domain.NewIdentity("id-1", sys, t0)
	must(t, err)
	must(t, s.CreateIdentity(ctx, ic))
	a := domain.Authenticator{ID: "kv-1", IdentityID: "id-1", Kind: device.KindCodeDisplay, State: domain.StatePending,
		Ref: domain.Ref{Serial: "KV-1"}, CreatedAt: t0, Version: 1}
	must(t, s.CreateAuthenticator(ctx, domain.Change{Authenticator: a}, store.Element{Code: &store.CodeElement{Secret: store.Sealed{KeyID: "k1", Blob: []byte("SEALED")}}}))
	c, err := p.Activate(ic.Identity, a, sys, t0)
	must(t, err)
	must(t, s.ApplyChange(ctx, c))
	a = c.Authenticator
	count := func(what string, want int64, fn func() error) {
		t.Helper()
		before := rt.n.Load()
		must(t, fn())
		if got := rt.n.Load() - before; got != want {
			t.Errorf("%s: %d round trips, want %d", what, got, want)
		}
	}
	attempt := func(n int) store.Attempt {
		return store.Attempt{ID: "att-" + string(rune('a'+n)), AuthenticatorID: a.ID, ExpiresAt: t0.Add(time.Minute)}
	}
	for i := range 2 {
		count("ReserveAttempt", 1, func() error { return s.ReserveAttempt(ctx, attempt(2*i), 3, t0) })
		count("EndAttempt without a change", 1, func() error { return s.EndAttempt(ctx, attempt(2*i).ID, nil) })
		count("ReserveAttempt", 1, func() error { return s.ReserveAttempt(ctx, attempt(2*i+1), 3, t0) })
		ch, err := p.RecordSuccess(a, t0)
		must(t, err)
		sid := "ses-" + string(rune('a'+i))
		l := store.Login{Attempt: attempt(2*i + 1).ID, Change: ch, OTP: &store.OTPGuard{Step: uint64(100 + i)},
			Session: &store.Session{TokenHash: []byte(sid), ID: sid, IdentityID: "id-1", Level: store.LevelTwoFactor,
				Authenticators: []string{a.ID}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}}
		count("CommitLogin", 2, func() error {
			ok, err := s.CommitLogin(ctx, l)
			if err == nil && !ok {
				t.Error("CommitLogin refused the step")
			}
			return err
		})
		a = ch.Authenticator
	}
}

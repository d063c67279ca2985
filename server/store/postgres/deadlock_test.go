package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/internal/pgtest"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/postgres"
	"github.com/authbench/authbench/server/store/storetest"
)

// deadlocks records the statements of a store's connections that
// PostgreSQL aborted to break a deadlock (SQLSTATE 40P01). The store runs
// such a transaction again, so its caller never sees the error: only the
// connection does.
type deadlocks struct {
	mu  sync.Mutex
	got []string
}

func (d *deadlocks) seen(sql string, err error) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "40P01" {
		d.mu.Lock()
		d.got = append(d.got, pe.Message+" ("+sql+")")
		d.mu.Unlock()
	}
}

type sqlKey struct{}

func (d *deadlocks) TraceQueryStart(ctx context.Context, _ *pgx.Conn, q pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, sqlKey{}, q.SQL)
}
func (d *deadlocks) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, q pgx.TraceQueryEndData) {
	sql, _ := ctx.Value(sqlKey{}).(string)
	d.seen(sql, q.Err)
}
func (d *deadlocks) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (d *deadlocks) TraceBatchQuery(_ context.Context, _ *pgx.Conn, q pgx.TraceBatchQueryData) {
	d.seen(q.SQL, q.Err)
}
func (d *deadlocks) TraceBatchEnd(_ context.Context, _ *pgx.Conn, q pgx.TraceBatchEndData) {
	d.seen("batch", q.Err)
}

// TestLoginRacingBlockNoDeadlock: a chip login (the password's success, the
// sign count, the session) commits on one replica while the owner blocks
// the chip on another. A login that locked the chip's element before its
// authenticator, and a block, which locks the authenticator and then wipes
// the element, each waited for the other until PostgreSQL aborted one
// (40P01, after deadlock_timeout). Both orders of arrival are forced: a
// third connection holds the chip's authenticator row, the two writes
// queue behind it in turn, and it lets go. No statement may be aborted as
// a deadlock, and the outcome is the one of the write that got the row
// first: a block first refuses the login (its version moved) and leaves
// no session; a login first makes the block's versioned write conflict,
// and the session it opened is ended by the block that follows.
func TestLoginRacingBlockNoDeadlock(t *testing.T) {
	for _, blockFirst := range []bool{true, false} {
		name := "login first"
		if blockFirst {
			name = "block first"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			url := pgtest.URL(t)
			schema := pgtest.Schema(t, url, "test_")
			dl := &deadlocks{}
			openTraced := func() *postgres.Store {
				s, err := postgres.Open(ctx, url, postgres.Options{Chain: storetest.Chain{}, Schema: schema, Tracer: dl})
				must(t, err)
				t.Cleanup(func() { s.Close() })
				return s
			}
			login, owner := openTraced(), openTraced()
			p := domain.DefaultPolicy()
			id := newIdentity(t, login, "id-1")
			var pw, chip domain.Authenticator
			for _, kind := range []device.Kind{device.KindPassword, device.KindChip} {
				aid := string(kind) + "-1"
				a := domain.Authenticator{ID: aid, IdentityID: id.ID, Kind: kind, State: domain.StatePending, Ref: ref(kind, aid), CreatedAt: t0, Version: 1}
				must(t, login.CreateAuthenticator(ctx, domain.Change{Authenticator: a}, element(kind, aid)))
				c, err := p.Activate(id, a, sys, t0)
				must(t, err)
				must(t, login.ApplyChange(ctx, c))
				if kind == device.KindChip {
					chip = c.Authenticator
				} else {
					pw = c.Authenticator
				}
			}
			att := store.Attempt{ID: "att-1", AuthenticatorID: chip.ID, ExpiresAt: t0.Add(time.Minute)}
			must(t, login.ReserveAttempt(ctx, att, 3, t0))
			success, err := p.RecordSuccess(chip, t0)
			must(t, err)
			prior, err := p.RecordSuccess(pw, t0)
			must(t, err)
			token := []byte("token-1")
			l := store.Login{Attempt: att.ID, Change: success, Prior: &prior, PriorPlain: true,
				Chip: &store.ChipGuard{Count: 7, Spent: store.Ceremony{Key: "spent-1", IdentityID: id.ID, ExpiresAt: t0.Add(time.Minute)}},
				Session: &store.Session{TokenHash: token, ID: "ses-1", IdentityID: id.ID, Level: store.LevelTwoFactor,
					Authenticators: []string{pw.ID, chip.ID}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}}
			block, err := p.Block(chip, domain.Owner(id.ID, pw.ID), domain.ReasonLost, t0)
			must(t, err)

			// The holder of the chip's authenticator row.
			holder, tx := holdRow(t, url, schema, `SELECT 1 FROM authenticators WHERE id = $1 FOR UPDATE`, chip.ID)
			var holderPID int
			must(t, tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holderPID))
			waiting := func(n int) {
				t.Helper()
				deadline := time.Now().Add(20 * time.Second)
				for {
					var got int
					// The first to wait waits for the holder, the second
					// for the first (the row's tuple lock).
					must(t, holder.QueryRow(ctx, `WITH w AS (SELECT pid, pg_blocking_pids(pid) AS b FROM pg_stat_activity)
SELECT COUNT(*) FROM w WHERE $1 = ANY (w.b) OR EXISTS (SELECT 1 FROM w v WHERE v.pid = ANY (w.b) AND $1 = ANY (v.b))`, holderPID).Scan(&got))
					if got >= n {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d writes wait for the holder of the chip's row, want %d", got, n)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			type result struct {
				ok  bool
				err error
			}
			loginDone, blockDone := make(chan result, 1), make(chan error, 1)
			startLogin := func() {
				go func() {
					ok, err := login.CommitLogin(ctx, l)
					loginDone <- result{ok, err}
				}()
			}
			startBlock := func() { go func() { blockDone <- owner.ApplyChange(ctx, block) }() }
			if blockFirst {
				startBlock()
				waiting(1)
				startLogin()
			} else {
				startLogin()
				waiting(1)
				startBlock()
			}
			waiting(2)
			must(t, tx.Rollback(ctx))
			lr, berr := <-loginDone, <-blockDone

			dl.mu.Lock()
			if len(dl.got) > 0 {
				t.Errorf("PostgreSQL broke %d deadlocks: %v", len(dl.got), dl.got)
			}
			dl.mu.Unlock()
			if blockFirst {
				if berr != nil {
					t.Fatalf("block: %v", berr)
				}
				if lr.ok || !errors.Is(lr.err, store.ErrConflict) {
					t.Errorf("login after the block: ok=%v err=%v, want a conflict", lr.ok, lr.err)
				}
			} else {
				if !lr.ok || lr.err != nil {
					t.Fatalf("login: ok=%v err=%v", lr.ok, lr.err)
				}
				if !errors.Is(berr, store.ErrConflict) {
					t.Fatalf("block after the login: %v, want a conflict", berr)
				}
				// The owner's block, made again from the chip as the login
				// left it, goes through and ends the login's session.
				cur, err := owner.Authenticator(ctx, chip.ID)
				must(t, err)
				again, err := p.Block(cur, domain.Owner(id.ID, pw.ID), domain.ReasonLost, t0)
				must(t, err)
				must(t, owner.ApplyChange(ctx, again))
			}
			a, err := owner.Authenticator(ctx, chip.ID)
			must(t, err)
			if a.State != domain.StateBlocked {
				t.Errorf("chip is %s, want blocked", a.State)
			}
			el, err := owner.Element(ctx, chip.ID)
			if err == nil && el.Chip != nil && len(el.Chip.PublicKey) > 0 {
				t.Error("the blocked chip's public key is still stored")
			}
			if _, err := owner.Session(ctx, token, t0); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the login's session after the block: %v, want not found", err)
			}
		})
	}
}

package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/internal/pgtest"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/postgres"
)

// The same benchmarks as server/store/sqlite's, on PostgreSQL (each write
// a commit with synchronous_commit = on), for a side-by-side comparison:
//
//	go test -run '^$' -bench . ./server/store/sqlite ./server/store/postgres

// benchStore opens a store on a fresh schema with, per goroutine, an
// identity of its own with an active authenticator of kind: the writers of
// different people, which must not wait for each other.
func benchStore(b *testing.B, kind device.Kind, goroutines int) (*postgres.Store, []domain.Authenticator) {
	b.Helper()
	ctx := context.Background()
	url := pgtest.URL(b)
	s := open(b, url, pgtest.Schema(b, url, "test_"))
	b.Cleanup(func() { s.Close() })
	p := domain.DefaultPolicy()
	var as []domain.Authenticator
	for g := range goroutines {
		ic, err := domain.NewIdentity(fmt.Sprintf("id-%d", g), sys, t0)
		must(b, err)
		must(b, s.CreateIdentity(ctx, ic))
		id := fmt.Sprintf("a-%d", g)
		var ref domain.Ref
		var el store.Element
		switch kind {
		case device.KindCodeDisplay:
			ref = domain.Ref{Serial: "KV-" + id}
			el = store.Element{Code: &store.CodeElement{Secret: store.Sealed{KeyID: "k1", Blob: []byte("SEALED-" + id)}}}
		default:
			kind = device.KindPassword
			el = store.Element{Password: &store.PasswordElement{Verifier: "$argon2id$" + id}}
		}
		a := domain.Authenticator{ID: id, IdentityID: ic.Identity.ID, Kind: kind, State: domain.StatePending, Ref: ref, CreatedAt: t0, Version: 1}
		must(b, s.CreateAuthenticator(ctx, domain.Change{Authenticator: a}, el))
		c, err := p.Activate(ic.Identity, a, sys, t0)
		must(b, err)
		must(b, s.ApplyChange(ctx, c))
		as = append(as, c.Authenticator)
	}
	return s, as
}

// parallel runs fn(g, i) b.N times in total over goroutines goroutines.
func parallel(b *testing.B, goroutines int, fn func(g, i int) error) {
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		n := b.N / goroutines
		if g < b.N%goroutines {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if err := fn(g, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkAdvanceOTPStep measures accepted one-time codes per second (one
// conditional UPDATE, one durable commit each), one code device per
// goroutine.
func BenchmarkAdvanceOTPStep(b *testing.B) {
	for _, g := range []int{1, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			s, as := benchStore(b, device.KindCodeDisplay, g)
			ctx := context.Background()
			parallel(b, g, func(g, i int) error {
				ok, err := s.AdvanceOTPStep(ctx, as[g].ID, uint64(i+1), 0)
				if err == nil && !ok {
					err = fmt.Errorf("step %d of %s refused", i+1, as[g].ID)
				}
				return err
			})
		})
	}
}

// BenchmarkApplyChange measures recorded logins per second (RecordSuccess:
// a version-checked update plus one audit record, in one durable
// transaction holding the head of the identity's audit chain), one
// identity with one authenticator per goroutine: with 8 goroutines, 8
// people whose writes must not wait for each other.
func BenchmarkApplyChange(b *testing.B) {
	for _, g := range []int{1, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			s, as := benchStore(b, device.KindPassword, g)
			ctx := context.Background()
			p := domain.DefaultPolicy()
			parallel(b, g, func(g, i int) error {
				c, err := p.RecordSuccess(as[g], t0)
				if err != nil {
					return err
				}
				if err := s.ApplyChange(ctx, c); err != nil {
					return err
				}
				as[g] = c.Authenticator
				return nil
			})
		})
	}
}

package sqlite_test

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/sqlite"
	"github.com/authbench/authbench/server/store/storetest"
)

// benchStore opens a durable file store with, per goroutine, an identity
// of its own with an active authenticator of kind.
func benchStore(b *testing.B, kind device.Kind, goroutines int) (*sqlite.Store, []domain.Authenticator) {
	b.Helper()
	ctx := context.Background()
	s := open(b, filepath.Join(b.TempDir(), "bench.db"))
	b.Cleanup(func() { s.Close() })
	p := domain.DefaultPolicy()
	sys := domain.System("bench")
	var as []domain.Authenticator
	for g := range goroutines {
		ic, err := domain.NewIdentity(fmt.Sprintf("id-%d", g), sys, t0)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.CreateIdentity(ctx, ic); err != nil {
			b.Fatal(err)
		}
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
		if err := s.CreateAuthenticator(ctx, domain.Change{Authenticator: a}, el); err != nil {
			b.Fatal(err)
		}
		c, err := p.Activate(ic.Identity, a, sys, t0)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.ApplyChange(ctx, c); err != nil {
			b.Fatal(err)
		}
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

// BenchmarkAdvanceOTPStep measures accepted one-time codes per second on a
// durable file store (each an fsynced commit), one code device per
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
// a version-checked update plus one audit record, in one fsynced
// transaction) on a durable file store, one authenticator per goroutine.
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

// BenchmarkSignCount measures the chip guard of a login (AdvanceSignCount:
// find the chip by its credential ID and move its counter) on in-memory
// stores (no fsync: the statements' own cost) holding 1,000 and 10,000
// chips, beside an anchor measured on the same store: reading an
// authenticator by its primary key. A statement that reads the whole
// authenticators table shows as a ratio to the anchor that grows with the
// number of chips.
func BenchmarkSignCount(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		ctx := context.Background()
		s := open(b, ":memory:")
		sys := domain.System("bench")
		for i := range n {
			ic, err := domain.NewIdentity(fmt.Sprintf("id-%d", i), sys, t0)
			if err != nil {
				b.Fatal(err)
			}
			a := domain.Authenticator{ID: fmt.Sprintf("chip-%d", i), IdentityID: ic.Identity.ID, Kind: device.KindChip,
				State: domain.StateActive, Ref: domain.Ref{CredentialID: fmt.Sprintf("cred-%d", i)}, CreatedAt: t0, ActivatedAt: t0, Version: 1}
			el := store.Element{Chip: &store.ChipElement{PublicKey: []byte("public key")}}
			if err := s.CreateIdentity(ctx, ic, store.NewAuthenticator{Change: domain.Change{Authenticator: a}, Element: el}); err != nil {
				b.Fatal(err)
			}
		}
		var anchor float64
		b.Run(fmt.Sprintf("chips=%d/anchor-read-by-id", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := s.Authenticator(ctx, fmt.Sprintf("chip-%d", i%n)); err != nil {
					b.Fatal(err)
				}
				i++
			}
			anchor = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
		counts := make([]uint32, n) // the stored counters, across runs
		b.Run(fmt.Sprintf("chips=%d/advance", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				k := (i * 7919) % n
				counts[k]++
				ok, err := s.AdvanceSignCount(ctx, fmt.Sprintf("cred-%d", k), counts[k])
				if err != nil || !ok {
					b.Fatalf("count %d of cred-%d: %v %v", counts[k], k, ok, err)
				}
				i++
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(ns/anchor, "x-anchor")
		})
		s.Close()
	}
}

// BenchmarkCommitLogin measures the write of a two-factor chip login
// (CommitLogin: the spent challenge, the signature counter, the password's
// deferred success and the chip's, their audit records and the session
// with its two proofs, in one transaction) with one identity with a
// password and a chip per goroutine: the writer's cost per login, which
// the finish of a login waits for. On a durable file store each batch of
// logins is an fsynced commit; on an in-memory store what is measured is
// the statements' own cost. factor=code logs in with a password and a code
// display (with its serial) instead: the OTP watermark instead of the
// counter and the spent challenge.
func BenchmarkCommitLogin(b *testing.B) {
	for _, c := range []struct {
		db      string
		g, n    int
		untimed bool
		code    bool
	}{{"file", 1, 1, false, false}, {"file", 64, 64, false, false}, {"file", 64, 512, false, false}, {"file", 64, 4096, false, false},
		{"file", 64, 4096, true, false}, {"file", 64, 512, false, true}, {"file", 64, 4096, false, true},
		{"memory", 1, 1, false, false}, {"memory", 64, 64, false, false}, {"memory", 64, 4096, false, false}, {"memory", 64, 512, false, true}, {"memory", 64, 4096, false, true}} {
		name := fmt.Sprintf("db=%s/goroutines=%d/identities=%d", c.db, c.g, c.n)
		if c.untimed {
			name += "/tokens=untimed"
		}
		second := device.KindChip
		if c.code {
			name += "/factor=code"
			second = device.KindCodeDisplay
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			path := ":memory:"
			if c.db == "file" {
				path = filepath.Join(b.TempDir(), "bench.db")
			}
			s := open(b, path)
			b.Cleanup(func() { s.Close() })
			pws, chips := twoFactorIdentitiesOf(b, s, c.n, second)
			counts := make([]uint32, c.n)
			// Goroutine g logs in with the identities perm[g],
			// perm[g + c.g], ... in turn: a batch's logins are of
			// identities (and write keys) far apart, as a server's.
			perm := rand.New(rand.NewPCG(1, 2)).Perm(c.n)
			login := func(g, i int) error {
				k := perm[g+c.g*(i%(c.n/c.g))]
				counts[k]++
				var err error
				key, at := fmt.Sprintf("%d-%d", g, i), t0.Add(time.Duration(i+1)*time.Second)
				token := sessionKey(key, at)
				if c.untimed {
					token = secrets.TokenHash("token-" + key)
				}
				if c.code {
					pws[k], chips[k], err = codeLogin(ctx, s, pws[k], chips[k], key, token, stepOf2025+uint64(counts[k]), at)
				} else {
					pws[k], chips[k], err = chipLogin(ctx, s, pws[k], chips[k], key, token, counts[k], at)
				}
				return err
			}
			// A first login of every identity, unmeasured: the tables
			// of sessions and ceremonies hold a session and a spent
			// challenge per identity, as on a server that runs.
			warm(b, c.g, c.n/c.g, login)
			if c.db == "file" {
				if err := sqlite.StopAutoCheckpoint(s); err != nil {
					b.Fatal(err)
				}
			}
			measureCPU(b, func() {
				parallel(b, c.g, func(g, i int) error { return login(g, 1<<20+i) })
			})
			if c.db == "file" {
				reportWAL(b, s, path+"-wal")
			}
		})
	}
}

// stepOf2025 is a TOTP time step (30 s) of 2025: a code login's step is
// stored in as many bytes as a server's.
const stepOf2025 = 58_000_000

// warm runs fn(g, i) for i < n in each of goroutines goroutines, before
// the measure.
func warm(b *testing.B, goroutines, n int, fn func(g, i int) error) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range n {
				if err := fn(g, i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// reportWAL reports the frames (pages) the bench wrote to the -wal file
// at path per op, and ops per commit, after sqlite.StopAutoCheckpoint:
// what a commit costs the writer is mostly a write of each of its frames.
// With -v it logs the frames per op of each table and index.
func reportWAL(b *testing.B, s *sqlite.Store, path string) {
	b.Helper()
	frames, commits, err := sqlite.WALFrames(path)
	if err != nil {
		b.Fatal(err)
	}
	if commits == 0 {
		b.Fatalf("%s: no commit among %d frames", path, len(frames))
	}
	pages := map[uint32]int{}
	for _, pg := range frames {
		pages[pg]++
	}
	b.ReportMetric(float64(len(frames))/float64(b.N), "frames/op")
	b.ReportMetric(float64(b.N)/float64(commits), "ops/commit")
	names, err := sqlite.PagesOf(s)
	if err != nil {
		b.Logf("no breakdown by table (dbstat: %v)", err)
		return
	}
	by := map[string]int{}
	for pg, n := range pages {
		name := names[pg]
		if name == "" {
			name = fmt.Sprintf("(page %d: free or header)", pg)
			if pg == 1 {
				name = "(page 1)"
			}
		}
		by[name] += n
	}
	keys := slices.SortedFunc(maps.Keys(by), func(x, y string) int { return cmp.Or(by[y]-by[x], strings.Compare(x, y)) })
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "\n  %-40s %6.2f frames/op", k, float64(by[k])/float64(b.N))
	}
	b.Logf("N=%d, %d frames in %d commits:%s", b.N, len(frames), commits, sb.String())
}

// twoFactorIdentities creates n identities, each with an active password
// and an active chip, and returns the passwords and the chips.
func twoFactorIdentities(tb testing.TB, s *sqlite.Store, n int) (pws, chips []domain.Authenticator) {
	tb.Helper()
	return twoFactorIdentitiesOf(tb, s, n, device.KindChip)
}

// twoFactorIdentitiesOf creates n identities, each with an active password
// and an active second factor of kind (a chip, or a code display with a
// serial), and returns the passwords and the second factors.
func twoFactorIdentitiesOf(tb testing.TB, s *sqlite.Store, n int, kind device.Kind) (pws, chips []domain.Authenticator) {
	tb.Helper()
	ctx := context.Background()
	sys := domain.System("bench")
	pws = make([]domain.Authenticator, n)
	chips = make([]domain.Authenticator, n)
	// Created by 64 goroutines at once, so that the writer commits them
	// in batches.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range min(n, 64) {
		wg.Go(func() {
			for i := range next {
				ic, err := domain.NewIdentity(fmt.Sprintf("id-%d", i), sys, t0)
				if err != nil {
					errs <- err
					return
				}
				pws[i] = domain.Authenticator{ID: fmt.Sprintf("pw-%d", i), IdentityID: ic.Identity.ID, Kind: device.KindPassword,
					State: domain.StateActive, CreatedAt: t0, ActivatedAt: t0, Version: 1}
				chips[i] = domain.Authenticator{ID: fmt.Sprintf("chip-%d", i), IdentityID: ic.Identity.ID, Kind: device.KindChip,
					State: domain.StateActive, Ref: domain.Ref{CredentialID: fmt.Sprintf("cred-%d", i)}, CreatedAt: t0, ActivatedAt: t0, Version: 1}
				el := store.Element{Chip: &store.ChipElement{PublicKey: []byte("public key")}}
				if kind == device.KindCodeDisplay {
					chips[i] = domain.Authenticator{ID: fmt.Sprintf("kv-%d", i), IdentityID: ic.Identity.ID, Kind: device.KindCodeDisplay,
						State: domain.StateActive, Ref: domain.Ref{Serial: fmt.Sprintf("KV-%d", i)}, CreatedAt: t0, ActivatedAt: t0, Version: 1}
					el = storetest.ElementFor(device.KindCodeDisplay, chips[i].ID)
				}
				if err := s.CreateIdentity(ctx, ic,
					store.NewAuthenticator{Change: domain.Change{Authenticator: pws[i]}, Element: store.Element{Password: &store.PasswordElement{Verifier: "$argon2id$" + pws[i].ID}}},
					store.NewAuthenticator{Change: domain.Change{Authenticator: chips[i]}, Element: el}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	return pws, chips
}

// sessionKey is the key of a session created at now, as the server's
// (secrets.NewToken: the time, then a hash), its hash made from key.
func sessionKey(key string, now time.Time) []byte {
	_, k := secrets.NewToken(now)
	copy(k[secrets.TokenTimeBytes:], secrets.TokenHash("token-"+key))
	return k
}

// codeLogin writes a two-factor code login of the password pw and the code
// display kv at now (CommitLogin: the OTP watermark to step, both
// successes with their audit record, and the session keyed by token), and
// returns them as the login left them.
func codeLogin(ctx context.Context, s *sqlite.Store, pw, kv domain.Authenticator, key string, token []byte, step uint64, now time.Time) (domain.Authenticator, domain.Authenticator, error) {
	p := domain.DefaultPolicy()
	pc, err := p.RecordSuccess(pw, now)
	if err != nil {
		return pw, kv, err
	}
	kc, err := p.RecordSuccess(kv, now)
	if err != nil {
		return pw, kv, err
	}
	ok, err := s.CommitLogin(ctx, store.Login{Change: kc, Prior: &pc, PriorPlain: true, OTP: &store.OTPGuard{Step: step},
		Session: &store.Session{TokenHash: token, ID: "session-" + key, IdentityID: pw.IdentityID,
			Level: store.LevelTwoFactor, Authenticators: []string{pw.ID, kv.ID}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}})
	if err == nil && !ok {
		err = fmt.Errorf("login %s refused", key)
	}
	return pc.Authenticator, kc.Authenticator, err
}

// chipLogin writes a two-factor chip login of the password pw and the chip
// chip at now (CommitLogin: the spent challenge, the counter
// count, both successes with their audit records, and the session, keyed
// by token; the spent mark keyed by its expiry and a hash of key, as the
// server's spentKey), and returns them as the login left them. BenchmarkCommitLogin's
// tokens=untimed keys sessions by a hash alone, as servers did before
// session tokens carried their time.
func chipLogin(ctx context.Context, s *sqlite.Store, pw, chip domain.Authenticator, key string, token []byte, count uint32, now time.Time) (domain.Authenticator, domain.Authenticator, error) {
	p := domain.DefaultPolicy()
	pc, err := p.RecordSuccess(pw, now)
	if err != nil {
		return pw, chip, err
	}
	cc, err := p.RecordSuccess(chip, now)
	if err != nil {
		return pw, chip, err
	}
	spent := sha256.Sum256([]byte("challenge-" + key))
	ok, err := s.CommitLogin(ctx, store.Login{Change: cc, Prior: &pc, PriorPlain: true,
		Session: &store.Session{TokenHash: token, ID: "session-" + key, IdentityID: pw.IdentityID,
			Level: store.LevelTwoFactor, Authenticators: []string{pw.ID, chip.ID}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		Chip: &store.ChipGuard{Count: count, Spent: store.Ceremony{Key: fmt.Sprintf("spent:%011x", now.Add(time.Minute).UnixMilli()) + hex.EncodeToString(spent[:]), IdentityID: pw.IdentityID, ExpiresAt: now.Add(time.Minute)}}})
	if err == nil && !ok {
		err = fmt.Errorf("login %s refused", key)
	}
	return pc.Authenticator, cc.Authenticator, err
}

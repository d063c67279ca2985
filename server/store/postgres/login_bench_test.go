package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
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

// BenchmarkChipLogin runs the store calls of a chip login as the service
// makes them (a password, then a chip, each with its reservation; the
// password read with its verifier in the set and its attempt released,
// its success written with the chip's in the login's commit, with the
// spent challenge and the session), one identity
// per goroutine, and reports the round trips and statements per login and,
// when the PostgreSQL server runs on this machine, its CPU time per login
// (all its processes, from /proc):
//
//	AUTHBENCH_POSTGRES_URL=… go test -run '^$' -bench ChipLogin ./server/store/postgres
func BenchmarkChipLogin(b *testing.B) {
	for _, g := range []int{1, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			ctx := context.Background()
			url := pgtest.URL(b)
			tr := &roundTrips{}
			s, err := postgres.Open(ctx, url, postgres.Options{Chain: storetest.Chain{}, Schema: pgtest.Schema(b, url, "test_"), Tracer: tr, MaxConns: max(4, g/2)})
			must(b, err)
			b.Cleanup(func() { s.Close() })
			p := domain.DefaultPolicy()
			type person struct{ id, pw, chip string }
			people := make([]person, g)
			for i := range people {
				id := newIdentity(b, s, fmt.Sprint("id-", i)).ID
				pr := person{id: id}
				for _, kind := range []device.Kind{device.KindPassword, device.KindChip} {
					aid := fmt.Sprintf("%s-%d", kind, i)
					a := domain.Authenticator{ID: aid, IdentityID: id, Kind: kind, State: domain.StatePending, Ref: ref(kind, aid), CreatedAt: t0, Version: 1}
					must(b, s.CreateAuthenticator(ctx, domain.Change{Authenticator: a}, element(kind, aid)))
					set, err := s.AuthenticatorSet(ctx, id)
					must(b, err)
					c, err := p.Activate(set.Identity, a, sys, t0)
					must(b, err)
					must(b, s.ApplyChange(ctx, c))
					if kind == device.KindChip {
						pr.chip = aid
					} else {
						pr.pw = aid
					}
				}
				people[i] = pr
			}
			login := func(g, i int) error {
				pr := people[g]
				now := t0.Add(time.Duration(i) * time.Millisecond)
				set, els, err := s.AuthenticatorSetWithPasswords(ctx, pr.id)
				if err != nil {
					return err
				}
				var pw domain.Authenticator
				for i, a := range set.Authenticators {
					if a.ID == pr.pw {
						if pw = a; els[i] == nil {
							return fmt.Errorf("the password of %s came without its verifier", pr.id)
						}
					}
				}
				att := store.Attempt{ID: fmt.Sprintf("att-%d-%d-pw", g, i), AuthenticatorID: pr.pw, ExpiresAt: now.Add(time.Minute)}
				if err := s.ReserveAttempt(ctx, att, 3, now); err != nil {
					return err
				}
				if err := s.EndAttempt(ctx, att.ID, nil); err != nil {
					return err
				}
				if _, _, err := s.AuthenticatorWithIdentity(ctx, pr.chip); err != nil {
					return err
				}
				_, a, _, err := s.AuthenticatorWithElement(ctx, pr.chip, device.KindChip)
				if err != nil {
					return err
				}
				att = store.Attempt{ID: fmt.Sprintf("att-%d-%d-chip", g, i), AuthenticatorID: pr.chip, ExpiresAt: now.Add(time.Minute)}
				if err := s.ReserveAttempt(ctx, att, 3, now); err != nil {
					return err
				}
				c, err := p.RecordSuccess(a, now)
				if err != nil {
					return err
				}
				pc, err := p.RecordSuccess(pw, now)
				if err != nil {
					return err
				}
				count := uint32(max(i+1, 0)) // 0 before the benchmark
				sid := fmt.Sprintf("ses-%d-%d", g, i)
				ok, err := s.CommitLogin(ctx, store.Login{Attempt: att.ID, Change: c, Prior: &pc, PriorPlain: true,
					Chip: &store.ChipGuard{Count: count, Spent: store.Ceremony{Key: "spent-" + sid, IdentityID: pr.id, ExpiresAt: now.Add(time.Minute)}},
					Session: &store.Session{TokenHash: []byte(sid), ID: sid, IdentityID: pr.id, Level: store.LevelTwoFactor,
						Authenticators: []string{pr.pw, pr.chip}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}})
				if err == nil && !ok {
					err = fmt.Errorf("login %d of %s: the sign count was refused", i, pr.id)
				}
				return err
			}
			// Every connection prepares the statements of a login first.
			for i := range people {
				must(b, login(i, -1-i))
			}
			user0, sys0, cpuOK := clusterCPU(b, url)
			trips, stmts := tr.n.Load(), tr.stmts.Load()
			parallel(b, g, login)
			user1, sys1, _ := clusterCPU(b, url)
			b.ReportMetric(float64(tr.n.Load()-trips)/float64(b.N), "round-trips/login")
			b.ReportMetric(float64(tr.stmts.Load()-stmts)/float64(b.N), "statements/login")
			if cpuOK {
				b.ReportMetric(float64((user1-user0).Microseconds())/float64(b.N), "pg-user-µs/login")
				b.ReportMetric(float64((sys1-sys0).Microseconds())/float64(b.N), "pg-sys-µs/login")
			}
		})
	}
}

// clusterCPU returns the CPU time, user and system, that the processes of
// the PostgreSQL server of url running now have used so far, when it runs
// on this machine (found through the parent of a backend, in /proc).
func clusterCPU(b *testing.B, url string) (user, sys time.Duration, ok bool) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, 0, false
	}
	var backend int
	err = c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend)
	c.Close(ctx)
	if err != nil {
		return 0, 0, false
	}
	pm, _, _, ok := procStat(backend)
	if !ok {
		return 0, 0, false
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, false
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, u, s, ok := procStat(pid); ok && (ppid == pm || pid == pm) {
			user += u
			sys += s
		}
	}
	return user, sys, true
}

// procStat reads the parent and the CPU times (user, system) of process
// pid from /proc/PID/stat.
func procStat(pid int) (ppid int, user, sys time.Duration, ok bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, false
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	tick := time.Second / 100 // USER_HZ
	return ppid, time.Duration(ut) * tick, time.Duration(st) * tick, true
}

package sqlite_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
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

// BenchmarkLifecycleWAL measures what each step of a chip's lifecycle
// (enroll, login, block, re-add) writes to the -wal file when 64 clients
// run it at once, as `authbench load --scenario lifecycle` does, so that
// the writer group-commits many of them: b.N chips go through each step
// in turn, and the bench reports per chip and step the frames (pages)
// appended to the log, the chips per commit and the CPU time of the
// process (the store's side only: no HTTP, no crypto). With -v it logs
// the frames per chip of each table and index. Run with
// -benchtime=4000x or so: the pages a commit shares among its chips
// depend on how many chips it carries and how many rows the tables hold.
//
// keys=random are the keys of a server that draws its IDs, challenges and
// session tokens at random; keys=ordered those of one whose authenticator
// IDs, spent marks and session keys begin with the time (service.newID,
// service.spentKey, secrets.NewToken), so that the rows a commit writes
// are neighbours in their B-trees.
func BenchmarkLifecycleWAL(b *testing.B) {
	for _, ordered := range []bool{false, true} {
		b.Run(map[bool]string{false: "keys=random", true: "keys=ordered"}[ordered], func(b *testing.B) {
			benchLifecycleWAL(b, ordered)
		})
	}
}

func benchLifecycleWAL(b *testing.B, ordered bool) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "lifecycle.db")
	s := open(b, path)
	defer s.Close()
	const clients = 64
	owners := make([]*storetest.ChipOwner, b.N)
	pws := make([]domain.Authenticator, b.N)
	// The clock moves as a server's: expiry times (of sessions, of spent
	// challenges) grow from commit to commit.
	start := time.Now()
	now := func() time.Time { return t0.Add(time.Since(start)) }
	key := func(n int) string { return randomHex(n) }
	// The key of a session: SHA-256 of an untimed token, or the creation
	// time and that hash of a timed one (secrets.NewToken).
	token := func(time.Time) []byte { return secrets.TokenHash(randomHex(16)) }
	if ordered {
		key = func(n int) string { return fmt.Sprintf("%012x", now().UnixNano()/1000) + randomHex(n) }
		token = func(at time.Time) []byte { _, k := secrets.NewToken(at); return k }
	}
	inParallel(b, clients, b.N, func(i int) error {
		id := fmt.Sprintf("load-chip-%d", i) // as authbench load names them
		o, err := storetest.NewChipOwner(ctx, s, id, t0)
		owners[i] = o
		// The password as NewChipOwner creates it.
		pws[i] = domain.Authenticator{ID: "pw-" + id, IdentityID: id, Kind: device.KindPassword, State: domain.StateActive,
			CreatedAt: t0, ActivatedAt: t0, Version: 1}
		return err
	})
	// One whole lifecycle first, unmeasured, so that the tables hold a
	// chip, a session and a tombstone per identity, as a server that ran.
	steps := []struct {
		name string
		fn   func(i int) error
	}{
		{"enroll", func(i int) error { return enrollKeyed(ctx, owners[i], now(), key) }},
		{"login", func(i int) error {
			o := owners[i]
			var err error
			at := now()
			pws[i], o.Chip, err = chipLoginKeyed(ctx, s, pws[i], o.Chip, token(at), "spent:"+key(32), at)
			return err
		}},
		{"block", func(i int) error { return owners[i].Block(ctx, now()) }},
		{"re-add", func(i int) error { return enrollKeyed(ctx, owners[i], now(), key) }},
	}
	for _, st := range steps {
		inParallel(b, clients, b.N, st.fn)
	}
	// The re-added chip is blocked again, so that the measured enroll is
	// another re-add as the first one (the policy's quota of chips).
	inParallel(b, clients, b.N, steps[2].fn)
	b.ResetTimer()
	var total, totalCommits int
	for _, st := range steps {
		if err := sqlite.StopAutoCheckpoint(s); err != nil {
			b.Fatal(err)
		}
		cpu := processCPU()
		inParallel(b, clients, b.N, st.fn)
		cpu = processCPU() - cpu
		frames, commits, err := sqlite.WALFrames(path + "-wal")
		if err != nil {
			b.Fatal(err)
		}
		total += len(frames)
		totalCommits += commits
		b.ReportMetric(float64(len(frames))/float64(b.N), st.name+"-frames/chip")
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), st.name+"-cpu-µs/chip")
		b.Logf("%s: %d frames in %d commits, %.1f chips/commit, %.1f µs CPU/chip:%s", st.name, len(frames), commits,
			float64(b.N)/float64(max(commits, 1)), float64(cpu.Microseconds())/float64(b.N), framesByTree(b, s, frames, b.N))
	}
	b.ReportMetric(float64(total)/float64(b.N), "frames/chip")
	b.ReportMetric(4*float64(b.N)/float64(max(totalCommits, 1)), "steps/commit")
}

// framesByTree returns, one line each, the frames per op of the tables
// and indexes the pages of frames belong to, most first.
func framesByTree(tb testing.TB, s *sqlite.Store, frames []uint32, ops int) string {
	names, err := sqlite.PagesOf(s)
	if err != nil {
		return fmt.Sprintf(" (no breakdown: %v)", err)
	}
	by := map[string]int{}
	for _, pg := range frames {
		name := names[pg]
		switch {
		case pg == 1:
			name = "(page 1)"
		case name == "":
			name = "(free page)"
		}
		by[name]++
	}
	keys := slices.SortedFunc(maps.Keys(by), func(x, y string) int { return cmp.Or(by[y]-by[x], strings.Compare(x, y)) })
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "\n  %-40s %6.2f frames/chip", k, float64(by[k])/float64(ops))
	}
	return sb.String()
}

// inParallel runs fn(i) for every i < n on goroutines goroutines.
func inParallel(tb testing.TB, goroutines, n int, fn func(i int) error) {
	tb.Helper()
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for range goroutines {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
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
}

// enrollKeyed is storetest.ChipOwner.Enroll with the server's keys: an
// authenticator ID and a spent mark of key, a credential ID of 32 random
// bytes (as the chips').
func enrollKeyed(ctx context.Context, o *storetest.ChipOwner, now time.Time, key func(n int) string) error {
	aid := "chip-" + key(8)
	p := domain.DefaultPolicy()
	var existing []domain.Authenticator
	if o.Chip.ID != "" {
		existing = append(existing, o.Chip)
	}
	add, err := p.Add(o.Identity, existing, nil, domain.AddRequest{ID: aid, Kind: device.KindChip,
		Ref: domain.Ref{CredentialID: base64.RawURLEncoding.EncodeToString([]byte(randomHex(16)))}, Label: "chip"}, domain.Support("op-lifecycle"), now)
	if err != nil {
		return err
	}
	act, err := p.Activate(o.Identity, add.Authenticator, domain.Support("op-lifecycle"), now)
	if err != nil {
		return err
	}
	c := domain.Change{Authenticator: act.Authenticator, Events: append(add.Events, act.Events...)}
	spent := store.Ceremony{Key: "spent:" + key(32), IdentityID: o.Identity.ID, ExpiresAt: now.Add(5 * time.Minute)}
	if err := o.S.CreateRegistered(ctx, c, storetest.ElementFor(device.KindChip, aid), o.Version, spent); err != nil {
		return err
	}
	o.Chip = c.Authenticator
	o.Version++
	return nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// chipLoginKeyed is chipLogin with the session's key and the spent mark's
// key given.
func chipLoginKeyed(ctx context.Context, s *sqlite.Store, pw, chip domain.Authenticator, token []byte, spent string, now time.Time) (domain.Authenticator, domain.Authenticator, error) {
	p := domain.DefaultPolicy()
	pc, err := p.RecordSuccess(pw, now)
	if err != nil {
		return pw, chip, err
	}
	cc, err := p.RecordSuccess(chip, now)
	if err != nil {
		return pw, chip, err
	}
	ok, err := s.CommitLogin(ctx, store.Login{Change: cc, Prior: &pc, PriorPlain: true,
		Session: &store.Session{TokenHash: token, ID: "ses-" + hex.EncodeToString(token[len(token)-8:]), IdentityID: pw.IdentityID,
			Level: store.LevelTwoFactor, Authenticators: []string{pw.ID, chip.ID}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		Chip: &store.ChipGuard{Count: uint32(cc.Authenticator.Version), Spent: store.Ceremony{Key: spent, IdentityID: pw.IdentityID, ExpiresAt: now.Add(time.Minute)}}})
	if err == nil && !ok {
		err = fmt.Errorf("login of %s refused", chip.ID)
	}
	return pc.Authenticator, cc.Authenticator, err
}

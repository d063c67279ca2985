package scaletest

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/service/servicetest"
	"github.com/authbench/authbench/sim/chip"
)

// BenchmarkLogins measures whole logins over HTTP against real `authbench
// serve` processes, as MitID logs in: the password (argon2id with the
// server's default parameters) with the second factor chosen, on one
// replica, the proof (a one-time code, or a chip assertion signed by a
// simulated chip in this process), finish on the next replica (round
// robin), benchClients clients at once. It runs
// on one server over SQLite, one server over PostgreSQL and three replicas
// over one PostgreSQL database (the PostgreSQL variants are skipped like
// the tests' when AUTHBENCH_POSTGRES_URL is unset), reporting logins/s:
//
//	go test -run '^$' -bench Logins -benchtime 3s ./server/scaletest
//
// The servers run in real time, so a code device has one fresh code per
// 30 s step (RFC 6238 §5.2: a code at or below the highest step used is
// refused; the servers accept one step of skew either way). Each OTP login
// therefore takes a device whose next code is still unused: the code of
// the current step, or of the next one. Before each timed run enough
// devices are enrolled (PSKC import, identity, add, activate with the
// current code) that b.N logins never run out; devices of earlier runs
// are used again once their clock has moved on. Chip logins use a pool of
// 2×benchClients chips, each used by one login at a time so that its
// signature counter reaches the server in order.
func BenchmarkLogins(b *testing.B) {
	for _, be := range benchBackends {
		b.Run(be.name, func(b *testing.B) {
			db := be.open(b)
			c := newCluster(b, be.name, db, be.replicas)
			ctx := benchContext(b)
			rig := newBenchRig(b, c)
			b.Run("otp", func(b *testing.B) {
				codes := rig.codes(b, ctx)
				runLogins(b, rig, codes.login)
			})
			b.Run("chip", func(b *testing.B) {
				chips := rig.chips(b, ctx)
				runLogins(b, rig, chips.login)
			})
		})
	}
}

// benchBackends are the deployments measured.
var benchBackends = []backend{
	{name: "sqlite×1", replicas: 1, open: backends[0].open},
	{name: "postgres×1", replicas: 1, open: freshPostgres},
	{name: "postgres×3", replicas: 3, open: freshPostgres},
}

// benchClients is the number of clients logging in at once.
const benchClients = 32

// benchContext is a failure guard for one deployment's benchmarks.
func benchContext(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(cancel)
	return ctx
}

// benchRig is what the benchmarks of one deployment share: its clients,
// the round-robin counter and the enrolled devices.
type benchRig struct {
	b  *testing.B // the deployment's benchmark: its cleanups run once, at the end
	c  *cluster
	rr atomic.Uint64 // round robin over the replicas

	// conns[w][r] is worker w's client of replica r: each worker has its
	// own source address (cluster.sources).
	conns [][]*client.Client

	codePool *codePool
	chipPool *chipPool
}

func newBenchRig(b *testing.B, c *cluster) *benchRig {
	r := &benchRig{b: b, c: c, codePool: &codePool{}}
	n := c.replicas()
	for w := range benchClients {
		row := make([]*client.Client, n)
		for i := range n {
			row[i] = c.anon(w*n + i) // replica i, source slot w*n+i
		}
		r.conns = append(r.conns, row)
	}
	return r
}

// pair returns worker w's clients for the begin and the finish of one
// login: consecutive replicas.
func (r *benchRig) pair(w int) (begin, finish *client.Client) {
	row := r.conns[w%len(r.conns)]
	k := r.rr.Add(1)
	return row[k%uint64(len(row))], row[(k+1)%uint64(len(row))]
}

// loginFunc performs one login for worker w and returns the server's
// answer code ("ok", "wrong_code", ...; see answer).
type loginFunc func(ctx context.Context, w int, begin, finish *client.Client) string

// runLogins times b.N logins by benchClients workers (b.RunParallel) and
// reports logins/s and misses (logins refused) per op. Any answer other
// than ok is an error, except a code refused as replayed or wrong, which
// a device's clock at a step boundary could cause and which is counted in
// miss/op.
func runLogins(b *testing.B, rig *benchRig, login loginFunc) {
	ctx := benchContext(b)
	var (
		worker atomic.Int64
		misses atomic.Int64
		mu     sync.Mutex
		errs   = map[string]int{}
	)
	b.SetParallelism(max(1, (benchClients+parallelProcs()-1)/parallelProcs()))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := int(worker.Add(1) - 1)
		for pb.Next() {
			begin, finish := rig.pair(w)
			switch code := login(ctx, w, begin, finish); code {
			case "ok":
			case "wrong_code", "code_replayed":
				misses.Add(1)
			default:
				mu.Lock()
				errs[code]++
				mu.Unlock()
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	b.ReportMetric(float64(misses.Load())/float64(b.N), "miss/op")
	if len(errs) > 0 {
		b.Errorf("%d logins over %d replica(s): unexpected answers %v", b.N, rig.c.replicas(), errs)
	}
}

// parallelProcs is GOMAXPROCS, by which RunParallel multiplies the
// parallelism.
func parallelProcs() int { return max(1, runtime.GOMAXPROCS(0)) }

// --- one-time codes ---

// codeDevice is an enrolled code device and the highest time step whose
// code it has used.
type codeDevice struct {
	mu       sync.Mutex
	id, aid  string
	dev      servicetest.CodeDevice
	lastStep uint64
}

// codePool is the enrolled code devices of one deployment. It only grows,
// and only between timed runs.
type codePool struct {
	devs []*codeDevice
	next atomic.Uint64
}

// totpStep is the RFC 6238 time step (30 s, T0 = 0) of t.
func totpStep(t time.Time) uint64 { return uint64(t.Unix()) / 30 }

// unused returns how many logins the devices can make now: codes of the
// steps after each one's last, up to the next step (one step of skew).
func (p *codePool) unused(now time.Time) int {
	step, n := totpStep(now), 0
	for _, d := range p.devs {
		if d.lastStep <= step {
			n += int(step + 1 - d.lastStep)
		}
	}
	return n
}

// codes makes sure the pool can serve b.N logins, enrolling devices.
func (r *benchRig) codes(b *testing.B, ctx context.Context) *codePool {
	p := r.codePool
	need := b.N - p.unused(time.Now())
	if need <= 0 {
		return p
	}
	devs := make([]servicetest.CodeDevice, need) // each adds at least one code
	for i := range devs {
		devs[i] = newCodeDevice(b)
	}
	for i := 0; i < len(devs); i += 200 { // PSKC documents of a modest size
		importCodeDevices(b, ctx, r.c, devs[i:min(i+200, len(devs))]...)
	}
	added := make([]*codeDevice, need)
	_, err := prepare(ctx, need, benchClients, func(i int) error {
		d, err := r.enrollCode(ctx, i, devs[i])
		added[i] = d
		return err
	})
	fatal(b, err)
	p.devs = append(p.devs, added...)
	return p
}

// enrollCode gives dev an identity of its own (one active code device per
// identity) and activates it with the code of the current step.
func (r *benchRig) enrollCode(ctx context.Context, i int, dev servicetest.CodeDevice) (*codeDevice, error) {
	sup := r.c.support(i)
	id := fmt.Sprintf("bench-%s", dev.Serial)
	if _, err := sup.CreateIdentity(ctx, client.CreateIdentityRequest{ID: id, Password: benchPassword}); err != nil {
		return nil, err
	}
	added, err := sup.AddAuthenticator(ctx, id, client.AddRequest{Kind: client.KindCodeDisplay, Label: "code display", Serial: dev.Serial})
	if err != nil {
		return nil, err
	}
	aid := added.Authenticator.ID
	now := time.Now()
	if _, err := sup.Activate(ctx, id, aid, client.ActivateRequest{Code: dev.Code(now)}); err != nil {
		return nil, fmt.Errorf("activate %s: %w", dev.Serial, err)
	}
	return &codeDevice{id: id, aid: aid, dev: dev, lastStep: totpStep(now)}, nil
}

// login logs in with the next device that has an unused code (the
// current step's or the next one's) and is not in use by another worker.
func (p *codePool) login(ctx context.Context, w int, begin, finish *client.Client) string {
	n := uint64(len(p.devs))
	start := p.next.Add(1)
	for k := range n {
		d := p.devs[(start+k)%n]
		if !d.mu.TryLock() {
			continue
		}
		step := totpStep(time.Now())
		use := max(d.lastStep+1, step)
		if use > step+1 {
			d.mu.Unlock()
			continue
		}
		d.lastStep = use
		code := d.dev.Code(time.Unix(int64(use)*30, 0))
		got := loginWith(ctx, begin, finish, d.id, d.aid, func(*client.FactorChallenge) (client.FinishLoginRequest, error) {
			return client.FinishLoginRequest{Code: code}, nil
		})
		d.mu.Unlock()
		return got
	}
	return "benchmark: no code device has an unused code left"
}

// benchPassword is the password of the benchmarks' identities: chips and
// code devices are second factors, used after it.
const benchPassword = "the benchmark identities' password"

// loginWith logs in as MitID does: it sends the password with the second
// factor aid chosen on begin, makes the proof, and finishes on finish; it
// returns the answer code.
func loginWith(ctx context.Context, begin, finish *client.Client, id, aid string, proof func(*client.FactorChallenge) (client.FinishLoginRequest, error)) string {
	step, err := begin.PasswordLogin(ctx, id, benchPassword, aid)
	if err != nil {
		return "password: " + answer(err)
	}
	req, err := proof(step.Next)
	if err != nil {
		return "proof: " + err.Error()
	}
	req.Ceremony = step.Next.Ceremony
	_, err = finish.FinishLogin(ctx, id, req)
	return answer(err)
}

// --- chips ---

// benchChip is an enrolled simulated chip.
type benchChip struct {
	mu      sync.Mutex
	id, aid string
	chip    *chip.Chip
}

// chipPool is the enrolled chips of one deployment.
type chipPool struct {
	chips []*benchChip
	next  atomic.Uint64
}

// chips enrolls the deployment's chips on first use (2×benchClients, so a
// worker rarely waits for a chip).
func (r *benchRig) chips(b *testing.B, ctx context.Context) *chipPool {
	if r.chipPool != nil {
		return r.chipPool
	}
	p := &chipPool{chips: make([]*benchChip, 2*benchClients)}
	_, err := prepare(ctx, len(p.chips), benchClients, func(i int) error {
		ch, err := chip.New(chip.Options{Seed: random(b, 32)})
		if err != nil {
			return err
		}
		r.b.Cleanup(func() { ch.Close() }) // not b's: those run after every timed run
		id := uniqueName(b, "bench-chip-")
		sup := r.c.support(i)
		if _, err := sup.CreateIdentity(ctx, client.CreateIdentityRequest{ID: id, Password: benchPassword}); err != nil {
			return err
		}
		a, err := client.EnrollChip(ctx, sup, id, "chip", ch)
		if err != nil {
			return err
		}
		p.chips[i] = &benchChip{id: id, aid: a.ID, chip: ch}
		return nil
	})
	fatal(b, err)
	r.chipPool = p
	return p
}

// login logs in with the next chip not in use: begin, a getAssertion on
// the simulated chip (ES256 signature), finish. A chip is used by one
// login at a time so that its counter reaches the servers in order.
func (p *chipPool) login(ctx context.Context, w int, begin, finish *client.Client) string {
	n := uint64(len(p.chips))
	start := p.next.Add(1)
	for {
		for k := range n {
			ch := p.chips[(start+k)%n]
			if !ch.mu.TryLock() {
				continue
			}
			got := loginWith(ctx, begin, finish, ch.id, ch.aid, func(lc *client.FactorChallenge) (client.FinishLoginRequest, error) {
				r, err := client.ChipAssertion(ctx, ch.chip, lc.PublicKey, origin)
				return client.FinishLoginRequest{Credential: r}, err
			})
			ch.mu.Unlock()
			return got
		}
		if ctx.Err() != nil { // every chip busy until the guard ended
			return "benchmark: " + answer(ctx.Err())
		}
	}
}

package scaletest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/service/servicetest"
)

// Crash safety (DESIGN §7: "kill -9 mid-load loses no acknowledged
// change"): workers drive state changes through one server, every change
// the server acknowledged with a 2xx (or with the 401 of a counted failed
// attempt) is written down, the server is killed with SIGKILL at a random
// moment, and after a restart on the same database every acknowledged
// change must be there, with nothing half applied.

const (
	defaultKills   = 5
	killsEnv       = "AUTHBENCH_KILLS"
	crashWorkers   = 6
	crashPeople    = 3 // per worker at the start, each with a password and a code display
	minAcksPerKill = 8 // the kill waits for this many acknowledgements in its round
)

// TestKillNine kills the server (SIGKILL) in the middle of a load of
// wrong codes and passwords, blocks, reactivations and identity creations,
// AUTHBENCH_KILLS times (default 5), and checks after each restart that
// every acknowledged change is present, that state, wiped element and audit
// events agree, and that the audit chain verifies.
func TestKillNine(t *testing.T) {
	t.Parallel()
	kills := defaultKills
	if v := os.Getenv(killsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", killsEnv, v)
		}
		kills = n
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		db := b.open(t)
		c := newCluster(t, b.name, db, 1)
		ctx := testContext(t)
		seed := rand.Uint64()
		t.Logf("random seed %d", seed)
		w := newWorld(t, ctx, c, rand.New(rand.NewPCG(seed, seed>>1|1)))
		w.setup()
		survived := 0
		for round := 1; round <= kills && !t.Failed(); round++ {
			w.round(round)
			survived++
		}
		t.Logf("%d kill -9 survived; %d acknowledged changes verified (%d identities, %d authenticators, %d in-flight operations resolved) over %d checks of every identity",
			survived, w.verified, len(w.people), w.authCount(), w.resolved, survived)
		states := map[string]int{}
		for _, p := range w.people {
			for _, a := range p.auths {
				states[a.state]++
			}
		}
		t.Logf("authenticators at the end: %d active, %d suspended, %d blocked", states[client.StateActive], states[client.StateSuspended], states[client.StateBlocked])
	})
}

// Operations of the load.
type opKind int

const (
	opCreate     opKind = iota // create an identity with a password
	opWrong                    // a login with a wrong password or code
	opBlock                    // support blocks an authenticator (reason lost)
	opReactivate               // support reactivates a suspended authenticator
)

func (k opKind) String() string {
	return [...]string{"create identity", "wrong attempt", "block", "reactivate"}[k]
}

// auth is what the test knows of one authenticator: its state as last
// acknowledged by the server.
type auth struct {
	id          string
	kind        string
	state       string
	failures    int
	suspensions int
}

// after returns a's state once op has been applied (DESIGN §1 with the
// default policy: the 3rd consecutive failure suspends, the 3rd suspension
// blocks for good).
func (a auth) after(op opKind) auth {
	switch op {
	case opWrong:
		a.failures++
		if a.failures >= maxFailures {
			a.state = client.StateSuspended
			if a.kind == client.KindPassword {
				// Wrong passwords are anonymous: they suspend, and
				// never count toward a permanent block.
				break
			}
			a.suspensions++
			if a.suspensions >= 3 {
				a.state = client.StateBlocked
			}
		}
	case opBlock:
		a.state = client.StateBlocked
	case opReactivate:
		a.state, a.failures = client.StateActive, 0
	}
	return a
}

func (a auth) String() string {
	return fmt.Sprintf("%s failures=%d suspensions=%d", a.state, a.failures, a.suspensions)
}

// person is an identity the load created or changes. Only its worker
// touches it during a round.
type person struct {
	id      string
	worker  int  // the worker that changes it
	created bool // the creation was acknowledged (or seen after a kill)
	auths   []*auth
	dev     *servicetest.CodeDevice // the code display's secret, if it has one

	// pending is the operation in flight when the server died: it may or
	// may not have been applied. target is its authenticator (-1 for the
	// creation).
	pending *opKind
	target  int
	// acked counts the changes acknowledged since the last check.
	acked int
}

// world is the crash test's load and its record.
type world struct {
	t      *testing.T
	ctx    context.Context
	c      *cluster
	rnd    *rand.Rand // setup and kill timing; workers have their own
	people []*person

	verified int // acknowledged changes found after a restart
	resolved int // in-flight operations whose outcome was settled
	nextID   atomic.Int64
	prefix   string
}

func newWorld(t *testing.T, ctx context.Context, c *cluster, rnd *rand.Rand) *world {
	return &world{t: t, ctx: ctx, c: c, rnd: rnd, prefix: uniqueName(t, "crash-")}
}

// setup creates crashPeople identities per worker, each with a password
// and an active code display.
func (w *world) setup() {
	t, ctx := w.t, w.ctx
	devs := make([]servicetest.CodeDevice, crashWorkers*crashPeople)
	for i := range devs {
		devs[i] = newCodeDevice(t)
	}
	importCodeDevices(t, ctx, w.c, devs...)
	w.people = make([]*person, len(devs))
	_, err := prepare(ctx, len(devs), 8, func(i int) error {
		id := fmt.Sprintf("%s-p%d", w.prefix, i)
		p, err := w.c.support(i).CreateIdentity(ctx, client.CreateIdentityRequest{ID: id, Password: "password of " + id})
		if err != nil {
			return err
		}
		pw := p.Authenticators[0]
		added, err := w.c.support(i).AddAuthenticator(ctx, id, client.AddRequest{Kind: client.KindCodeDisplay, Serial: devs[i].Serial})
		if err != nil {
			return err
		}
		code, err := w.c.support(i).Activate(ctx, id, added.Authenticator.ID, client.ActivateRequest{Code: devs[i].Code(time.Now())})
		if err != nil {
			return err
		}
		w.people[i] = &person{id: id, worker: i % crashWorkers, created: true, dev: &devs[i], auths: []*auth{viewAuth(&pw), viewAuth(code)}}
		return nil
	})
	fatal(t, err)
}

func viewAuth(a *client.Authenticator) *auth {
	return &auth{id: a.ID, kind: a.Kind, state: a.State, failures: a.Failures, suspensions: a.Suspensions}
}

func (w *world) authCount() int {
	n := 0
	for _, p := range w.people {
		n += len(p.auths)
	}
	return n
}

// round runs the load until the server has been killed, then checks the
// database, restarts the server, and checks every identity.
func (w *world) round(n int) {
	t, ctx := w.t, w.ctx
	stop := make(chan struct{})
	acks := make(chan struct{}, 1024)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created []*person
	)
	for k := range crashWorkers {
		mine := w.mine(k)
		rnd := rand.New(rand.NewPCG(w.rnd.Uint64(), uint64(k)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range w.work(k, rnd, mine, stop, acks) {
				mu.Lock()
				created = append(created, p)
				mu.Unlock()
			}
		}()
	}
	// Kill at a random moment once the load is under way.
	got := 0
	for got < minAcksPerKill {
		select {
		case <-acks:
			got++
		case <-ctx.Done():
			close(stop)
			wg.Wait()
			t.Fatalf("round %d: the load made only %d acknowledged changes: %v", n, got, ctx.Err())
		}
	}
	time.Sleep(time.Duration(w.rnd.IntN(300)) * time.Millisecond)
	w.c.mu.Lock()
	s := w.c.servers[0]
	w.c.mu.Unlock()
	s.kill()
	close(stop)
	wg.Wait()
	w.people = append(w.people, created...)
	acked := 0
	for _, p := range w.people {
		acked += p.acked
	}

	// The database as the kill left it: the audit chain must verify
	// before the server repairs anything.
	out, err := runCommand(ctx, t, "audit", "verify", "--db", w.c.cfg.DB, "--master-key", w.c.cfg.MasterKey)
	if err != nil {
		t.Fatalf("round %d: authbench audit verify after kill -9: %v\n%s", n, err, out)
	}
	s2, err := startServer(t, w.c.cfg)
	fatal(t, err)
	w.c.mu.Lock()
	w.c.servers[0] = s2
	w.c.mu.Unlock()

	before := w.verified
	w.check(n)
	v, err := w.c.support(0).VerifyAudit(ctx)
	fatal(t, err)
	if !v.OK {
		t.Errorf("round %d: GET /v1/audit/verify after the restart: broken at %+v", n, v.Break)
	}
	t.Logf("round %d: killed after %d acknowledged changes in the round; restarted; %d verified; audit chain of %d records intact",
		n, acked, w.verified-before, v.Records)
}

// mine returns the people worker k owns.
func (w *world) mine(k int) []*person {
	var out []*person
	for _, p := range w.people {
		if p.worker == k {
			out = append(out, p)
		}
	}
	return out
}

// work is worker k's load: operations on its people until stop is closed
// or a request gets no answer (the server died; that operation is left
// pending). It returns the people it created (acknowledged or pending).
func (w *world) work(k int, rnd *rand.Rand, mine []*person, stop <-chan struct{}, acks chan<- struct{}) []*person {
	var created []*person
	for {
		select {
		case <-stop:
			return created
		default:
		}
		p, target, op := w.pick(k, rnd, mine)
		if op == opCreate {
			p = &person{id: fmt.Sprintf("%s-w%d-%d", w.prefix, k, w.nextID.Add(1)), worker: k, target: -1}
			created = append(created, p)
			mine = append(mine, p)
		}
		done, err := w.do(k, p, target, op)
		switch {
		case err != nil && isRateLimited(err):
			if op == opCreate { // refused before anything happened
				created, mine = created[:len(created)-1], mine[:len(mine)-1]
			}
			select {
			case <-stop:
				return created
			case <-time.After(100 * time.Millisecond):
			}
		case err != nil && done:
			w.t.Errorf("worker %d: %s on %s: %v", k, op, p.id, err)
			return created
		case err != nil:
			o := op
			p.pending, p.target = &o, target
			return created
		default:
			p.acked++
			select {
			case acks <- struct{}{}:
			default:
			}
		}
	}
}

// pick chooses the next operation of worker k.
func (w *world) pick(k int, rnd *rand.Rand, mine []*person) (*person, int, opKind) {
	if rnd.IntN(10) == 0 {
		return nil, -1, opCreate
	}
	for range 20 {
		p := mine[rnd.IntN(len(mine))]
		if !p.created || len(p.auths) == 0 {
			continue
		}
		i := rnd.IntN(len(p.auths))
		switch a := p.auths[i]; a.state {
		case client.StateActive:
			if rnd.IntN(25) == 0 {
				return p, i, opBlock
			}
			if pw := p.auths[0]; a.kind != client.KindPassword && (pw.state != client.StateActive || pw.failures != 0) {
				// A wrong code comes after the right password, which
				// resets the password's count: only try it when that
				// changes nothing the model tracks.
				continue
			}
			return p, i, opWrong
		case client.StateSuspended:
			if rnd.IntN(10) == 0 {
				return p, i, opBlock
			}
			return p, i, opReactivate
		}
	}
	return nil, -1, opCreate
}

// do performs op and records its acknowledged outcome. done reports that
// the server answered (err is then an answer the model did not expect);
// a rate-limited request is not done and changed nothing.
func (w *world) do(k int, p *person, target int, op opKind) (done bool, err error) {
	ctx := w.ctx
	sup := w.c.support(k)
	anon := w.c.anon(k)
	switch op {
	case opCreate:
		id, err := sup.CreateIdentity(ctx, client.CreateIdentityRequest{ID: p.id, Password: "password of " + p.id})
		if err != nil {
			return answered(err), err
		}
		if len(id.Authenticators) != 1 || id.Authenticators[0].State != client.StateActive {
			return true, fmt.Errorf("new identity has authenticators %+v, want one active password", id.Authenticators)
		}
		p.created = true
		p.auths = []*auth{viewAuth(&id.Authenticators[0])}
		return true, nil
	case opWrong:
		a := p.auths[target]
		if a.kind == client.KindPassword {
			_, err = anon.PasswordLogin(ctx, p.id, "not the password", "")
		} else {
			// The right password first: a code device is asked for
			// only after it.
			step, perr := anon.PasswordLogin(ctx, p.id, "password of "+p.id, a.id)
			if perr != nil {
				return answered(perr), perr
			}
			_, err = anon.FinishLogin(ctx, p.id, client.FinishLoginRequest{Ceremony: step.Next.Ceremony, Code: wrongCode(*p.dev)})
		}
		var ae *client.APIError
		if !errors.As(err, &ae) || !errors.Is(err, client.ErrFailedAttempt) {
			if err == nil {
				err = errors.New("the wrong proof was accepted")
			}
			return answered(err), err
		}
		want := a.after(opWrong)
		f, _ := ae.Failures()
		if f != want.failures || ae.State() != want.state {
			return true, fmt.Errorf("answer says failures=%d state=%s, want %s (from %s)", f, ae.State(), want, a)
		}
		*a = want
		return true, nil
	case opBlock, opReactivate:
		a := p.auths[target]
		var v *client.Authenticator
		if op == opBlock {
			v, err = sup.Block(ctx, p.id, a.id, client.ReasonLost)
		} else {
			v, err = sup.Reactivate(ctx, p.id, a.id)
		}
		if err != nil {
			return answered(err), err
		}
		want := a.after(op)
		if got := *viewAuth(v); got.state != want.state || got.failures != want.failures || got.suspensions != want.suspensions {
			return true, fmt.Errorf("answer is %s, want %s (from %s)", got, want, a)
		}
		*a = want
		return true, nil
	}
	return true, fmt.Errorf("unknown operation %d", op)
}

// answered reports whether err is an answer of the server (as opposed to
// no answer, or a rate limit, which changes nothing and is retried).
// A 5xx counts as no answer: the change may or may not have happened.
func answered(err error) bool {
	var ae *client.APIError
	return errors.As(err, &ae) && ae.Status < 500 && !isRateLimited(err)
}

// wrongCode returns a code that dev does not show at any step near now.
func wrongCode(dev servicetest.CodeDevice) string {
	valid := map[string]bool{}
	now := time.Now()
	for k := -4; k <= 4; k++ {
		valid[dev.Code(now.Add(time.Duration(k)*dev.Period))] = true
	}
	for v := rand.IntN(1_000_000); ; v = (v + 1) % 1_000_000 {
		if c := fmt.Sprintf("%06d", v); !valid[c] {
			return c
		}
	}
}

// check compares every identity with the record after a restart: an
// acknowledged change must be there; an operation in flight at the kill
// may or may not be; each authenticator's state, wiped element and audit
// events must agree.
func (w *world) check(round int) {
	t, ctx := w.t, w.ctx
	sup := w.c.support(0)
	kept := w.people[:0]
	for _, p := range w.people {
		id, err := sup.Identity(ctx, p.id)
		if errors.Is(err, client.ErrNotFound) {
			if p.created {
				t.Errorf("round %d: acknowledged identity %s is gone after kill -9", round, p.id)
			} else {
				w.resolved++ // its creation never happened
			}
			continue
		}
		fatal(t, err)
		if !p.created { // created just before the kill
			if len(id.Authenticators) != 1 || id.Authenticators[0].State != client.StateActive {
				t.Errorf("round %d: identity %s, created as the server died, has %d authenticators; want one active password (the identity and its password must be created together or not at all)", round, p.id, len(id.Authenticators))
			}
			p.created = true
			p.auths = nil
			for i := range id.Authenticators {
				p.auths = append(p.auths, viewAuth(&id.Authenticators[i]))
			}
			p.pending = nil
			w.resolved++
		}
		events, err := sup.AllAudit(ctx, p.id)
		fatal(t, err)
		if !hasEvent(events, "identity.created", "") {
			t.Errorf("round %d: identity %s has no identity.created event", round, p.id)
		}
		for i, a := range p.auths {
			got := id.Authenticator(a.id)
			if got == nil {
				t.Errorf("round %d: authenticator %s of %s is gone", round, a.id, p.id)
				continue
			}
			seen := *viewAuth(got)
			ok := sameAuth(seen, *a)
			if p.pending != nil && p.target == i {
				ok = ok || sameAuth(seen, a.after(*p.pending))
				w.resolved++
			}
			if !ok {
				msg := fmt.Sprintf("round %d: %s %s of %s is %s after kill -9, acknowledged %s", round, a.kind, a.id, p.id, seen, a)
				if p.pending != nil && p.target == i {
					msg += fmt.Sprintf(" (a %s was in flight)", *p.pending)
				}
				t.Error(msg)
			}
			checkConsistent(t, round, p.id, got, events)
			*a = seen
		}
		w.verified += p.acked
		p.acked, p.pending = 0, nil
		kept = append(kept, p)
	}
	w.people = kept
}

func sameAuth(a, b auth) bool {
	return a.state == b.state && a.failures == b.failures && a.suspensions == b.suspensions
}

// checkConsistent looks for a half-applied transition: a blocked
// authenticator must have its element wiped and its block recorded, a
// suspended one its suspension, and replaying the authenticator's audit
// events must give the state and counters the server shows.
func checkConsistent(t *testing.T, round int, identity string, a *client.Authenticator, events []client.Event) {
	t.Helper()
	where := fmt.Sprintf("round %d: %s %s of %s (%s)", round, a.Kind, a.ID, identity, a.State)
	switch a.State {
	case client.StateBlocked:
		if !a.Element.Wiped || a.BlockedAt == nil || a.BlockReason == "" {
			t.Errorf("%s: blocked but wiped=%v blocked_at=%v reason=%q", where, a.Element.Wiped, a.BlockedAt, a.BlockReason)
		}
	case client.StateSuspended:
		if a.Element.Wiped || a.SuspendedAt == nil {
			t.Errorf("%s: suspended but wiped=%v suspended_at=%v", where, a.Element.Wiped, a.SuspendedAt)
		}
	default:
		if a.Element.Wiped || a.SuspendedAt != nil || a.BlockedAt != nil {
			t.Errorf("%s: wiped=%v suspended_at=%v blocked_at=%v", where, a.Element.Wiped, a.SuspendedAt, a.BlockedAt)
		}
	}
	state, failures, suspensions := "", 0, 0
	n := 0
	for _, e := range events {
		if e.AuthenticatorID != a.ID {
			continue
		}
		n++
		switch e.Type {
		case "authenticator.activated", "authenticator.reactivated", "authenticator.login_succeeded", "authenticator.suspension_expired":
			failures = 0
		}
		if to, ok := e.Details["to"].(string); ok {
			state = to
		}
		if v, ok := detailInt(e.Details, "failures"); ok {
			failures = v
		}
		if v, ok := detailInt(e.Details, "suspensions"); ok {
			suspensions = v
		}
	}
	if state != a.State || failures != a.Failures || suspensions != a.Suspensions {
		t.Errorf("%s: its %d audit events end at %s failures=%d suspensions=%d, the server shows failures=%d suspensions=%d",
			where, n, state, failures, suspensions, a.Failures, a.Suspensions)
	}
}

// detailInt reads a counter from event details (a string or a number).
func detailInt(d map[string]any, key string) (int, bool) {
	switch v := d[key].(type) {
	case string:
		n, err := strconv.Atoi(v)
		return n, err == nil
	case float64:
		return int(v), true
	}
	return 0, false
}

func hasEvent(events []client.Event, typ, aid string) bool {
	for _, e := range events {
		if e.Type == typ && e.AuthenticatorID == aid {
			return true
		}
	}
	return false
}

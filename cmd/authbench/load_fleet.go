package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/server/api"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/store/postgres"
	"github.com/authbench/authbench/sim/chip"
)

// The relying party of the load servers.
const (
	loadRPID   = "load.authbench.test"
	loadOrigin = "https://load.authbench.test"
)

// fleet is the server side of one scenario: one server in this process on
// SQLite, or N `authbench serve` processes sharing one PostgreSQL schema,
// with the clients that talk to them over loopback HTTP on kept-alive
// connections. Login rate limits are off (all the load comes from one
// address), the test attestation CA is the trusted root, and passwords are
// hashed with the scenario's argon2id parameters.
type fleet struct {
	support   []*client.Client // the support operator, per replica
	anon      []*client.Client // no token (the login ceremonies), per replica
	transport fleetTransport
	stop      func() error
	// single is, on PostgreSQL with several replicas and for the login
	// scenarios, one more serve process on the same schema, configured
	// as one server alone on this host is (all the CPUs, the whole
	// connection budget): what "1 server" is measured on. Its clients
	// share f's transport; f.stop stops it.
	single *fleet
}

// fleetTransport is the HTTP transport of a fleet's clients.
type fleetTransport interface {
	http.RoundTripper
	CloseIdleConnections()
}

func (f *fleet) replicas() int { return len(f.anon) }

func (f *fleet) close() error {
	f.transport.CloseIdleConnections()
	var err error
	if f.stop != nil {
		err = f.stop()
	}
	f.transport.CloseIdleConnections()
	return err
}

// roundRobin is one worker's turn over the replicas: every request goes
// to the next one, so that the steps of one ceremony meet different
// replicas.
type roundRobin struct {
	f *fleet
	k int
}

func (r *roundRobin) anon() *client.Client {
	r.k++
	return r.f.anon[r.k%len(r.f.anon)]
}

func (r *roundRobin) support() *client.Client {
	r.k++
	return r.f.support[r.k%len(r.f.support)]
}

// openFleet starts the servers of one scenario: hashing passwords with
// params, and on the clock now (nil for the real one; only a server in
// this process can run on another clock). It is the lifecycle's: its
// clients send their requests on a loadTransport, which measures against
// no anchor; the login scenarios keep http.Transport, as their minimal
// durable login does.
func (l *loader) openFleet(ctx context.Context, params secrets.Params, now func() time.Time) (*fleet, error) {
	return l.startFleet(ctx, params, now, false, true)
}

// openLoginFleet is openFleet for a login scenario, which measures one
// server beside the replicas: on PostgreSQL with several replicas it
// starts the fleet's single server as well (fleet.single).
func (l *loader) openLoginFleet(ctx context.Context, params secrets.Params, now func() time.Time) (*fleet, error) {
	return l.startFleet(ctx, params, now, l.pg != nil && l.cfg.replicas > 1, false)
}

func (l *loader) startFleet(ctx context.Context, params secrets.Params, now func() time.Time, single, lean bool) (*fleet, error) {
	// Every client keeps a connection to every replica alive (each of its
	// requests goes to the next replica): room for them all, so that N
	// replicas do not pay for new connections one replica is spared.
	f := &fleet{}
	hc := &http.Client{Timeout: time.Minute}
	if lean {
		// No Timeout: the transport bounds every request by a minute
		// itself, and net/http would time a transport it does not know
		// with a goroutine per request.
		f.transport = newLoadTransport(l.cfg.concurrency + 16)
		hc.Timeout = 0
	} else {
		f.transport = &http.Transport{
			MaxIdleConns:        (l.cfg.concurrency+16)*l.cfg.replicas + l.cfg.concurrency,
			MaxIdleConnsPerHost: l.cfg.concurrency + 16,
			IdleConnTimeout:     time.Minute,
		}
	}
	hc.Transport = f.transport
	var urls []string
	var token string
	var singleURL string
	if l.pg == nil {
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(chip.TestCACertPEM())
		srv, err := embedded.Start(ctx, embedded.Options{
			DB:               l.cfg.db,
			Keyring:          l.keys,
			RPID:             loadRPID,
			RPOrigins:        []string{loadOrigin},
			AttestationRoots: roots,
			PSKCKey:          l.pskcKey,
			Hasher:           params,
			Now:              now,
			RateLimit:        api.RateLimit{PerSource: api.Rate{Every: -1}, PerAuthenticator: api.Rate{Every: -1}},
			Wrap:             l.cfg.wrapAPI,
		})
		if errors.Is(err, service.ErrMasterKey) {
			// Each run seals under a new random key.
			return nil, fmt.Errorf("load: --db %s holds secrets sealed by an earlier run, under a key that is gone: give a new file, or none for a temporary one", l.cfg.db)
		}
		if err != nil {
			return nil, fmt.Errorf("load: starting the server: %w", err)
		}
		urls, token, f.stop = []string{srv.URL}, srv.SupportToken, srv.Close
	} else {
		if now != nil {
			return nil, errors.New("load: serve processes run on the real clock")
		}
		var profile string
		if l.cfg.cpuProfile != "" {
			profile = l.cfg.cpuProfile + "." + l.scenario
		}
		var procs []*serveProc
		if single {
			// Started first: the replicas are the newest processes.
			sp, err := l.pg.startOne(ctx, params, l.pg.single, "single", profileArgs(profile, "single")...)
			if err != nil {
				return nil, fmt.Errorf("load: the single server: %w", err)
			}
			procs, singleURL = append(procs, sp), sp.url
		}
		shape := l.pg.replica
		if l.cfg.replicas == 1 {
			shape = l.pg.single
		}
		fl, err := l.pg.start(ctx, l.cfg.replicas, params, shape, profile)
		if err != nil {
			return nil, errors.Join(err, stopAll(procs))
		}
		for _, p := range fl {
			urls = append(urls, p.url)
		}
		procs = append(procs, fl...)
		token = l.pg.token
		f.stop = func() error { return stopAll(procs) }
		l.pg.procs = procs
	}
	connect := func(to *fleet, u string) error {
		c, err := client.New(u, client.Options{HTTPClient: hc, Token: token, Origin: loadOrigin, UserAgent: "authbench-load"})
		if err == nil {
			err = c.Health(ctx)
		}
		if err != nil {
			return fmt.Errorf("load: the server at %s: %w", u, err)
		}
		to.support = append(to.support, c)
		to.anon = append(to.anon, c.WithToken(""))
		return nil
	}
	for _, u := range urls {
		if err := connect(f, u); err != nil {
			f.close()
			return nil, err
		}
	}
	if singleURL != "" {
		f.single = &fleet{transport: f.transport}
		if err := connect(f.single, singleURL); err != nil {
			f.close()
			return nil, err
		}
	}
	return f, nil
}

// profileArgs are the serve flags that write a CPU profile to
// profile.name; none without a profile.
func profileArgs(profile, name string) []string {
	if profile == "" {
		return nil
	}
	return []string{"--cpu-profile", profile + "." + name}
}

// pgRun is the PostgreSQL side of one run: a schema of its own in the
// database of --db (created at the start, dropped at the end), and the
// files its `authbench serve` processes share (master key, support token,
// attestation roots, PSKC key), in a private temporary directory.
type pgRun struct {
	url        string // --db with search_path set to the schema
	schema     string
	dir        string
	token      string
	exe        string
	gcHeadroom gcHeadroomFlag // --gc-headroom of the serve processes
	log        io.Writer      // progress
	// single is the shape of one server alone on this host, replica
	// that of each of --replicas sharing it (hostShares).
	single, replica serveShape
	procs           []*serveProc // the serve processes of the scenario running
	postmaster      int          // the PostgreSQL server's postmaster on this host, 0 when unknown (elsewhere, or no /proc)
}

// openPG creates the run's schema in the database of base (a postgres://
// URL without a password: pgx takes it from $PGPASSWORD) and the files
// the servers share.
func openPG(ctx context.Context, base, tag string, replicas int, keys *secrets.Keyring, pskcKey []byte, progress io.Writer) (_ *pgRun, err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("load: the authbench binary to run serve with: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, usageError{fmt.Errorf("--db: %w", err)}
	}
	p := &pgRun{schema: "authbench_" + strings.ReplaceAll(tag, "-", "_"), exe: exe, log: progress}
	q := u.Query()
	budget := 0
	if v := q.Get("pool_max_conns"); v != "" {
		if budget, err = strconv.Atoi(v); err != nil || budget < 1 {
			return nil, usageError{fmt.Errorf("--db: pool_max_conns=%s: want a number of connections, at least 1", v)}
		}
	}
	p.single, p.replica = hostShares(runtime.NumCPU(), budget, replicas)
	q.Set("search_path", p.schema)
	u.RawQuery = q.Encode()
	p.url = u.String()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := connectPG(cctx, base)
	if err != nil {
		// pgx names the host, user and database, never the password.
		return nil, unreachableError{fmt.Errorf("load: --db %s: %w", base, err)}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var backend int
	if err := conn.QueryRow(cctx, "SELECT pg_backend_pid()").Scan(&backend); err == nil {
		p.postmaster, _ = postmasterOf(backend)
	}
	if _, err := conn.Exec(cctx, "CREATE SCHEMA "+pgx.Identifier{p.schema}.Sanitize()); err != nil {
		return nil, fmt.Errorf("load: --db %s: create schema %s: %w", base, p.schema, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.close())
		}
	}()
	if p.dir, err = os.MkdirTemp("", "authbench-load-"); err != nil {
		return nil, err
	}
	tok := make([]byte, 24)
	rand.Read(tok)
	p.token = hex.EncodeToString(tok)
	if err := keys.WriteFile(filepath.Join(p.dir, "master.key")); err != nil {
		return nil, err
	}
	for name, data := range map[string]string{
		"tokens":   embedded.DefaultOperator + " " + p.token + "\n",
		"roots":    string(chip.TestCACertPEM()),
		"pskc.key": hex.EncodeToString(pskcKey) + "\n",
	} {
		if err := os.WriteFile(filepath.Join(p.dir, name), []byte(data), 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// connectPG connects to url as the serve processes do (postgres.ParseURL:
// without TLS to a server on this machine unless url asks for it), less
// their pool's settings (pool_max_conns, ...), which it takes out of the
// URL.
func connectPG(ctx context.Context, url string) (*pgx.Conn, error) {
	pc, err := postgres.ParseURL(url)
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, pc.ConnConfig)
}

// close drops the schema and removes the files.
func (p *pgRun) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	conn, err := connectPG(ctx, p.url)
	if err == nil {
		_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{p.schema}.Sanitize()+" CASCADE")
		conn.Close(ctx)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("load: drop schema %s: %w", p.schema, err))
	}
	if p.dir != "" {
		errs = append(errs, os.RemoveAll(p.dir))
	}
	return errors.Join(errs...)
}

// serveShape is how load runs one `authbench serve` process: its
// GOMAXPROCS, and the most PostgreSQL connections its pool opens (the
// pool_max_conns of its --db).
type serveShape struct {
	Procs int `json:"gomaxprocs"`
	Conns int `json:"pool_max_conns"`
}

func (s serveShape) String() string {
	return fmt.Sprintf("GOMAXPROCS %d, pool_max_conns %d", s.Procs, s.Conns)
}

// hostShares returns the shape of one server alone on a host of cpus
// CPUs, and that of each of n replicas sharing the host, as the README
// tells an operator to run them: one server takes all the CPUs and the
// whole connection budget (budget: --db's pool_max_conns; 0 for the
// store's default pool, max(4, CPUs)); each of n replicas a share of
// both, cpus/n CPUs (at least one) and ⌈budget/n⌉ connections (at least
// two, so that one request's transaction does not leave its replica
// without a connection for the next).
func hostShares(cpus, budget, n int) (single, replica serveShape) {
	if budget <= 0 {
		budget = max(4, cpus)
	}
	single = serveShape{Procs: cpus, Conns: budget}
	replica = serveShape{Procs: max(1, cpus/n), Conns: max(2, (budget+n-1)/n)}
	return single, replica
}

// applicationName is the application_name of the PostgreSQL connections
// of the run's serve process name.
func (p *pgRun) applicationName(name string) string {
	return "authbench-load." + p.schema + "." + name
}

// sysmonAwake is the GODEBUG setting that keeps the Go runtime's monitor
// thread (sysmon) from its deep sleep. A process whose every P goes idle
// puts sysmon to sleep; the next system call of a goroutine wakes it
// (a futex wake-up), and it then polls every 20 µs (a nanosleep each)
// for a millisecond or more before it backs off, only to sleep again at
// the next idle moment. A server between requests goes idle thousands of
// times a second, the more so the more replicas share the load, and on
// a host where a context switch is dear that cost a third of the serve
// processes' CPU per login (three replicas on 2 CPUs: 48 context
// switches per login instead of 14). Awake, sysmon backs off to one
// poll every 10 ms while no P sits long in a system call. The setting
// asks for a scheduler trace every 2^31-1 ms (24.8 days, counted from
// the host's boot): in practice never, or one line on stderr at start
// on a host up for longer.
const sysmonAwake = "schedtrace=2147483647"

// serveGODEBUG returns the GODEBUG of a serve process that load starts:
// load's own (godebug), with sysmonAwake unless it sets schedtrace.
func serveGODEBUG(godebug string) string {
	for _, kv := range strings.Split(godebug, ",") {
		if strings.HasPrefix(strings.TrimSpace(kv), "schedtrace=") {
			return godebug
		}
	}
	if strings.TrimSpace(godebug) == "" {
		return sysmonAwake
	}
	return godebug + "," + sysmonAwake
}

// serveProc is one running `authbench serve`.
type serveProc struct {
	replica int // 1, 2, ...
	url     string
	cmd     *exec.Cmd
	log     *tailBuffer
	done    chan struct{}
}

// start runs n `authbench serve` processes of shape sh on the run's
// schema, hashing with params, and waits until each listens. With a
// cpuProfile, replica N writes its CPU profile to cpuProfile.replicaN.
func (p *pgRun) start(ctx context.Context, n int, params secrets.Params, sh serveShape, cpuProfile string) ([]*serveProc, error) {
	var procs []*serveProc
	for i := range n {
		name := fmt.Sprintf("replica%d", i+1)
		sp, err := p.startOne(ctx, params, sh, name, profileArgs(cpuProfile, name)...)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("load: replica %d: %w", i+1, err), stopAll(procs))
		}
		sp.replica = i + 1
		procs = append(procs, sp)
	}
	return procs, nil
}

// listening is the line `authbench serve` prints on stdout once it serves.
const listening = "authbench server listening on "

// startOne runs one `authbench serve` of shape sh, named name (single,
// replica1, ...) in the application_name of its PostgreSQL connections:
// "authbench-load.SCHEMA.NAME", by which pg_stat_activity tells the
// backends of each serve process of a run from those of anything else.
func (p *pgRun) startOne(ctx context.Context, params secrets.Params, sh serveShape, name string, extra ...string) (*serveProc, error) {
	u, err := url.Parse(p.url)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("pool_max_conns", strconv.Itoa(sh.Conns))
	// Every server dials its connections and prepares and plans its
	// statements on them before it listens (the PostgreSQL store's warm
	// pool), so that no target's segments pay for that: the one server
	// serves nothing before its first segment, while the replicas enroll
	// the scenario's devices.
	q.Set("pool_min_conns", strconv.Itoa(sh.Conns))
	q.Set("application_name", p.applicationName(name))
	u.RawQuery = q.Encode()
	args := []string{"serve",
		"--addr", "127.0.0.1:0",
		"--db", u.String(),
		"--master-key", filepath.Join(p.dir, "master.key"),
		"--support-token-file", filepath.Join(p.dir, "tokens"),
		"--attestation-roots", filepath.Join(p.dir, "roots"),
		"--pskc-key-file", filepath.Join(p.dir, "pskc.key"),
		"--rp-id", loadRPID,
		"--origin", loadOrigin,
		"--log-level", "warn",
		"--login-limit-source", "off",
		"--login-limit-authenticator", "off",
		"--argon2", params.String(),
		"--gc-headroom", p.gcHeadroom.String(),
	}
	cmd := exec.Command(p.exe, append(args, extra...)...)
	// Settings and secrets come from the flags alone ($PGPASSWORD stays),
	// the CPUs from the shape, and the runtime's monitor stays awake
	// (serveGODEBUG).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHBENCH_") && !strings.HasPrefix(kv, "GOMAXPROCS=") && !strings.HasPrefix(kv, "GODEBUG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(sh.Procs), "GODEBUG="+serveGODEBUG(os.Getenv("GODEBUG")))
	cmd.SysProcAttr = childAttr()
	sp := &serveProc{cmd: cmd, log: &tailBuffer{}, done: make(chan struct{})}
	cmd.Stderr = sp.log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", p.exe, err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), listening); ok {
				select {
				case found <- strings.TrimSpace(u):
				default:
				}
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() {
		cmd.Wait()
		close(sp.done)
	}()
	select {
	case sp.url = <-found:
		return sp, nil
	case <-sp.done:
		return nil, fmt.Errorf("authbench serve exited (%v): %s", cmd.ProcessState, strings.TrimSpace(sp.log.String()))
	case <-ctx.Done():
		sp.stop()
		return nil, ctx.Err()
	case <-time.After(60 * time.Second): // a guard against a hung start
		sp.stop()
		return nil, fmt.Errorf("authbench serve did not listen within 60 s: %s", strings.TrimSpace(sp.log.String()))
	}
}

// stop asks the process to shut down (SIGTERM), and kills it after 15 s.
// It returns an error when it had to kill it or the process failed, and a
// *serveExit when it had exited before it was asked to.
func (sp *serveProc) stop() error {
	select {
	case <-sp.done:
		return &serveExit{Replica: sp.replica, PID: sp.cmd.Process.Pid, State: sp.cmd.ProcessState.String(), Log: strings.TrimSpace(sp.log.String())}
	default:
		sp.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-sp.done:
		case <-time.After(15 * time.Second):
			sp.cmd.Process.Kill()
			<-sp.done
			return fmt.Errorf("load: authbench serve (pid %d) did not stop within 15 s and was killed", sp.cmd.Process.Pid)
		}
	}
	if st := sp.cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("load: authbench serve (pid %d) %v: %s", sp.cmd.Process.Pid, st, strings.TrimSpace(sp.log.String()))
	}
	return nil
}

// serveExit is an `authbench serve` of the run that exited while the load
// ran, before it was asked to stop: its clients' requests failed from then
// on, and the scenario counts it among its errors (phase "server", code
// "exited").
type serveExit struct {
	Replica int
	PID     int
	State   string // "signal: killed", "exit status 1"
	Log     string // the end of its stderr
}

func (e *serveExit) Error() string {
	msg := fmt.Sprintf("authbench serve, replica %d (pid %d), exited during the run (%s)", e.Replica, e.PID, e.State)
	if e.Log != "" {
		msg += ": " + e.Log
	}
	return msg
}

// closeFleet closes f; the serve processes that had exited during the
// scenario are kept in l.exits for the scenario's errors, and any other
// failure to stop is returned.
func (l *loader) closeFleet(f *fleet) error {
	var rest []error
	for _, e := range unjoin(f.close()) {
		var se *serveExit
		if errors.As(e, &se) {
			l.exits = append(l.exits, se)
		} else {
			rest = append(rest, e)
		}
	}
	return errors.Join(rest...)
}

// unjoin returns the errors joined in err (errors.Join), or err alone.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// exitErrors are the serve processes that exited during a scenario, as
// its errors by code.
func exitErrors(exits []*serveExit) []errorCount {
	if len(exits) == 0 {
		return nil
	}
	msg := exits[0].Error()
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return []errorCount{{Phase: "server", Code: "exited", Count: len(exits), Example: msg}}
}

// stopAll stops the processes at once.
func stopAll(procs []*serveProc) error {
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, sp := range procs {
		wg.Go(func() { errs[i] = sp.stop() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// tailBuffer keeps the last 16 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if n := len(b.buf); n > 16<<10 {
		b.buf = append(b.buf[:0], b.buf[n-16<<10:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

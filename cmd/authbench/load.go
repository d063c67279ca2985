package main

// authbench load: the server at full scale against what this machine can
// do at all, in one run. See README "Measuring the
// server: authbench load" and loadCmd's help.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authbench/authbench/internal/gcpace"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/secrets"
)

// loadCmd is `authbench load`.
type loadCmd struct {
	Scenario            []string       `default:"all" enum:"all,lifecycle,chip-logins,code-logins,password-logins" sep:"," placeholder:"NAME" help:"What to measure: lifecycle (N chips through enroll → login → block → re-add), chip-logins and code-logins (password + second factor, for --duration), password-logins (the password step at --password-argon2), or all."`
	N                   int            `default:"10000" placeholder:"N" help:"Chips of the lifecycle scenario, every one of them measured (nothing is extrapolated from fewer)."`
	Concurrency         int            `default:"64" placeholder:"N" help:"Concurrent clients of the lifecycle and of the chip and code logins (and of their minimal durable login)."`
	Duration            time.Duration  `default:"10s" placeholder:"DURATION" help:"How long the chip, code and password logins run on each thing they are measured on (the server; its anchor; one replica of several), in interleaved halves."`
	Devices             int            `default:"512" placeholder:"N" help:"Chips of the chip-login scenario and code devices of the code-login scenario, each of an identity of its own. On PostgreSQL the code logins take more when the rate needs them (the servers' clock is real: one fresh code per device every 30 s)."`
	AnchorDuration      time.Duration  `default:"1s" placeholder:"DURATION" help:"How long each raw-crypto anchor runs (ECDSA P-256 verify, argon2id at --argon2, TOTP verify)."`
	Argon2              argon2Flag     `name:"argon2" default:"m=64,t=1,p=1" placeholder:"m=KiB,t=N,p=N" help:"argon2id parameters of the passwords of the lifecycle and of the chip and code logins, and of their minimal durable login: cheap, so that these scenarios measure the rest of a login (a documented load setting, never serve's default)."`
	PasswordArgon2      argon2Flag     `name:"password-argon2" default:"${argon2_params}" placeholder:"m=KiB,t=N,p=N" help:"argon2id parameters of the password-login scenario and of its raw argon2id anchor: serve's default unless given."`
	PasswordConcurrency int            `default:"8" placeholder:"N" help:"Concurrent clients of the password logins (the server bounds concurrent argon2id by memory; more clients only queue)."`
	Sample              int            `default:"100" placeholder:"N" help:"Chips checked, after the lifecycle, to be refused with their old credential."`
	DB                  string         `placeholder:"FILE|URL" help:"SQLite database file of the server in this process (default: a temporary file per scenario), or postgres://USER@HOST/DB: a schema of its own in that database, dropped afterwards, served by --replicas authbench serve processes (the password comes from $PGPASSWORD, never from the command line)."`
	Replicas            int            `default:"1" placeholder:"N" help:"authbench serve processes on the PostgreSQL database of --db, each with a share of this host (GOMAXPROCS CPUs/N, pool_max_conns ⌈budget/N⌉, the budget being one server's pool: pool_max_conns in the URL, else the default, max(4, CPUs)); with more than one, the logins are also measured on one more serve process alone with all the CPUs and the whole budget (target: N at least as fast as one)."`
	Seed                hexBytes       `placeholder:"HEX" help:"Seed of the simulated devices and of the run's identity names (default: random)."`
	JSON                bool           `help:"Print the report as JSON (targets with their thresholds, measured values and verdicts) instead of text."`
	CPUProfile          string         `name:"cpu-profile" type:"path" placeholder:"FILE" help:"Write a CPU profile of the load process to FILE (go tool pprof): on SQLite it holds the server as well as its clients and anchors; on PostgreSQL each serve process writes its own to FILE.SCENARIO.replicaN (serve --cpu-profile), such as cpu.out.chip-logins.replica1, and the single server of a login scenario to FILE.SCENARIO.single, over the whole scenario it serves (set-up included)."`
	HeapProfile         string         `name:"heap-profile" type:"path" placeholder:"FILE" help:"Write a heap profile of the load process at the end of each scenario's measured run, after a garbage collection, to FILE.SCENARIO, such as heap.out.lifecycle (go tool pprof -sample_index=inuse_space): what its live heap holds; on SQLite the server's data beside the simulated clients'."`
	GCHeadroom          gcHeadroomFlag `name:"gc-headroom" default:"argon2" placeholder:"MiB|argon2|off" help:"The --gc-headroom of the server: of this process, which serves on SQLite (its argon2id memory budget is serve's default), or of the serve processes on PostgreSQL. On SQLite the simulated chips share the process with the server: their live heap, measured as they are made, is given room of its own on top of the headroom (as if they ran in a process of their own under Go's default), so that they do not use up the server's. ${gc_headroom_help}"`

	TargetLifecycle     time.Duration `default:"15s" placeholder:"DURATION" help:"Target: the lifecycle of the --n chips takes at most this long (the acceptance for 10,000 chips; 10 s is the aim)."`
	TargetLoginRatio    float64       `default:"0.8" placeholder:"RATIO" help:"Target: chip logins and code logins per second are at least this share of the minimal durable login's."`
	TargetPasswordRatio float64       `default:"0.9" placeholder:"RATIO" help:"Target: password logins per second are at least this share of raw argon2id hashes per second at --password-argon2."`
	TargetReplicaRatio  float64       `default:"1" placeholder:"RATIO" help:"Target: --replicas PostgreSQL servers log in at least this share of one server's rate (1: at least as fast)."`
	TargetErrors        int           `default:"0" placeholder:"N" help:"Target: failed operations per scenario, at most."`
}

// loadPassword is the password of every load identity: chips and code
// devices are second factors, used after it.
const loadPassword = "the load identities' password"

// loadConfig is what `authbench load` was asked to do.
type loadConfig struct {
	scenarios           []string // lifecycle, chip-logins, code-logins, password-logins
	n                   int
	concurrency         int
	duration            time.Duration
	devices             int
	anchorDuration      time.Duration
	argon2              secrets.Params
	passwordArgon2      secrets.Params
	passwordConcurrency int
	sample              int
	db                  string
	replicas            int
	seed                []byte
	jsonOut             bool
	cpuProfile          string // --cpu-profile: on PostgreSQL, the serve processes' go to cpuProfile.SCENARIO.replicaN
	heapProfile         string // --heap-profile
	gcHeadroom          gcHeadroomFlag
	thresholds          thresholds
	wrapAPI             func(http.Handler) http.Handler // see env.wrapAPI; a server in this process only
}

// thresholds are the targets' limits.
type thresholds struct {
	lifecycle     time.Duration
	loginRatio    float64
	passwordRatio float64
	replicaRatio  float64
	errors        int
}

// allScenarios in the order they run.
var allScenarios = []string{"lifecycle", "chip-logins", "code-logins", "password-logins"}

func (c *loadCmd) config() (loadConfig, error) {
	cfg := loadConfig{
		n: c.N, concurrency: c.Concurrency, duration: c.Duration, devices: c.Devices,
		anchorDuration: c.AnchorDuration, argon2: c.Argon2.params(), passwordArgon2: c.PasswordArgon2.params(),
		passwordConcurrency: c.PasswordConcurrency, sample: c.Sample, db: c.DB, replicas: c.Replicas,
		seed: c.Seed, jsonOut: c.JSON, gcHeadroom: c.GCHeadroom, heapProfile: c.HeapProfile,
		thresholds: thresholds{lifecycle: c.TargetLifecycle, loginRatio: c.TargetLoginRatio,
			passwordRatio: c.TargetPasswordRatio, replicaRatio: c.TargetReplicaRatio, errors: c.TargetErrors},
	}
	for _, s := range allScenarios {
		if slices.Contains(c.Scenario, s) || slices.Contains(c.Scenario, "all") {
			cfg.scenarios = append(cfg.scenarios, s)
		}
	}
	usage := func(format string, args ...any) (loadConfig, error) {
		return cfg, usageError{fmt.Errorf(format, args...)}
	}
	switch {
	case len(cfg.scenarios) == 0:
		return usage("--scenario: name at least one")
	case cfg.n < 1 || cfg.concurrency < 1 || cfg.devices < 1 || cfg.passwordConcurrency < 1 || cfg.replicas < 1:
		return usage("--n, --concurrency, --devices, --password-concurrency and --replicas must be at least 1")
	case cfg.duration <= 0 || cfg.anchorDuration <= 0:
		return usage("--duration and --anchor-duration must be positive")
	case cfg.sample < 0 || cfg.thresholds.errors < 0:
		return usage("--sample and --target-errors must not be negative")
	case cfg.thresholds.lifecycle <= 0 || cfg.thresholds.loginRatio < 0 || cfg.thresholds.passwordRatio < 0 || cfg.thresholds.replicaRatio < 0:
		return usage("the --target-* thresholds must be positive")
	}
	if embedded.IsPostgresURL(cfg.db) {
		u, err := url.Parse(cfg.db)
		if err != nil {
			return usage("--db: not a URL: %v", err)
		}
		if _, ok := u.User.Password(); ok {
			// Every user of the machine can read a command line.
			return usage("--db: give the PostgreSQL password in $PGPASSWORD, not in the URL")
		}
	} else if cfg.replicas > 1 {
		return usage("--replicas %d: replicas share a PostgreSQL database; give --db postgres://…", cfg.replicas)
	}
	if cfg.seed == nil {
		cfg.seed = make([]byte, 8)
		if _, err := rand.Read(cfg.seed); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

func (c *loadCmd) Run(ctx context.Context, e *env) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	cfg.wrapAPI = e.wrapAPI
	if c.CPUProfile != "" {
		stop, err := startCPUProfile(c.CPUProfile)
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		defer stop()
		cfg.cpuProfile = c.CPUProfile
	}
	l := newLoader(cfg, e.stderr)
	if !embedded.IsPostgresURL(cfg.db) {
		// The server runs in this process, as serve would run it; the
		// simulated clients' live heap is not counted against its
		// headroom (excludeClients).
		log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if l.gc = cfg.gcHeadroom.pace(secrets.CurrentLimiter().Budget(), log); l.gc != nil {
			defer l.gc.Stop()
		}
	}
	rep, err := l.run(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var le *loadError
		if errors.As(err, &le) {
			fmt.Fprintf(e.stderr, "authbench load: FAILED: %v\n", err)
			return exitError{exitFailed}
		}
		return err
	}
	rep.Targets = rep.targets(cfg.thresholds)
	if cfg.jsonOut {
		if err := printJSON(e.stdout, rep); err != nil {
			return err
		}
	} else {
		rep.print(e.stdout)
	}
	missed := 0
	for _, t := range rep.Targets {
		if !t.Met {
			fmt.Fprintf(e.stderr, "authbench load: target missed: %s\n", t)
			missed++
		}
	}
	if missed > 0 {
		return exitError{exitFailed}
	}
	return nil
}

// setUpIdentity creates identity id with the load password on c, for a
// scenario's set-up: a 503 busy answer (the server's argon2id budget was
// full, so nothing was done) is asked again after a second, for a minute
// at most. A measured step counts a busy answer as an error instead.
func setUpIdentity(ctx context.Context, c *client.Client, id string) error {
	give := time.Now().Add(time.Minute)
	for {
		_, err := c.CreateIdentity(ctx, client.CreateIdentityRequest{ID: id, Password: loadPassword})
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.Code != "busy" || time.Now().After(give) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(secrets.RetryAfter):
		}
	}
}

// loadError is a failure to set a scenario up (a step that must succeed
// for the measurement to mean anything did not). It makes `authbench
// load` exit with status 1.
type loadError struct {
	What string // "chip 17 (identity load-1a2b3c4d-chip-17)"
	Step string // "create identity", "enroll", ...
	Err  error
}

func (e *loadError) Error() string { return fmt.Sprintf("%s: %s: %v", e.What, e.Step, e.Err) }
func (e *loadError) Unwrap() error { return e.Err }

// loadReport is what one run measured.
type loadReport struct {
	Store            string           `json:"store"`   // "sqlite" or "postgresql"
	Servers          string           `json:"servers"` // how the servers run
	Replicas         int              `json:"replicas"`
	SingleShape      *serveShape      `json:"single_server,omitempty"` // PostgreSQL: a serve process alone on this host ("1 server", or the server)
	ReplicaShape     *serveShape      `json:"replica,omitempty"`       // PostgreSQL with several replicas: each of them
	DB               string           `json:"db"`
	Schema           string           `json:"schema,omitempty"` // PostgreSQL: the run's own, dropped at the end
	GOMAXPROCS       int              `json:"gomaxprocs"`
	NumCPU           int              `json:"num_cpu"`
	LoadAverageStart []float64        `json:"load_average_start,omitempty"` // 1, 5, 15 min
	LoadAverageEnd   []float64        `json:"load_average_end,omitempty"`
	Seed             string           `json:"seed"`
	Argon2           string           `json:"argon2id"`          // lifecycle, chip and code logins
	PasswordArgon2   string           `json:"password_argon2id"` // password logins
	MinimalLogin     string           `json:"minimal_durable_login"`
	Raw              *rawAnchors      `json:"raw_anchors"`
	Lifecycle        *lifecycleResult `json:"lifecycle,omitempty"`
	ChipLogins       *loginsResult    `json:"chip_logins,omitempty"`
	CodeLogins       *loginsResult    `json:"code_logins,omitempty"`
	PasswordLogins   *loginsResult    `json:"password_logins,omitempty"`
	Seconds          float64          `json:"seconds"` // the whole run
	Targets          []targetResult   `json:"targets"`
	Notes            []string         `json:"notes,omitempty"`
}

// loader runs the scenarios of one `authbench load`.
type loader struct {
	cfg      loadConfig
	progress io.Writer
	tag      string // prefix of the run's identity IDs and serials
	keys     *secrets.Keyring
	pskcKey  []byte
	pg       *pgRun       // nil on SQLite
	scenario string       // the scenario running
	exits    []*serveExit // serve processes that exited in the scenario running
	// gc paces the garbage collector of this process for the server in it
	// (SQLite); nil when it is not paced. releaseClients ends the
	// exclusion of the running scenario's simulated chips from its
	// account (excludeClients).
	gc             *gcpace.Pacer
	releaseClients func()
}

func newLoader(cfg loadConfig, progress io.Writer) *loader {
	h := sha256.Sum256(append([]byte("authbench load run "), cfg.seed...))
	return &loader{cfg: cfg, progress: progress, tag: "load-" + hex.EncodeToString(h[:4])}
}

// seedFor returns the seed of the i-th simulated device of a kind.
func (l *loader) seedFor(kind string, i int) []byte {
	return fmt.Appendf(append([]byte(nil), l.cfg.seed...), "/%s/%d", kind, i)
}

// writeHeapProfile writes the heap profile of --heap-profile at the end
// of the running scenario's measured run, after a garbage collection, so
// that it shows what is live.
func (l *loader) writeHeapProfile() error {
	if l.cfg.heapProfile == "" {
		return nil
	}
	runtime.GC()
	path := l.cfg.heapProfile + "." + l.scenario
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("heap").WriteTo(f, 0)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		return fmt.Errorf("load: --heap-profile: %w", err)
	}
	l.say("%s: heap profile written to %s", l.scenario, path)
	return nil
}

func (l *loader) say(format string, args ...any) {
	fmt.Fprintf(l.progress, "load: "+format+"\n", args...)
}

func (l *loader) run(ctx context.Context) (_ *loadReport, err error) {
	start := time.Now()
	cfg := l.cfg
	rep := &loadReport{
		Store: "sqlite", Servers: "one server in the load process (server/embedded)", Replicas: 1,
		DB: cfg.db, GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), LoadAverageStart: loadAverage(),
		Seed: hex.EncodeToString(cfg.seed), Argon2: cfg.argon2.String(), PasswordArgon2: cfg.passwordArgon2.String(),
	}
	if l.keys, err = secrets.GenerateKeyring(nil); err != nil {
		return nil, err
	}
	l.pskcKey = make([]byte, 16)
	rand.Read(l.pskcKey)
	write := "one group-committed SQLite insert (WAL, synchronous=FULL, as the store) into a file beside the server's"
	if embedded.IsPostgresURL(cfg.db) {
		rep.Store, rep.Replicas = "postgresql", cfg.replicas
		write = "one PostgreSQL commit (synchronous_commit on) in the same database"
		if l.pg, err = openPG(ctx, cfg.db, l.tag, cfg.replicas, l.keys, l.pskcKey, l.progress); err != nil {
			return nil, err
		}
		rep.Servers, rep.SingleShape = fmt.Sprintf("1 authbench serve process (%s: all the CPUs and the whole connection budget), started by load, on one schema", l.pg.single), &l.pg.single
		if cfg.replicas > 1 {
			rep.ReplicaShape = &l.pg.replica
			rep.Servers = fmt.Sprintf("%d authbench serve processes, started by load, on one schema, each with %s (a share of this host's %d CPUs and of one server's %d connections); 1 server measured on one more process alone with %s (all of both)",
				cfg.replicas, l.pg.replica, runtime.NumCPU(), l.pg.single.Conns, l.pg.single)
		}
		l.pg.gcHeadroom = cfg.gcHeadroom
		defer func() { err = errors.Join(err, l.pg.close()) }()
		rep.Schema = l.pg.schema
		cpu := "CPU per login: from /proc, over the target's segments, of all the serve processes (the idle ones too)"
		if l.pg.postmaster != 0 {
			cpu += fmt.Sprintf(" and of the PostgreSQL server on this machine (postmaster pid %d and all its processes, whoever they serve)", l.pg.postmaster)
		} else {
			cpu += "; PostgreSQL's is not measured (its server is not on this machine, or its processes cannot be read)"
		}
		rep.Notes = append(rep.Notes, cpu)
		rep.DB = cfg.db + " (schema " + l.pg.schema + ", dropped at the end)"
	} else if rep.DB == "" {
		rep.DB = "a temporary SQLite file per scenario"
	}
	rep.MinimalLogin = fmt.Sprintf("the same 3 HTTP JSON round trips as a login (password, second, finish) on kept-alive loopback connections + argon2id %s + for a chip one ECDSA P-256 verify, for a code one TOTP verify + %s; written by hand in cmd/authbench/load_anchor.go, with identities and ceremonies in memory, no audit, no failure counts, no rate limits", cfg.argon2, write)
	l.say("%s; %s; GOMAXPROCS %d; load average %s", rep.Store, rep.Servers, rep.GOMAXPROCS, fmtLoad(rep.LoadAverageStart))
	l.say("raw anchors: ECDSA P-256 verify, argon2id %s, TOTP verify, %v each on %d goroutines", cfg.argon2, cfg.anchorDuration, rep.GOMAXPROCS)
	if rep.Raw, err = measureRaw(ctx, cfg.anchorDuration, cfg.argon2, rep.GOMAXPROCS); err != nil {
		return nil, err
	}
	l.say("raw anchors: ECDSA verify %s/s, argon2id %s/s, TOTP verify %s/s",
		thousands(rep.Raw.ECDSAVerifyPerSec), thousands(rep.Raw.Argon2PerSec), thousands(rep.Raw.TOTPVerifyPerSec))
	if cfg.n != 10000 && slices.Contains(cfg.scenarios, "lifecycle") {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the lifecycle ran %d chips, not the target's 10,000: its target applies to the %d measured", cfg.n, cfg.n))
	}
	for _, s := range cfg.scenarios {
		l.scenario = s
		switch s {
		case "lifecycle":
			rep.Lifecycle, err = l.lifecycle(ctx)
		case "chip-logins":
			rep.ChipLogins, err = l.chipLogins(ctx)
		case "code-logins":
			var est float64
			if c := rep.ChipLogins; c != nil {
				est = c.server().PerSec
			}
			rep.CodeLogins, err = l.codeLogins(ctx, est)
		case "password-logins":
			rep.PasswordLogins, err = l.passwordLogins(ctx)
		}
		exits := l.exits
		l.exits = nil
		if err != nil {
			for _, e := range exits {
				err = errors.Join(err, e)
			}
			return nil, err
		}
		if len(exits) > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: %d of the %d serve processes exited during the scenario; its figures are those of a broken fleet", s, len(exits), cfg.replicas))
			switch s {
			case "lifecycle":
				rep.Lifecycle.Errors = append(rep.Lifecycle.Errors, exitErrors(exits)...)
			case "chip-logins", "code-logins", "password-logins":
				r := map[string]*loginsResult{"chip-logins": rep.ChipLogins, "code-logins": rep.CodeLogins, "password-logins": rep.PasswordLogins}[s]
				r.server().Errors = append(r.server().Errors, exitErrors(exits)...)
			}
		}
	}
	for _, r := range []*loginsResult{rep.ChipLogins, rep.CodeLogins} {
		if r == nil {
			continue
		}
		for _, t := range r.Targets {
			if t.WaitedSeconds > 0 {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s on %s: workers waited %.1f s in all for fresh one-time codes (every code device was used up in its 30 s step): the rate is a lower bound; give more --devices", r.Scenario, t.Name, t.WaitedSeconds))
			}
		}
	}
	rep.LoadAverageEnd = loadAverage()
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

func fmtLoad(la []float64) string {
	if la == nil {
		return "unknown"
	}
	return fmt.Sprintf("%.2f %.2f %.2f", la[0], la[1], la[2])
}

// anchorDir is where the minimal durable login keeps its SQLite file: in
// the directory of --db, so that its fsyncs hit the same file system as
// the server's, else where the server's temporary database goes.
func (l *loader) anchorDir() string {
	if l.cfg.db != "" && !embedded.IsPostgresURL(l.cfg.db) {
		return filepath.Dir(l.cfg.db)
	}
	return os.TempDir()
}

// openWriter opens the durable write of the minimal durable login: a
// fresh SQLite file (removed by close), or connections to the run's
// PostgreSQL schema.
func (l *loader) openWriter(ctx context.Context) (durableWriter, error) {
	if l.pg != nil {
		return openPGAnchor(ctx, l.pg.url, max(4, runtime.GOMAXPROCS(0)))
	}
	dir, err := os.MkdirTemp(l.anchorDir(), ".authbench-load-anchor-")
	if err != nil {
		return nil, err
	}
	w, err := openSQLiteAnchor(ctx, filepath.Join(dir, "anchor.db"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return removing{w, dir}, nil
}

// openAnchor starts the minimal durable login with the load's argon2id
// parameters, on the clock now (nil: the real one).
func (l *loader) openAnchor(ctx context.Context, now func() time.Time) (*anchorServer, error) {
	w, err := l.openWriter(ctx)
	if err != nil {
		return nil, err
	}
	a, err := startAnchor(l.cfg.argon2, now, w)
	if err != nil {
		return nil, errors.Join(err, w.close())
	}
	return a, nil
}

// removing is a durableWriter whose directory goes when it is closed.
type removing struct {
	durableWriter
	dir string
}

func (r removing) close() error { return errors.Join(r.durableWriter.close(), os.RemoveAll(r.dir)) }

// targetResult is one target: the scenario's value, what it is compared
// with (its anchor's value, or nothing), the threshold and the verdict.
type targetResult struct {
	Name        string  `json:"name"`
	Scenario    string  `json:"scenario"`
	Value       float64 `json:"value"`
	Unit        string  `json:"unit"`
	Anchor      string  `json:"anchor,omitempty"`
	AnchorValue float64 `json:"anchor_value,omitempty"`
	Measured    float64 `json:"measured"` // Value, or Value / AnchorValue
	Op          string  `json:"op"`       // "<=" or ">="
	Threshold   float64 `json:"threshold"`
	Flag        string  `json:"flag"`
	Met         bool    `json:"met"`
}

func (t targetResult) String() string {
	what := "value"
	if t.Anchor != "" {
		what = "ratio to " + t.Anchor
	}
	return fmt.Sprintf("%s: %s %s, target %s %.3g (%s)", t.Name, what, t.measured(3), t.Op, t.Threshold, t.Flag)
}

// measured formats the measured value with at least digits significant
// digits, and more when fewer would print a value that misses its target
// as the threshold itself (0.8997 against 0.9 is 0.8997, not 0.900).
func (t targetResult) measured(digits int) string {
	th := strconv.FormatFloat(t.Threshold, 'g', -1, 64)
	for d := digits; ; d++ {
		s := strconv.FormatFloat(t.Measured, 'g', d, 64)
		if d >= 8 || t.Met || s != th && strconv.FormatFloat(t.Threshold, 'g', d, 64) != s {
			return s
		}
	}
}

// targets judges the report against the thresholds.
func (r *loadReport) targets(th thresholds) []targetResult {
	var out []targetResult
	add := func(t targetResult) {
		switch t.Op {
		case "<=":
			t.Met = t.Measured <= t.Threshold
		case ">=":
			t.Met = t.Measured >= t.Threshold
		}
		out = append(out, t)
	}
	errs := func(name, scenario string, n int) {
		add(targetResult{Name: name, Scenario: scenario, Value: float64(n), Unit: "errors", Measured: float64(n), Op: "<=", Threshold: float64(th.errors), Flag: "--target-errors"})
	}
	if c := r.Lifecycle; c != nil {
		add(targetResult{Name: "lifecycle_seconds", Scenario: fmt.Sprintf("chip lifecycle: %s chips enroll → login → block → re-add", thousands(float64(c.N))),
			Value: c.Seconds, Unit: "s", Measured: c.Seconds, Op: "<=", Threshold: th.lifecycle.Seconds(), Flag: "--target-lifecycle"})
		errs("lifecycle_errors", "chip lifecycle", c.errorCount())
	}
	for _, l := range []*loginsResult{r.ChipLogins, r.CodeLogins} {
		if l == nil {
			continue
		}
		s, a := l.server(), l.anchor()
		add(targetResult{Name: l.Name + "_vs_anchor", Scenario: l.Scenario + " on " + s.Name, Value: s.PerSec, Unit: "logins/s",
			Anchor: a.Name, AnchorValue: a.PerSec, Measured: ratio(s.PerSec, a.PerSec), Op: ">=", Threshold: th.loginRatio, Flag: "--target-login-ratio"})
		if one := l.oneReplica(); one != nil {
			add(targetResult{Name: l.Name + "_replicas", Scenario: l.Scenario + " on " + s.Name, Value: s.PerSec, Unit: "logins/s",
				Anchor: one.Name, AnchorValue: one.PerSec, Measured: ratio(s.PerSec, one.PerSec), Op: ">=", Threshold: th.replicaRatio, Flag: "--target-replica-ratio"})
		}
		errs(l.Name+"_errors", l.Scenario, l.errorCount())
	}
	if p := r.PasswordLogins; p != nil {
		s, a := p.server(), p.anchor()
		add(targetResult{Name: "password_logins_vs_argon2id", Scenario: p.Scenario + " on " + s.Name, Value: s.PerSec, Unit: "logins/s",
			Anchor: a.Name, AnchorValue: a.PerSec, Measured: ratio(s.PerSec, a.PerSec), Op: ">=", Threshold: th.passwordRatio, Flag: "--target-password-ratio"})
		errs("password_logins_errors", p.Scenario, p.errorCount())
	}
	return out
}

// print writes the report as text.
func (r *loadReport) print(w io.Writer) {
	fmt.Fprintf(w, "authbench load: %s, %s; GOMAXPROCS %d of %d CPUs; load average %s at the start, %s at the end; %.0f s; seed %s\n",
		r.Store, r.Servers, r.GOMAXPROCS, r.NumCPU, fmtLoad(r.LoadAverageStart), fmtLoad(r.LoadAverageEnd), r.Seconds, r.Seed)
	fmt.Fprintf(w, "database: %s\n", r.DB)
	fmt.Fprintf(w, "argon2id: %s for the lifecycle, chip and code logins (--argon2); %s for password logins (--password-argon2)\n", r.Argon2, r.PasswordArgon2)
	fmt.Fprintf(w, "\nanchors, measured in this run:\n")
	anchor := func(name string, perSec float64, how string) {
		fmt.Fprintf(w, "  %-36s %12s/s  %s\n", name, thousands(perSec), how)
	}
	anchor("raw ECDSA P-256 verify", r.Raw.ECDSAVerifyPerSec, fmt.Sprintf("%d goroutines, %.1f s", r.Raw.Goroutines, r.Raw.Seconds))
	anchor("raw argon2id "+r.Raw.Argon2Params, r.Raw.Argon2PerSec, "")
	anchor("raw TOTP verify (HMAC-SHA1, skew 1)", r.Raw.TOTPVerifyPerSec, "")
	for _, l := range []*loginsResult{r.ChipLogins, r.CodeLogins, r.PasswordLogins} {
		if l != nil {
			a := l.anchor()
			anchor(anchorLabel(l), a.PerSec, fmt.Sprintf("%d clients, %s, beside the %s", a.Workers, fmtSeconds(a.Seconds), l.Scenario))
		}
	}
	fmt.Fprintf(w, "  minimal durable login = %s\n", r.MinimalLogin)

	fmt.Fprintf(w, "\n%-58s %14s %26s %7s %9s %s\n", "scenario", "value", "anchor", "ratio", "target", "met")
	for _, t := range r.Targets {
		value := fmtValue(t.Value, t.Unit)
		anchor, rat := "", ""
		if t.Anchor != "" {
			anchor = fmtValue(t.AnchorValue, t.Unit) + " " + shortAnchor(t.Anchor)
			rat = t.measured(2)
		}
		target := fmt.Sprintf("%s %s", strings.Replace(strings.Replace(t.Op, "<=", "≤", 1), ">=", "≥", 1), fmtThreshold(t))
		met := "yes"
		if !t.Met {
			met = "NO"
		}
		fmt.Fprintf(w, "%-58s %14s %26s %7s %9s %s\n", clip(t.Scenario, 58), value, anchor, rat, target, met)
	}

	fmt.Fprintf(w, "\n%-40s %8s %6s %8s %8s %8s %8s\n", "latency by phase (ms)", "count", "errors", "p50", "p90", "p99", "max")
	phases := func(title string, ps []phaseResult) {
		fmt.Fprintf(w, "%s\n", title)
		for _, p := range ps {
			fmt.Fprintf(w, "  %-38s %8d %6d %8.2f %8.2f %8.2f %8.2f\n", p.Name, p.Count, p.Errors, p.P50MS, p.P90MS, p.P99MS, p.MaxMS)
		}
	}
	if c := r.Lifecycle; c != nil {
		phases("lifecycle", c.Phases)
	}
	for _, l := range []*loginsResult{r.ChipLogins, r.CodeLogins, r.PasswordLogins} {
		if l == nil {
			continue
		}
		for _, t := range l.Targets {
			phases(l.Scenario+", "+t.Name, t.Phases)
		}
	}
	if c := r.Lifecycle; c != nil {
		var cpu string
		if c.CPUMSPerChip > 0 {
			who := "server and clients"
			if r.Store == "postgresql" {
				who = "the clients; the servers are other processes"
			}
			cpu = fmt.Sprintf("; CPU of this process %.2f ms per chip (%s)", c.CPUMSPerChip, who)
		}
		fmt.Fprintf(w, "\nlifecycle: %s chips by %d clients in %.2f s (%s chips/s; identities made beforehand in %.2f s%s); old credential refused after re-add: %d of %d sampled (%s)\n",
			thousands(float64(c.N)), c.Workers, c.Seconds, thousands(c.ChipsPerSec), c.SetupSeconds, cpu, c.OldRefused, c.Sampled, strings.Join(c.OldRefusedCodes, ", "))
	}
	for _, l := range []*loginsResult{r.ChipLogins, r.CodeLogins, r.PasswordLogins} {
		if l == nil {
			continue
		}
		fmt.Fprintf(w, "%s: %d %s (set up in %.2f s);", l.Scenario, l.Devices, l.DeviceKind, l.SetupSeconds)
		for _, t := range l.Targets {
			fmt.Fprintf(w, " %s %s in %s by %d clients (%s/s", t.Name, thousands(float64(t.Count)), fmtSeconds(t.Seconds), t.Workers, thousands(t.PerSec))
			if t.ServeCPUMS > 0 {
				fmt.Fprintf(w, ", serve CPU %.2f ms/login", t.ServeCPUMS)
			}
			if t.DBCPUMS > 0 {
				fmt.Fprintf(w, ", PostgreSQL CPU %.2f ms/login", t.DBCPUMS)
			}
			if t.LoadCPUMS > 0 {
				fmt.Fprintf(w, ", CPU of this process %.3f ms/login", t.LoadCPUMS)
			}
			fmt.Fprint(w, ");")
		}
		if a, s := l.anchor(), l.server(); r.Store == "sqlite" && a.LoadCPUMS > 0 && s.LoadCPUMS > 0 && a != s {
			fmt.Fprintf(w, " CPU per login, %s / %s: %.2f;", a.Name, s.Name, a.LoadCPUMS/s.LoadCPUMS)
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "\nerrors by code:")
	any := false
	show := func(title string, es []errorCount) {
		for _, e := range es {
			any = true
			fmt.Fprintf(w, "\n  %s, %s: %s ×%d (e.g. %s)", title, e.Phase, e.Code, e.Count, e.Example)
		}
	}
	if c := r.Lifecycle; c != nil {
		show("lifecycle", c.Errors)
	}
	for _, l := range []*loginsResult{r.ChipLogins, r.CodeLogins, r.PasswordLogins} {
		if l != nil {
			for _, t := range l.Targets {
				show(l.Scenario+", "+t.Name, t.Errors)
			}
		}
	}
	if !any {
		fmt.Fprintf(w, " none")
	}
	fmt.Fprintln(w)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func fmtSeconds(s float64) string { return fmt.Sprintf("%.1f s", s) }

func fmtValue(v float64, unit string) string {
	switch unit {
	case "s":
		return fmt.Sprintf("%.2f s", v)
	case "logins/s":
		return thousands(v) + "/s"
	}
	return fmt.Sprintf("%s %s", thousands(v), unit)
}

func fmtThreshold(t targetResult) string {
	if t.Unit == "s" {
		return fmt.Sprintf("%g s", t.Threshold)
	}
	return fmt.Sprintf("%g", t.Threshold)
}

// anchorLabel names the anchor of a login scenario.
func anchorLabel(l *loginsResult) string {
	switch l.Name {
	case "chip_logins":
		return "minimal durable login, chip"
	case "code_logins":
		return "minimal durable login, code"
	}
	return l.anchor().Name
}

// shortAnchor names an anchor in the table's narrow column.
func shortAnchor(s string) string {
	switch {
	case strings.HasPrefix(s, "minimal durable login"):
		return "(minimal)"
	case strings.HasPrefix(s, "raw argon2id"):
		return "(argon2id)"
	}
	return "(" + s + ")"
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

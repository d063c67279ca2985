package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/api"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/pskc"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/code"
)

// loadCmd is `authbench load`.
type loadCmd struct {
	Scenario    string        `default:"all" enum:"chips,otp,all" help:"What to measure: chips (enroll → login → block → re-add), otp (code-device logins) or all."`
	N           int           `default:"10000" placeholder:"N" help:"Number of simulated chips of the chips scenario."`
	Concurrency int           `default:"64" placeholder:"N" help:"Concurrent clients (workers)."`
	Devices     int           `default:"512" placeholder:"N" help:"Number of simulated code devices of the otp scenario."`
	Duration    time.Duration `default:"10s" placeholder:"DURATION" help:"How long the otp scenario logs in."`
	Baseline    time.Duration `default:"1s" placeholder:"DURATION" help:"How long each raw-crypto baseline (ECDSA P-256 verify, HMAC-SHA1 TOTP verify) runs."`
	Sample      int           `default:"100" placeholder:"N" help:"How many chips are checked, after the run, to be refused with their old credential."`
	DB          string        `placeholder:"PATH" help:"SQLite database of the embedded server (default: a temporary file, removed afterwards)."`
	Seed        hexBytes      `placeholder:"HEX" help:"Seed of the simulated devices and of the run's identity names (default: random; a seed used before on the same --db collides with that run's identities)."`
	JSON        bool          `help:"Print the results as JSON instead of text."`
}

// The targets the load command reports against.
const (
	targetChips        = 10000 // simulated chips through enroll → login → block → re-add ...
	targetChipsSeconds = 10.0  // ... in at most this many seconds
	targetOTPPerSec    = 20000 // OTP logins per second on two cores
	targetChipVsECDSA  = 0.5   // chip logins per second / raw ECDSA P-256 verifies per second
)

// The relying party of the load server.
const (
	loadRPID   = "load.authbench.test"
	loadOrigin = "https://load.authbench.test"
)

// loadPassword is the password of every load identity: chips and code
// devices are second factors, used after it.
const loadPassword = "the load identities' password"

// loadConfig is what `authbench load` was asked to do.
type loadConfig struct {
	scenario    string // chips, otp or all
	n           int    // chips
	concurrency int    // workers
	devices     int    // code devices of the OTP scenario
	duration    time.Duration
	baseline    time.Duration // per raw-crypto measurement
	sample      int           // chips whose old credential is checked refused
	db          string
	seed        []byte
	jsonOut     bool
	wrapAPI     func(http.Handler) http.Handler // see env.wrapAPI
}

func (c *loadCmd) Run(ctx context.Context, e *env) error {
	cfg := loadConfig{
		scenario: c.Scenario, n: c.N, concurrency: c.Concurrency, devices: c.Devices,
		duration: c.Duration, baseline: c.Baseline, sample: c.Sample, db: c.DB, jsonOut: c.JSON, wrapAPI: e.wrapAPI,
	}
	seed := c.Seed
	switch cfg.scenario {
	case "chips", "otp", "all":
	default:
		return usageError{fmt.Errorf("--scenario %q: want chips, otp or all", cfg.scenario)}
	}
	switch {
	case cfg.n < 1:
		return usageError{errors.New("--n must be at least 1")}
	case cfg.concurrency < 1:
		return usageError{errors.New("--concurrency must be at least 1")}
	case cfg.devices < 1:
		return usageError{errors.New("--devices must be at least 1")}
	case cfg.duration <= 0 || cfg.baseline <= 0:
		return usageError{errors.New("--duration and --baseline must be positive")}
	case cfg.sample < 0:
		return usageError{errors.New("--sample must not be negative")}
	}
	if strings.HasPrefix(cfg.db, "postgres://") || strings.HasPrefix(cfg.db, "postgresql://") {
		return usageError{embedded.ErrPostgres}
	}
	cfg.seed = seed
	if cfg.seed == nil {
		cfg.seed = make([]byte, 8)
		if _, err := rand.Read(cfg.seed); err != nil {
			return err
		}
	}

	l := newLoader(cfg, e.stderr)
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
	rep.Targets = rep.targets()
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

// targetResult is one target and whether the run met it.
type targetResult struct {
	Name     string  `json:"name"`
	Want     string  `json:"want"` // "<=" or ">="
	Target   float64 `json:"target"`
	Measured float64 `json:"measured"`
	Met      bool    `json:"met"`
}

func (t targetResult) String() string {
	return fmt.Sprintf("%s %.3g, target %s %.3g", t.Name, t.Measured, t.Want, t.Target)
}

// targets judges the report against the targets. A run of fewer
// chips than the target's count is judged by the time the target's count
// would take at the measured rate.
func (r *loadReport) targets() []targetResult {
	var out []targetResult
	add := func(name, want string, target, measured float64) {
		met := measured <= target
		if want == ">=" {
			met = measured >= target
		}
		out = append(out, targetResult{Name: name, Want: want, Target: target, Measured: measured, Met: met})
	}
	if c := r.Chips; c != nil {
		secs := math.Inf(1)
		if c.ChipsPerSec > 0 {
			secs = float64(c.TargetN) / c.ChipsPerSec
		}
		add(fmt.Sprintf("seconds for %d chips through enroll, login, block and re-add", c.TargetN), "<=", c.TargetSeconds, secs)
		add("chip logins per raw ECDSA P-256 verify", ">=", c.TargetVsECDSA, c.LoginVsECDSA)
	}
	if o := r.OTP; o != nil {
		add("OTP logins per second", ">=", o.TargetPerSec, o.PerSec)
	}
	return out
}

// loadError is a functional failure: a step that the server's rules say
// must succeed (or must be refused) did not. It makes `authbench load` exit
// with status 1.
type loadError struct {
	What string // "chip 17 (identity load-1a2b3c4d-chip-17)"
	Step string // "enroll", "login", "block", "re-add", ...
	Err  error
}

func (e *loadError) Error() string { return fmt.Sprintf("%s: %s: %v", e.What, e.Step, e.Err) }
func (e *loadError) Unwrap() error { return e.Err }

// loadReport is what one run measured. Rates are per second of wall time.
type loadReport struct {
	GOMAXPROCS int             `json:"gomaxprocs"`
	NumCPU     int             `json:"num_cpu"`
	DB         string          `json:"db"`
	Seed       string          `json:"seed"`
	Baseline   *baselineResult `json:"baseline"`
	Chips      *chipsResult    `json:"chips,omitempty"`
	OTP        *otpResult      `json:"otp,omitempty"`
	Targets    []targetResult  `json:"targets"`
}

// baselineResult is the raw cryptography of the same machine, measured in
// the same run with one goroutine per GOMAXPROCS.
type baselineResult struct {
	Goroutines        int     `json:"goroutines"`
	Seconds           float64 `json:"seconds_each"`
	ECDSAVerifyPerSec float64 `json:"ecdsa_p256_verify_per_s"`
	TOTPVerifyPerSec  float64 `json:"totp_hmac_sha1_verify_per_s"`
}

// phaseResult is one step of the chip lifecycle. PerSec is the throughput
// the step had at the run's concurrency: Count divided by the time the
// workers spent in it, times the number of workers.
type phaseResult struct {
	Name   string  `json:"name"`
	Count  int     `json:"count"`
	MeanMS float64 `json:"mean_ms"`
	PerSec float64 `json:"per_s"`
}

type chipsResult struct {
	N               int           `json:"n"`
	Concurrency     int           `json:"concurrency"`
	SetupSeconds    float64       `json:"setup_seconds"` // making the chips and creating the identities
	Seconds         float64       `json:"seconds"`       // enroll → login → block → re-add of all N
	TargetSeconds   float64       `json:"target_seconds"`
	TargetN         int           `json:"target_n"`
	ChipsPerSec     float64       `json:"chips_per_s"`
	Phases          []phaseResult `json:"phases"`
	LoginVsECDSA    float64       `json:"login_vs_ecdsa_verify"` // login phase per_s / baseline ECDSA verifies per second
	TargetVsECDSA   float64       `json:"target_login_vs_ecdsa_verify"`
	Sampled         int           `json:"sampled"`
	OldRefused      int           `json:"old_credential_refused"`
	OldRefusedCodes []string      `json:"old_credential_refused_codes"`
	CheckSeconds    float64       `json:"check_seconds"`
}

type otpResult struct {
	Devices      int     `json:"devices"`
	Workers      int     `json:"workers"`
	SetupSeconds float64 `json:"setup_seconds"`
	Seconds      float64 `json:"seconds"`
	Logins       int64   `json:"logins"`
	PerSec       float64 `json:"logins_per_s"`
	TargetPerSec float64 `json:"target_logins_per_s"`
	Steps        uint64  `json:"virtual_steps"` // time steps the virtual clock advanced
	VsTOTP       float64 `json:"vs_totp_verify"`
	VsECDSA      float64 `json:"vs_ecdsa_verify"`
}

// loader runs the scenarios of one `authbench load`.
type loader struct {
	cfg      loadConfig
	progress io.Writer
	tag      string // prefix of the run's identity IDs and serials
}

func newLoader(cfg loadConfig, progress io.Writer) *loader {
	h := sha256.Sum256(append([]byte("authbench load run "), cfg.seed...))
	return &loader{cfg: cfg, progress: progress, tag: "load-" + hex.EncodeToString(h[:4])}
}

// seedFor returns the seed of the i-th simulated device of a kind.
func (l *loader) seedFor(kind string, i int) []byte {
	return fmt.Appendf(append([]byte(nil), l.cfg.seed...), "/%s/%d", kind, i)
}

func (l *loader) run(ctx context.Context) (*loadReport, error) {
	rep := &loadReport{GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), DB: l.cfg.db, Seed: hex.EncodeToString(l.cfg.seed)}
	if rep.DB == "" {
		rep.DB = "temporary SQLite file"
	}
	fmt.Fprintf(l.progress, "load: raw baselines (%v each on %d goroutines)...\n", l.cfg.baseline, rep.GOMAXPROCS)
	b, err := measureBaseline(ctx, l.cfg.baseline)
	if err != nil {
		return nil, err
	}
	rep.Baseline = b
	if l.cfg.scenario == "chips" || l.cfg.scenario == "all" {
		if rep.Chips, err = l.chips(ctx); err != nil {
			return nil, err
		}
		rep.Chips.LoginVsECDSA = ratio(rep.Chips.Phases[1].PerSec, b.ECDSAVerifyPerSec)
	}
	if l.cfg.scenario == "otp" || l.cfg.scenario == "all" {
		if rep.OTP, err = l.otp(ctx); err != nil {
			return nil, err
		}
		rep.OTP.VsTOTP = ratio(rep.OTP.PerSec, b.TOTPVerifyPerSec)
		rep.OTP.VsECDSA = ratio(rep.OTP.PerSec, b.ECDSAVerifyPerSec)
	}
	return rep, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// measureBaseline measures raw ECDSA P-256 verifications and raw RFC 6238
// TOTP verifications (HMAC-SHA1, skew 1: three HMACs) per second, with one
// goroutine per GOMAXPROCS, for d each.
func measureBaseline(ctx context.Context, d time.Duration) (*baselineResult, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte("authenticator data and client data hash"))
	sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	if err != nil {
		return nil, err
	}
	secret := sha256.Sum256([]byte("authbench load baseline"))
	t := &otp.TOTP{Secret: secret[:20]}
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	otpCode, _, err := t.At(at)
	if err != nil {
		return nil, err
	}
	b := &baselineResult{Goroutines: runtime.GOMAXPROCS(0), Seconds: d.Seconds()}
	if b.ECDSAVerifyPerSec, err = opsPerSecond(ctx, d, b.Goroutines, func() bool {
		return ecdsa.VerifyASN1(&k.PublicKey, h[:], sig)
	}); err != nil {
		return nil, fmt.Errorf("load: ECDSA baseline: %w", err)
	}
	if b.TOTPVerifyPerSec, err = opsPerSecond(ctx, d, b.Goroutines, func() bool {
		_, err := t.Verify(otpCode, at, 1, 0)
		return err == nil
	}); err != nil {
		return nil, fmt.Errorf("load: TOTP baseline: %w", err)
	}
	return b, nil
}

// opsPerSecond runs op on workers goroutines for d and returns how many
// times per second it ran. It fails when op reports false.
func opsPerSecond(ctx context.Context, d time.Duration, workers int, op func() bool) (float64, error) {
	var total atomic.Int64
	var bad atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Go(func() {
			n := int64(0)
			defer func() { total.Add(n) }()
			for ctx.Err() == nil && !bad.Load() {
				for range 16 {
					if !op() {
						bad.Store(true)
						return
					}
					n++
				}
				if time.Now().After(deadline) {
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if bad.Load() {
		return 0, errors.New("the operation failed")
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(total.Load()) / elapsed.Seconds(), nil
}

// loadServer is the embedded server of one scenario and the clients that
// talk to it over loopback HTTP.
type loadServer struct {
	*embedded.Server
	transport *http.Transport
	support   *client.Client // the support operator
	anon      *client.Client // no token: the login ceremonies
	pskcKey   []byte
}

// startServer starts the embedded server on a loopback port, with the
// configured database, cheap argon2id parameters (secrets.FastParams, the
// documented setting for load: every login checks a password first, and
// the argon2id cost is not what these scenarios measure), the test
// attestation CA as its trusted root, the login rate limits switched off
// (all the load comes from one address), and the clock now (nil for the
// real one).
func (l *loader) startServer(ctx context.Context, now func() time.Time) (*loadServer, error) {
	s := &loadServer{pskcKey: make([]byte, 16)}
	if _, err := rand.Read(s.pskcKey); err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(chip.TestCACertPEM())
	srv, err := embedded.Start(ctx, embedded.Options{
		DB:               l.cfg.db,
		RPID:             loadRPID,
		RPOrigins:        []string{loadOrigin},
		AttestationRoots: roots,
		PSKCKey:          s.pskcKey,
		Hasher:           secrets.FastParams(),
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
	s.Server = srv
	// One kept-alive connection per worker, so that the run measures the
	// server and not TCP handshakes (and does not run out of ports).
	s.transport = &http.Transport{
		MaxIdleConns:        l.cfg.concurrency + 16,
		MaxIdleConnsPerHost: l.cfg.concurrency + 16,
		IdleConnTimeout:     time.Minute,
	}
	hc := &http.Client{Transport: s.transport, Timeout: time.Minute}
	s.support, err = client.New(srv.URL, client.Options{HTTPClient: hc, Token: srv.SupportToken, Origin: loadOrigin, UserAgent: "authbench-load"})
	if err != nil {
		srv.Close()
		return nil, err
	}
	s.anon = s.support.WithToken("")
	if err := s.support.Health(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("load: the server is not healthy: %w", err)
	}
	return s, nil
}

func (s *loadServer) close() error {
	s.transport.CloseIdleConnections()
	err := s.Server.Close()
	s.transport.CloseIdleConnections()
	return err
}

// forEach calls f for 0..n-1 on the given number of workers. The first
// error cancels the others' context and is returned; a cancelled parent
// context returns its error.
func forEach(ctx context.Context, n, workers int, f func(ctx context.Context, worker, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for w := range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(ctx, w, i); err != nil {
					errOnce.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// startProgress prints a line on the progress writer every second until
// the returned function is called (which waits for the printer to end).
func (l *loader) startProgress(line func(elapsed time.Duration) string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintln(l.progress, line(time.Since(start)))
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// phaseStats accumulates the time one worker spent in each phase.
type phaseStats struct {
	sum time.Duration
	n   int
}

// The phases of a chip's lifecycle in the chips scenario.
var chipPhases = []string{"enroll", "login", "block", "re-add"}

// loadChip is one simulated chip of the chips scenario and what the server
// said about it.
type loadChip struct {
	id       string
	c        *chip.Chip
	old, cur *client.Authenticator
}

// chips runs the chips scenario: N simulated chips, each of its own
// identity, go through enroll → login → block → re-add over HTTP; then a
// sample of them is checked to be refused with their old credential.
func (l *loader) chips(ctx context.Context) (_ *chipsResult, err error) {
	cfg := l.cfg
	srv, err := l.startServer(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, srv.close()) }()
	res := &chipsResult{N: cfg.n, Concurrency: cfg.concurrency, TargetN: targetChips, TargetSeconds: targetChipsSeconds, TargetVsECDSA: targetChipVsECDSA}
	chips := make([]*loadChip, cfg.n)
	defer func() {
		for _, lc := range chips {
			if lc != nil {
				lc.c.Close()
			}
		}
	}()

	// Setup: the chips and their identities, each with a password (a chip
	// logs in after the password, docs/login.md; the load server hashes with
	// cheap argon2id parameters, see startServer).
	var done atomic.Int64
	fmt.Fprintf(l.progress, "load: chips: making %d simulated chips and their identities...\n", cfg.n)
	stop := l.startProgress(func(el time.Duration) string {
		return fmt.Sprintf("load: chips setup %d/%d", done.Load(), cfg.n)
	})
	start := time.Now()
	err = forEach(ctx, cfg.n, cfg.concurrency, func(ctx context.Context, _, i int) error {
		c, err := chip.New(chip.Options{Seed: l.seedFor("chip", i)})
		if err != nil {
			return &loadError{What: fmt.Sprintf("chip %d", i), Step: "make", Err: err}
		}
		lc := &loadChip{id: fmt.Sprintf("%s-chip-%d", l.tag, i), c: c}
		chips[i] = lc
		if _, err := srv.support.CreateIdentity(ctx, client.CreateIdentityRequest{ID: lc.id, Password: loadPassword}); err != nil {
			return &loadError{What: fmt.Sprintf("chip %d (identity %s)", i, lc.id), Step: "create identity", Err: err}
		}
		done.Add(1)
		return nil
	})
	stop()
	res.SetupSeconds = time.Since(start).Seconds()
	if err != nil {
		return nil, err
	}

	// The measured run.
	stats := make([][]phaseStats, cfg.concurrency)
	for w := range stats {
		stats[w] = make([]phaseStats, len(chipPhases))
	}
	done.Store(0)
	fmt.Fprintf(l.progress, "load: chips: enroll → login → block → re-add, %d workers...\n", cfg.concurrency)
	stop = l.startProgress(func(el time.Duration) string {
		n := done.Load()
		return fmt.Sprintf("load: chips %d/%d (%.0f/s)", n, cfg.n, float64(n)/el.Seconds())
	})
	start = time.Now()
	err = forEach(ctx, cfg.n, cfg.concurrency, func(ctx context.Context, w, i int) error {
		if err := chipLifecycle(ctx, srv, chips[i], stats[w]); err != nil {
			err.What = fmt.Sprintf("chip %d (identity %s)", i, chips[i].id)
			return err
		}
		done.Add(1)
		return nil
	})
	elapsed := time.Since(start)
	stop()
	if err != nil {
		return nil, err
	}
	res.Seconds = elapsed.Seconds()
	res.ChipsPerSec = float64(cfg.n) / res.Seconds
	workers := min(cfg.concurrency, cfg.n)
	for p, name := range chipPhases {
		var total phaseStats
		for w := range stats {
			total.sum += stats[w][p].sum
			total.n += stats[w][p].n
		}
		pr := phaseResult{Name: name, Count: total.n}
		if total.n > 0 && total.sum > 0 {
			pr.MeanMS = float64(total.sum) / float64(total.n) / float64(time.Millisecond)
			pr.PerSec = float64(total.n) * float64(workers) / total.sum.Seconds()
		}
		res.Phases = append(res.Phases, pr)
	}

	// The old credentials of a sample stay refused.
	sample := sampleIndexes(cfg.n, cfg.sample)
	res.Sampled = len(sample)
	codes := make([]string, len(sample))
	fmt.Fprintf(l.progress, "load: chips: checking that %d re-added chips are refused with their old credential...\n", len(sample))
	start = time.Now()
	err = forEach(ctx, len(sample), cfg.concurrency, func(ctx context.Context, _, j int) error {
		i := sample[j]
		c, err := checkOldCredential(ctx, srv, chips[i])
		if err != nil {
			err.What = fmt.Sprintf("chip %d (identity %s)", i, chips[i].id)
			return err
		}
		codes[j] = c
		return nil
	})
	res.CheckSeconds = time.Since(start).Seconds()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, c := range codes {
		res.OldRefused++
		if !seen[c] {
			seen[c] = true
			res.OldRefusedCodes = append(res.OldRefusedCodes, c)
		}
	}
	return res, nil
}

// sampleIndexes returns up to k indexes spread evenly over 0..n-1.
func sampleIndexes(n, k int) []int {
	k = min(k, n)
	out := make([]int, 0, k)
	for j := range k {
		out = append(out, j*n/k)
	}
	return out
}

// chipLifecycle takes one chip through enroll → login → block → re-add,
// adding the time of each phase to stats. The error's What is left for the
// caller to fill in.
func chipLifecycle(ctx context.Context, srv *loadServer, lc *loadChip, stats []phaseStats) *loadError {
	fail := func(step string, err error) *loadError { return &loadError{Step: step, Err: err} }
	t0 := time.Now()
	a, err := client.EnrollChip(ctx, srv.support, lc.id, "load", lc.c)
	if err != nil {
		return fail("enroll", err)
	}
	if a.State != client.StateActive || a.CredentialID == "" {
		return fail("enroll", fmt.Errorf("the chip is %s with credential %q; want active with a credential", a.State, a.CredentialID))
	}
	lc.old = a
	t1 := time.Now()
	s, err := client.LoginPasswordChip(ctx, srv.anon, lc.id, loadPassword, a.ID, lc.c)
	if err != nil {
		return fail("login", err)
	}
	if s.Token == "" {
		return fail("login", errors.New("the login gave no session"))
	}
	t2 := time.Now()
	b, err := srv.support.Block(ctx, lc.id, a.ID, client.ReasonLost)
	if err != nil {
		return fail("block", err)
	}
	if b.State != client.StateBlocked || !b.Element.Wiped {
		return fail("block", fmt.Errorf("the chip is %s, element wiped %v; want blocked and wiped", b.State, b.Element.Wiped))
	}
	t3 := time.Now()
	again, err := client.EnrollChip(ctx, srv.support, lc.id, "load (again)", lc.c)
	if err != nil {
		return fail("re-add", err)
	}
	if again.State != client.StateActive {
		return fail("re-add", fmt.Errorf("the re-added chip is %s; want active", again.State))
	}
	if again.CredentialID == a.CredentialID || again.ID == a.ID {
		return fail("re-add", fmt.Errorf("the re-added chip has the old authenticator or credential (%s, %s)", again.ID, again.CredentialID))
	}
	lc.cur = again
	t4 := time.Now()
	for p, d := range []time.Duration{t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3)} {
		stats[p].sum += d
		stats[p].n++
	}
	return nil
}

// checkOldCredential checks the lifecycle rule (server/domain) for a chip added again
// after a permanent block: the blocked authenticator cannot log in, the
// old credential is refused even when the chip signs with it, and the new
// one logs in. It returns the error code of the refusal of the old
// credential.
func checkOldCredential(ctx context.Context, srv *loadServer, lc *loadChip) (string, *loadError) {
	fail := func(step string, err error) (string, *loadError) { return "", &loadError{Step: step, Err: err} }
	_, err := client.LoginPasswordChip(ctx, srv.anon, lc.id, loadPassword, lc.old.ID, lc.c)
	if !errors.Is(err, client.ErrBlocked) {
		return fail("log in with the blocked authenticator", fmt.Errorf("want %q, got %v", client.ErrBlocked, err))
	}
	step, err := srv.anon.PasswordLogin(ctx, lc.id, loadPassword, lc.cur.ID)
	if err != nil {
		return fail("old credential: password", err)
	}
	lcg := step.Next
	if lcg == nil || lcg.PublicKey == nil {
		return fail("old credential: password", errors.New("no request options for the chip"))
	}
	opts := *lcg.PublicKey
	opts.AllowCredentials = []client.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: lc.old.CredentialID}}
	cred, err := client.ChipAssertion(ctx, lc.c, &opts, loadOrigin)
	if err != nil {
		return fail("old credential: the chip signs with it", err)
	}
	_, err = srv.anon.FinishLogin(ctx, lc.id, client.FinishLoginRequest{Ceremony: lcg.Ceremony, Credential: cred})
	var ae *client.APIError
	switch {
	case err == nil:
		return fail("old credential: finish", errors.New("the old credential was accepted"))
	case !errors.As(err, &ae) || ae.Status/100 != 4:
		return fail("old credential: finish", fmt.Errorf("want a refusal (4xx), got: %w", err))
	}
	if _, err := client.LoginPasswordChip(ctx, srv.anon, lc.id, loadPassword, lc.cur.ID, lc.c); err != nil {
		return fail("log in with the new credential", err)
	}
	return fmt.Sprintf("%d %s", ae.Status, ae.Code), nil
}

// otpClock is the virtual clock of the otp scenario, shared by the server
// and the simulated code devices. It stands at the start of a 30-second
// time step and moves one step at a time, when a worker has used all its
// devices in the current step.
//
// The server accepts the codes of the step before and after its own
// (skew 1), so the clock must never move twice while a login is on the
// way: every login is counted in flight under the step at which it
// started, and the clock moves from s to s+1 only when no login that
// started at s-1 is still in flight. Every code thus arrives at the
// server at its own step or the next one, and a refusal is a real
// failure, never a race of the load generator.
type otpClock struct {
	step     atomic.Uint64
	mu       sync.Mutex
	cond     *sync.Cond
	inflight [4]int // logins in flight by step mod 4; mu
}

const otpPeriod = 30 // seconds per time step

func newOTPClock(t time.Time) *otpClock {
	c := &otpClock{}
	c.cond = sync.NewCond(&c.mu)
	c.step.Store(uint64(t.Unix() / otpPeriod))
	return c
}

// Now returns the start of the current step.
func (c *otpClock) Now() time.Time { return time.Unix(int64(c.step.Load())*otpPeriod, 0).UTC() }

// acquire counts a login in flight at the current step and returns it.
func (c *otpClock) acquire() uint64 {
	c.mu.Lock()
	s := c.step.Load()
	c.inflight[s%4]++
	c.mu.Unlock()
	return s
}

// release ends a login that acquire counted at step s.
func (c *otpClock) release(s uint64) {
	c.mu.Lock()
	c.inflight[s%4]--
	if c.inflight[s%4] == 0 {
		c.cond.Broadcast()
	}
	c.mu.Unlock()
}

// advance moves the clock from step s to s+1, once no login that started
// at s-1 is in flight. It returns at once if the clock is past s already.
func (c *otpClock) advance(s uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.step.Load() == s && c.inflight[(s-1)%4] > 0 {
		c.cond.Wait()
	}
	if c.step.Load() == s {
		c.step.Store(s + 1)
		c.cond.Broadcast()
	}
}

// loadCode is one simulated code device of the otp scenario, enrolled for
// an identity of its own.
type loadCode struct {
	id, aid string
	dev     *code.Device
	last    uint64 // the highest time step used; the worker's only
}

// otp runs the otp scenario: M simulated code displays, imported by PSKC
// and enrolled, and C workers logging in with them for D seconds on the
// virtual clock.
func (l *loader) otp(ctx context.Context) (_ *otpResult, err error) {
	cfg := l.cfg
	clk := newOTPClock(time.Now())
	srv, err := l.startServer(ctx, clk.Now)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, srv.close()) }()
	workers := min(cfg.concurrency, cfg.devices)
	res := &otpResult{Devices: cfg.devices, Workers: workers, TargetPerSec: targetOTPPerSec}

	// Setup: the factory's PSKC documents, then each device enrolled for
	// an identity of its own.
	fmt.Fprintf(l.progress, "load: otp: importing %d simulated code displays by PSKC and enrolling them...\n", cfg.devices)
	start := time.Now()
	devs := make([]*loadCode, cfg.devices)
	for i := range devs {
		dev, err := code.New(code.Options{
			Kind:   device.KindCodeDisplay,
			Seed:   l.seedFor("code", i),
			Serial: fmt.Sprintf("%s-KV-%d", l.tag, i),
			Now:    clk.Now,
		})
		if err != nil {
			return nil, &loadError{What: fmt.Sprintf("code device %d", i), Step: "make", Err: err}
		}
		devs[i] = &loadCode{id: fmt.Sprintf("%s-code-%d", l.tag, i), dev: dev}
	}
	const perDoc = 1000 // keys per PSKC document, well under the 4 MiB body limit
	for from := 0; from < len(devs); from += perDoc {
		if err := importCodeDevices(ctx, srv, devs[from:min(from+perDoc, len(devs))]); err != nil {
			return nil, &loadError{What: fmt.Sprintf("code devices %d to %d", from, min(from+perDoc, len(devs))-1), Step: "PSKC import", Err: err}
		}
	}
	err = forEach(ctx, len(devs), cfg.concurrency, func(ctx context.Context, _, i int) error {
		d := devs[i]
		what := fmt.Sprintf("code device %d (identity %s)", i, d.id)
		if _, err := srv.support.CreateIdentity(ctx, client.CreateIdentityRequest{ID: d.id, Password: loadPassword}); err != nil {
			return &loadError{What: what, Step: "create identity", Err: err}
		}
		a, err := client.EnrollCodeDevice(ctx, srv.support, d.id, "load", d.dev)
		if err != nil {
			return &loadError{What: what, Step: "enroll", Err: err}
		}
		if a.State != client.StateActive || a.Element.LastStep == 0 {
			return &loadError{What: what, Step: "enroll", Err: fmt.Errorf("the code device is %s, last step %d; want active with the activation's step", a.State, a.Element.LastStep)}
		}
		d.aid, d.last = a.ID, a.Element.LastStep
		return nil
	})
	res.SetupSeconds = time.Since(start).Seconds()
	if err != nil {
		return nil, err
	}

	// The measured run: worker i owns devices i, i+workers, ...
	own := make([][]*loadCode, workers)
	for i, d := range devs {
		own[i%workers] = append(own[i%workers], d)
	}
	var logins atomic.Int64
	firstStep := clk.step.Load()
	fmt.Fprintf(l.progress, "load: otp: %d workers log in for %v...\n", workers, cfg.duration)
	stop := l.startProgress(func(el time.Duration) string {
		n := logins.Load()
		return fmt.Sprintf("load: otp %.0fs/%.0fs %d logins (%.0f/s)", el.Seconds(), cfg.duration.Seconds(), n, float64(n)/el.Seconds())
	})
	start = time.Now()
	deadline := start.Add(cfg.duration)
	err = forEach(ctx, workers, workers, func(ctx context.Context, _, i int) error {
		return otpWorker(ctx, srv, clk, own[i], deadline, &logins)
	})
	elapsed := time.Since(start)
	stop()
	if err != nil {
		return nil, err
	}
	res.Seconds = elapsed.Seconds()
	res.Logins = logins.Load()
	res.PerSec = float64(res.Logins) / res.Seconds
	res.Steps = clk.step.Load() - firstStep
	return res, nil
}

// importCodeDevices sends the devices' secrets to the server as a
// provisioning station would: a PSKC document (RFC 6030) under the
// server's pre-shared key.
func importCodeDevices(ctx context.Context, srv *loadServer, devs []*loadCode) error {
	keys := make([]pskc.Key, 0, len(devs))
	for i, d := range devs {
		t := d.dev.TOTP()
		keys = append(keys, pskc.Key{
			Serial: d.dev.Serial(), Manufacturer: "authbench", Model: string(d.dev.Kind()), ID: fmt.Sprintf("key-%d", i+1),
			Algorithm: pskc.TOTP, Hash: t.Algorithm, Digits: t.Digits, Period: t.Period, Secret: t.Secret,
		})
	}
	var doc bytes.Buffer
	if err := pskc.Write(&doc, keys, pskc.EncryptOptions{Key: srv.pskcKey}); err != nil {
		return err
	}
	res, err := srv.support.ImportPSKC(ctx, doc.Bytes())
	if err != nil {
		return err
	}
	if res.Imported != len(devs) {
		return fmt.Errorf("imported %d of %d", res.Imported, len(devs))
	}
	return nil
}

// otpWorker logs in with its devices until deadline: each device at most
// once per time step (codes are single use, RFC 6238 §5.2); when all of
// them have been used in the current step, it moves the clock on.
func otpWorker(ctx context.Context, srv *loadServer, clk *otpClock, devs []*loadCode, deadline time.Time, logins *atomic.Int64) error {
	next := 0
	for ctx.Err() == nil && time.Now().Before(deadline) {
		s := clk.acquire()
		var d *loadCode
		for range devs {
			if c := devs[next]; c.last < s {
				d = c
			}
			next = (next + 1) % len(devs)
			if d != nil {
				break
			}
		}
		if d == nil {
			clk.release(s)
			clk.advance(s)
			continue
		}
		err := otpLogin(ctx, srv, d)
		clk.release(s)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		logins.Add(1)
	}
	return nil
}

// otpLogin presses the device's button and logs in with the code.
func otpLogin(ctx context.Context, srv *loadServer, d *loadCode) error {
	what := fmt.Sprintf("code device %s (identity %s)", d.dev.Serial(), d.id)
	c, err := d.dev.Press(ctx)
	if err != nil {
		return &loadError{What: what, Step: "press", Err: err}
	}
	if c.Step <= d.last {
		return &loadError{What: what, Step: "press", Err: fmt.Errorf("the device shows step %d, already used %d", c.Step, d.last)}
	}
	d.last = c.Step
	if _, err := client.LoginPasswordCode(ctx, srv.anon, d.id, loadPassword, d.aid, c.Digits); err != nil {
		return &loadError{What: what, Step: fmt.Sprintf("login with the code of step %d", c.Step), Err: err}
	}
	return nil
}

// print writes the report as text.
func (r *loadReport) print(w io.Writer) {
	fmt.Fprintf(w, "authbench load: GOMAXPROCS %d (%d CPUs), store %s, seed %s\n", r.GOMAXPROCS, r.NumCPU, r.DB, r.Seed)
	b := r.Baseline
	fmt.Fprintf(w, "baseline (same run, %d goroutines, %.1f s each): raw ECDSA P-256 verify %s/s; raw HMAC-SHA1 TOTP verify (skew 1) %s/s\n",
		b.Goroutines, b.Seconds, thousands(b.ECDSAVerifyPerSec), thousands(b.TOTPVerifyPerSec))
	if c := r.Chips; c != nil {
		fmt.Fprintf(w, "\nchips: %d simulated chips, %d workers; setup (make chips, create identities) %.2f s\n", c.N, c.Concurrency, c.SetupSeconds)
		line := fmt.Sprintf("%s chips enroll→login→block→re-add: %.2f s (target ≤ %g s)", thousands(float64(c.N)), c.Seconds, c.TargetSeconds)
		if c.N != c.TargetN {
			line = fmt.Sprintf("%s chips enroll→login→block→re-add: %.2f s (target ≤ %g s for %s; at this rate %s would take %.1f s)",
				thousands(float64(c.N)), c.Seconds, c.TargetSeconds, thousands(float64(c.TargetN)), thousands(float64(c.TargetN)), float64(c.TargetN)/c.ChipsPerSec)
		}
		fmt.Fprintln(w, line)
		fmt.Fprintf(w, "  %s chips/s; per phase (rate = count × workers / time in the phase):\n", thousands(c.ChipsPerSec))
		for _, p := range c.Phases {
			fmt.Fprintf(w, "    %-7s %7d  mean %7.2f ms  %9s/s\n", p.Name, p.Count, p.MeanMS, thousands(p.PerSec))
		}
		fmt.Fprintf(w, "  chip login (begin, the chip's signature, finish) = %.2f × raw ECDSA P-256 verify (target ≥ %g; here the simulated chips sign on the same cores)\n",
			c.LoginVsECDSA, c.TargetVsECDSA)
		fmt.Fprintf(w, "  old credential refused after re-add: %d of %d sampled chips (%s), checked in %.2f s\n",
			c.OldRefused, c.Sampled, strings.Join(c.OldRefusedCodes, ", "), c.CheckSeconds)
	}
	if o := r.OTP; o != nil {
		fmt.Fprintf(w, "\notp: %d simulated code displays (PSKC import and enrolment %.2f s), %d workers, virtual clock moved %d steps\n",
			o.Devices, o.SetupSeconds, o.Workers, o.Steps)
		fmt.Fprintf(w, "OTP logins end to end: %s/s (%d in %.2f s) (target ≥ %s/s)\n", thousands(o.PerSec), o.Logins, o.Seconds, thousands(o.TargetPerSec))
		fmt.Fprintf(w, "  = %.4f × raw HMAC-SHA1 TOTP verify, %.2f × raw ECDSA P-256 verify\n", o.VsTOTP, o.VsECDSA)
	}
}

// thousands formats v rounded to a whole number, with commas between
// thousands.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

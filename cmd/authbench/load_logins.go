package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/pskc"
	"github.com/authbench/authbench/sim/code"
)

// loginsResult is one login scenario: its logins, measured on each of its
// targets in turn (the anchor first; on PostgreSQL with several replicas,
// one replica; the whole server last).
type loginsResult struct {
	Name         string         `json:"name"`     // chip_logins, code_logins, password_logins
	Scenario     string         `json:"scenario"` // what the logins are
	Devices      int            `json:"devices"`
	DeviceKind   string         `json:"device_kind"`
	SetupSeconds float64        `json:"setup_seconds"`
	Targets      []*loginTarget `json:"targets"`
}

// loginTarget is what the logins of a scenario were measured on, and what
// they did there.
type loginTarget struct {
	Name          string        `json:"name"`
	Anchor        bool          `json:"anchor"`
	Replicas      int           `json:"replicas,omitempty"`
	Workers       int           `json:"workers"`
	Seconds       float64       `json:"seconds"`
	Count         int64         `json:"logins"`
	PerSec        float64       `json:"logins_per_s"`
	WaitedSeconds float64       `json:"waited_for_codes_seconds,omitempty"`
	Phases        []phaseResult `json:"phases"`
	Errors        []errorCount  `json:"errors"`
	// CPU time per login, on PostgreSQL, read from /proc before and after
	// each segment: of the serve processes (all of the scenario's, the
	// idle ones too; not for the anchor, which runs in the load process)
	// and of the PostgreSQL server when it runs on this host (all its
	// processes, whoever they serve). Absent when unknown.
	ServeCPUMS float64 `json:"serve_cpu_ms_per_login,omitempty"`
	DBCPUMS    float64 `json:"postgresql_cpu_ms_per_login,omitempty"`
	// LoadCPUMS is the CPU time per login of the load process itself over
	// the target's segments: its clients, and on SQLite the server (or
	// the anchor) they log in to, which run in it. On a machine that other
	// work shares, it moves much less than the rate does; on SQLite the
	// ratio of an anchor's to the server's is what the rates' ratio would
	// be on a machine with nothing else to do. Absent when unknown.
	LoadCPUMS float64 `json:"load_process_cpu_ms_per_login,omitempty"`

	serveCPU, dbCPU, loadCPU    time.Duration
	serveLost, dbLost, loadLost bool // a segment whose CPU time could not be read

	// op performs one login by worker w; it returns errSegmentOver when
	// the segment ended before it could start one.
	op  func(ctx context.Context, w int, deadline time.Time, rec *recorder) error
	rec *recorder
}

func (r *loginsResult) anchor() *loginTarget { return r.Targets[0] }
func (r *loginsResult) server() *loginTarget { return r.Targets[len(r.Targets)-1] }

// oneReplica returns the target of one replica of several, or nil.
func (r *loginsResult) oneReplica() *loginTarget {
	if len(r.Targets) == 3 {
		return r.Targets[1]
	}
	return nil
}

func (r *loginsResult) errorCount() int {
	n := 0
	for _, t := range r.Targets {
		for _, e := range t.Errors {
			n += e.Count
		}
	}
	return n
}

// errSegmentOver: a worker's segment ended while it waited for something
// to log in with.
var errSegmentOver = errors.New("the segment is over")

// serverTargets returns the targets of the server: the whole fleet, and
// before it its single server (fleet.single) when it has several
// replicas. op logs in through a worker's round robin over the replicas
// of its target.
func serverTargets(f *fleet, workers int, op func(ctx context.Context, w int, deadline time.Time, rec *recorder, rr *roundRobin) error) []*loginTarget {
	var out []*loginTarget
	fleets := []*fleet{f}
	if f.single != nil {
		fleets = []*fleet{f.single, f}
	}
	for _, sf := range fleets {
		rrs := make([]*roundRobin, workers)
		for w := range rrs {
			rrs[w] = &roundRobin{f: sf, k: w}
		}
		name := "the server"
		switch {
		case f.replicas() == 1:
		case sf.replicas() == 1:
			name = "1 server"
		default:
			name = fmt.Sprintf("%d servers", sf.replicas())
		}
		out = append(out, &loginTarget{Name: name, Replicas: sf.replicas(), Workers: workers, rec: newRecorder(),
			op: func(ctx context.Context, w int, deadline time.Time, rec *recorder) error {
				return op(ctx, w, deadline, rec, rrs[w])
			}})
	}
	return out
}

// interleave measures the targets of r for d each, in a palindrome of
// segments (the anchor for d/2, the next target for d/2, ..., the last
// target for d, ..., the anchor for d/2), so that a machine whose load
// drifts during the run weighs on all of them alike.
func (l *loader) interleave(ctx context.Context, r *loginsResult, d time.Duration) error {
	ts := r.Targets
	type segment struct {
		t *loginTarget
		d time.Duration
	}
	var segs []segment
	for _, t := range ts[:len(ts)-1] {
		segs = append(segs, segment{t, d / 2})
	}
	segs = append(segs, segment{ts[len(ts)-1], d})
	for i := len(ts) - 2; i >= 0; i-- {
		segs = append(segs, segment{ts[i], d - d/2})
	}
	for _, s := range segs {
		if err := l.segment(ctx, r.Scenario, s.t, s.d); err != nil {
			return err
		}
	}
	for _, t := range ts {
		t.Count = t.rec.ok.Load()
		t.PerSec = ratio(float64(t.Count), t.Seconds)
		t.Phases, t.Errors = t.rec.phases(), t.rec.errors()
		if t.Count > 0 && l.pg != nil {
			perLogin := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(t.Count) }
			if !t.serveLost && !t.Anchor {
				t.ServeCPUMS = perLogin(t.serveCPU)
			}
			if !t.dbLost {
				t.DBCPUMS = perLogin(t.dbCPU)
			}
		}
		if t.Count > 0 && !t.loadLost {
			t.LoadCPUMS = t.loadCPU.Seconds() * 1000 / float64(t.Count)
		}
		t.rec.mu.Lock()
		t.WaitedSeconds = t.rec.waited.Seconds()
		t.rec.mu.Unlock()
	}
	return nil
}

// segment runs t's workers for d.
func (l *loader) segment(ctx context.Context, scenario string, t *loginTarget, d time.Duration) error {
	before, errsBefore := t.rec.ok.Load(), t.rec.failures()
	l.say("%s: %s for %v, %d clients...", scenario, t.Name, d, t.Workers)
	stop := progress(l.progress, progressEvery, func(el time.Duration) string {
		n := t.rec.ok.Load() - before
		return fmt.Sprintf("load: %s on %s: %d logins in %.1f s (%.0f/s), %d errors", scenario, t.Name, n, el.Seconds(), float64(n)/el.Seconds(), t.rec.failures()-errsBefore)
	})
	serve0, db0 := l.cpuNow()
	load0, load0OK := processCPU()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range t.Workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				err := t.op(ctx, w, deadline, t.rec)
				switch {
				case err == nil:
					t.rec.ok.Add(1)
				case errors.Is(err, errSegmentOver) || ctx.Err() != nil:
					return
				default:
					t.rec.fail(err)
				}
			}
		})
	}
	wg.Wait()
	t.Seconds += time.Since(start).Seconds()
	load1, load1OK := processCPU()
	serve1, db1 := l.cpuNow()
	t.loadLost = t.loadLost || !load0OK || !load1OK
	t.loadCPU += load1 - load0
	if serve0 < 0 || serve1 < 0 {
		t.serveLost = true
	}
	if db0 < 0 || db1 < 0 {
		t.dbLost = true
	}
	t.serveCPU += serve1 - serve0
	t.dbCPU += db1 - db0
	stop()
	return ctx.Err()
}

// cpuNow returns the CPU time the serve processes of the scenario and
// the PostgreSQL server on this host have used so far; -1 for what is not
// known (SQLite, no /proc, a database elsewhere, a process gone).
func (l *loader) cpuNow() (serve, db time.Duration) {
	serve, db = -1, -1
	if l.pg == nil {
		return serve, db
	}
	if len(l.pg.procs) > 0 {
		serve = 0
		for _, sp := range l.pg.procs {
			c, ok := procCPU(sp.cmd.Process.Pid)
			if !ok {
				serve = -1
				break
			}
			serve += c
		}
	}
	if l.pg.postmaster != 0 {
		if c, ok := clusterCPU(l.pg.postmaster); ok {
			db = c
		}
	}
	return serve, db
}

// serverLogin logs identity id in on the server as MitID does: the
// password (login/password), the second factor aid (login/second), then
// its proof (login/finish) from device; each request goes to the next
// replica of rr. rec (nil: none) gets the latency of each step.
func serverLogin(ctx context.Context, rec *recorder, rr *roundRobin, id, aid string, proof func(ctx context.Context, next *client.FactorChallenge) (client.FinishLoginRequest, error)) error {
	var (
		step *client.PasswordStep
		next *client.FactorChallenge
		req  client.FinishLoginRequest
	)
	return timedLogin(ctx, rec, loginSteps{
		password: func(ctx context.Context) (err error) {
			step, err = rr.anon().PasswordLogin(ctx, id, loadPassword, "")
			return err
		},
		second: func(ctx context.Context) (err error) {
			next, err = rr.anon().SecondFactorLogin(ctx, id, step.Ceremony, aid)
			return err
		},
		device: func(ctx context.Context) (err error) {
			req, err = proof(ctx, next)
			req.Ceremony = next.Ceremony
			return err
		},
		finish: func(ctx context.Context) error {
			s, err := rr.anon().FinishLogin(ctx, id, req)
			if err != nil {
				return err
			}
			if s.Token == "" {
				return checkFailed("the login gave no session")
			}
			return nil
		},
	})
}

// serverChipLogin logs in with the password and the chip aid.
func serverChipLogin(ctx context.Context, rec *recorder, rr *roundRobin, id, aid string, c device.Chip) error {
	return serverLogin(ctx, rec, rr, id, aid, func(ctx context.Context, next *client.FactorChallenge) (client.FinishLoginRequest, error) {
		if next.PublicKey == nil {
			return client.FinishLoginRequest{}, checkFailed("no request options for chip %s", aid)
		}
		cred, err := client.ChipAssertion(ctx, c, next.PublicKey, loadOrigin)
		return client.FinishLoginRequest{Credential: cred}, err
	})
}

// anchorClientFor returns a client of the minimal durable login with
// kept-alive connections of its own.
func (l *loader) anchorClientFor(a *anchorServer) (*anchorClient, func()) {
	tr := &http.Transport{MaxIdleConns: l.cfg.concurrency + 16, MaxIdleConnsPerHost: l.cfg.concurrency + 16, IdleConnTimeout: time.Minute}
	return &anchorClient{base: a.URL, hc: &http.Client{Transport: tr, Timeout: time.Minute}}, tr.CloseIdleConnections
}

// chipLogins runs the chip-login scenario: --devices chips, each enrolled
// for an identity of its own on the server and on the minimal durable
// login; each client owns chips (so that a chip's signature counter
// reaches the server in order) and logs in with them in turn.
func (l *loader) chipLogins(ctx context.Context) (_ *loginsResult, err error) {
	cfg := l.cfg
	f, err := l.openLoginFleet(ctx, cfg.argon2, nil)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, l.closeFleet(f)) }()
	a, err := l.openAnchor(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, a.close()) }()
	workers := min(cfg.concurrency, cfg.devices)
	res := &loginsResult{Name: "chip_logins", Scenario: "chip logins (password + chip)", Devices: cfg.devices, DeviceKind: "chips"}

	l.say("chip logins: enrolling %d simulated chips on the server and on the minimal durable login...", cfg.devices)
	// Each chip creates two credentials: one on the server, one on the
	// minimal durable login.
	chips, secs, err := l.setUpChips(ctx, f, "lchip", "chip logins setup, chips", cfg.devices, 2, workers, func(ctx context.Context, i int, lc *loadChip, sup *client.Client) error {
		what := fmt.Sprintf("chip %d (identity %s)", i, lc.id)
		au, err := client.EnrollChip(ctx, sup, lc.id, "load", lc.c)
		if err != nil {
			return &loadError{What: what, Step: "enroll", Err: err}
		}
		lc.curID = au.ID
		if err := a.addUser(ctx, lc.id, lc.c, nil); err != nil {
			return &loadError{What: what, Step: "enroll on the minimal durable login", Err: err}
		}
		return nil
	})
	defer l.closeChips(chips)
	res.SetupSeconds = secs
	if err != nil {
		return nil, err
	}

	own := deal(chips, workers)
	next := make([]int, workers) // each worker's turn over its chips
	pick := func(w int) *loadChip {
		lc := own[w][next[w]%len(own[w])]
		next[w]++
		return lc
	}
	ac, closeAC := l.anchorClientFor(a)
	defer closeAC()
	res.Targets = append([]*loginTarget{{
		Name: "minimal durable login", Anchor: true, Workers: workers, rec: newRecorder(),
		op: func(ctx context.Context, w int, _ time.Time, rec *recorder) error {
			lc := pick(w)
			return ac.login(ctx, rec, lc.id, "chip", lc.c, nil)
		},
	}}, serverTargets(f, workers, func(ctx context.Context, w int, _ time.Time, rec *recorder, rr *roundRobin) error {
		lc := pick(w)
		return serverChipLogin(ctx, rec, rr, lc.id, lc.curID, lc.c)
	})...)
	if err := l.interleave(ctx, res, cfg.duration); err != nil {
		return nil, err
	}
	if err := l.writeHeapProfile(); err != nil {
		return nil, err
	}
	return res, nil
}

// loadCode is one simulated code display of the code-login scenario,
// enrolled for an identity of its own on the server and on the minimal
// durable login.
type loadCode struct {
	id, aid string
	dev     *code.Device
	totp    otp.TOTP
	// last is the highest time step used, on the minimal durable login
	// (0) and on the server (1); the owning worker's only.
	last [2]uint64
}

// codeTime is the clock a target's one-time codes are made for.
type codeTime interface {
	// begin returns the current time step, counting a login in flight at
	// it until end.
	begin() uint64
	end(step uint64)
	// lead is how many steps past the current one a code may be for.
	lead() uint64
	// exhausted is called when every device of a worker has been used up
	// to step+lead: it moves the clock on, or waits for the next step
	// (until deadline; then it returns errSegmentOver), and returns how
	// long it waited.
	exhausted(ctx context.Context, step uint64, deadline time.Time) (time.Duration, error)
}

// realTime is the real clock, for servers in other processes: a device
// may send the code of the current step or of the next (the servers
// accept one step of skew either way); once all are used, the worker
// waits for the next step.
type realTime struct{ period uint64 }

func (r realTime) begin() uint64         { return uint64(time.Now().Unix()) / r.period }
func (r realTime) end(uint64)            {}
func (r realTime) lead() uint64          { return 1 }
func (r realTime) at(s uint64) time.Time { return time.Unix(int64(s*r.period), 0) }

func (r realTime) exhausted(ctx context.Context, s uint64, deadline time.Time) (time.Duration, error) {
	start := time.Now()
	wake := r.at(s + 1)
	if deadline.Before(wake) {
		wake = deadline
	}
	t := time.NewTimer(time.Until(wake))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return time.Since(start), ctx.Err()
	case <-t.C:
	}
	if !time.Now().Before(deadline) {
		return time.Since(start), errSegmentOver
	}
	return time.Since(start), nil
}

// codeLogin picks one of the worker's devices whose next code is due on
// tb (index i of loadCode.last), and logs in with it by do.
func codeLogin(ctx context.Context, devs []*loadCode, next *int, tb codeTime, i int, deadline time.Time, rec *recorder, do func(d *loadCode, code string) error) error {
	for {
		s := tb.begin()
		var d *loadCode
		var step uint64
		for range devs {
			c := devs[*next%len(devs)]
			*next++
			if st := max(c.last[i]+1, s); st <= s+tb.lead() {
				d, step = c, st
				break
			}
		}
		if d == nil {
			tb.end(s)
			waited, err := tb.exhausted(ctx, s, deadline)
			if waited > time.Millisecond {
				rec.wait(waited)
			}
			if err != nil {
				return err
			}
			continue
		}
		c, got, err := d.totp.At(d.totp.Start(step))
		if err == nil && got != step {
			err = fmt.Errorf("the code of step %d came out for step %d", step, got)
		}
		if err != nil {
			tb.end(s)
			return err
		}
		d.last[i] = step
		if repeats, err := codeRepeats(&d.totp, step, c); err != nil || repeats {
			// The verifier would take the code for the later step, and
			// the device's next code would then be a replay: a person
			// waits for the next code.
			tb.end(s)
			if err != nil {
				return err
			}
			continue
		}
		err = do(d, c)
		tb.end(s)
		return err
	}
}

// codeRepeats reports whether code, the code of step, is also the code
// of one of the next two steps. A verifier that accepts a step of skew
// either way (RFC 6238 §5.2) and takes the highest step a code matches
// would record that later step, and refuse the device's code of it as a
// replay: about once in 500,000 logins with 6 digits, a failure of the
// device's codes, not of the server.
func codeRepeats(t *otp.TOTP, step uint64, code string) (bool, error) {
	for k := uint64(1); k <= 2; k++ {
		c, _, err := t.At(t.Start(step + k))
		if err != nil || c == code {
			return err == nil, err
		}
	}
	return false, nil
}

// codeLogins runs the code-login scenario: code displays imported by PSKC
// and enrolled, each for an identity of its own, and clients that log in
// with the password and a code, each with its own devices, at most once
// per device and time step (RFC 6238 §5.2: a code is used once).
//
// A server in this process and the minimal durable login run on a virtual
// clock (otpClock) that moves one 30 s step on whenever a client has used
// all its devices, so that no client ever waits for a code. `authbench
// serve` processes run on the real clock: the scenario enrols enough
// devices for chipRate (the chip logins' rate, if measured) and reports the
// time clients waited all the same.
func (l *loader) codeLogins(ctx context.Context, chipRate float64) (_ *loginsResult, err error) {
	cfg := l.cfg
	clk := newOTPClock(time.Now())
	var serverTime codeTime = clk
	serverNow := clk.Now
	devices := cfg.devices
	if l.pg != nil {
		serverTime, serverNow = realTime{period: otpPeriod}, nil
		// A device enrolled in the current step has one fresh code until
		// the step ends (its activation used the current one; the next
		// is accepted early), and code logins may run faster than the
		// chip logins whose rate is known: twice that rate, one code per
		// device. The server's targets log in for 2×--duration in all
		// with several replicas.
		secs := cfg.duration.Seconds()
		if cfg.replicas > 1 {
			secs *= 2
		}
		need := int(2*chipRate*secs) + 2*cfg.concurrency
		devices = max(devices, min(need, maxCodeDevices))
	}
	f, err := l.openLoginFleet(ctx, cfg.argon2, serverNow)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, l.closeFleet(f)) }()
	a, err := l.openAnchor(ctx, clk.Now)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, a.close()) }()
	workers := min(cfg.concurrency, devices)
	res := &loginsResult{Name: "code_logins", Scenario: "code logins (password + code)", Devices: devices, DeviceKind: "code displays"}

	// Setup: the factory's PSKC documents, then each device enrolled for
	// an identity of its own.
	l.say("code logins: importing %d simulated code displays by PSKC and enrolling them...", devices)
	start := time.Now()
	devs := make([]*loadCode, devices)
	for i := range devs {
		dev, err := code.New(code.Options{
			Kind:   device.KindCodeDisplay,
			Seed:   l.seedFor("code", i),
			Serial: fmt.Sprintf("%s-KV-%d", l.tag, i),
			Now:    serverNow,
		})
		if err != nil {
			return nil, &loadError{What: fmt.Sprintf("code device %d", i), Step: "make", Err: err}
		}
		devs[i] = &loadCode{id: fmt.Sprintf("%s-code-%d", l.tag, i), dev: dev, totp: dev.TOTP()}
	}
	const perDoc = 1000 // keys per PSKC document, well under the 4 MiB body limit
	for from := 0; from < len(devs); from += perDoc {
		if err := importCodeDevices(ctx, f.support[0], l.pskcKey, devs[from:min(from+perDoc, len(devs))]); err != nil {
			return nil, &loadError{What: fmt.Sprintf("code devices %d to %d", from, min(from+perDoc, len(devs))-1), Step: "PSKC import", Err: err}
		}
	}
	// (The set-up time counts the PSKC import as well.)
	_, err = l.setUp(ctx, "code logins setup, devices", len(devs), workers, func(ctx context.Context, i int) error {
		d := devs[i]
		what := fmt.Sprintf("code device %d (identity %s)", i, d.id)
		sup := f.support[i%f.replicas()]
		if err := setUpIdentity(ctx, sup, d.id); err != nil {
			return &loadError{What: what, Step: "create identity", Err: err}
		}
		au, err := client.EnrollCodeDevice(ctx, sup, d.id, "load", d.dev)
		if err != nil {
			return &loadError{What: what, Step: "enroll", Err: err}
		}
		if au.State != client.StateActive || au.Element.LastStep == 0 {
			return &loadError{What: what, Step: "enroll", Err: fmt.Errorf("the code device is %s, last step %d; want active with the activation's step", au.State, au.Element.LastStep)}
		}
		d.aid, d.last[1] = au.ID, au.Element.LastStep
		t := d.totp
		if err := a.addUser(ctx, d.id, nil, &t); err != nil {
			return &loadError{What: what, Step: "enroll on the minimal durable login", Err: err}
		}
		return nil
	})
	res.SetupSeconds = time.Since(start).Seconds()
	if err != nil {
		return nil, err
	}

	own := deal(devs, workers)
	next := make([]int, workers)
	ac, closeAC := l.anchorClientFor(a)
	defer closeAC()
	res.Targets = append([]*loginTarget{{
		Name: "minimal durable login", Anchor: true, Workers: workers, rec: newRecorder(),
		op: func(ctx context.Context, w int, deadline time.Time, rec *recorder) error {
			return codeLogin(ctx, own[w], &next[w], clk, 0, deadline, rec, func(d *loadCode, c string) error {
				return ac.login(ctx, rec, d.id, "code", nil, func() string { return c })
			})
		},
	}}, serverTargets(f, workers, func(ctx context.Context, w int, deadline time.Time, rec *recorder, rr *roundRobin) error {
		return codeLogin(ctx, own[w], &next[w], serverTime, 1, deadline, rec, func(d *loadCode, c string) error {
			return serverLogin(ctx, rec, rr, d.id, d.aid, func(context.Context, *client.FactorChallenge) (client.FinishLoginRequest, error) {
				return client.FinishLoginRequest{Code: c}, nil
			})
		})
	})...)
	if err := l.interleave(ctx, res, cfg.duration); err != nil {
		return nil, err
	}
	if err := l.writeHeapProfile(); err != nil {
		return nil, err
	}
	return res, nil
}

// maxCodeDevices bounds the code devices enrolled for real-clock servers.
const maxCodeDevices = 20000

// importCodeDevices sends the devices' secrets to the server as a
// provisioning station would: a PSKC document (RFC 6030) under the
// server's pre-shared key.
func importCodeDevices(ctx context.Context, support *client.Client, key []byte, devs []*loadCode) error {
	keys := make([]pskc.Key, 0, len(devs))
	for i, d := range devs {
		t := d.totp
		keys = append(keys, pskc.Key{
			Serial: d.dev.Serial(), Manufacturer: "authbench", Model: string(d.dev.Kind()), ID: fmt.Sprintf("key-%d", i+1),
			Algorithm: pskc.TOTP, Hash: t.Algorithm, Digits: t.Digits, Period: t.Period, Secret: t.Secret,
		})
	}
	var doc bytes.Buffer
	if err := pskc.Write(&doc, keys, pskc.EncryptOptions{Key: key}); err != nil {
		return err
	}
	res, err := support.ImportPSKC(ctx, doc.Bytes())
	if err != nil {
		return err
	}
	if res.Imported != len(devs) {
		return fmt.Errorf("imported %d of %d", res.Imported, len(devs))
	}
	return nil
}

// passwordLogins runs the password-login scenario: the first step of a
// login (login/password: the argon2id check of the password, which
// answers a ceremony for the second factor) on servers hashing with
// --password-argon2, against raw argon2id hashes with the same
// parameters.
func (l *loader) passwordLogins(ctx context.Context) (_ *loginsResult, err error) {
	cfg := l.cfg
	params := cfg.passwordArgon2
	f, err := l.openLoginFleet(ctx, params, nil)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, l.closeFleet(f)) }()
	workers := cfg.passwordConcurrency
	const perWorker = 4
	res := &loginsResult{Name: "password_logins", Scenario: "password logins (login/password)", Devices: workers * perWorker, DeviceKind: "identities"}
	ids := make([]string, res.Devices)
	l.say("password logins: creating %d identities with argon2id %s...", len(ids), params)
	res.SetupSeconds, err = l.setUp(ctx, "password logins setup, identities", len(ids), workers, func(ctx context.Context, i int) error {
		ids[i] = fmt.Sprintf("%s-pw-%d", l.tag, i)
		if err := setUpIdentity(ctx, f.support[i%f.replicas()], ids[i]); err != nil {
			return &loadError{What: "identity " + ids[i], Step: "create identity", Err: err}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	salt := make([]byte, params.SaltLen)
	want := argon2.IDKey([]byte(loadPassword), salt, params.Time, params.Memory, params.Threads, params.KeyLen)
	next := make([]int, workers)
	// The server's target is the whole fleet only.
	servers := serverTargets(f, workers, func(ctx context.Context, w int, _ time.Time, rec *recorder, rr *roundRobin) error {
		id := ids[w*perWorker+next[w]%perWorker]
		next[w]++
		t := time.Now()
		step, err := rr.anon().PasswordLogin(ctx, id, loadPassword, "")
		if err != nil {
			return inPhase("password", err)
		}
		if step.Ceremony == "" {
			return inPhase("password", checkFailed("a right password gave no ceremony"))
		}
		rec.observe("password", time.Since(t))
		return nil
	})
	res.Targets = []*loginTarget{{
		Name: "raw argon2id " + params.String(), Anchor: true, Workers: runtime.GOMAXPROCS(0), rec: newRecorder(),
		op: func(_ context.Context, _ int, _ time.Time, rec *recorder) error {
			t := time.Now()
			got := argon2.IDKey([]byte(loadPassword), salt, params.Time, params.Memory, params.Threads, params.KeyLen)
			if subtle.ConstantTimeCompare(got, want) != 1 {
				return errors.New("argon2id gave another hash")
			}
			rec.observe("argon2id", time.Since(t))
			return nil
		},
	}, servers[len(servers)-1]}
	if err := l.interleave(ctx, res, cfg.duration); err != nil {
		return nil, err
	}
	if err := l.writeHeapProfile(); err != nil {
		return nil, err
	}
	return res, nil
}

// otpClock is the virtual clock of the code logins, shared by a server in
// this process, the minimal durable login and the simulated code devices.
// It stands at the start of a 30-second time step and moves one step at a
// time, when a client has used all its devices in the current step.
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

// The otpClock as a codeTime: codes of the current step only; when they
// are used up, the clock moves on at once.
func (c *otpClock) begin() uint64 { return c.acquire() }
func (c *otpClock) end(s uint64)  { c.release(s) }
func (c *otpClock) lead() uint64  { return 0 }
func (c *otpClock) exhausted(_ context.Context, s uint64, _ time.Time) (time.Duration, error) {
	c.advance(s)
	return 0, nil
}

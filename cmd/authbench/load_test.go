package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/internal/gcpace"
	"github.com/authbench/authbench/internal/testenv"
	"github.com/authbench/authbench/server/api/apitest"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/code"
)

// waitGoroutines fails t when more goroutines than before are still
// running once a generous grace period is over (a guard, not a timing
// assertion: they normally end at once).
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tinyLoad is a run of every scenario at a tiny scale: every phase and
// every anchor, in well under a minute even on a busy machine.
var tinyLoad = []string{"load", "--n", "12", "--concurrency", "3", "--devices", "6", "--duration", "400ms",
	"--anchor-duration", "20ms", "--sample", "4", "--password-concurrency", "2", "--password-argon2", "m=1024,t=1,p=1", "--seed", "01"}

// decodeReport decodes a --json report strictly.
func decodeReport(t *testing.T, b []byte) *loadReport {
	t.Helper()
	var rep loadReport
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("%v:\n%s", err, b)
	}
	return &rep
}

// checkVerdicts checks that each target's verdict follows from its
// figures, and that the exit status is the verdict of them all.
func checkVerdicts(t *testing.T, rep *loadReport, code int, stderr string) {
	t.Helper()
	met := true
	for _, tr := range rep.Targets {
		want := tr.Measured <= tr.Threshold
		if tr.Op == ">=" {
			want = tr.Measured >= tr.Threshold
		}
		if tr.Met != want || tr.Flag == "" || tr.Scenario == "" {
			t.Errorf("target %+v: met %v, want %v", tr, tr.Met, want)
		}
		if tr.Anchor != "" && tr.Measured != ratio(tr.Value, tr.AnchorValue) {
			t.Errorf("target %+v: the measured ratio is not value / anchor value", tr)
		}
		if !tr.Met && !strings.Contains(stderr, "target missed: "+tr.Name) {
			t.Errorf("missed target %s not named on stderr:\n%s", tr.Name, stderr)
		}
		met = met && tr.Met
	}
	if want := map[bool]int{true: 0, false: 1}[met]; code != want {
		t.Errorf("exit %d, want %d (targets met: %v)", code, want, met)
	}
}

// checkLogins checks that every target of a login scenario logged in,
// with the latency of every step and no error.
func checkLogins(t *testing.T, l *loginsResult, targets int, phases ...string) {
	t.Helper()
	if l == nil {
		t.Fatal("a login scenario is missing from the report")
	}
	if len(l.Targets) != targets || !l.Targets[0].Anchor {
		t.Fatalf("%s: targets %+v: want %d, the anchor first", l.Name, l.Targets, targets)
	}
	for _, tg := range l.Targets {
		if tg.Count < 1 || tg.PerSec <= 0 || tg.Seconds <= 0 || len(tg.Errors) != 0 {
			t.Errorf("%s on %s: %d logins at %.1f/s in %.2f s, errors %+v", l.Name, tg.Name, tg.Count, tg.PerSec, tg.Seconds, tg.Errors)
		}
		var got []string
		for _, p := range tg.Phases {
			got = append(got, p.Name)
			if p.Count < 1 || p.P50MS <= 0 || p.P50MS > p.P90MS || p.P90MS > p.P99MS || p.P99MS > p.MaxMS {
				t.Errorf("%s on %s: phase %+v", l.Name, tg.Name, p)
			}
		}
		if tg.Anchor && l.Name == "password_logins" {
			continue
		}
		if !slices.Equal(got, phases) {
			t.Errorf("%s on %s: phases %v, want %v", l.Name, tg.Name, got, phases)
		}
	}
}

// TestLoadTiny runs every scenario on SQLite at a tiny scale: every phase
// and every anchor is measured, the JSON report holds them with the
// targets, each verdict follows from its figures, the exit status is the
// verdict of all, the text report renders it, progress goes to stderr, and
// no goroutine is left. The figures themselves are not judged.
func TestLoadTiny(t *testing.T) {
	before := runtime.NumGoroutine()
	var out bytes.Buffer
	errOut := &lockedBuffer{}
	code := run(context.Background(), &env{stdout: &out, stderr: errOut, wrapAPI: apitest.ForTest(t).Wrap}, append(slices.Clone(tinyLoad), "--json"))
	if code != 0 && code != 1 {
		t.Fatalf("load exited %d:\n%s%s", code, out.String(), errOut)
	}
	rep := decodeReport(t, out.Bytes())
	checkVerdicts(t, rep, code, errOut.String())
	if rep.Store != "sqlite" || rep.Replicas != 1 || rep.Argon2 != "m=64,t=1,p=1" || rep.PasswordArgon2 != "m=1024,t=1,p=1" || rep.Seconds <= 0 {
		t.Errorf("report %+v", rep)
	}
	if r := rep.Raw; r == nil || r.ECDSAVerifyPerSec <= 0 || r.Argon2PerSec <= 0 || r.TOTPVerifyPerSec <= 0 || r.Argon2Params != "m=64,t=1,p=1" {
		t.Errorf("raw anchors %+v", rep.Raw)
	}
	for _, want := range []string{"3 HTTP JSON round trips", "argon2id m=64,t=1,p=1", "ECDSA P-256 verify", "TOTP verify", "group-committed SQLite insert"} {
		if !strings.Contains(rep.MinimalLogin, want) {
			t.Errorf("the minimal durable login is said to be %q, without %q", rep.MinimalLogin, want)
		}
	}

	c := rep.Lifecycle
	if c == nil || c.N != 12 || c.Completed != 12 || c.Sampled != 4 || c.OldRefused != 4 || len(c.Errors) != 0 {
		t.Fatalf("lifecycle %+v", c)
	}
	var phases []string
	for _, p := range c.Phases {
		phases = append(phases, p.Name)
		want := 12
		if p.Name == "old credential" {
			want = 4
		}
		if p.Count != want || p.Errors != 0 {
			t.Errorf("lifecycle phase %+v: want %d steps", p, want)
		}
	}
	if !slices.Equal(phases, []string{"enroll", "login", "block", "re-add", "chip", "old credential"}) {
		t.Errorf("lifecycle phases %v", phases)
	}
	if _, ok := processCPU(); ok && c.CPUMSPerChip <= 0 {
		t.Errorf("lifecycle: CPU per chip %v ms", c.CPUMSPerChip)
	}
	steps := []string{"password", "second", "device", "finish", "login"}
	checkLogins(t, rep.ChipLogins, 2, steps...)
	checkLogins(t, rep.CodeLogins, 2, steps...)
	checkLogins(t, rep.PasswordLogins, 2, "password")
	if _, ok := processCPU(); ok {
		for _, l := range []*loginsResult{rep.ChipLogins, rep.CodeLogins, rep.PasswordLogins} {
			for _, tg := range l.Targets {
				if tg.Count > 0 && tg.LoadCPUMS <= 0 {
					t.Errorf("%s on %s: %d logins, CPU of the load process %v ms per login; want it measured", l.Name, tg.Name, tg.Count, tg.LoadCPUMS)
				}
			}
		}
	}
	if a := rep.PasswordLogins.anchor(); a.Name != "raw argon2id m=1024,t=1,p=1" || a.Workers != runtime.GOMAXPROCS(0) {
		t.Errorf("password anchor %+v", a)
	}

	var names []string
	for _, tr := range rep.Targets {
		names = append(names, tr.Name)
	}
	if want := []string{"lifecycle_seconds", "lifecycle_errors", "chip_logins_vs_anchor", "chip_logins_errors",
		"code_logins_vs_anchor", "code_logins_errors", "password_logins_vs_argon2id", "password_logins_errors"}; !slices.Equal(names, want) {
		t.Errorf("targets %v, want %v", names, want)
	}

	var text bytes.Buffer
	rep.print(&text)
	for _, want := range []string{
		"raw ECDSA P-256 verify", "raw argon2id m=64,t=1,p=1", "raw TOTP verify",
		"minimal durable login, chip", "minimal durable login, code", "beside the password logins (login/password)",
		"minimal durable login = the same 3 HTTP JSON round trips",
		"scenario", "value", "anchor", "ratio", "target", "met",
		"chip lifecycle: 12 chips enroll → login → block → re-add", "≤ 15 s",
		"chip logins (password + chip) on the server", "(minimal)", "≥ 0.8",
		"password logins (login/password) on the server", "(argon2id)", "≥ 0.9",
		"latency by phase (ms)", "\nlifecycle\n  enroll ", "  old credential ", "p99",
		"\nchip logins (password + chip), minimal durable login\n  password ", "\ncode logins (password + code), the server\n  password ",
		"old credential refused after re-add: 4 of 4 sampled", "ms per chip (server and clients)", "ms/login);", "CPU per login, minimal durable login / the server: ",
		"errors by code: none",
		"note: the lifecycle ran 12 chips, not the target's 10,000",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the text report lacks %q:\n%s", want, text.String())
		}
	}
	for _, want := range []string{"load: raw anchors: ECDSA verify", "load: lifecycle: 12/12 chips", "load: chip logins (password + chip) on the server: ",
		"load: code logins (password + code) on minimal durable login: ", "load: password logins (login/password) on raw argon2id"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("no progress line %q on stderr:\n%s", want, errOut)
		}
	}
	waitGoroutines(t, before)
}

// TestLoadExitStatus: the thresholds alone decide the exit status, k6
// style: a target that cannot be missed exits 0, one that cannot be met
// exits 1 and is named; no timing is judged. (TestLoadPostgresMissed does
// the same on serve processes.) --cpu-profile and --heap-profile write
// their profiles either way.
func TestLoadExitStatus(t *testing.T) {
	args := []string{"load", "--scenario", "lifecycle,chip-logins", "--n", "3", "--concurrency", "2", "--devices", "2", "--duration", "200ms",
		"--anchor-duration", "10ms", "--sample", "1", "--json"}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		missed []string
	}{
		{"met", []string{"--target-lifecycle", "1h", "--target-login-ratio", "0"}, 0, nil},
		{"missed", []string{"--target-lifecycle", "1ns", "--target-login-ratio", "1e9"}, 1, []string{"lifecycle_seconds", "chip_logins_vs_anchor"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			errOut := &lockedBuffer{}
			dir := t.TempDir()
			prof, heap := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "heap.pprof")
			code := run(context.Background(), &env{stdout: &out, stderr: errOut, wrapAPI: apitest.ForTest(t).Wrap}, append(slices.Clone(args), append(tc.args, "--cpu-profile", prof, "--heap-profile", heap)...))
			rep := decodeReport(t, out.Bytes())
			// The profiles are written whatever the verdict (gzipped
			// protobuf), a heap profile per scenario.
			for _, p := range []string{prof, heap + ".lifecycle", heap + ".chip-logins"} {
				if b, err := os.ReadFile(p); err != nil || len(b) < 100 || b[0] != 0x1f || b[1] != 0x8b {
					t.Errorf("%s: %d bytes, %v", filepath.Base(p), len(b), err)
				}
			}
			checkVerdicts(t, rep, code, errOut.String())
			var missed []string
			for _, tr := range rep.Targets {
				if !tr.Met {
					missed = append(missed, tr.Name)
				}
			}
			if code != tc.code || !slices.Equal(missed, tc.missed) {
				t.Fatalf("exit %d, missed %v; want %d, %v:\n%s", code, missed, tc.code, tc.missed, errOut)
			}
		})
	}
}

// TestLoadTargets: the verdict on each target from the figures of a
// report, with the thresholds of the flags.
func TestLoadTargets(t *testing.T) {
	logins := func(name string, perSec ...float64) *loginsResult {
		r := &loginsResult{Name: name, Scenario: name}
		for i, v := range perSec {
			r.Targets = append(r.Targets, &loginTarget{Name: fmt.Sprint("target ", i), Anchor: i == 0, PerSec: v})
		}
		return r
	}
	rep := &loadReport{
		Lifecycle:      &lifecycleResult{N: 10000, Seconds: 14.9},
		ChipLogins:     logins("chip_logins", 1000, 790, 800), // anchor, 1 replica, 3 replicas
		CodeLogins:     logins("code_logins", 1000, 900, 850),
		PasswordLogins: logins("password_logins", 100, 91),
	}
	rep.CodeLogins.Targets[2].Errors = []errorCount{{Phase: "finish", Code: "401 wrong_code", Count: 2}}
	th := thresholds{lifecycle: 15 * time.Second, loginRatio: 0.8, passwordRatio: 0.9, replicaRatio: 1, errors: 0}
	got := map[string]targetResult{}
	for _, tr := range rep.targets(th) {
		got[tr.Name] = tr
	}
	for name, want := range map[string]bool{
		"lifecycle_seconds":           true, // 14.9 s ≤ 15 s
		"lifecycle_errors":            true,
		"chip_logins_vs_anchor":       true,  // 800/1000
		"chip_logins_replicas":        true,  // 800/790
		"chip_logins_errors":          true,  //
		"code_logins_vs_anchor":       true,  // 850/1000
		"code_logins_replicas":        false, // 850/900
		"code_logins_errors":          false, // 2 > 0
		"password_logins_vs_argon2id": true,  // 91/100
		"password_logins_errors":      true,
	} {
		if g, ok := got[name]; !ok || g.Met != want {
			t.Errorf("%s: %+v (present %v), want met %v", name, g, ok, want)
		}
	}
	if len(got) != 10 {
		t.Errorf("%d targets: %v", len(got), got)
	}
	if g := got["chip_logins_vs_anchor"]; g.Value != 800 || g.AnchorValue != 1000 || g.Measured != 0.8 || g.Op != ">=" || g.Threshold != 0.8 || g.Flag != "--target-login-ratio" {
		t.Errorf("chip_logins_vs_anchor %+v", g)
	}
	// A missed ratio never prints as its threshold.
	for _, tc := range []struct {
		measured, threshold float64
		met                 bool
		want                string
	}{
		{898.0 / 1001, 0.9, false, "0.897"},
		{0.89999, 0.9, false, "0.89999"},
		{0.9004, 0.9, true, "0.9"},
		{0.812, 0.8, true, "0.81"},
	} {
		tr := targetResult{Name: "x", Measured: tc.measured, Threshold: tc.threshold, Met: tc.met, Op: ">=", Anchor: "a"}
		if got := tr.measured(2); got != tc.want || !strings.Contains(tr.String(), " "+tc.want+",") && !tc.met {
			t.Errorf("%v against %v: %q, %q; want %q", tc.measured, tc.threshold, got, tr.String(), tc.want)
		}
	}
	rep.Lifecycle.Seconds = 15.1
	th.errors = 2
	for _, tr := range rep.targets(th) {
		if tr.Name == "lifecycle_seconds" && tr.Met || tr.Name == "code_logins_errors" && !tr.Met {
			t.Errorf("%+v", tr)
		}
	}
}

// TestLoadUsage: bad command lines exit 2, and a database password on
// the command line is refused without being printed.
func TestLoadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "apps"},
		{"--n", "0"},
		{"--concurrency", "-1"},
		{"--duration", "0s"},
		{"--replicas", "0"},
		{"--replicas", "3"}, // without PostgreSQL
		{"--db", "postgres://authbench:hunter2@localhost/x"},
		{"--argon2", "m=1,t=1,p=1"},
		{"--password-argon2", "fast"},
		{"--target-lifecycle", "0s"},
		{"--target-errors", "-1"},
		{"extra"},
	} {
		var out bytes.Buffer
		if code := run(context.Background(), &env{stdout: &out, stderr: &out, wrapAPI: apitest.ForTest(t).Wrap}, append([]string{"load"}, args...)); code != 2 || strings.Contains(out.String(), "hunter2") {
			t.Errorf("load %q exited %d, want 2:\n%s", args, code, out.String())
		}
	}
}

// TestLoadUnreachable: a PostgreSQL database that does not answer is an
// unreachable server (exit 3), named without a password.
func TestLoadUnreachable(t *testing.T) {
	var out bytes.Buffer
	code := run(context.Background(), &env{stdout: &out, stderr: &out, wrapAPI: apitest.ForTest(t).Wrap}, []string{"load", "--db", "postgres://authbench@127.0.0.1:1/none", "--anchor-duration", "10ms"})
	if code != exitUnreachable || !strings.Contains(out.String(), "postgres://authbench@127.0.0.1:1/none") {
		t.Errorf("exit %d, want 3:\n%s", code, out.String())
	}
}

// TestLoadFailureStep: a chip that the server must refuse fails its
// lifecycle at the step where it happened, under the server's error code.
func TestLoadFailureStep(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx := context.Background()
	cfg, err := (&loadCmd{Scenario: []string{"lifecycle"}, N: 1, Concurrency: 1, Devices: 1, PasswordConcurrency: 1, Replicas: 1,
		Duration: time.Second, AnchorDuration: time.Second, TargetLifecycle: time.Second, Seed: []byte{2}}).config()
	if err != nil {
		t.Fatal(err)
	}
	cfg.wrapAPI = apitest.ForTest(t).Wrap
	t.Cleanup(func() { waitGoroutines(t, before) }) // after the fleet's close
	_, f := testFleet(t, ctx, cfg, secrets.FastParams())
	for _, tc := range []struct {
		name   string
		faults chip.Faults
		code   string
	}{
		{"bad signature", chip.Faults{BadSignature: true}, "attestation_untrusted"},
		{"wrong RP", chip.Faults{WrongRPIDHash: true}, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := chip.New(chip.Options{Seed: []byte(tc.name), Faults: tc.faults})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			lc := &loadChip{id: "fail-" + strings.ReplaceAll(tc.name, " ", "-"), c: c}
			if _, err := f.support[0].CreateIdentity(ctx, client.CreateIdentityRequest{ID: lc.id}); err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			err = chipLifecycle(ctx, &roundRobin{f: f}, lc, rec)
			if err == nil {
				t.Fatal("the faulty chip went through its lifecycle")
			}
			rec.fail(err)
			es := rec.errors()
			if len(es) != 1 || es[0].Phase != "enroll" || !strings.HasPrefix(es[0].Code, "4") || !strings.HasSuffix(es[0].Code, " "+tc.code) || es[0].Count != 1 {
				t.Errorf("errors %+v: want one at enroll, code 4xx %s", es, tc.code)
			}
			if ps := rec.phases(); len(ps) != 1 || ps[0].Count != 0 || ps[0].Errors != 1 {
				t.Errorf("phases %+v: want enroll with one error and no latency", ps)
			}
		})
	}
}

// TestLoadLifecycleRoundTrips: a chip's lifecycle makes the HTTP requests
// a client that knows its chip needs and no more: enroll and re-add each
// add + activate, the login password (naming the chip) + finish, the block
// one; and the re-added chip logs in, its old credential refused.
func TestLoadLifecycleRoundTrips(t *testing.T) {
	ctx := context.Background()
	cfg, err := (&loadCmd{Scenario: []string{"lifecycle"}, N: 1, Concurrency: 1, Devices: 1, PasswordConcurrency: 1, Replicas: 1,
		Duration: time.Second, AnchorDuration: time.Second, TargetLifecycle: time.Second, Seed: []byte{3}}).config()
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		requests []string
	)
	strict := apitest.ForTest(t).Wrap
	cfg.wrapAPI = func(h http.Handler) http.Handler {
		inner := strict(h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/v1/identities/") {
				mu.Lock()
				parts := strings.Split(r.URL.Path, "/")
				requests = append(requests, r.Method+" "+strings.Join(parts[4:], "/"))
				mu.Unlock()
			}
			inner.ServeHTTP(w, r)
		})
	}
	_, f := testFleet(t, ctx, cfg, secrets.FastParams())
	c, err := chip.New(chip.Options{Seed: []byte("round trips")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lc := &loadChip{id: "round-trips", c: c}
	if err := setUpIdentity(ctx, f.support[0], lc.id); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	requests = nil
	mu.Unlock()
	rec := newRecorder()
	if err := chipLifecycle(ctx, &roundRobin{f: f}, lc, rec); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := slices.Clone(requests)
	mu.Unlock()
	want := []string{"POST authenticators", "POST authenticators/*/activate", "POST login/password", "POST login/finish",
		"POST authenticators/*/block", "POST authenticators", "POST authenticators/*/activate"}
	if len(got) != len(want) {
		t.Fatalf("requests of one lifecycle:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if ok, _ := path.Match(want[i], got[i]); !ok {
			t.Errorf("request %d: %s, want %s", i+1, got[i], want[i])
		}
	}
	if code, err := checkOldCredential(ctx, &roundRobin{f: f}, lc); err != nil || !strings.Contains(code, "credential_revoked") {
		t.Errorf("after the lifecycle: %q, %v", code, err)
	}
}

// TestMinimalDurableLogin: the anchor does the work it claims: it refuses
// a wrong password, a chip assertion over another challenge and a code
// used before, and every login it accepts is one row in its SQLite file,
// there when the file is opened again.
func TestMinimalDurableLogin(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "anchor.db")
	w, err := openSQLiteAnchor(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	a, err := startAnchor(secrets.FastParams(), func() time.Time { return now }, w)
	if err != nil {
		t.Fatal(err)
	}
	c, err := chip.New(chip.Options{Seed: []byte("anchor")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	totp := &otp.TOTP{Secret: []byte("12345678901234567890")}
	if err := a.addUser(ctx, "alice", c, totp); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	ac := &anchorClient{base: a.URL, hc: &http.Client{Transport: tr}}
	code, _, _ := totp.At(now)
	rec := newRecorder()
	if err := ac.login(ctx, rec, "alice", "chip", c, nil); err != nil {
		t.Fatalf("chip login: %v", err)
	}
	if err := ac.login(ctx, rec, "alice", "code", nil, func() string { return code }); err != nil {
		t.Fatalf("code login: %v", err)
	}
	want := func(err error, phase, code string) {
		t.Helper()
		var pe *phaseError
		if !errors.As(err, &pe) || pe.phase != phase || errorCode(err) != code {
			t.Errorf("got %v, want %s at %s", err, code, phase)
		}
	}
	want(ac.login(ctx, rec, "alice", "code", nil, func() string { return code }), "finish", "401 wrong_code")

	var pw anchorPasswordResp
	if err := ac.post(ctx, "/login/alice/password", anchorPasswordReq{Password: "wrong"}, &pw); errorCode(err) != "401 wrong_password" {
		t.Errorf("wrong password: %v", err)
	}
	// An assertion over the challenge of one ceremony does not finish
	// another.
	var ceremonies [2]anchorSecondResp
	for i := range ceremonies {
		if err := ac.post(ctx, "/login/alice/password", anchorPasswordReq{Password: loadPassword}, &pw); err != nil {
			t.Fatal(err)
		}
		if err := ac.post(ctx, "/login/alice/second", anchorSecondReq{Ceremony: pw.Ceremony, Authenticator: "chip"}, &ceremonies[i]); err != nil {
			t.Fatal(err)
		}
	}
	cred, err := client.ChipAssertion(ctx, c, ceremonies[0].PublicKey, loadOrigin)
	if err != nil {
		t.Fatal(err)
	}
	var s anchorFinishResp
	if err := ac.post(ctx, "/login/alice/finish", anchorFinishReq{Ceremony: ceremonies[1].Ceremony, Credential: cred}, &s); errorCode(err) != "401 bad_signature" {
		t.Errorf("an assertion over another challenge: %v", err)
	}
	if err := ac.post(ctx, "/login/alice/finish", anchorFinishReq{Ceremony: ceremonies[0].Ceremony, Credential: cred}, &s); err != nil || s.Token == "" {
		t.Errorf("the assertion over its own challenge: %v", err)
	}
	tr.CloseIdleConnections()
	if err := a.close(); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows := map[string]int{}
	r, err := db.Query("SELECT factor, COUNT(*) FROM anchor_sessions GROUP BY factor")
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var f string
		var n int
		if err := r.Scan(&f, &n); err != nil {
			t.Fatal(err)
		}
		rows[f] = n
	}
	r.Close()
	if rows["chip"] != 2 || rows["code"] != 1 || len(rows) != 2 {
		t.Errorf("sessions written: %v, want 2 chip and 1 code", rows)
	}
}

// postgresForLoad returns the database of AUTHBENCH_POSTGRES_URL without
// its password, and the password (for $PGPASSWORD), or skips t.
func postgresForLoad(t *testing.T) (base, db, pw string) {
	t.Helper()
	base = os.Getenv("AUTHBENCH_POSTGRES_URL")
	if base == "" {
		testenv.Missing(t, "postgresql", "AUTHBENCH_POSTGRES_URL is unset; run .ci/postgres (as root) and export the URL it prints")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ = u.User.Password()
	u.User = url.User(u.User.Username())
	return base, u.String(), pw
}

// schemaGone fails t when the run's schema is still in the database.
func schemaGone(t *testing.T, base, schema string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema %s: %d left (%v)", schema, n, err)
	}
}

// metThresholds are targets every run meets unless something failed.
var metThresholds = []string{"--target-lifecycle", "1h", "--target-login-ratio", "0", "--target-password-ratio", "0", "--target-replica-ratio", "0"}

// TestLoadPostgres runs every scenario through the built binary on
// PostgreSQL with 3 `authbench serve` processes: every target is measured
// on them (chip and code logins on one replica and on all three as well),
// with thresholds that only a failure misses the run exits 0, the database
// password travels in $PGPASSWORD only, and the run's schema is gone
// afterwards.
func TestLoadPostgres(t *testing.T) {
	base, db, pw := postgresForLoad(t)
	profile := filepath.Join(t.TempDir(), "cpu.out")
	args := append(slices.Clone(tinyLoad[1:]), "--db", db, "--replicas", "3", "--json", "--cpu-profile", profile)
	res := runBinary(t, 5*time.Minute, []string{"PGPASSWORD=" + pw}, append(append([]string{"load"}, args...), metThresholds...)...)
	if res.code != 0 {
		t.Fatalf("load exited %d, want 0 (no target can be missed but by a failure):\n%s%s", res.code, res.stdout, res.stderr)
	}
	// A CPU profile of the load process, and one of every serve process
	// of every scenario (pprof's gzipped protocol buffers).
	for _, f := range append([]string{profile}, func() (fs []string) {
		for _, s := range allScenarios {
			for r := 1; r <= 3; r++ {
				fs = append(fs, fmt.Sprintf("%s.%s.replica%d", profile, s, r))
			}
			if strings.HasSuffix(s, "-logins") {
				fs = append(fs, fmt.Sprintf("%s.%s.single", profile, s))
			}
		}
		return fs
	}()...) {
		if b, err := os.ReadFile(f); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("CPU profile %s: %d bytes, %v; want a gzipped profile", filepath.Base(f), len(b), err)
		}
	}
	rep := decodeReport(t, []byte(res.stdout))
	checkVerdicts(t, rep, res.code, res.stderr)
	if rep.Store != "postgresql" || rep.Replicas != 3 || !strings.Contains(rep.Servers, "3 authbench serve process") || rep.Schema == "" ||
		!strings.Contains(rep.MinimalLogin, "PostgreSQL commit") {
		t.Errorf("report %+v", rep)
	}
	if c := rep.Lifecycle; c == nil || c.Completed != 12 || c.Replicas != 3 || c.OldRefused != 4 || len(c.Errors) != 0 {
		t.Errorf("lifecycle %+v", c)
	}
	steps := []string{"password", "second", "device", "finish", "login"}
	checkLogins(t, rep.ChipLogins, 3, steps...)
	checkLogins(t, rep.CodeLogins, 3, steps...)
	checkLogins(t, rep.PasswordLogins, 2, "password")
	for _, l := range []*loginsResult{rep.ChipLogins, rep.CodeLogins} {
		if one, all := l.Targets[1], l.Targets[2]; one.Replicas != 1 || all.Replicas != 3 {
			t.Errorf("%s: targets %+v, %+v: want 1 replica, then 3", l.Name, one, all)
		}
		for _, tg := range l.Targets[1:] {
			if tg.ServeCPUMS <= 0 || tg.DBCPUMS <= 0 {
				t.Errorf("%s on %s: CPU per login serve %v ms, PostgreSQL %v ms; want both measured (a local server)", l.Name, tg.Name, tg.ServeCPUMS, tg.DBCPUMS)
			}
		}
	}
	// The single server has all the CPUs and the connection budget, each
	// replica a share.
	single, replica := hostShares(runtime.NumCPU(), 0, 3)
	if rep.SingleShape == nil || *rep.SingleShape != single || rep.ReplicaShape == nil || *rep.ReplicaShape != replica {
		t.Errorf("shapes: single %+v, replica %+v; want %+v, %+v", rep.SingleShape, rep.ReplicaShape, single, replica)
	}
	names := map[string]bool{}
	for _, tr := range rep.Targets {
		names[tr.Name] = true
	}
	if !names["chip_logins_replicas"] || !names["code_logins_replicas"] {
		t.Errorf("targets %v: want the replicas' targets", names)
	}
	if pw != "" && strings.Contains(res.stdout+res.stderr, ":"+pw+"@") {
		t.Error("the database password was printed")
	}
	schemaGone(t, base, rep.Schema)
}

// TestLoadPostgresMissed: on real serve processes, a target that cannot
// be met exits 1, named on stderr and not met in the JSON verdict, while
// the others are met.
func TestLoadPostgresMissed(t *testing.T) {
	base, db, pw := postgresForLoad(t)
	res := runBinary(t, 2*time.Minute, []string{"PGPASSWORD=" + pw}, "load", "--db", db, "--json",
		"--scenario", "password-logins", "--password-concurrency", "1", "--password-argon2", "m=1024,t=1,p=1",
		"--duration", "300ms", "--anchor-duration", "10ms", "--target-password-ratio", "1e9")
	if res.code != 1 {
		t.Fatalf("load exited %d, want 1:\n%s%s", res.code, res.stdout, res.stderr)
	}
	rep := decodeReport(t, []byte(res.stdout))
	checkVerdicts(t, rep, res.code, res.stderr)
	verdicts := map[string]bool{}
	for _, tr := range rep.Targets {
		verdicts[tr.Name] = tr.Met
	}
	if want := map[string]bool{"password_logins_vs_argon2id": false, "password_logins_errors": true}; !maps.Equal(verdicts, want) {
		t.Errorf("verdicts %v, want %v", verdicts, want)
	}
	checkLogins(t, rep.PasswordLogins, 2, "password")
	schemaGone(t, base, rep.Schema)
}

// TestLoadPostgresReplicaDies: a replica killed (SIGKILL) while the chip
// logins run on both is what the report says: the requests it dropped
// counted by code, its exit counted as the server's error, the errors
// target missed, exit 1 with the JSON report all the same; the other
// replica is stopped and the schema dropped.
func TestLoadPostgresReplicaDies(t *testing.T) {
	base, db, pw := postgresForLoad(t)
	bin := binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "load", "--db", db, "--replicas", "2", "--json",
		"--scenario", "chip-logins", "--devices", "4", "--concurrency", "2", "--duration", "2s", "--anchor-duration", "10ms")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+pw)
	var out bytes.Buffer
	errOut := &lockedBuffer{}
	cmd.Stdout = &out
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var killed int
	var kids []int
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		fmt.Fprintln(errOut, sc.Text())
		// The segment on both replicas has begun: kill the one started last.
		if killed == 0 && strings.HasPrefix(sc.Text(), "load: chip logins (password + chip): 2 servers for ") {
			kids = childPIDs(t, cmd.Process.Pid)
			if len(kids) != 3 {
				t.Fatalf("load runs %d child processes, want 3 serve processes (the single server, then 2 replicas): %v", len(kids), kids)
			}
			killed = slices.Max(kids)
			if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || killed == 0 {
		t.Fatalf("load: %v (killed pid %d), want exit 1:\n%s%s", err, killed, out.String(), errOut)
	}
	rep := decodeReport(t, out.Bytes())
	checkVerdicts(t, rep, 1, errOut.String())
	all := rep.ChipLogins.server()
	codes := map[string]int{}
	for _, e := range all.Errors {
		codes[e.Phase+" "+e.Code] += e.Count
		if e.Code == "exited" && !strings.Contains(e.Example, fmt.Sprintf("(pid %d)", killed)) {
			t.Errorf("the exit names another process than %d: %+v", killed, e)
		}
	}
	transport := 0
	for k, n := range codes {
		if strings.HasSuffix(k, " transport") {
			transport += n
		}
	}
	if codes["server exited"] != 1 || transport < 1 {
		t.Errorf("errors on 2 servers by code: %v; want the exit once and the dropped requests as transport", codes)
	}
	for _, tr := range rep.Targets {
		if tr.Name == "chip_logins_errors" && (tr.Met || tr.Value < 2) {
			t.Errorf("target %+v: the errors are not counted", tr)
		}
	}
	if !strings.Contains(errOut.String(), "target missed: chip_logins_errors") || !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, "exited during the scenario") }) {
		t.Errorf("the exit is not reported: notes %q\n%s", rep.Notes, errOut)
	}
	for _, pid := range kids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("serve process %d left running (%v)", pid, err)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	schemaGone(t, base, rep.Schema)
}

// childPIDs returns the child processes of pid (Linux /proc).
func childPIDs(t *testing.T, pid int) []int {
	t.Helper()
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that ended
		}
		for _, w := range strings.Fields(string(b)) {
			n, err := strconv.Atoi(w)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
	}
	return out
}

// TestHostShares: one server alone takes the host's CPUs and the whole
// connection budget; each of N replicas a share of both, never less than
// one CPU and two connections.
func TestHostShares(t *testing.T) {
	for _, c := range []struct {
		cpus, budget, n int
		single, replica serveShape
	}{
		{2, 0, 1, serveShape{2, 4}, serveShape{2, 4}},
		{2, 0, 3, serveShape{2, 4}, serveShape{1, 2}},
		{8, 0, 3, serveShape{8, 8}, serveShape{2, 3}},
		{8, 0, 2, serveShape{8, 8}, serveShape{4, 4}},
		{16, 20, 4, serveShape{16, 20}, serveShape{4, 5}},
		{1, 3, 8, serveShape{1, 3}, serveShape{1, 2}},
	} {
		s, r := hostShares(c.cpus, c.budget, c.n)
		if s != c.single || r != c.replica {
			t.Errorf("hostShares(%d CPUs, budget %d, %d replicas) = %+v, %+v; want %+v, %+v", c.cpus, c.budget, c.n, s, r, c.single, c.replica)
		}
	}
}

// TestOTPClock: the virtual clock never moves past the step after the one
// a login in flight started at, so no code can arrive two steps late.
func TestOTPClock(t *testing.T) {
	clk := newOTPClock(time.Unix(3000, 0))
	s0 := clk.step.Load()
	if s0 != 100 || !clk.Now().Equal(time.Unix(3000, 0)) {
		t.Fatalf("step %d at %v", s0, clk.Now())
	}
	// A login starts at s0; the clock may move once.
	inFlight := clk.acquire()
	clk.advance(s0)
	if got := clk.step.Load(); got != s0+1 {
		t.Fatalf("step %d after one advance, want %d", got, s0+1)
	}
	// Advancing again must wait for the login of s0 to end.
	moved := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		clk.advance(s0 + 1)
		close(moved)
	})
	// Let the advancer reach its wait (it holds no lock while waiting); the
	// clock must still stand at s0+1 whatever the scheduling.
	for range 100 {
		runtime.Gosched()
		if clk.step.Load() != s0+1 {
			t.Fatalf("the clock moved to %d while a login of step %d was in flight", clk.step.Load(), s0)
		}
	}
	select {
	case <-moved:
		t.Fatal("advance returned while a login two steps back was in flight")
	default:
	}
	clk.release(inFlight)
	<-moved
	wg.Wait()
	if got := clk.step.Load(); got != s0+2 {
		t.Fatalf("step %d, want %d", got, s0+2)
	}
	// An advance from a step already passed does nothing.
	clk.advance(s0)
	if got := clk.step.Load(); got != s0+2 {
		t.Fatalf("a stale advance moved the clock to %d", got)
	}
}

// TestCodeLogin: a device is used at most once per step on each clock; on
// the real clock a code may be for the next step, and a worker whose
// devices are all used waits, until the segment's end at the latest.
func TestCodeLogin(t *testing.T) {
	ctx := context.Background()
	mk := func(last uint64) *loadCode {
		return &loadCode{totp: otp.TOTP{Secret: []byte("12345678901234567890")}, last: [2]uint64{last, last}}
	}
	clk := newOTPClock(time.Unix(3000, 0)) // step 100
	devs := []*loadCode{mk(99), mk(100)}
	next := 0
	var steps []uint64
	do := func(d *loadCode, code string) error {
		m, err := d.totp.Verify(code, clk.Now(), 0, 0)
		steps = append(steps, m.Step)
		return err
	}
	for range 3 {
		if err := codeLogin(ctx, devs, &next, clk, 0, time.Now().Add(time.Minute), newRecorder(), do); err != nil {
			t.Fatal(err)
		}
	}
	// Device 0 at step 100; then none is left at 100, the clock moves on.
	if !slices.Equal(steps, []uint64{100, 101, 101}) || clk.step.Load() != 101 || devs[0].last[0] != 101 || devs[1].last[0] != 101 {
		t.Errorf("steps %v, clock %d, last %d %d", steps, clk.step.Load(), devs[0].last[0], devs[1].last[0])
	}

	rt := realTime{period: otpPeriod}
	s := rt.begin()
	devs = []*loadCode{mk(s - 1)}
	var got []string
	real := func(d *loadCode, code string) error { got = append(got, code); return nil }
	for range 2 {
		if err := codeLogin(ctx, devs, &next, rt, 1, time.Now().Add(time.Minute), newRecorder(), real); err != nil {
			t.Fatal(err)
		}
	}
	if devs[0].last[1] < s+1 || len(got) != 2 || got[0] == got[1] {
		t.Errorf("real clock: last %d (now %d), codes %v", devs[0].last[1], s, got)
	}
	rec := newRecorder()
	if err := codeLogin(ctx, devs, &next, rt, 1, time.Now().Add(20*time.Millisecond), rec, real); !errors.Is(err, errSegmentOver) && devs[0].last[1] < s+2 {
		t.Errorf("a used-up device at the segment's end: %v", err)
	}
}

// TestCodeLoginRepeatedCode: a device whose code of one step is also its
// code of the next (505402 at steps 59887286 and 59887287 for this seed,
// found in a load run) skips that step, so that a verifier that takes the
// highest step a code matches never sees the next code as a replay.
func TestCodeLoginRepeatedCode(t *testing.T) {
	seed, _ := hex.DecodeString("f9d42b42d314876b")
	dev, err := code.New(code.Options{Kind: device.KindCodeDisplay, Seed: append(seed, "/code/103"...), Serial: "KV-103"})
	if err != nil {
		t.Fatal(err)
	}
	const s0 = 59887286
	tp := dev.TOTP()
	a, _, _ := tp.At(tp.Start(s0))
	b, _, _ := tp.At(tp.Start(s0 + 1))
	if a != b || a != "505402" {
		t.Fatalf("codes %s, %s: the device is not the one of the run", a, b)
	}
	verifier, lastStep := dev.TOTP(), uint64(s0-1)
	clk := newOTPClock(time.Unix(s0*otpPeriod, 0))
	devs := []*loadCode{{totp: tp, last: [2]uint64{s0 - 1, s0 - 1}}}
	next := 0
	for i := range 4 {
		err := codeLogin(context.Background(), devs, &next, clk, 0, time.Now().Add(time.Minute), newRecorder(), func(d *loadCode, code string) error {
			m, err := verifier.Verify(code, clk.Now(), 1, lastStep)
			if err == nil {
				lastStep = m.Step
			}
			return err
		})
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		if i == 0 && (lastStep != s0+1 || devs[0].last[0] != s0+1) {
			t.Errorf("the first login was for step %d (device at %d), want %d: step %d is skipped", lastStep, devs[0].last[0], s0+1, s0)
		}
	}
}

func TestLatencies(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	p := latencies("x", ds)
	if p.Count != 100 || p.P50MS != 50 || p.P90MS != 90 || p.P99MS != 99 || p.MaxMS != 100 || p.MeanMS != 50.5 {
		t.Errorf("%+v", p)
	}
	if p := latencies("one", []time.Duration{3 * time.Millisecond}); p.P50MS != 3 || p.P99MS != 3 || p.MaxMS != 3 {
		t.Errorf("%+v", p)
	}
	if p := latencies("none", nil); p.Count != 0 || p.MaxMS != 0 {
		t.Errorf("%+v", p)
	}
}

func TestErrorCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{inPhase("finish", fmt.Errorf("x: %w", &client.APIError{Status: 401, Code: "wrong_code"})), "401 wrong_code"},
		{&httpError{Status: 503, Code: "store"}, "503 store"},
		{checkFailed("no session"), "check"},
		{&url.Error{Op: "Post", URL: "http://x", Err: errors.New("connection refused")}, "transport"},
		{errors.New("the chip broke"), "client"},
	} {
		if got := errorCode(tc.err); got != tc.want {
			t.Errorf("errorCode(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestThousands(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {7.4, "7"}, {999.6, "1,000"}, {10000, "10,000"}, {1234567, "1,234,567"}, {-20000, "-20,000"},
	} {
		if got := thousands(tc.v); got != tc.want {
			t.Errorf("thousands(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestSampleIndexes(t *testing.T) {
	for _, tc := range []struct {
		n, k int
		want []int
	}{
		{10, 0, []int{}},
		{3, 5, []int{0, 1, 2}},
		{10, 5, []int{0, 2, 4, 6, 8}},
		{10000, 4, []int{0, 2500, 5000, 7500}},
	} {
		if got := sampleIndexes(tc.n, tc.k); !slices.Equal(got, tc.want) {
			t.Errorf("sampleIndexes(%d, %d) = %v, want %v", tc.n, tc.k, got, tc.want)
		}
	}
}

// TestLoadReusedDB: a second run on the database of the first, whose OTP
// secrets are sealed under the first run's key, is refused with a clear
// error instead of running on secrets it cannot open.
func TestLoadReusedDB(t *testing.T) {
	db := filepath.Join(t.TempDir(), "load.db")
	args := []string{"load", "--scenario", "code-logins", "--concurrency", "2", "--devices", "2", "--duration", "100ms", "--anchor-duration", "10ms", "--db", db}
	var out bytes.Buffer
	// A short run may miss its targets (exit 1); it must not fail otherwise.
	if code := run(context.Background(), &env{stdout: &out, stderr: &out, wrapAPI: apitest.ForTest(t).Wrap}, args); code > 1 || strings.Contains(out.String(), "sealed") {
		t.Fatalf("first run exited %d:\n%s", code, out.String())
	}
	out.Reset()
	code := run(context.Background(), &env{stdout: &out, stderr: &out, wrapAPI: apitest.ForTest(t).Wrap}, args)
	if code != 1 || !strings.Contains(out.String(), "holds secrets sealed by an earlier run") {
		t.Fatalf("second run exited %d:\n%s", code, out.String())
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(db), ".authbench-load-anchor-*")); len(left) != 0 {
		t.Errorf("the minimal durable login's files were left: %v", left)
	}
}

// TestSetUpIdentityBusy: a set-up identity that the server answers 503
// busy (its argon2id budget full, nothing done) is asked again until it is
// made; any other refusal is returned at once.
func TestSetUpIdentityBusy(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req client.CreateIdentityRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Password != loadPassword {
			t.Errorf("request %v, %+v", err, req)
		}
		mu.Lock()
		calls[req.ID]++
		n := calls[req.ID]
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case req.ID == "taken":
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"error":{"code":"identity_taken","message":"taken"}}`)
		case n == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"code":"busy","message":"busy hashing"}}`)
		default:
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id":%q}`, req.ID)
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, client.Options{Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := setUpIdentity(context.Background(), c, "alice"); err != nil || calls["alice"] != 2 {
		t.Errorf("busy once: %v after %d requests, want made after 2", err, calls["alice"])
	}
	if err := setUpIdentity(context.Background(), c, "taken"); errorCode(err) != "409 identity_taken" || calls["taken"] != 1 {
		t.Errorf("taken: %v after %d requests", err, calls["taken"])
	}
}

// testFleet opens the fleet of cfg with passwords at params, for a test or
// benchmark of the load command's scenarios; it closes when tb ends.
func testFleet(tb testing.TB, ctx context.Context, cfg loadConfig, params secrets.Params) (*loader, *fleet) {
	tb.Helper()
	l := newLoader(cfg, &bytes.Buffer{})
	var err error
	if l.keys, err = secrets.GenerateKeyring(nil); err != nil {
		tb.Fatal(err)
	}
	l.pskcKey = make([]byte, 16)
	f, err := l.openFleet(ctx, params, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := f.close(); err != nil {
			tb.Error(err)
		}
	})
	return l, f
}

// The simulated clients' live heap is the load's, not the server's: made
// while this process paces its collector for the server in it, it is
// measured and given room of its own beside the server's headroom (the
// heap goal grows by as much), until the scenario closes its chips.
func TestLoadExcludesClientsFromHeadroom(t *testing.T) {
	const headroom, clients = 76 << 20, 32 << 20
	runtime.GC()
	p, err := gcpace.Start(headroom)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	room := func() uint64 {
		_, goal := p.Stats()
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		return goal - s[0].Value.Uint64()
	}
	var progress bytes.Buffer
	l := newLoader(loadConfig{}, &progress)
	l.gc = p
	var held [][]byte
	err = l.excludeClients("the clients", 0, func() error {
		for range clients >> 20 {
			held = append(held, make([]byte, 1<<20))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := room(); r < headroom+clients*9/10 || r > headroom+clients*11/10 {
		t.Errorf("with %d MiB of clients held, the heap may grow by %.1f MiB; want the headroom %d MiB + theirs", clients>>20, float64(r)/(1<<20), headroom>>20)
	}
	if !strings.Contains(progress.String(), "load: the clients: 32.") {
		t.Errorf("progress: %s", progress.String())
	}
	l.closeChips(nil)
	if r := room(); r != headroom {
		t.Errorf("after the clients' scenario, the heap may grow by %.1f MiB; want the headroom %d MiB", float64(r)/(1<<20), headroom>>20)
	}
	runtime.KeepAlive(held)

	// The scenarios' chips are measured so.
	ctx := context.Background()
	cfg, err := (&loadCmd{Scenario: []string{"lifecycle"}, N: 20, Concurrency: 4, Devices: 1, PasswordConcurrency: 1, Replicas: 1,
		Argon2: argon2Flag(secrets.Params{Memory: 64, Time: 1, Threads: 1}), Duration: time.Second, AnchorDuration: time.Second,
		TargetLifecycle: time.Second, Seed: []byte("exclude")}).config()
	if err != nil {
		t.Fatal(err)
	}
	l, f := testFleet(t, ctx, cfg, cfg.argon2)
	l.progress, l.gc = &progress, p
	chips, _, err := l.setUpChips(ctx, f, "chip", "setup", 20, 2, 4, nil)
	l.closeChips(chips)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "load: 20 simulated chips: ") || !strings.Contains(progress.String(), "for the 40 credentials they will create") {
		t.Errorf("progress: %s", progress.String())
	}
}

// The live heap a load chip gains per credential (its key pair, ID and
// the key's form crypto/ecdsa signs with) is measured, not zero: the
// chips' growth in a scenario is theirs, not the server's.
func TestCredentialHeap(t *testing.T) {
	per, err := credentialHeap()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes of live heap per credential", per)
	// A P-256 private key with its public point as big.Ints, the same in
	// crypto/ecdsa's own form, a 32-byte ID and the chip's records of it:
	// several hundred bytes, not tens of KiB.
	if per < 256 || per > 16<<10 {
		t.Errorf("%d bytes of live heap per credential; want several hundred to a few thousand", per)
	}
}

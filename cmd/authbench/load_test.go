package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/server/api/apitest"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/sim/chip"
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

// TestLoadTiny runs both scenarios on a tiny scale: the command must
// complete, print the summary with the target lines, exit 1 exactly when
// it says a target was missed (0 otherwise), and leave no goroutine
// behind. The figures themselves are not checked.
func TestLoadTiny(t *testing.T) {
	before := runtime.NumGoroutine()
	var out, errOut bytes.Buffer
	code := run(context.Background(), &env{stdout: &out, stderr: &errOut, wrapAPI: apitest.ForTest(t).Wrap},
		[]string{"load", "--scenario", "all", "--n", "20", "--concurrency", "4", "--devices", "8", "--duration", "1s", "--baseline", "50ms", "--sample", "5", "--seed", "01"})
	missed := strings.Contains(errOut.String(), "target missed: ")
	if code != 0 && code != 1 || (code == 1) != missed {
		t.Fatalf("load exited %d (target missed said: %v):\n%s%s", code, missed, out.String(), errOut.String())
	}
	text := out.String()
	for _, want := range []string{
		"baseline (same run",
		"raw ECDSA P-256 verify",
		"raw HMAC-SHA1 TOTP verify",
		"20 chips enroll→login→block→re-add: ",
		"(target ≤ 10 s for 10,000",
		"enroll ", "login ", "block ", "re-add ",
		"× raw ECDSA P-256 verify (target ≥ 0.5",
		"old credential refused after re-add: 5 of 5 sampled chips",
		"OTP logins end to end: ",
		"(target ≥ 20,000/s)",
		"× raw HMAC-SHA1 TOTP verify",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the summary lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(errOut.String(), "load: otp: ") {
		t.Errorf("no progress on stderr:\n%s", errOut.String())
	}
	waitGoroutines(t, before)
}

// TestLoadJSON checks the JSON report of the chips scenario alone.
func TestLoadJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), &env{stdout: &out, stderr: &errOut, wrapAPI: apitest.ForTest(t).Wrap},
		[]string{"load", "--scenario", "chips", "--n", "6", "--concurrency", "3", "--baseline", "20ms", "--sample", "2", "--json"})
	if code != 0 && code != 1 {
		t.Fatalf("load exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	var rep loadReport
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if rep.OTP != nil || rep.Chips == nil || rep.Baseline == nil {
		t.Fatalf("report %+v: want chips and baseline only", rep)
	}
	c := rep.Chips
	if c.N != 6 || c.TargetN != targetChips || c.Sampled != 2 || c.OldRefused != 2 || len(c.Phases) != len(chipPhases) {
		t.Errorf("chips %+v", c)
	}
	for _, p := range c.Phases {
		if p.Count != 6 {
			t.Errorf("phase %s: %d chips, want 6", p.Name, p.Count)
		}
	}
	if rep.Baseline.ECDSAVerifyPerSec <= 0 || rep.Baseline.TOTPVerifyPerSec <= 0 {
		t.Errorf("baseline %+v", rep.Baseline)
	}
	// The exit status is the verdict of the targets in the report.
	if len(rep.Targets) != 2 {
		t.Fatalf("targets %+v: want the chips time and the login ratio", rep.Targets)
	}
	met := true
	for _, tr := range rep.Targets {
		met = met && tr.Met
	}
	if met != (code == 0) {
		t.Errorf("exit %d, but the report says the targets were met: %v (%+v)", code, met, rep.Targets)
	}
}

// TestLoadTargets: the verdict on each target, from the
// figures of a report (a run of fewer chips is judged by the time the
// target's count would take at its rate).
func TestLoadTargets(t *testing.T) {
	rep := &loadReport{
		Chips: &chipsResult{N: 100, TargetN: 10000, TargetSeconds: 10, ChipsPerSec: 2000, LoginVsECDSA: 0.4, TargetVsECDSA: 0.5},
		OTP:   &otpResult{PerSec: 25000, TargetPerSec: 20000},
	}
	got := map[string]bool{}
	for _, tr := range rep.targets() {
		got[tr.Name] = tr.Met
	}
	want := map[string]bool{
		"seconds for 10000 chips through enroll, login, block and re-add": true, // 5 s at 2,000/s
		"chip logins per raw ECDSA P-256 verify":                          false,
		"OTP logins per second":                                           true,
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			t.Errorf("%s: met %v (present %v), want %v", name, g, ok, w)
		}
	}
	rep.Chips.ChipsPerSec = 900 // 11.1 s for 10,000
	if rep.targets()[0].Met {
		t.Error("10,000 chips at 900/s met the 10 s target")
	}
}

// TestLoadUsage: bad command lines exit 2.
func TestLoadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "apps"},
		{"--n", "0"},
		{"--concurrency", "-1"},
		{"--duration", "0s"},
		{"--db", "postgres://localhost/x"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), &env{stdout: &out, stderr: &errOut, wrapAPI: apitest.ForTest(t).Wrap}, append([]string{"load"}, args...)); code != 2 {
			t.Errorf("load %q exited %d, want 2:\n%s", args, code, errOut.String())
		}
	}
}

// TestLoadFailureStep: a chip that the server must refuse makes the
// lifecycle fail at the step where it happened, as a *loadError (which
// makes the command exit 1).
func TestLoadFailureStep(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx := context.Background()
	l := newLoader(loadConfig{concurrency: 1, seed: []byte{2}, wrapAPI: apitest.ForTest(t).Wrap}, &bytes.Buffer{})
	srv, err := l.startServer(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.close(); err != nil {
			t.Error(err)
		}
		waitGoroutines(t, before)
	}()
	for _, tc := range []struct {
		name   string
		faults chip.Faults
		step   string
		want   error
	}{
		{"bad signature", chip.Faults{BadSignature: true}, "enroll", client.ErrAttestationUntrusted},
		{"wrong RP", chip.Faults{WrongRPIDHash: true}, "enroll", client.ErrBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := chip.New(chip.Options{Seed: []byte(tc.name), Faults: tc.faults})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			lc := &loadChip{id: "fail-" + strings.ReplaceAll(tc.name, " ", "-"), c: c}
			if _, err := srv.support.CreateIdentity(ctx, client.CreateIdentityRequest{ID: lc.id}); err != nil {
				t.Fatal(err)
			}
			stats := make([]phaseStats, len(chipPhases))
			lerr := chipLifecycle(ctx, srv, lc, stats)
			if lerr == nil {
				t.Fatal("the faulty chip went through its lifecycle")
			}
			var le *loadError
			if !errors.As(error(lerr), &le) || le.Step != tc.step {
				t.Fatalf("error %v: want a failure at step %q", lerr, tc.step)
			}
			var ae *client.APIError
			if !errors.As(lerr, &ae) || ae.Status/100 != 4 || !errors.Is(lerr, tc.want) {
				t.Errorf("error %v: want the server's refusal %q", lerr, tc.want)
			}
			if stats[0].n != 0 {
				t.Errorf("a failed lifecycle was counted: %+v", stats)
			}
		})
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
		got := sampleIndexes(tc.n, tc.k)
		if len(got) != len(tc.want) {
			t.Errorf("sampleIndexes(%d, %d) = %v, want %v", tc.n, tc.k, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("sampleIndexes(%d, %d) = %v, want %v", tc.n, tc.k, got, tc.want)
				break
			}
		}
	}
}

// TestLoadReusedDB: a second run on the database of the first, whose OTP
// secrets are sealed under the first run's key, is refused with a clear
// error instead of running on secrets it cannot open.
func TestLoadReusedDB(t *testing.T) {
	db := filepath.Join(t.TempDir(), "load.db")
	args := []string{"load", "--scenario", "otp", "--concurrency", "2", "--devices", "4", "--duration", "200ms", "--baseline", "20ms", "--sample", "1", "--db", db}
	var out, errOut bytes.Buffer
	// A short run may miss its targets (exit 1); it must not fail otherwise.
	if code := run(context.Background(), &env{stdout: &out, stderr: &errOut, wrapAPI: apitest.ForTest(t).Wrap}, args); code > 1 || strings.Contains(errOut.String(), "sealed") {
		t.Fatalf("first run exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	code := run(context.Background(), &env{stdout: &out, stderr: &errOut, wrapAPI: apitest.ForTest(t).Wrap}, args)
	if code != 1 || !strings.Contains(errOut.String(), "holds secrets sealed by an earlier run") {
		t.Fatalf("second run exited %d:\n%s%s", code, out.String(), errOut.String())
	}
}

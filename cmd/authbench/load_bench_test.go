package main

import (
	"context"
	"testing"
	"time"

	"github.com/authbench/authbench/server/secrets"
)

// BenchmarkLifecyclePhases takes b.N chips through the lifecycle one step
// at a time (all enrol, then all log in, then all are blocked, then all
// re-added; 64 clients, the server in this process on SQLite, argon2id at
// the load setting) and reports the process's CPU time (user + system,
// client and server together) per chip of every step, with its p50
// latency. On a machine other work shares, CPU per chip moves much less
// than the lifecycle's seconds; compare binaries back to back.
//
//	go test -run '^$' -bench LifecyclePhases -benchtime 3000x ./cmd/authbench
func BenchmarkLifecyclePhases(b *testing.B) {
	ctx := context.Background()
	const workers = 64
	cfg, err := (&loadCmd{Scenario: []string{"lifecycle"}, N: b.N, Concurrency: workers, Devices: 1, PasswordConcurrency: 1, Replicas: 1,
		Argon2: argon2Flag(secrets.Params{Memory: 64, Time: 1, Threads: 1}), Duration: time.Second, AnchorDuration: time.Second,
		TargetLifecycle: time.Second, Seed: []byte("bench")}).config()
	if err != nil {
		b.Fatal(err)
	}
	l, f := testFleet(b, ctx, cfg, cfg.argon2)
	chips, _, err := l.setUpChips(ctx, f, "chip", "setup", b.N, 2, workers, nil)
	defer l.closeChips(chips)
	if err != nil {
		b.Fatal(err)
	}
	rrs := make([]*roundRobin, workers)
	for w := range rrs {
		rrs[w] = &roundRobin{f: f, k: w}
	}
	rec := newRecorder()
	b.ResetTimer()
	for _, st := range lifecycleSteps {
		before := cpuUsed(b)
		err := forEach(ctx, b.N, workers, func(ctx context.Context, w, i int) error {
			t := time.Now()
			if err := st.run(ctx, rrs[w], chips[i]); err != nil {
				return inPhase(st.name, err)
			}
			rec.observe(st.name, time.Since(t))
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64((cpuUsed(b)-before).Microseconds())/float64(b.N), st.name+"-cpu-µs/chip")
	}
	b.StopTimer()
	for _, p := range rec.phases() {
		b.ReportMetric(p.P50MS, p.Name+"-p50-ms")
	}
}

func cpuUsed(b *testing.B) time.Duration {
	d, ok := processCPU()
	if !ok {
		b.Skip("the process's CPU time cannot be read here")
	}
	return d
}

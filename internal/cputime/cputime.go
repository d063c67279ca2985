// Package cputime reports the CPU time a benchmark's process spends per
// operation ("cpu-ns/op"), next to the wall time the testing package
// reports. On a machine that other work shares, wall time counts the time
// the benchmark waited for a core; CPU time counts only the work (its own
// and its garbage collection), so it compares code more steadily there.
package cputime

import (
	"syscall"
	"testing"
	"time"
)

// Measure runs op in a b.Loop loop, reports the process's CPU time (user +
// system, all threads) per call as "cpu-ns/op", and returns it.
func Measure(b *testing.B, op func()) float64 {
	b.Helper()
	before := used(b)
	n := 0
	for b.Loop() {
		op()
		n++
	}
	if n == 0 {
		return 0
	}
	per := float64(used(b)-before) / float64(n)
	b.ReportMetric(per, "cpu-ns/op")
	return per
}

func used(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// Counter is the process's CPU time at a start, for a benchmark whose
// operations b.Loop does not count (b.RunParallel).
type Counter struct{ start time.Duration }

// Start returns a Counter started now.
func Start(b *testing.B) Counter { return Counter{used(b)} }

// Report reports the CPU time since the start per operation of b.N as
// "cpu-ns/op" and returns it.
func (c Counter) Report(b *testing.B) float64 {
	b.Helper()
	if b.N == 0 {
		return 0
	}
	per := float64(used(b)-c.start) / float64(b.N)
	b.ReportMetric(per, "cpu-ns/op")
	return per
}

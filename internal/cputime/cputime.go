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

package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/authbench/authbench/server/store/storetest"
)

// benchOwners opens a store (a file, or memory: the statements' own cost
// without a disk) with n identities, each with an active password, and
// an enrolled chip if enrolled.
func benchOwners(b *testing.B, db string, n int, enrolled bool) []*storetest.ChipOwner {
	b.Helper()
	ctx := context.Background()
	path := ":memory:"
	if db == "file" {
		path = filepath.Join(b.TempDir(), "bench.db")
	}
	s := open(b, path)
	b.Cleanup(func() { s.Close() })
	os := make([]*storetest.ChipOwner, n)
	for i := range os {
		o, err := storetest.NewChipOwner(ctx, s, fmt.Sprintf("id-%d", i), t0)
		if err == nil && enrolled {
			err = o.Enroll(ctx, t0)
		}
		if err != nil {
			b.Fatal(err)
		}
		os[i] = o
	}
	return os
}

// BenchmarkCreateRegistered measures the store's side of a chip's
// activation (an enroll or a re-add: CreateRegistered of an active chip
// with its element and its spent ceremony, and two audit records), one
// writer, each op a commit of its own.
func BenchmarkCreateRegistered(b *testing.B) {
	for _, db := range []string{"memory", "file"} {
		b.Run("db="+db, func(b *testing.B) {
			os := benchOwners(b, db, b.N, false)
			ctx := context.Background()
			at := t0.Add(time.Second)
			measureCPU(b, func() {
				for _, o := range os {
					if err := o.Enroll(ctx, at); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkApplyChangeBlock measures the store's side of a chip's block
// (ApplyChange: the record blocked, its element wiped, a tombstone, its
// sessions ended and an audit record), as BenchmarkCreateRegistered.
func BenchmarkApplyChangeBlock(b *testing.B) {
	for _, db := range []string{"memory", "file"} {
		b.Run("db="+db, func(b *testing.B) {
			os := benchOwners(b, db, b.N, true)
			ctx := context.Background()
			at := t0.Add(time.Second)
			measureCPU(b, func() {
				for _, o := range os {
					if err := o.Block(ctx, at); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// measureCPU runs the b.N ops of run and reports, besides the time and
// allocations, the CPU time the process used per op (cpu-ns/op: on a
// shared machine a steadier measure than the time, which waits count in).
func measureCPU(b *testing.B, run func()) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	run()
	cpu = processCPU() - cpu
	b.StopTimer()
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkLifecycleWrites measures the store's side of a chip's enroll
// and block together, each op both on one of 64 identities in turn (what
// a re-add and the next block write), with no setup per op: a steady
// measure of the two writes, for instruction counts (perf stat) too.
func BenchmarkLifecycleWrites(b *testing.B) {
	for _, db := range []string{"memory", "file"} {
		b.Run("db="+db, func(b *testing.B) {
			os := benchOwners(b, db, 64, false)
			ctx := context.Background()
			at := t0.Add(time.Second)
			measureCPU(b, func() {
				for i := range b.N {
					o := os[i%len(os)]
					if err := o.Enroll(ctx, at); err != nil {
						b.Fatal(err)
					}
					if err := o.Block(ctx, at); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// Package umockdevtest runs tests against simulated chips that programs
// reach as USB keys through umockdev (package sim/umockdev): in
// subprocesses given the testbed's environment, or in the test process
// itself, which then must run with umockdev's preload library.
//
// A package whose tests use libusb in-process (driver/usb, cmd/authbench)
// calls Preload from its TestMain: the test binary executes itself again
// with LD_PRELOAD=libumockdev-preload.so.0. Until a test calls Use, the
// preload sees no testbed and passes every call through, in the test
// process and in the programs it starts. The component name for
// AUTHBENCH_REQUIRE is "umockdev".
package umockdevtest

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authbench/authbench/internal/testenv"
	"github.com/authbench/authbench/sim/umockdev"
)

// Component is the name AUTHBENCH_REQUIRE uses for the umockdev testbed.
const Component = "umockdev"

// reexecMark is set in the environment of the test binary executed again
// by Main, so that it does not do so twice.
const reexecMark = "AUTHBENCH_UMOCKDEV_PRELOADED"

// Preload makes the test process run with umockdev's preload library:
// unless it already does, it executes the test binary again with the
// library added to LD_PRELOAD, and does not return. Call it first thing in
// TestMain. Without the library it returns, and Use then skips (or fails
// under AUTHBENCH_REQUIRE).
func Preload() {
	if os.Getenv(reexecMark) != "" || preloaded() {
		return
	}
	if _, err := os.Stat(findLib(umockdev.Preload)); err != nil {
		return
	}
	env := setPreload(append(os.Environ(), reexecMark+"=1"))
	exe, err := os.Executable()
	if err == nil {
		err = syscall.Exec(exe, os.Args, env)
	}
	// Exec returns only when it failed: run without the preload.
	os.Stderr.WriteString("umockdevtest: cannot execute the tests again with the preload: " + err.Error() + "\n")
}

// preloaded reports whether umockdev's preload library is mapped into this
// process.
func preloaded() bool {
	maps, err := os.ReadFile("/proc/self/maps")
	return err == nil && strings.Contains(string(maps), "libumockdev-preload")
}

// libDirs are where Debian installs libraries, for the architectures CI and
// benches use.
var libDirs = []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu"}

// findLib returns the first of libDirs joined with rel that exists, or rel
// itself.
func findLib(rel string) string {
	for _, dir := range libDirs {
		if _, err := os.Stat(dir + "/" + rel); err == nil {
			return dir + "/" + rel
		}
	}
	return rel
}

func setPreload(env []string) []string {
	out := env[:0:0]
	preload := umockdev.Preload
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "LD_PRELOAD="); ok {
			if v != "" {
				preload += ":" + v
			}
			continue
		}
		out = append(out, kv)
	}
	return append(out, "LD_PRELOAD="+preload)
}

// Require skips the test (or fails it under AUTHBENCH_REQUIRE) unless what
// the testbed needs is installed: the system's Python with python3-gi,
// UMockdev's typelib and the preload library. Tests that start a testbed
// through other code (authbench sim --chip usb) call it first.
func Require(t testing.TB) {
	t.Helper()
	for _, p := range []string{umockdev.DefaultPython, "/usr/lib/python3/dist-packages/gi",
		findLib("girepository-1.0/UMockdev-1.0.typelib"), findLib(umockdev.Preload)} {
		if _, err := os.Stat(p); err != nil {
			testenv.Missing(t, Component, p+" not found; apt-get install "+umockdev.Packages)
		}
	}
}

// Start starts a testbed with keys for the test and closes it at cleanup.
// It skips the test (or fails it under AUTHBENCH_REQUIRE) when the testbed
// cannot run here.
func Start(t testing.TB, keys ...umockdev.Key) *umockdev.Testbed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // failure guard: a loaded machine starts Python slowly
	defer cancel()
	tb, err := umockdev.Start(ctx, keys, umockdev.Options{})
	if errors.Is(err, umockdev.ErrMissing) {
		testenv.Missing(t, Component, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tb.Close(); err != nil {
			t.Errorf("testbed: %v", err)
		}
	})
	return tb
}

// Use points this process at the testbed in dir (Testbed.Dir, or the
// umockdev_dir authbench sim prints) for the rest of the test: it sets
// UMOCKDEV_DIR, so tests that call it cannot run in parallel. It skips the
// test (or fails it under AUTHBENCH_REQUIRE) when the process runs without
// umockdev's preload library: call Preload from TestMain.
func Use(t testing.TB, dir string) {
	t.Helper()
	if !preloaded() {
		testenv.Missing(t, Component, "the test process runs without "+umockdev.Preload+" (apt-get install umockdev; TestMain must call umockdevtest.Preload)")
	}
	t.Setenv("UMOCKDEV_DIR", dir)
}

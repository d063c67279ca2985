// Package testenv decides what a test does when a real component it needs
// (pcscd, vpcd, PostgreSQL, python-fido2, espeak-ng, ...) is missing: skip
// with a clear message on a developer's machine, fail in CI.
//
// The environment variable AUTHBENCH_REQUIRE lists the components that must
// be present, separated by commas; "all" means every component. .ci/run sets
// AUTHBENCH_REQUIRE=all so that a missing component fails the run instead of
// silently skipping the tests that need it.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// TB is the part of testing.TB that testenv uses.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Required reports whether component must be present in this run.
func Required(component string) bool {
	for _, v := range strings.Split(os.Getenv("AUTHBENCH_REQUIRE"), ",") {
		v = strings.TrimSpace(v)
		if v == "all" || v == component {
			return true
		}
	}
	return false
}

// Missing skips the test because component is not available (why says what
// was looked for and how to get it), or fails it when the component is
// required by AUTHBENCH_REQUIRE.
func Missing(t TB, component, why string) {
	t.Helper()
	if Required(component) {
		t.Fatalf("%s is required (AUTHBENCH_REQUIRE=%s) but missing: %s", component, os.Getenv("AUTHBENCH_REQUIRE"), why)
	}
	t.Skipf("%s missing, skipping: %s (set AUTHBENCH_REQUIRE=%s to make this a failure)", component, why, component)
}

// LookPath returns the path of program, or calls Missing for component.
func LookPath(t TB, component, program, hint string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err != nil {
		Missing(t, component, program+" not found in PATH; "+hint)
		return ""
	}
	return p
}

// Files returns the files that match the glob pattern (such as
// "../../testdata/api/answers/*.json", relative to the test's package),
// keyed by their base names: a test's seeds. No match, or a file it
// cannot read, fails the test.
func Files(t TB, pattern string) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob(pattern)
	if err != nil || len(names) == 0 {
		t.Fatalf("no files match %s (%v)", pattern, err)
	}
	out := make(map[string][]byte, len(names))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatalf("%v", err)
		}
		out[filepath.Base(n)] = b
	}
	return out
}

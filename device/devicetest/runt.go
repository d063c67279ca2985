package devicetest

import (
	"testing"
)

// RunT runs the checks of s against target as subtests of t, one subtest
// per check, named after it: a check that fails or could not run fails its
// subtest with the check's message, a skipped one skips it, one not checked
// passes with the reason logged, and the notes of every check are logged. Checks share fixtures as under RunSuite; the context is
// t.Context(). It returns the report, for tests that assert on it.
//
// Driver and simulator tests call it with their own target, so that the
// same suite runs in-process, over each transport, and against hardware.
func RunT(t *testing.T, s Suite, target any, opts RunOptions) *Report {
	t.Helper()
	rn := newRunner(s, target, opts)
	for _, c := range s.Checks {
		t.Run(c.Name, func(t *testing.T) {
			res := rn.one(t.Context(), c)
			if opts.Progress != nil {
				opts.Progress(res)
			}
			for _, l := range res.Log {
				t.Log(l)
			}
			for _, a := range res.Artifacts {
				if a.Path != "" {
					t.Logf("artifact %s: %s", a.Name, a.Path)
				} else {
					t.Logf("artifact %s: %d bytes (not written)", a.Name, len(a.Data))
				}
			}
			switch res.Status {
			case Fail, Error:
				t.Errorf("%s: %s: %s", c.Name, res.Status, res.Message)
			case NotChecked:
				t.Logf("%s: not checked: %s", c.Name, res.Message)
			case Skip:
				t.Skipf("%s: %s", c.Name, res.Message)
			}
		})
	}
	return rn.finish()
}

package devicetest_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/devicetest"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/code"
)

// TestNoGoroutineLeft runs the suites over every transport, tears the
// transports down, and checks that the goroutine count settles back: the
// checks leave nothing running (the cancel check included).
func TestNoGoroutineLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("chip", func(t *testing.T) {
		s := newSimChip(t, "cleanup", chip.Faults{})
		for _, target := range []any{s.Chip, overCTAPHID(t, s), overAPDU(t, s)} {
			rep := devicetest.RunSuite(t.Context(), devicetest.ChipSuite(s.opts(t)), target, devicetest.RunOptions{})
			if f := rep.Failed(); len(f) != 0 {
				t.Errorf("%T: failed %q", target, f)
			}
		}
	})
	t.Run("code", func(t *testing.T) {
		d := newSimCode(t, device.KindCodeDisplay, code.Faults{})
		rep := devicetest.RunSuite(t.Context(), devicetest.CodeDeviceSuite(codeOpts(t, d, false)), serveCDP(t, d), devicetest.RunOptions{})
		if f := rep.Failed(); len(f) != 0 {
			t.Errorf("failed %q", f)
		}
	})
	// Goroutines end a little after the Close that stops them; wait for
	// the count to settle, with a generous guard.
	guard := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(guard) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), strings.TrimSpace(string(buf[:n])))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

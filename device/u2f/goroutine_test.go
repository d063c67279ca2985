package u2f

import (
	"runtime"
	"testing"
	"time"
)

func runtimeGoroutines() int { return runtime.NumGoroutine() }

// waitGoroutines fails the test unless the number of goroutines settles
// back to at most n. The wait is only a failure guard.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still running, want %d", runtime.NumGoroutine(), n)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

package devicetest

import "time"

// SetAbandonAfter changes how long RunSuite waits for a check that ignores
// its deadline, and returns a function that restores it.
func SetAbandonAfter(d time.Duration) (restore func()) {
	old := abandonAfter
	abandonAfter = d
	return func() { abandonAfter = old }
}

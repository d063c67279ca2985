//go:build race

package voice_test

// raceEnabled is true when the race detector is on. It slows the
// decoder's arithmetic some thirty times, so the long tables of cases run
// a sample only; the concurrency tests run in full.
const raceEnabled = true

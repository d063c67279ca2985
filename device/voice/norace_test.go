//go:build !race

package voice_test

const raceEnabled = false

//go:build !unix

package sqlite_test

import "time"

// processCPU returns 0: the CPU time used is not read on this system.
func processCPU() time.Duration { return 0 }

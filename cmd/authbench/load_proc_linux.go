package main

import (
	"syscall"
	"time"
)

// childAttr makes a server process that load starts receive SIGTERM when
// load dies without stopping it (kill -9), instead of serving on.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// processCPU returns the CPU time this process has used so far, user and
// system, of all its threads.
func processCPU() (time.Duration, bool) {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0, false
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()), true
}

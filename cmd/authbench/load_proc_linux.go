package main

import "syscall"

// childAttr makes a server process that load starts receive SIGTERM when
// load dies without stopping it (kill -9), instead of serving on.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

//go:build !linux

package main

import (
	"syscall"
	"time"
)

// childAttr: only Linux can tie a child's life to its parent's.
func childAttr() *syscall.SysProcAttr { return nil }

// processCPU: the CPU time of the process is read on Linux only.
func processCPU() (time.Duration, bool) { return 0, false }

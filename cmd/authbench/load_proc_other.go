//go:build !linux

package main

import (
	"syscall"
	"time"
)

// childAttr: only Linux can tie a child's life to its parent's.
func childAttr() *syscall.SysProcAttr { return nil }

// procCPU: CPU times per process are read from Linux's /proc.
func procCPU(pid int) (time.Duration, bool) { return 0, false }

// postmasterOf: CPU times per process are read from Linux's /proc.
func postmasterOf(backend int) (int, bool) { return 0, false }

// clusterCPU: CPU times per process are read from Linux's /proc.
func clusterCPU(pm int) (time.Duration, bool) { return 0, false }

// processCPU: the CPU time of the process is read on Linux only.
func processCPU() (time.Duration, bool) { return 0, false }

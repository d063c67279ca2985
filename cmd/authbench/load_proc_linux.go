package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childAttr makes a server process that load starts receive SIGTERM when
// load dies without stopping it (kill -9), instead of serving on.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100
// on every architecture Linux runs Go on.
const clockTicks = 100

// procStat reads the parent and the CPU times of process pid from
// /proc/PID/stat: its own (user + system, all its threads) and that of
// its children it has waited for.
func procStat(pid int) (ppid int, own, children time.Duration, comm string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, "", false
	}
	// pid (comm) state ppid ... utime stime cutime cstime (fields 14-17);
	// comm may hold spaces and parentheses: it ends at the last ')'.
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return 0, 0, 0, "", false
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 15 {
		return 0, 0, 0, "", false
	}
	n := make([]int64, 4)
	for i := range n {
		if n[i], err = strconv.ParseInt(f[11+i], 10, 64); err != nil {
			return 0, 0, 0, "", false
		}
	}
	if ppid, err = strconv.Atoi(f[1]); err != nil {
		return 0, 0, 0, "", false
	}
	tick := time.Second / clockTicks
	return ppid, time.Duration(n[0]+n[1]) * tick, time.Duration(n[2]+n[3]) * tick, s[open+1 : end], true
}

// procCPU returns the CPU time process pid has used, and whether it could
// read it.
func procCPU(pid int) (time.Duration, bool) {
	_, own, _, _, ok := procStat(pid)
	return own, ok
}

// postmasterOf returns the postmaster of the PostgreSQL backend pid, when
// that is a postgres process of this host (in this PID namespace).
func postmasterOf(backend int) (int, bool) {
	ppid, _, _, comm, ok := procStat(backend)
	if !ok || comm != "postgres" {
		return 0, false
	}
	if _, _, _, pcomm, ok := procStat(ppid); !ok || pcomm != "postgres" {
		return 0, false
	}
	return ppid, true
}

// clusterCPU returns the CPU time of the PostgreSQL server whose
// postmaster is pm: the postmaster's own, that of its children that have
// ended (backends of closed connections), and that of those running
// (backends, WAL writer, checkpointer, autovacuum, ...).
func clusterCPU(pm int) (time.Duration, bool) {
	_, own, ended, _, ok := procStat(pm)
	if !ok {
		return 0, false
	}
	total := own + ended
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == pm {
			continue
		}
		if ppid, own, _, _, ok := procStat(pid); ok && ppid == pm {
			total += own
		}
	}
	return total, true
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

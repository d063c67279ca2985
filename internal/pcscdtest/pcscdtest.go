// Package pcscdtest starts a private pcscd with the vsmartcard vpcd driver for
// tests, so that test processes never share a vpcd port (go test runs
// packages in parallel).
//
// The daemon runs in a mount namespace of its own with a tmpfs on /run/pcscd
// (pcscd always puts its socket there), and its vpcd driver listens on two
// free TCP ports. Clients in the test process reach the socket through
// /proc/PID/root, named by PCSCLITE_CSOCK_NAME; libpcsclite reads that
// variable once per process, so there is one daemon per test process, shared
// by every test in it. Starting it needs root (for the namespace); elsewhere
// tests skip, or fail under AUTHBENCH_REQUIRE.
package pcscdtest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/authbench/authbench/internal/testenv"
)

// VPCDDriver is where Debian's vsmartcard-vpcd installs the pcscd driver.
const VPCDDriver = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"

// Daemon is a running private pcscd.
type Daemon struct {
	Socket string    // the pcscd socket; also exported as PCSCLITE_CSOCK_NAME
	Addrs  [2]string // vpcd addresses of readers "Virtual PCD 00 00" and "00 01"
	Log    string    // pcscd's output
	PID    int
}

// Readers are the reader names the vpcd driver creates, in Addrs order.
var Readers = [2]string{"Virtual PCD 00 00", "Virtual PCD 00 01"}

var (
	once   sync.Once
	shared *Daemon
	err    error
)

// Start returns the test process's private pcscd, starting it on first use.
// It calls testenv.Missing (skip, or fail under AUTHBENCH_REQUIRE) when pcscd,
// the vpcd driver or root is missing.
func Start(t testenv.TB) *Daemon {
	t.Helper()
	testenv.LookPath(t, "pcscd", "pcscd", "apt-get install pcscd")
	if _, err := os.Stat(VPCDDriver); err != nil {
		testenv.Missing(t, "vpcd", VPCDDriver+" not found; apt-get install vsmartcard-vpcd")
	}
	testenv.LookPath(t, "pcscd", "unshare", "apt-get install util-linux")
	if os.Geteuid() != 0 {
		testenv.Missing(t, "pcscd", "a private pcscd needs root for its mount namespace")
	}
	once.Do(func() { shared, err = start() })
	if err != nil {
		t.Fatalf("pcscdtest: %v", err)
	}
	return shared
}

// startWait bounds the start of pcscd; a starved machine (many test
// processes at once) has taken more than 10 s.
const startWait = 30 * time.Second

// start starts the daemon, on another pair of ports when the vpcd driver
// finds its ports taken (another process took them between freePortPair
// and pcscd's bind).
func start() (*Daemon, error) {
	var err error
	for range 5 {
		var d *Daemon
		var taken bool
		d, taken, err = startOnce()
		if err == nil || !taken {
			return d, err
		}
	}
	return nil, err
}

// startOnce starts pcscd on a fresh pair of ports; taken reports a failure
// because the ports were taken.
func startOnce() (d *Daemon, taken bool, err error) {
	dir, err := os.MkdirTemp("", "authbench-pcscd-")
	if err != nil {
		return nil, false, err
	}
	port, err := freePortPair()
	if err != nil {
		return nil, false, err
	}
	conf := filepath.Join(dir, "reader.conf.d")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		return nil, false, err
	}
	cfg := fmt.Sprintf("FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME /dev/null:0x%04X\nLIBPATH %s\nCHANNELID 0x%04X\n", port, VPCDDriver, port)
	if err := os.WriteFile(filepath.Join(conf, "vpcd"), []byte(cfg), 0o644); err != nil {
		return nil, false, err
	}
	logPath := filepath.Join(dir, "pcscd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, false, err
	}
	defer logf.Close()
	// -d: pcscd logs what it does (readers, the driver's ports, cards
	// coming and going), so that a failing test can show why.
	script := "mkdir -p /run/pcscd && mount -t tmpfs tmpfs /run/pcscd && exec pcscd -f -d -c " + conf
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The daemon dies with the test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, false, fmt.Errorf("start pcscd: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	d = &Daemon{
		Socket: fmt.Sprintf("/proc/%d/root/run/pcscd/pcscd.comm", cmd.Process.Pid),
		Addrs:  [2]string{"127.0.0.1:" + strconv.Itoa(port), "127.0.0.1:" + strconv.Itoa(port+1)},
		Log:    logPath,
		PID:    cmd.Process.Pid,
	}
	// pcscd says "daemon ready" once every reader of reader.conf.d is
	// added (the vpcd driver listens on both ports) and its socket is up.
	// Nothing may connect to the vpcd ports to find out: vpcd takes any
	// connection for a card, and its reader waits for that card's answer
	// (an earlier probe here that connected while pcscd was still adding
	// the readers left pcscd wedged for the rest of the test process).
	deadline := time.Now().Add(startWait)
	for {
		out, _ := os.ReadFile(logPath)
		// Before "daemon ready": pcscd goes on without a reader whose
		// driver could not listen.
		if bytes.Contains(out, []byte("Address already in use")) {
			cmd.Process.Kill()
			<-exited
			return nil, true, fmt.Errorf("pcscd: the vpcd ports %d and %d were taken:\n%s", port, port+1, out)
		}
		if bytes.Contains(out, []byte("daemon ready")) {
			break
		}
		select {
		case <-exited:
			return nil, false, fmt.Errorf("pcscd exited at start-up (%v); its log:\n%s", cmd.ProcessState, out)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return nil, false, fmt.Errorf("pcscd did not say it was ready in %v; %s", startWait, d.Report())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(d.Socket); err != nil {
		cmd.Process.Kill()
		return nil, false, fmt.Errorf("pcscd said it was ready but has no socket (%v); %s", err, d.Report())
	}
	os.Setenv("PCSCLITE_CSOCK_NAME", d.Socket)
	return d, false, nil
}

// Report describes the daemon for a failing test: whether the process
// still runs, who holds its vpcd ports, and its log.
func (d *Daemon) Report() string {
	var b strings.Builder
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.PID))
	if err != nil {
		fmt.Fprintf(&b, "pcscd (pid %d) is gone: %v\n", d.PID, err)
	} else if f := strings.Fields(string(stat)); len(f) > 2 {
		fmt.Fprintf(&b, "pcscd (pid %d) is in state %s\n", d.PID, f[2])
	}
	// Where each of its threads is: blocked (wchan, syscall number) or
	// running.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", d.PID))
	for _, task := range tasks {
		comm, _ := os.ReadFile(task + "/comm")
		wchan, _ := os.ReadFile(task + "/wchan")
		sc, _ := os.ReadFile(task + "/syscall")
		nr, _, _ := strings.Cut(string(sc), " ")
		fmt.Fprintf(&b, "thread %s (%s): waits in %s, syscall %s\n", filepath.Base(task), strings.TrimSpace(string(comm)), wchan, strings.TrimSpace(nr))
	}
	for _, a := range d.Addrs {
		_, port, _ := net.SplitHostPort(a)
		out, err := exec.Command("ss", "-tanpH", "( sport = :"+port+" or dport = :"+port+" )").CombinedOutput()
		if err != nil {
			fmt.Fprintf(&b, "ss for port %s: %v\n", port, err)
		}
		fmt.Fprintf(&b, "TCP sockets on port %s:\n%s", port, out)
	}
	out, _ := os.ReadFile(d.Log)
	fmt.Fprintf(&b, "pcscd's log (%s):\n%s", d.Log, out)
	return b.String()
}

// Env returns the environment for a child process (python-fido2, pcsc_scan)
// that must talk to this daemon.
func (d *Daemon) Env() []string {
	return append(os.Environ(), "PCSCLITE_CSOCK_NAME="+d.Socket)
}

// freePortPair finds p such that p and p+1 are both free on loopback. It
// looks below Linux's ephemeral range (32768-60999), where the local ports
// of outgoing connections, many in a test run, would take them first.
func freePortPair() (int, error) {
	for range 100 {
		p := 20000 + 2*rand.IntN(6000)
		l1, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		l1.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return p, nil
	}
	return 0, fmt.Errorf("no two adjacent free TCP ports found")
}

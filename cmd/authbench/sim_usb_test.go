package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authbench/authbench/internal/testenv"
	"github.com/authbench/authbench/internal/umockdevtest"
)

// TestSimUSBCommand: `authbench sim --chip usb -- CMD` runs CMD with the
// simulated key visible on the emulated bus, ends with it and exits with
// its status.
func TestSimUSBCommand(t *testing.T) {
	umockdevtest.Require(t)
	testenv.LookPath(t, "fido2-tools", "fido2-token", "apt-get install fido2-tools")

	code, out := runCmd(t, "sim", "--chip", "usb", "--chip", "usb", "--seed", "01", "--", "fido2-token", "-L")
	if code != 0 || !strings.Contains(out, "/dev/hidraw0: vendor=0x1209, product=0x0001") || !strings.Contains(out, "/dev/hidraw1:") {
		t.Fatalf("sim -- fido2-token -L exited %d:\n%s", code, out)
	}
	// libusb sees the keys too: authbench's own driver lists them.
	exe := binary(t)
	code, out = runCmd(t, "sim", "--chip", "usb", "--seed", "01", "--", exe, "devices", "--json")
	if code != 0 || !strings.Contains(out, `"transport": "usb"`) || !strings.Contains(out, `"path": "1-1:1.0"`) {
		t.Fatalf("sim -- authbench devices exited %d:\n%s", code, out)
	}
	for _, tc := range []struct {
		cmd  []string
		want int
	}{
		{[]string{"sh", "-c", "exit 7"}, 7},
		{[]string{"sh", "-c", `kill -TERM $$`}, 128 + 15},
		{[]string{"no-such-program-authbench"}, 127},
		{[]string{"sh", "-c", `test -e "$UMOCKDEV_DIR/dev/hidraw0" && case "$LD_PRELOAD" in *libumockdev-preload*) exit 0;; esac; exit 1`}, 0},
	} {
		code, out := runCmd(t, append([]string{"sim", "--chip", "usb", "--"}, tc.cmd...)...)
		if code != tc.want {
			t.Errorf("sim -- %q exited %d, want %d:\n%s", tc.cmd, code, tc.want, out)
		}
	}
}

// TestCheckUSB: `authbench check --device usb` passes against a simulated
// chip of each profile that it reaches through libusb on the emulated bus,
// as a separate program run by `authbench sim --chip usb --`.
func TestCheckUSB(t *testing.T) {
	umockdevtest.Require(t)
	exe := binary(t)
	for _, tc := range []struct {
		profile string
		simArgs []string
	}{
		{"FIDO2", nil},
		{"U2F-only", []string{"--u2f-only"}},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			dir := t.TempDir()
			junit := filepath.Join(dir, "junit.xml")
			args := append(append([]string{"sim", "--chip", "usb", "--seed", "02"}, tc.simArgs...), "--",
				exe, "check", "--device", "usb:1209:0001", "--report", junit,
				"--roots", "../../testdata/attestation/ca.pem")
			code, out := runCmd(t, args...)
			if code != 0 {
				t.Fatalf("check over emulated USB exited %d:\n%s", code, out)
			}
			if got := junitProfile(t, junit); got != tc.profile {
				t.Errorf("profile %q, want %q", got, tc.profile)
			}
			cases := junitCases(t, junit)
			passed := 0
			for name, st := range cases {
				switch st {
				case "fail":
					t.Errorf("check %s failed", name)
				case "pass":
					passed++
				}
			}
			if passed < 10 {
				t.Errorf("%d checks passed:\n%s", passed, out)
			}
		})
	}
}

// TestEnrollUSB: a developer enrols a chip found on USB, logs in with it
// and enrols it again after blocking it; each command is its own program
// run by `authbench sim --chip usb --`, and the chip keeps its credentials
// in a state file between them, as a real key keeps them between plugs.
func TestEnrollUSB(t *testing.T) {
	umockdevtest.Require(t)
	exe := binary(t)
	cs := startCLIServer(t)
	state := filepath.Join(t.TempDir(), "chip.state")
	// The command reads its standard input through sim: the password for
	// the two-factor login.
	withChip := func(args ...string) (int, string) {
		return runCmdIn(t, cs.password+"\n", append([]string{"sim", "--chip", "usb", "--seed", "03", "--state", state, "--", exe}, args...)...)
	}
	code, out := withChip(cs.args("enroll", "--device", "usb")...)
	if code != 0 {
		t.Fatalf("enroll over emulated USB exited %d:\n%s", code, out)
	}
	first := chipOf(t, cs)
	session := filepath.Join(t.TempDir(), "session")
	code, out = withChip("login", "--server", cs.URL, "--identity", cs.person, "--password-stdin",
		"--authenticator", first.ID, "--device", "usb", "--session-file", session)
	if code != 0 || !strings.Contains(out, "logged in to "+cs.person+" with two factors (") {
		t.Fatalf("login over emulated USB exited %d:\n%s", code, out)
	}
	code, out = runCmd(t, "block", "--server", cs.URL, "--token-file", session, "--identity", cs.person,
		"--authenticator", first.ID, "--reason", "lost")
	if code != 0 {
		t.Fatalf("block exited %d:\n%s", code, out)
	}
	code, out = withChip(cs.args("enroll", "--device", "usb")...)
	if code != 0 {
		t.Fatalf("enrolling the blocked chip again exited %d:\n%s", code, out)
	}
	if second := chipOf(t, cs); second.CredentialID == first.CredentialID {
		t.Errorf("re-added chip kept its credential %s", first.CredentialID)
	}
	code, out = withChip("login", "--server", cs.URL, "--identity", cs.person, "--password-stdin", "--authenticator", first.ID, "--device", "usb")
	if code != 1 || !strings.Contains(out, "permanently blocked") {
		t.Errorf("login with the blocked element exited %d:\n%s", code, out)
	}
}

// TestSimUSBKeepsRunning: without a command, sim says where the key is and
// how programs reach it, and `authbench devices` run without that
// environment still lists the key with the same hint.
func TestSimUSBKeepsRunning(t *testing.T) {
	umockdevtest.Require(t)
	devs := startSim(t, "--chip", "usb", "--seed", "04")
	if len(devs) != 1 {
		t.Fatalf("sim printed %+v", devs)
	}
	d := devs[0]
	if d.Transport != "usb" || d.Path != "1-1:1.0" || d.Hidraw != "/dev/hidraw0" || d.USBFS != "/dev/bus/usb/001/002" || d.Testbed == "" {
		t.Fatalf("sim printed %+v", d)
	}
	if fi, err := os.Lstat(d.Testbed + d.Hidraw); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("hidraw node in the testbed: %v", err)
	}
	// A program of its own: this test process does not touch PC/SC, which
	// libpcsclite would tie to the system's pcscd (see pcscdtest).
	r := runBinary(t, time.Minute, nil, "devices", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"serial": "`+d.Serial+`"`) || !strings.Contains(r.stdout, "UMOCKDEV_DIR="+d.Testbed) {
		t.Errorf("devices exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestSimUSBInterrupted: interrupting `authbench sim --chip usb -- CMD`
// asks CMD to stop, takes the emulated bus down (nothing is left in
// TMPDIR) and exits 130.
func TestSimUSBInterrupted(t *testing.T) {
	umockdevtest.Require(t)
	tmp := t.TempDir()
	cmd, sc, seen := startBinary(t, tmp, "sim", "--chip", "usb", "--", "sh", "-c", `test -d "$UMOCKDEV_DIR" && echo started && exec sleep 60`)
	waitLine(t, sc, seen, "started")
	if left, _ := filepath.Glob(filepath.Join(tmp, "umockdev.*")); len(left) != 1 {
		t.Fatalf("testbeds in TMPDIR: %v", left)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if code := waitExit(t, cmd, sc); code != exitInterrupted {
		t.Fatalf("exit %d, want 130:\n%s", code, seen)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "umockdev.*")); len(left) != 0 {
		t.Errorf("left in TMPDIR after the interruption: %v", left)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authbench/authbench/internal/pcscdtest"
)

// runCmd runs one authbench command line in-process.
func runCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(context.Background(), &env{stdout: &out, stderr: &out}, args)
	return code, out.String()
}

// runCmdIn runs one authbench command line in-process with stdin as its
// standard input.
func runCmdIn(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(context.Background(), &env{stdout: &out, stderr: &out, stdin: strings.NewReader(stdin)}, args)
	return code, out.String()
}

// rfc6238Secret is the secret of RFC 6238 Appendix B (SHA-1), in hex.
const rfc6238Secret = "3132333435363738393031323334353637383930"

// secretFile writes a hex secret to a file of mode 0600 and returns its
// path.
func secretFile(t *testing.T, hexSecret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(hexSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// junitCases parses a JUnit report and returns its test cases by name with
// "pass", "fail" or "skip".
func junitCases(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
				Skipped *struct {
					Type string `xml:"type,attr"`
				} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("JUnit report does not parse: %v", err)
	}
	cases := map[string]string{}
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			switch {
			case c.Failure != nil:
				cases[c.Name] = "fail"
			case c.Error != nil:
				cases[c.Name] = "error"
			case c.Skipped != nil && c.Skipped.Type == "not-checked":
				cases[c.Name] = "not-checked"
			case c.Skipped != nil:
				cases[c.Name] = "skip"
			default:
				cases[c.Name] = "pass"
			}
		}
	}
	return cases
}

// checkPasses runs `authbench check` against sel and checks the JUnit file
// lists every check of the suite and none failed.
func checkPasses(t *testing.T, sel string, minChecks int, extra ...string) {
	t.Helper()
	dir := t.TempDir()
	junit := filepath.Join(dir, "junit.xml")
	html := filepath.Join(dir, "report.html")
	args := append([]string{"check", "--device", sel, "--report", junit, "--html", html, "--audio-dir", dir}, extra...)
	code, out := runCmd(t, args...)
	if code != 0 {
		t.Fatalf("check %s exited %d:\n%s", sel, code, out)
	}
	cases := junitCases(t, junit)
	if len(cases) < minChecks {
		t.Fatalf("JUnit lists %d checks, want ≥ %d", len(cases), minChecks)
	}
	for name, st := range cases {
		if st == "fail" || st == "error" {
			t.Errorf("check %s: %s", name, st)
		}
	}
	if fi, err := os.Stat(html); err != nil || fi.Size() == 0 {
		t.Errorf("no HTML report: %v", err)
	}
}

func TestCheckSimulators(t *testing.T) {
	checkPasses(t, "sim:chip", 15)
	checkPasses(t, "sim:code-display", 5)
	checkPasses(t, "sim:audio-code-reader", 5)
}

func TestCheckUDPAndSerial(t *testing.T) {
	secret := secretFile(t, rfc6238Secret)
	devs := startSim(t, "--chip", "udp=0", "--code-display", "pty", "--audio-reader", "pty",
		"--otp-secret-file", secret)
	for _, d := range devs {
		switch d.Transport {
		case "udp":
			checkPasses(t, "udp:"+d.Addr, 15)
		case "serial":
			checkPasses(t, "serial:"+d.Path, 5, "--otp-secret-file", secret)
		}
	}
}

// TestCheckPCSC: the simulated chip through a real pcscd and vpcd, checked
// with driver/pcsc.
func TestCheckPCSC(t *testing.T) {
	d := pcscdtest.Start(t)
	startSim(t, "--chip", "pcsc="+d.Addrs[0])
	checkPasses(t, "pcsc:"+pcscdtest.Readers[0], 15)
	// A chip on PC/SC may be real hardware: without --roots its
	// attestation chain is not checked, and the report says so instead of
	// "pass".
	junit := filepath.Join(t.TempDir(), "junit.xml")
	runCmd(t, "check", "--device", "pcsc:"+pcscdtest.Readers[0], "--report", junit, "--run", "makecredential.attestation")
	if st := junitCases(t, junit)["makecredential.attestation"]; st != "not-checked" {
		t.Errorf("attestation without roots: %s, want not-checked", st)
	}
}

// TestCheckCanFail: a check against a device that is not there fails with a
// message, not a hang.
func TestCheckBadSelector(t *testing.T) {
	for _, sel := range []string{"bluetooth:1", "sim:toaster", "serial:"} {
		if code, out := runCmd(t, "check", "--device", sel); code != 2 {
			t.Errorf("check %s exited %d, want 2:\n%s", sel, code, out)
		}
	}
	if code, out := runCmd(t, "check", "--device", "sim:audio-code-reader", "--audio-tries", "0"); code != 2 || !strings.Contains(out, "--audio-tries 0") {
		t.Errorf("check --audio-tries 0 exited %d, want 2:\n%s", code, out)
	}
	// A serial port holds a code device, not a chip.
	if code, out := runCmd(t, "check", "--device", "serial:/dev/nonexistent"); code != exitUnreachable || !strings.Contains(out, "/dev/nonexistent") ||
		!strings.Contains(out, "no code device") || strings.Contains(out, "chip") {
		t.Errorf("check of a missing port exited %d:\n%s", code, out)
	}
	if code, out := runCmdIn(t, "pw\n", "login", "--identity", "p", "--password-stdin", "--device", "serial:/dev/nonexistent"); code != exitUnreachable ||
		!strings.Contains(out, "no code device") || strings.Contains(out, "chip") {
		t.Errorf("login with a missing port exited %d:\n%s", code, out)
	}
	// A chip on UDP is not called a USB key: nothing listens on port 1.
	if code, out := runCmd(t, "check", "--device", "udp:127.0.0.1:1", "--timeout", "2s"); code != exitUnreachable || strings.Contains(out, "usb") {
		t.Errorf("check of a UDP chip that is not there exited %d:\n%s", code, out)
	}
}

// TestDevicesListsSimulators: `authbench devices` finds what `authbench sim`
// runs.
func TestDevicesListsSimulators(t *testing.T) {
	devs := startSim(t, "--chip", "udp=0", "--code-display", "pty", "--audio-reader", "pty")
	// startSim runs the command in this process, whose registry entry is
	// written under our own PID.
	code, out := runCmd(t, "devices", "--json")
	if code != 0 {
		t.Fatalf("devices exited %d: %s", code, out)
	}
	var listed []listedDevice
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "]")+1]), &listed); err != nil {
		t.Fatalf("devices --json printed %q: %v", out, err)
	}
	for _, d := range devs {
		ok := false
		for _, l := range listed {
			if l.Serial == d.Serial && string(l.Kind) == string(d.Kind) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("devices does not list %+v; it listed %+v", d, listed)
		}
	}
	// The MODEL of a chip on UDP is its model, not the transport.
	for _, l := range listed {
		if l.Transport == "udp" && l.Serial == devs[0].Serial && (l.Model != devs[0].Model || !strings.Contains(l.Model, "chip")) {
			t.Errorf("devices lists the UDP chip with model %q, want %q", l.Model, devs[0].Model)
		}
	}
}

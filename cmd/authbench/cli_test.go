package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/authbench/authbench/internal/umockdevtest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// TestMain runs the tests with umockdev's preload library, so that the
// commands they run in-process reach the keys of an emulated USB bus
// through libusb (see chipTransports).
func TestMain(m *testing.M) {
	umockdevtest.Preload()
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds cmd/authbench once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "authbench-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "authbench")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// result is what a run of the built binary did.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// runBinary runs the built authbench with args and env (added to the
// test's environment), and stdin empty, for at most limit (a guard
// against hangs, not a timing assertion).
func runBinary(t *testing.T, limit time.Duration, env []string, args ...string) result {
	t.Helper()
	bin := binary(t) // built once, before the limit starts
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("authbench %q did not end within %v:\n%s%s", args, limit, r.stdout, r.stderr)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

// freePort returns a loopback address on which nothing listens (network
// "udp" or "tcp").
func freePort(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// otherCAFile writes a PEM file with a CA certificate that signed no
// simulated chip.
func otherCAFile(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "not the chips' CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExitCodes runs the built binary and checks the exit status of each
// kind of outcome, as a CI job would see it.
func TestExitCodes(t *testing.T) {
	udp := freePort(t, "udp")
	tcp := freePort(t, "tcp")
	tests := []struct {
		name string
		args []string
		code int
		want string // in stdout or stderr
	}{
		{"version", []string{"--version"}, exitOK, "authbench "},
		{"checks pass", []string{"check", "--device", "sim:chip", "-q"}, exitOK, "0 failed"},
		{"a check fails", []string{"check", "--device", "sim:chip", "--roots", otherCAFile(t), "--run", "makecredential.attestation"}, exitFailed, "1 failed"},
		{"stray argument", []string{"check", "--device", "sim:chip", "extra", "-q"}, exitUsage, "unexpected argument extra"},
		{"unknown flag", []string{"check", "--device", "sim:chip", "--colour"}, exitUsage, "unknown flag --colour"},
		{"one-dash long flag", []string{"check", "-device", "sim:chip"}, exitUsage, "two dashes"},
		{"unknown command", []string{"chek"}, exitUsage, "unexpected argument chek"},
		{"no command", nil, exitUsage, "Usage: authbench"},
		{"missing flag", []string{"check"}, exitUsage, "--device"},
		{"--run matches nothing", []string{"check", "--device", "sim:chip", "--run", "nomatch"}, exitUsage, `--run "nomatch" matches none`},
		{"bad enum", []string{"sim", "--chip", "udp", "--presence", "sometimes"}, exitUsage, "--presence"},
		{"empty identity", []string{"identity", "create", "--identity", "", "--server", "http://" + tcp}, exitUsage, "empty ID"},
		{"nothing on UDP", []string{"check", "--device", "udp:" + udp}, exitUnreachable, "authbench sim --chip udp"},
		{"no server", []string{"status", "--identity", "p", "--server", "http://" + tcp}, exitUnreachable, "cannot reach the server"},
		{"no pcscd", []string{"sim", "--chip", "pcsc=" + tcp}, exitUnreachable, "pcscd -f"},
		{"missing serial port", []string{"check", "--device", "serial:/dev/authbench-none"}, exitUnreachable, "/dev/authbench-none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runBinary(t, time.Minute, []string{"AUTHBENCH_TOKEN=x"}, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stdout+r.stderr, tt.want) {
				t.Fatalf("exit %d (want %d); output lacks %q?\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, tt.want, r.stdout, r.stderr)
			}
		})
	}
}

// TestUnreachableFailsFast: a chip selector with nothing behind it, and a
// simulated chip for a pcscd that is not running, fail at once (within a
// few seconds, not after the 30 s a check or the vpcd wait would take)
// with the thing to check.
func TestUnreachableFailsFast(t *testing.T) {
	for _, args := range [][]string{
		{"check", "--device", "udp:" + freePort(t, "udp")},
		{"sim", "--chip", "pcsc=" + freePort(t, "tcp")},
	} {
		r := runBinary(t, time.Minute, nil, args...)
		if r.code != exitUnreachable {
			t.Errorf("%q exited %d, want 3:\n%s", args, r.code, r.stderr)
		}
		if r.took > 20*time.Second {
			t.Errorf("%q took %v to give up", args, r.took)
		}
		t.Logf("%q: %v: %s", args, r.took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
	}
}

// startBinary starts the built authbench with TMPDIR set to tmp and
// returns it with a scanner of its standard error and output merged.
func startBinary(t *testing.T, tmp string, args ...string) (*exec.Cmd, *bufio.Scanner, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	var seen bytes.Buffer
	go func() { cmd.Wait(); pw.Close() }()
	return cmd, bufio.NewScanner(io.TeeReader(pr, &seen)), &seen
}

// waitLine reads lines until one contains want.
func waitLine(t *testing.T, sc *bufio.Scanner, seen *bytes.Buffer, want string) {
	t.Helper()
	for sc.Scan() {
		if strings.Contains(sc.Text(), want) {
			return
		}
	}
	t.Fatalf("the command ended without printing %q:\n%s", want, seen)
}

// waitExit drains the output and returns the exit status.
func waitExit(t *testing.T, cmd *exec.Cmd, sc *bufio.Scanner) int {
	t.Helper()
	done := make(chan struct{})
	go func() {
		for sc.Scan() {
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute): // guard against a hang
		t.Fatal("the command did not end after SIGINT")
	}
	for cmd.ProcessState == nil {
		time.Sleep(10 * time.Millisecond)
	}
	return cmd.ProcessState.ExitCode()
}

// repeatedWord returns a word that text says twice in a row ("interrupted
// (interrupted)"), or "".
func repeatedWord(text string) string {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' || r == ':')
	})
	for i := 1; i < len(words); i++ {
		if len(words[i]) > 3 && words[i] == words[i-1] {
			return words[i]
		}
	}
	return ""
}

// TestInterrupt: Ctrl-C (SIGINT) during a measurement exits 130 after
// removing the temporary database, and during a check exits 130 with the
// report written; serve and sim, which run until interrupted, exit 0 and
// clean up.
func TestInterrupt(t *testing.T) {
	t.Run("load", func(t *testing.T) {
		tmp := t.TempDir()
		cmd, sc, seen := startBinary(t, tmp, "load", "--scenario", "code-logins", "--devices", "4", "--concurrency", "2",
			"--duration", "10m", "--anchor-duration", "10ms")
		waitLine(t, sc, seen, "minimal durable login for")
		cmd.Process.Signal(syscall.SIGINT)
		if code := waitExit(t, cmd, sc); code != exitInterrupted {
			t.Fatalf("exit %d, want 130:\n%s", code, seen)
		}
		if !strings.Contains(seen.String(), "interrupted") {
			t.Errorf("no word of the interruption:\n%s", seen)
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("left in TMPDIR after the interruption: %v", left)
		}
	})
	t.Run("check", func(t *testing.T) {
		// A chip nobody touches: makeCredential waits until Ctrl-C.
		devs := startSim(t, "--chip", "udp=0", "--presence", "never")
		tmp := t.TempDir()
		report := filepath.Join(tmp, "reports", "junit.xml")
		cmd, sc, seen := startBinary(t, tmp, "check", "--device", "udp:"+devs[0].Addr, "--timeout", "5m", "--report", report)
		waitLine(t, sc, seen, "transport.profile")
		time.Sleep(200 * time.Millisecond) // into makeCredential, waiting for the touch
		cmd.Process.Signal(syscall.SIGINT)
		if code := waitExit(t, cmd, sc); code != exitInterrupted {
			t.Fatalf("exit %d, want 130:\n%s", code, seen)
		}
		doc := readJUnit(t, report)
		if len(doc.Suites) != 1 || !strings.Contains(doc.Suites[0].SystemErr, "interrupted") || doc.Suites[0].Skipped == 0 {
			t.Fatalf("the report does not say the run was interrupted: %+v", doc)
		}
		for _, text := range []string{doc.Suites[0].SystemErr, seen.String()} {
			if w := repeatedWord(text); w != "" {
				t.Errorf("%q said twice in a row: %s", w, text)
			}
		}
		if !strings.Contains(seen.String(), "stopped: interrupted during makeCredential") {
			t.Errorf("the stop does not say where:\n%s", seen)
		}
	})
	t.Run("sim", func(t *testing.T) {
		tmp := t.TempDir()
		cmd, sc, seen := startBinary(t, tmp, "sim", "--chip", "udp=0")
		waitLine(t, sc, seen, "ready")
		reg, _ := filepath.Glob(filepath.Join(tmp, "authbench-sim", "*.json"))
		if len(reg) != 1 {
			t.Fatalf("registry entries %v", reg)
		}
		cmd.Process.Signal(syscall.SIGINT)
		if code := waitExit(t, cmd, sc); code != exitOK {
			t.Fatalf("exit %d, want 0:\n%s", code, seen)
		}
		if _, err := os.Stat(reg[0]); !os.IsNotExist(err) {
			t.Errorf("the registry entry stayed: %v", err)
		}
	})
	t.Run("serve", func(t *testing.T) {
		dir := t.TempDir()
		cmd, sc, seen := startBinary(t, dir, append([]string{"serve"}, serveArgs(dir)...)...)
		waitLine(t, sc, seen, "listening on")
		cmd.Process.Signal(syscall.SIGINT)
		if code := waitExit(t, cmd, sc); code != exitOK {
			t.Fatalf("exit %d, want 0:\n%s", code, seen)
		}
		if !strings.Contains(seen.String(), "shutting down") {
			t.Errorf("no clean shutdown:\n%s", seen)
		}
	})
}

// TestHelp: the help of every command prints placeholders and defaults
// once, and "help identity" / "help audit" list the flags of their
// subcommands.
func TestHelp(t *testing.T) {
	code, out := runCmd(t, "help", "check")
	if code != 0 {
		t.Fatalf("help check exited %d:\n%s", code, out)
	}
	for _, want := range []string{"--device=SELECTOR", "--report=FILE", "--timeout=DURATION", "-q, --quiet", "(default: 30s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("help check lacks %q:\n%s", want, out)
		}
	}
	timeoutHelp := out[strings.Index(out, "--timeout=DURATION"):]
	timeoutHelp = timeoutHelp[:strings.Index(timeoutHelp[2:], "--")+2]
	if n := strings.Count(timeoutHelp, "default: 30s"); n != 1 {
		t.Errorf("the default of --timeout is printed %d times:\n%s", n, timeoutHelp)
	}
	for cmd, flags := range map[string][]string{
		"identity": {"identity create", "--identity=ID", "--password-stdin", "--token-file=FILE", "--server=URL"},
		"audit":    {"audit verify", "--db=FILE|URL", "--json"},
		"status":   {"--identity=ID", "$AUTHBENCH_SERVER"},
	} {
		code, out := runCmd(t, "help", cmd)
		if code != 0 {
			t.Errorf("help %s exited %d", cmd, code)
		}
		for _, f := range flags {
			if !strings.Contains(out, f) {
				t.Errorf("help %s lacks %q:\n%s", cmd, f, out)
			}
		}
	}
	// --help is the same text.
	if _, out2 := runCmd(t, "identity", "--help"); !strings.Contains(out2, "--password-stdin") {
		t.Errorf("identity --help lacks the flags of create:\n%s", out2)
	}
	if code, out := runCmd(t, "help", "nosuch"); code != exitUsage {
		t.Errorf("help nosuch exited %d:\n%s", code, out)
	}
	code, out = runCmd(t, "help")
	if code != 0 {
		t.Fatalf("help exited %d", code)
	}
	for _, name := range []string{"demo", "sim", "check", "serve", "identity", "enroll", "login", "logout", "block", "reactivate", "cancel", "status", "audit", "load", "version", "completion", "man"} {
		if !strings.Contains(out, "\n  "+name+" ") {
			t.Errorf("help does not list %q:\n%s", name, out)
		}
	}
	if !strings.Contains(out, "130 interrupted") {
		t.Errorf("help does not give the exit statuses:\n%s", out)
	}
	t.Run("every default said once", testDefaultsSaidOnce)
}

// commandNodes returns every command of the model (the root first), as
// the parser of run builds it.
func commandNodes(t *testing.T) []*kong.Node {
	t.Helper()
	p, err := newParser(&cli{}, &env{stdout: io.Discard, stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*kong.Node
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		nodes = append(nodes, n)
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(p.Model.Node)
	return nodes
}

// testDefaultsSaidOnce: in the help of every command, no flag shows its
// default as its placeholder ("--otp-alg=\"sha1\"") and says it once more
// in its text ("default: sha1").
func testDefaultsSaidOnce(t *testing.T) {
	nextFlag := regexp.MustCompile(`\n\s*(-|\n)`)
	checked := 0
	for _, n := range commandNodes(t) {
		path := strings.Fields(n.Path())
		if n.Type == kong.ApplicationNode {
			path = nil
		}
		code, out := runCmd(t, append([]string{"help"}, path...)...)
		if code != 0 {
			t.Errorf("help %s exited %d", n.Path(), code)
			continue
		}
		for _, f := range n.Flags {
			if f.Hidden || !f.HasDefault || f.Default == "" || f.IsBool() {
				continue
			}
			checked++
			i := strings.Index(out, "--"+f.Name+"=")
			if i < 0 {
				t.Errorf("help %s does not show --%s=", n.Path(), f.Name)
				continue
			}
			entry := out[i:]
			if loc := nextFlag.FindStringIndex(entry); loc != nil {
				entry = entry[:loc[0]]
			}
			entry = strings.Join(strings.Fields(entry), " ")
			placeholder, _, _ := strings.Cut(strings.TrimPrefix(entry, "--"+f.Name+"="), " ")
			said := strings.Count(entry, "default: "+f.Default)
			if placeholder == f.Default || placeholder == fmt.Sprintf("%q", f.Default) {
				said++
			}
			if said != 1 {
				t.Errorf("help %s says the default of --%s %d times: %s", n.Path(), f.Name, said, entry)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d flags with defaults checked", checked)
	}
}

// TestMissingInputFileIsUsage: an input file named on the command line
// that does not exist is a wrong command line (exit status 2), whichever
// command names it, and the message names the file.
func TestMissingInputFileIsUsage(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope")
	// (A missing --master-key of audit verify: TestAuditVerify.)
	for _, args := range [][]string{
		{"pskc", "import", missing + ".pskc", "--token-file", missing},
		{"pskc", "import", missing + ".pskc"},
		{"audit", "verify", "--db", missing + ".db"},
		{"status", "--identity", "p", "--token-file", missing + ".token"},
		{"check", "--device", "sim:chip", "--roots", missing + ".pem"},
		{"check", "--device", "sim:code-display", "--otp-secret-file", missing + ".hex"},
		{"voice", "decode", missing + ".wav"},
		{"login", "--identity", "p", "--authenticator", "a", "--app-seed-file", missing + ".seed"},
	} {
		code, out := runCmd(t, args...)
		if code != exitUsage || !strings.Contains(out, missing) {
			t.Errorf("%q exited %d, want 2 naming the file:\n%s", args, code, out)
		}
	}
}

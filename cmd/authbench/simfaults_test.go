package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/driver/pcsc"
	serialdrv "github.com/authbench/authbench/driver/serial"
	"github.com/authbench/authbench/internal/pcscdtest"
	"github.com/authbench/authbench/internal/testenv"
	"github.com/authbench/authbench/sim/udphid"
)

// runCmdSplit runs one authbench command line in-process and returns its
// exit status, standard output and standard error apart.
func runCmdSplit(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), &env{stdout: &out, stderr: &errOut}, args)
	return code, out.String(), errOut.String()
}

// junitDoc is what the tests read of a JUnit report.
type junitDoc struct {
	Suites []struct {
		Name       string `xml:"name,attr"`
		Tests      int    `xml:"tests,attr"`
		Failures   int    `xml:"failures,attr"`
		Errors     int    `xml:"errors,attr"`
		Skipped    int    `xml:"skipped,attr"`
		SystemErr  string `xml:"system-err"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
			} `xml:"error"`
			Skipped *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
			} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// readJUnit validates a JUnit report against the Jenkins JUnit schema with
// xmllint and parses it.
func readJUnit(t *testing.T, path string) junitDoc {
	t.Helper()
	xmllint := testenv.LookPath(t, "xmllint", "xmllint", "apt-get install libxml2-utils")
	schema, err := filepath.Abs("../../testdata/junit/junit-10.xsd")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(xmllint, "--noout", "--schema", schema, path).CombinedOutput(); err != nil {
		t.Fatalf("%s does not validate against the JUnit schema: %v\n%s", path, err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc junitDoc
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("%d suites in the JUnit report", len(doc.Suites))
	}
	return doc
}

// startPCSCSim runs `authbench sim --chip pcsc=ADDR ARGS` for reader i of
// the private pcscd and waits until pcscd shows the card: a card is there
// for PC/SC programs only after pcscd's next look at the reader, which may
// come after the simulator is ready (a reader emptied by the test before
// still shows empty for a while).
func startPCSCSim(t *testing.T, d *pcscdtest.Daemon, i int, args ...string) []simDevice {
	t.Helper()
	devs := startSim(t, append([]string{"--chip", "pcsc=" + d.Addrs[i]}, args...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pc, err := pcsc.Open(ctx, pcsc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	rs, err := pc.Readers(ctx)
	for {
		if err != nil {
			t.Fatalf("waiting for the card in %q: %v", pcscdtest.Readers[i], err)
		}
		for _, r := range rs {
			if r.Name == pcscdtest.Readers[i] && r.CardPresent {
				return devs
			}
		}
		rs, err = pc.Wait(ctx, rs)
	}
}

// TestCheckReportWhenDeviceCannotBeOpened: a device that cannot be opened
// exits 3 (not 1), and every report asked for is written, with one error
// entry saying so; the JUnit validates against the schema.
func TestCheckReportWhenDeviceCannotBeOpened(t *testing.T) {
	dir := t.TempDir()
	junit, html, md := filepath.Join(dir, "out", "junit.xml"), filepath.Join(dir, "report.html"), filepath.Join(dir, "report.md")
	sel := "udp:" + freePort(t, "udp")
	code, stdout, stderr := runCmdSplit(t, "check", "--device", sel, "--report", junit, "--html", html, "--markdown", md, "--json")
	if code != exitUnreachable {
		t.Fatalf("exit %d, want 3:\n%s\n%s", code, stdout, stderr)
	}
	doc := readJUnit(t, junit)
	s := doc.Suites[0]
	if s.Tests != 1 || s.Errors != 1 || s.Failures != 0 || s.Cases[0].Error == nil || !strings.Contains(s.Cases[0].Error.Message, "could not be opened") {
		t.Errorf("JUnit: %+v", s)
	}
	for _, p := range []string{html, md} {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "could not be opened") || !strings.Contains(string(b), "ERROR") {
			t.Errorf("%s: %v\n%s", p, err, b)
		}
	}
	var rep struct {
		Errors  int    `json:"errors"`
		Stopped string `json:"stopped"`
		Target  string `json:"target"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.Errors != 1 || rep.Target != sel || !strings.Contains(rep.Stopped, "could not be opened") {
		t.Errorf("--json printed %q (%v)", stdout, err)
	}
	if !strings.Contains(stderr, "authbench sim --chip udp") {
		t.Errorf("the error does not say what to check: %s", stderr)
	}
}

// TestCheckCardPulled: a card pulled from the reader in the middle of a
// makeCredential (sim --fault removed@makeCredential, through a real pcscd)
// is reported once, as "card removed during makeCredential; remaining
// checks not run", not as a malformed APDU for every later check; the run
// stops with exit 3, and the reports say so.
func TestCheckCardPulled(t *testing.T) {
	d := pcscdtest.Start(t)
	startPCSCSim(t, d, 1, "--fault", "removed@makeCredential")
	dir := t.TempDir()
	junit, html := filepath.Join(dir, "junit.xml"), filepath.Join(dir, "report.html")
	code, stdout, stderr := runCmdSplit(t, "check", "--device", "pcsc:"+pcscdtest.Readers[1], "--report", junit, "--html", html, "--timeout", "20s")
	const want = "card removed during makeCredential; remaining checks not run"
	if code != exitUnreachable {
		t.Fatalf("exit %d, want 3:\n%s\n%s", code, stdout, stderr)
	}
	if n := strings.Count(stdout, want); n != 1 {
		t.Errorf("the removal is told %d times:\n%s", n, stdout)
	}
	if n := strings.Count(stdout, "ERROR "); n != 1 {
		t.Errorf("%d checks are errors, want the one that met the removal:\n%s", n, stdout)
	}
	if strings.Contains(stdout+stderr, "malformed") {
		t.Errorf("the removal is reported as a malformed APDU:\n%s", stdout)
	}
	doc := readJUnit(t, junit)
	s := doc.Suites[0]
	if s.Errors != 1 || s.Failures != 0 || s.SystemErr != want {
		t.Errorf("JUnit: %d errors, %d failures, system-err %q", s.Errors, s.Failures, s.SystemErr)
	}
	notRun := 0
	for _, c := range s.Cases {
		if c.Skipped != nil && c.Skipped.Type == "not-run" {
			notRun++
		}
	}
	if notRun < 10 {
		t.Errorf("%d checks marked not run", notRun)
	}
	if b, _ := os.ReadFile(html); !strings.Contains(string(b), "Stopped: "+want) {
		t.Errorf("the HTML report does not say why the run stopped")
	}
}

// TestCheckDeviceStopsAnswering: a chip that stops answering in the middle
// of the run (sim --fault mute@makeCredential) is found out once: the check
// that met it is an error, the next question to the chip goes unanswered
// too, and the run stops with exit 3 instead of letting every later check
// wait for its deadline.
func TestCheckDeviceStopsAnswering(t *testing.T) {
	devs := startSim(t, "--chip", "udp=0", "--fault", "mute@makeCredential")
	junit := filepath.Join(t.TempDir(), "junit.xml")
	code, stdout, stderr := runCmdSplit(t, "check", "--device", "udp:"+devs[0].Addr, "--timeout", "2s", "--report", junit)
	if code != exitUnreachable || !strings.Contains(stdout, "stopped: device stopped answering during makeCredential") {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout, stderr)
	}
	if n := strings.Count(stdout, "ERROR "); n != 1 {
		t.Errorf("%d checks are errors, want 1:\n%s", n, stdout)
	}
	if s := readJUnit(t, junit).Suites[0]; s.Errors != 1 {
		t.Errorf("JUnit errors = %d", s.Errors)
	}
}

// checkResult runs check against sel and returns the status and message of
// one check, from the JSON report.
func checkResult(t *testing.T, sel, name string, extra ...string) (string, string) {
	t.Helper()
	_, stdout, stderr := runCmdSplit(t, append([]string{"check", "--device", sel, "--json", "--timeout", "5s"}, extra...)...)
	var rep struct {
		Results []struct {
			Name, Status, Message string
		}
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("check --json printed %q: %v\n%s", stdout, err, stderr)
	}
	for _, r := range rep.Results {
		if r.Name == name {
			return r.Status, r.Message
		}
	}
	t.Fatalf("no check %s in %s", name, stdout)
	return "", ""
}

// TestSimFaultFlags: each fault flag of `authbench sim` makes the check
// that looks for that defect fail with the message a bench would read.
func TestSimFaultFlags(t *testing.T) {
	secret := secretFile(t, rfc6238Secret)
	tests := []struct {
		sim    []string
		check  string // the check that must not pass
		status string
		msg    string
	}{
		{[]string{"--chip", "udp=0", "--fault", "bad-signature"}, "getassertion.signature", "fail", "does not verify"},
		{[]string{"--chip", "udp=0", "--fault", "counter-stuck"}, "getassertion.counter", "fail", "did not increase"},
		{[]string{"--chip", "udp=0", "--fault", "wrong-rp-id-hash"}, "makecredential.authdata", "fail", "rpIdHash"},
		{[]string{"--chip", "udp=0", "--fault", "ignore-exclude-list"}, "makecredential.exclude-list", "fail", "CREDENTIAL_EXCLUDED"},
		{[]string{"--chip", "udp=0", "--presence", "deny"}, "makecredential.authdata", "fail", "OPERATION_DENIED"},
		{[]string{"--chip", "udp=0", "--presence", "never"}, "makecredential.authdata", "error", "did not finish within 5s"},
		{[]string{"--code-display", "pty", "--otp-secret-file", secret, "--fault", "wrong-code"}, "press.totp", "fail", "is not the TOTP of step"},
		{[]string{"--code-display", "pty", "--otp-secret-file", secret, "--fault", "clock-offset=300s"}, "status.fields", "fail", "clock"},
		{[]string{"--code-display", "pty", "--fault", "low-battery"}, "press.one-code-per-step", "fail", "battery low"},
		{[]string{"--code-display", "pty", "--fault", "busy"}, "press.one-code-per-step", "fail", "busy"},
		// Speech that cannot be recognised is heard --audio-tries times
		// (3), a code per one-second step, before the check fails.
		{[]string{"--audio-reader", "pty", "--otp-period", "1", "--fault", "corrupt-audio"}, "audio.digits", "fail", "not recognised for sure in any of the 3 codes heard"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.sim[2:], " "), func(t *testing.T) {
			devs := startSim(t, tt.sim...)
			sel := "udp:" + devs[0].Addr
			var extra []string
			if devs[0].Transport == "serial" {
				sel = "serial:" + devs[0].Path
				extra = []string{"--otp-secret-file", secret}
			}
			status, msg := checkResult(t, sel, tt.check, extra...)
			if status != tt.status || !strings.Contains(msg, tt.msg) {
				t.Errorf("%s: %s %q, want %s with %q", tt.check, status, msg, tt.status, tt.msg)
			}
		})
	}
}

// TestSimFrameFaults: the CDP/1 frame faults of a code device on a pty
// reach the host as the fault says. A host that resends (every CDP/1 host
// should) gets over each of them; one that does not resend sees the answer
// lost, damaged or late.
func TestSimFrameFaults(t *testing.T) {
	for _, tt := range []struct {
		fault string
		is    error
	}{
		{"drop-answer@1", device.ErrTimeout},
		{"bad-crc@1", device.ErrTimeout},        // dropped silently by the host (CDP/1 §2.1)
		{"corrupt-answer@1", device.ErrTimeout}, // idem
		{"wrong-seq@1", device.ErrTimeout},      // not the answer the host waits for
		{"delay-answer@1=2s", device.ErrTimeout},
		{"removed@IDENTIFY", device.ErrRemoved},
		{"mute@1", device.ErrTimeout},
	} {
		t.Run(tt.fault, func(t *testing.T) {
			devs := startSim(t, "--code-display", "pty", "--fault", tt.fault)
			port, err := serialdrv.OpenPort(devs[0].Path) // a pulled cable reads as device.ErrRemoved
			if err != nil {
				t.Fatal(err)
			}
			defer port.Close()
			h := frame.NewHost(port, &frame.Options{Timeout: 300 * time.Millisecond, Retries: -1})
			defer h.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = h.Identify(ctx)
			if !errors.Is(err, tt.is) {
				t.Fatalf("IDENTIFY without resends: %v, want %v", err, tt.is)
			}
			if tt.is == device.ErrRemoved || strings.HasPrefix(tt.fault, "mute") {
				return
			}
			// With resends the host gets the answer.
			h2 := frame.NewHost(port, &frame.Options{Timeout: 300 * time.Millisecond})
			defer h2.Close()
			if _, err := h2.Identify(ctx); err != nil {
				t.Fatalf("IDENTIFY with resends: %v", err)
			}
		})
	}
}

// TestSimHIDFaults: CTAPHID report faults of a chip on UDP reach the host.
func TestSimHIDFaults(t *testing.T) {
	statusFF := func(err error) bool {
		var se *ctap2.StatusError
		return errors.As(err, &se) && se.Code == 0xFF
	}
	for _, tt := range []struct {
		fault string
		is    error
		as    func(error) bool
	}{
		// Report 1 from the chip answers INIT, report 2 getInfo; byte 7 of
		// an initialization packet is the CTAP2 status byte.
		{"corrupt-answer@2=7", nil, statusFF},
		{"drop-answer@2", context.DeadlineExceeded, nil},  // the answer to getInfo is lost
		{"drop-request@2", context.DeadlineExceeded, nil}, // the getInfo request is lost
		{"wrong-cid-answer@2", context.DeadlineExceeded, nil},
		{"delay-answer@2=2s", context.DeadlineExceeded, nil},
		{"mute@getInfo", context.DeadlineExceeded, nil},
	} {
		t.Run(tt.fault, func(t *testing.T) {
			devs := startSim(t, "--chip", "udp=0", "--fault", tt.fault)
			conn, err := udphid.Dial(devs[0].Addr, "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			octx, ocancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer ocancel()
			hid, err := ctaphid.Open(octx, conn, ctaphid.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer hid.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err = ctap2.NewClient(hid).Info(ctx)
			if tt.is != nil && !errors.Is(err, tt.is) || tt.as != nil && !tt.as(err) {
				t.Fatalf("getInfo: %v, want %v", err, tt.is)
			}
		})
	}
}

// TestSimPCSCFaults: faults of the card behind a real pcscd.
func TestSimPCSCFaults(t *testing.T) {
	d := pcscdtest.Start(t)
	for _, tt := range []struct {
		fault, check, status, msg string
	}{
		{"truncated-answer@getAssertion", "getassertion.signature", "fail", "malformed response APDU"},
		{"mute@getAssertion", "getassertion.signature", "error", "did not finish"},
	} {
		t.Run(tt.fault, func(t *testing.T) {
			startPCSCSim(t, d, 1, "--fault", tt.fault)
			status, msg := checkResult(t, "pcsc:"+pcscdtest.Readers[1], tt.check)
			if status != tt.status || !strings.Contains(msg, tt.msg) {
				t.Errorf("%s: %s %q, want %s with %q", tt.check, status, msg, tt.status, tt.msg)
			}
		})
	}
}

// TestSimPresenceManual: with --presence manual a chip waits for a touch,
// says so on standard error, and a line on standard input (a key on a
// terminal) touches it.
func TestSimPresenceManual(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: outW, stderr: errW, stdin: stdinR}, []string{"sim", "--json", "--chip", "udp=0", "--presence", "manual"})
		outW.Close()
		errW.Close()
	}()
	defer func() {
		cancel()
		go io.Copy(io.Discard, outR)
		go io.Copy(io.Discard, errR)
		<-done
	}()
	var dev simDevice
	dec := json.NewDecoder(outR)
	if err := dec.Decode(&dev); err != nil {
		t.Fatal(err)
	}
	stderrLines := make(chan string, 16)
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := errR.Read(b)
			if err != nil {
				close(stderrLines)
				return
			}
			stderrLines <- string(b[:n])
		}
	}()

	conn, err := udphid.Dial(dev.Addr, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	hid, err := ctaphid.Open(rctx, conn, ctaphid.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer hid.Close()
	result := make(chan error, 1)
	go func() {
		cdh := sha256.Sum256([]byte("manual"))
		_, err := ctap2.NewClient(hid).MakeCredential(rctx, &ctap2.MakeCredentialRequest{
			ClientDataHash: cdh[:], RP: ctap2.RPEntity{ID: "sim.test"}, User: ctap2.UserEntity{ID: []byte("u")},
			PubKeyCredParams: []ctap2.CredentialParameters{{Type: "public-key", Alg: ctap2.AlgES256}},
		})
		result <- err
	}()
	var seen strings.Builder
	for !strings.Contains(seen.String(), "waits for a touch (makeCredential)") {
		select {
		case s, ok := <-stderrLines:
			if !ok {
				t.Fatalf("sim ended: %s", seen.String())
			}
			seen.WriteString(s)
		case err := <-result:
			t.Fatalf("makeCredential returned before a touch: %v", err)
		case <-rctx.Done():
			t.Fatalf("no prompt for a touch: %s", seen.String())
		}
	}
	select {
	case err := <-result:
		t.Fatalf("makeCredential returned before a touch: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	io.WriteString(stdinW, "\n")
	if err := <-result; err != nil {
		t.Fatalf("makeCredential after the touch: %v", err)
	}
}

// TestSimPresenceSignal: the built binary touches its chips on SIGUSR1.
func TestSimPresenceSignal(t *testing.T) {
	cmd, sc, seen := startBinary(t, t.TempDir(), "sim", "--json", "--chip", "udp=0", "--presence", "manual")
	var dev simDevice
	for sc.Scan() {
		if json.Unmarshal(sc.Bytes(), &dev) == nil && dev.Addr != "" {
			break
		}
	}
	waitLine(t, sc, seen, `{"ready":true}`)
	conn, err := udphid.Dial(dev.Addr, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hid, err := ctaphid.Open(ctx, conn, ctaphid.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer hid.Close()
	result := make(chan error, 1)
	go func() { result <- ctap2.NewClient(hid).Selection(ctx) }()
	waitLine(t, sc, seen, "waits for a touch (selection)")
	cmd.Process.Signal(syscall.SIGUSR1)
	if err := <-result; err != nil {
		t.Fatalf("selection after SIGUSR1: %v\n%s", err, seen)
	}
	waitLine(t, sc, seen, "(SIGUSR1)")
}

// TestSimFaultUsage: fault flags that name no fault, miss their @WHEN or
// value, or fit no simulated device are usage errors that say why.
func TestSimFaultUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--chip", "udp=0", "--fault", "gremlins"}, "no such fault"},
		{[]string{"--chip", "udp=0", "--fault", "drop-answer"}, "needs @WHEN"},
		{[]string{"--chip", "udp=0", "--fault", "drop-answer@x"}, "want numbers"},
		{[]string{"--chip", "udp=0", "--fault", "delay-answer@1"}, "needs a value"},
		{[]string{"--chip", "udp=0", "--fault", "bad-signature=1"}, "takes no =VALUE"},
		{[]string{"--chip", "udp=0", "--fault", "bad-crc@1"}, "applies to code devices"},
		{[]string{"--chip", "udp=0", "--fault", "removed@1"}, "applies to chips on pcsc or code devices"},
		{[]string{"--code-display", "pty", "--fault", "battery=0"}, "from 1 to 100"},
		{[]string{"--chip", "udp=0", "--presence", "sometimes"}, "--presence"},
	} {
		code, out := runCmd(t, append([]string{"sim"}, tt.args...)...)
		if code != exitUsage || !strings.Contains(out, tt.want) {
			t.Errorf("sim %q: exit %d, want 2 with %q:\n%s", tt.args, code, tt.want, out)
		}
	}
	// The help lists every fault and names where it applies.
	_, out := runCmd(t, "help", "sim")
	for _, d := range faultDefs {
		if !strings.Contains(out, "    "+d.name) {
			t.Errorf("help sim does not list %s", d.name)
		}
	}
}

// TestCheckSkipReasonsNameFlags: what a check needs and lacks is said in
// flags of authbench, not in Go fields.
func TestCheckSkipReasonsNameFlags(t *testing.T) {
	devs := startSim(t, "--chip", "udp=0")
	_, stdout, _ := runCmdSplit(t, "check", "--device", "udp:"+devs[0].Addr)
	for _, want := range []string{"--operator", "--destructive"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the skip reasons do not name %s:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "Options.") {
		t.Errorf("a skip reason names a Go field:\n%s", stdout)
	}
}

// TestCheckReportLinks: the HTML and Markdown reports link the WAV files an
// audio code reader produced relative to the report's own directory (not
// the working directory), with an audio player, and name the device's
// serial and firmware and authbench's version.
func TestCheckReportLinks(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	code, out := runCmd(t, "check", "--device", "sim:audio-code-reader", "--audio-dir", "wav", "--html", "reports/today/report.html", "--markdown", "reports/report.md")
	if code != 0 {
		t.Fatalf("check exited %d:\n%s", code, out)
	}
	page, err := os.ReadFile(filepath.Join(dir, "reports", "today", "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	wavs, _ := filepath.Glob(filepath.Join(dir, "wav", "audio.digits", "*.wav"))
	if len(wavs) != 1 {
		t.Fatalf("WAV files: %v", wavs)
	}
	rel := "../../wav/audio.digits/" + filepath.Base(wavs[0])
	for _, want := range []string{`<a href="` + rel + `">`, `<audio controls preload="none" src="` + rel + `">`,
		`<td class="serial">`, `<td class="firmware">1.0.0-sim</td>`, `<td class="tool">authbench `} {
		if !strings.Contains(string(page), want) {
			t.Errorf("HTML lacks %s", want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "reports", "today", filepath.FromSlash(rel))); err != nil {
		t.Errorf("the link does not resolve from the report: %v", err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "reports", "report.md"))
	if !strings.Contains(string(md), "(../wav/audio.digits/"+filepath.Base(wavs[0])+")") {
		t.Errorf("Markdown does not link the WAV relative to itself:\n%s", md)
	}
}

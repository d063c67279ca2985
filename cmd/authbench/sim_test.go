package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/sim/udphid"
)

// startSim runs `authbench sim ARGS --json` in-process and returns the
// devices it printed once it said ready. The command stops at cleanup.
func startSim(t *testing.T, args ...string) []simDevice {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: pw, stderr: &stderr}, append([]string{"sim", "--json"}, args...))
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		go io.Copy(io.Discard, pr)
		if code := <-done; code != 0 {
			t.Errorf("authbench sim exited %d: %s", code, stderr.String())
		}
	})
	var devs []simDevice
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Bytes()
		if string(line) == `{"ready":true}` {
			return devs
		}
		var d simDevice
		if err := json.Unmarshal(line, &d); err != nil {
			t.Fatalf("sim printed %q: %v", line, err)
		}
		devs = append(devs, d)
	}
	t.Fatalf("sim ended before it was ready: %s", stderr.String())
	return nil
}

// TestSimCodeDisplayRFC6238 is the acceptance check: over the printed
// pty, IDENTIFY answers, SET_CLOCK 59 then PRESS yields step 1 and 94287082
// (RFC 6238 Appendix B, SHA-1), and a resent PRESS with the same SEQ returns
// the same code.
func TestSimCodeDisplayRFC6238(t *testing.T) {
	devs := startSim(t, "--code-display", "pty", "--factory",
		"--otp-secret-file", secretFile(t, rfc6238Secret), "--otp-digits", "8")
	if len(devs) != 1 || devs[0].Kind != "code-display" || devs[0].Transport != "serial" || !strings.HasPrefix(devs[0].Path, "/dev/") {
		t.Fatalf("devices = %+v", devs)
	}
	port, err := serial.Open(devs[0].Path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := frame.NewHost(port, &frame.Options{Rand: bytes.NewReader([]byte{7})})
	defer h.Close()
	info, err := h.Identify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Serial != devs[0].Serial || info.Digits != 8 {
		t.Fatalf("IDENTIFY = %+v", info)
	}
	if err := h.SetClock(ctx, time.Unix(59, 0)); err != nil {
		t.Fatal(err)
	}
	c, err := h.Press(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Step != 1 || c.Digits != "94287082" {
		t.Fatalf("PRESS = step %d code %s, want step 1 code 94287082", c.Step, c.Digits)
	}

	// The same PRESS frame again, byte for byte: the cached answer.
	req, _ := (&frame.Frame{Seq: 0x42, Cmd: frame.CmdPress}).Encode()
	var answers [2][]byte
	for i := range answers {
		if _, err := port.Write(req); err != nil {
			t.Fatal(err)
		}
		answers[i] = readFrame(t, port)
	}
	if !bytes.Equal(answers[0], answers[1]) {
		t.Fatalf("resent PRESS answered differently:\n% x\n% x", answers[0], answers[1])
	}
}

func readFrame(t *testing.T, port serial.Port) []byte {
	t.Helper()
	port.SetReadTimeout(100 * time.Millisecond)
	var p frame.Parser
	buf := make([]byte, 256)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, err := port.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		p.Write(buf[:n])
		if f, ok := p.Next(); ok {
			b, _ := f.Encode()
			return b
		}
	}
	t.Fatal("no answer frame")
	return nil
}

// TestSimChipUDP registers and logs in with the simulated chip over UDP HID.
func TestSimChipUDP(t *testing.T) {
	devs := startSim(t, "--chip", "udp=0", "--seed", "0102")
	if len(devs) != 1 || devs[0].Kind != "chip" || devs[0].Transport != "udp" {
		t.Fatalf("devices = %+v", devs)
	}
	conn, err := udphid.Dial(devs[0].Addr, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hid, err := ctaphid.Open(ctx, conn, ctaphid.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer hid.Close()
	cl := ctap2.NewClient(hid)
	cdh := sha256.Sum256([]byte("register"))
	att, err := cl.MakeCredential(ctx, &ctap2.MakeCredentialRequest{
		ClientDataHash:   cdh[:],
		RP:               ctap2.RPEntity{ID: "sim.test"},
		User:             ctap2.UserEntity{ID: []byte("u1")},
		PubKeyCredParams: []ctap2.CredentialParameters{{Type: "public-key", Alg: ctap2.AlgES256}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ad, err := ctap2.ParseAuthData(att.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("login"))
	as, err := cl.GetAssertion(ctx, &ctap2.GetAssertionRequest{
		RPID: "sim.test", ClientDataHash: h[:],
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: ad.AttestedCredential.CredentialID}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ctap2.VerifyAssertion(ad.AttestedCredential.PublicKey, as.AuthData, h[:], as.Signature); err != nil {
		t.Fatal(err)
	}
}

func TestSimUsage(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{
		{"sim"},
		{"sim", "--chip", "bluetooth"},
		{"sim", "--chip", "udp", "--presence", "sometimes"},
		{"sim", "--chip", "udp", "--otp-alg", "md5"},
		{"sim", "--chip", "usb=2"},
		{"sim", "--", "true"},
		{"sim", "--chip", "udp=0", "--"},
	} {
		out.Reset()
		if code := run(context.Background(), &env{stdout: &out, stderr: &out}, args); code != 2 {
			t.Errorf("%v: exit %d, want 2; output %q", args, code, out.String())
		}
	}
}

// TestSimCommandNeedsDashes: a word after the flags is run as a program
// only after --; without it, it is a usage error naming --, and nothing is
// run (the program here would leave a file behind).
func TestSimCommandNeedsDashes(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "ran")
	for _, args := range [][]string{
		{"sim", "--chip", "udp=0", "nosuchprog"},
		{"sim", "--chip", "udp=0", "touch", mark},
	} {
		code, out := runCmd(t, args...)
		if code != exitUsage || !strings.Contains(out, "after --") || !strings.Contains(out, strconv.Quote(args[3])) {
			t.Errorf("%q exited %d, want 2 naming --:\n%s", args, code, out)
		}
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("sim ran a command given without --")
	}
	if code, out := runCmd(t, "sim", "--chip", "udp=0", "--", "touch", mark); code != 0 {
		t.Fatalf("sim -- touch exited %d:\n%s", code, out)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Errorf("sim -- touch did not run it: %v", err)
	}
}

package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/internal/pcscdtest"
	"github.com/authbench/authbench/sim/udphid"
)

// infoOf runs `authbench info --json` on sel.
func infoOf(t *testing.T, sel string) deviceReport {
	t.Helper()
	code, stdout, stderr := runCmdSplit(t, "info", "--device", sel, "--json")
	if code != 0 {
		t.Fatalf("info %s exited %d:\n%s%s", sel, code, stdout, stderr)
	}
	var r deviceReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("info --json printed %q: %v", stdout, err)
	}
	return r
}

// TestInfo: `authbench info` reports what each kind of device says of
// itself, in-process, over UDP HID, on a pty and through pcscd.
func TestInfo(t *testing.T) {
	r := infoOf(t, "sim:chip")
	if r.Kind != "chip" || r.Profile != "FIDO2" || r.Serial == "" || r.AAGUID == "" || r.Firmware == "" || len(r.Versions) == 0 || !r.Options["rk"] {
		t.Errorf("sim:chip: %+v", r)
	}
	if r := infoOf(t, "sim:chip:u2f"); r.Profile != "U2F-only" || r.AAGUID != "" {
		t.Errorf("sim:chip:u2f: %+v", r)
	}
	code, out := runCmd(t, "info", "--device", "sim:chip")
	for _, want := range []string{"AAGUID", "firmware", "serial", "profile      FIDO2"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("info sim:chip lacks %q:\n%s", want, out)
		}
	}

	devs := startSim(t, "--chip", "udp=0", "--code-display", "pty")
	for _, d := range devs {
		switch d.Transport {
		case "udp":
			r := infoOf(t, "udp:"+d.Addr)
			if r.Serial != d.Serial || r.CTAPHID == nil || !strings.Contains(r.CTAPHID.Capabilities, "CBOR") || r.AAGUID == "" {
				t.Errorf("udp: %+v (want serial %s)", r, d.Serial)
			}
		case "serial":
			r := infoOf(t, "serial:"+d.Path)
			if r.Serial != d.Serial || r.Code == nil || r.Code.Digits != 6 || r.Status == nil || r.Status.Battery != 100 {
				t.Errorf("serial: %+v", r)
			}
		}
	}
	if code, out := runCmd(t, "info", "--device", "udp:"+freePort(t, "udp")); code != exitUnreachable {
		t.Errorf("info of nothing exited %d:\n%s", code, out)
	}
}

// TestInfoPCSC: through pcscd, info names the ATR, the applet's SELECT
// answer and the serial the simulator registered.
func TestInfoPCSC(t *testing.T) {
	d := pcscdtest.Start(t)
	devs := startPCSCSim(t, d, 1, "--u2f-only")
	r := infoOf(t, "pcsc:"+pcscdtest.Readers[1])
	// (The serial comes from the simulator's registry only for pcscd's
	// default vpcd ports, whose reader names are known.)
	if r.ATR != "3B 80 80 01 01" || r.Applet != "U2F_V2" || r.Profile != "U2F-only" || devs[0].Serial == "" {
		t.Errorf("pcsc: %+v", r)
	}
}

// TestAPDU: raw APDUs go to the card as they are, and the answers come back
// with the status word in words; in-process and through pcscd.
func TestAPDU(t *testing.T) {
	code, out := runCmd(t, "apdu", "--device", "sim:chip", "80 10 00 00 01 04", "00A4040008A0000006472F0001", "00 00 00 00")
	if code != 0 {
		t.Fatalf("apdu exited %d:\n%s", code, out)
	}
	for _, want := range []string{
		"> 80 10 00 00 01 04\n  SW 6D00: instruction not supported", // before SELECT nothing but SELECT is known
		`< 55 32 46 5F 56 32  ("U2F_V2")`,
		"SW 9000: success",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apdu output lacks %q:\n%s", want, out)
		}
	}
	for _, args := range [][]string{
		{"apdu", "--device", "sim:chip", "00A4zz"},
		{"apdu", "--device", "sim:chip", "00A4"},
		{"apdu", "--device", "serial:/dev/null", "00A40400"},
		{"apdu", "--device", "sim:chip"},
	} {
		if code, out := runCmd(t, args...); code != exitUsage {
			t.Errorf("%q exited %d, want 2:\n%s", args, code, out)
		}
	}
	if code, out := runCmd(t, "apdu", "--device", "pcsc:Nonexistent Reader", "00A40400"); code != exitUnreachable {
		t.Errorf("apdu to a missing reader exited %d, want 3:\n%s", code, out)
	}
}

func TestAPDUPCSC(t *testing.T) {
	d := pcscdtest.Start(t)
	startPCSCSim(t, d, 1)
	code, stdout, stderr := runCmdSplit(t, "apdu", "--device", "pcsc:"+pcscdtest.Readers[1], "--json",
		"00A4040008A0000006472F0001", "80100000010400", "80CC0000")
	if code != 0 {
		t.Fatalf("apdu exited %d:\n%s%s", code, stdout, stderr)
	}
	var rep apduReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.ATR != "3B 80 80 01 01" || len(rep.Exchanges) != 3 {
		t.Fatalf("report %+v", rep)
	}
	sel, info, bad := rep.Exchanges[0], rep.Exchanges[1], rep.Exchanges[2]
	if sel.Response != hex.EncodeToString([]byte("U2F_V2")) && sel.Response != strings.ToUpper(hex.EncodeToString([]byte("U2F_V2"))) || sel.SW != "9000" {
		t.Errorf("SELECT: %+v", sel)
	}
	if info.SW != "9000" || !strings.HasPrefix(info.Response, "00") { // CTAP2_OK, then getInfo's CBOR
		t.Errorf("getInfo: %+v", info)
	}
	if bad.SW != "6D00" || bad.Meaning != "instruction not supported" {
		t.Errorf("unknown instruction: %+v", bad)
	}
}

// makeResident makes a discoverable credential for rp and user on the
// chip at addr (UDP HID) and returns its ID.
func makeResident(t *testing.T, addr, rp, user string) []byte {
	t.Helper()
	conn, err := udphid.Dial(addr, "127.0.0.1:0")
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
	cdh := sha256.Sum256([]byte(user))
	att, err := ctap2.NewClient(hid).MakeCredential(ctx, &ctap2.MakeCredentialRequest{
		ClientDataHash: cdh[:], RP: ctap2.RPEntity{ID: rp},
		User:             ctap2.UserEntity{ID: []byte(user), Name: user, DisplayName: strings.ToUpper(user)},
		PubKeyCredParams: []ctap2.CredentialParameters{{Type: "public-key", Alg: ctap2.AlgES256}},
		Options:          map[string]bool{"rk": true},
	})
	if err != nil {
		t.Fatal(err)
	}
	ad, err := ctap2.ParseAuthData(att.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	return ad.AttestedCredential.CredentialID
}

// TestCredentials: a chip without credential management (every MitID
// chip) says so for list and delete (exit 1); with --rp it lists the
// discoverable credentials of that relying party without a touch; a
// U2F-only chip has none to list.
func TestCredentials(t *testing.T) {
	devs := startSim(t, "--chip", "udp=0", "--presence", "never") // no touch is needed to list
	sel := "udp:" + devs[0].Addr
	code, out := runCmd(t, "credentials", "list", "--device", sel)
	if code != exitFailed || !strings.Contains(out, "does not support listing every credential") || !strings.Contains(out, "--rp") {
		t.Errorf("list without --rp exited %d:\n%s", code, out)
	}
	code, out = runCmd(t, "credentials", "delete", "--device", sel, "--id", "0102")
	if code != exitFailed || !strings.Contains(out, "does not support deleting a credential") || !strings.Contains(out, "authbench reset") {
		t.Errorf("delete exited %d:\n%s", code, out)
	}
	code, out = runCmd(t, "credentials", "list", "--device", "sim:chip:u2f", "--rp", "bench.test")
	if code != exitFailed || !strings.Contains(out, "U2F-only") {
		t.Errorf("list on a U2F-only chip exited %d:\n%s", code, out)
	}

	// Two discoverable credentials, made while the chip's button works.
	devs2 := startSim(t, "--chip", "udp=0")
	sel2 := "udp:" + devs2[0].Addr
	ids := map[string]string{}
	for _, u := range []string{"alice", "bob"} {
		ids[hex.EncodeToString(makeResident(t, devs2[0].Addr, "bench.test", u))] = u
	}
	code, stdout, stderr := runCmdSplit(t, "credentials", "list", "--device", sel2, "--rp", "bench.test", "--json")
	if code != 0 {
		t.Fatalf("list exited %d:\n%s%s", code, stdout, stderr)
	}
	var creds []listedCredential
	if err := json.Unmarshal([]byte(stdout), &creds); err != nil {
		t.Fatal(err)
	}
	if len(creds) != 2 {
		t.Fatalf("listed %+v", creds)
	}
	for _, c := range creds {
		// Without user verification a chip returns the user ID only
		// (CTAP 2.1 §6.2.2), not the name.
		if u, ok := ids[c.CredentialID]; !ok || c.UserID != hex.EncodeToString([]byte(u)) || c.RPID != "bench.test" || c.SignCount == 0 {
			t.Errorf("listed %+v; made %v", c, ids)
		}
	}
	if code, out := runCmd(t, "credentials", "list", "--device", sel2, "--rp", "other.test"); code != 0 || !strings.Contains(out, "no discoverable credentials for other.test") {
		t.Errorf("list of another RP exited %d:\n%s", code, out)
	}
}

// TestReset: reset erases with --yes, refuses to run without a terminal to
// ask on, and asks on a terminal; a chip past its 10 s after power-up
// refuses, and the message says what to do.
func TestReset(t *testing.T) {
	code, out := runCmd(t, "reset", "--device", "sim:chip", "--yes")
	if code != 0 || !strings.Contains(out, "every credential on it is erased") {
		t.Errorf("reset --yes exited %d:\n%s", code, out)
	}
	code, out = runCmdIn(t, "yes\n", "reset", "--device", "sim:chip")
	if code != exitUsage || !strings.Contains(out, "give --yes") {
		t.Errorf("reset without a terminal exited %d:\n%s", code, out)
	}
	if code, out := runCmd(t, "reset", "--device", "sim:chip:u2f", "--yes"); code != exitFailed || !strings.Contains(out, "no reset command") {
		t.Errorf("reset of a U2F-only chip exited %d:\n%s", code, out)
	}
	if code, out := runCmd(t, "reset", "--device", "sim:code-display", "--yes"); code != exitUsage {
		t.Errorf("reset of a code device exited %d:\n%s", code, out)
	}

	for _, answer := range []string{"yes", "no"} {
		t.Run("terminal/"+answer, func(t *testing.T) {
			cmd := exec.Command(binary(t), "reset", "--device", "sim:chip")
			f, err := pty.Start(cmd)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var seen strings.Builder
			r := bufio.NewReader(f)
			deadline := time.Now().Add(time.Minute)
			for !strings.Contains(seen.String(), "Type yes to go on: ") {
				if time.Now().After(deadline) {
					t.Fatalf("no question on the terminal:\n%s", seen.String())
				}
				b, err := r.ReadByte()
				if err != nil {
					t.Fatalf("%v after %q", err, seen.String())
				}
				seen.WriteByte(b)
			}
			io.WriteString(f, answer+"\n")
			rest, _ := io.ReadAll(r) // EIO once the command ends
			seen.Write(rest)
			err = cmd.Wait()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			switch {
			case answer == "yes" && (code != 0 || !strings.Contains(seen.String(), "erased")):
				t.Errorf("answered yes: exit %d:\n%s", code, seen.String())
			case answer == "no" && (code != exitFailed || !strings.Contains(seen.String(), "nothing was erased")):
				t.Errorf("answered no: exit %d:\n%s", code, seen.String())
			}
		})
	}

	t.Run("10 s after power-up", func(t *testing.T) {
		t.Parallel()
		devs := startSim(t, "--chip", "udp=0")
		time.Sleep(11 * time.Second) // the chip's reset window (CTAP 2.1 §6.6) passes
		code, out := runCmd(t, "reset", "--device", "udp:"+devs[0].Addr, "--yes")
		if code != exitFailed || !strings.Contains(out, "only within 10 seconds of power-up") || !strings.Contains(out, "plug it in again") {
			t.Errorf("late reset exited %d:\n%s", code, out)
		}
	})
}

// TestDevicesWatch: `devices --watch` prints a simulator's devices as they
// come and go (a card inserted into a pcscd reader, a chip on UDP), and
// ends with 0 on Ctrl-C, as sim and serve do.
func TestDevicesWatch(t *testing.T) {
	d := pcscdtest.Start(t) // exports PCSCLITE_CSOCK_NAME, inherited by the commands below
	tmp := t.TempDir()
	watch, wsc, wseen := startBinary(t, tmp, "devices", "--watch", "--json", "--interval", "100ms")
	sim, ssc, sseen := startBinary(t, tmp, "sim", "--chip", "pcsc="+d.Addrs[1], "--chip", "udp=0")
	waitLine(t, ssc, sseen, "ready")
	// events reads lines until each of want has been in one, in any order.
	events := func(want ...string) {
		t.Helper()
		left := append([]string(nil), want...)
		for len(left) > 0 && wsc.Scan() {
			for i, w := range left {
				if strings.Contains(wsc.Text(), w) {
					left = append(left[:i], left[i+1:]...)
					break
				}
			}
		}
		if len(left) > 0 {
			t.Fatalf("devices --watch ended without %q:\n%s", left, wseen)
		}
	}
	events(`"event":"card inserted","source":"pcsc","reader":"`+pcscdtest.Readers[1]+`"`, `"event":"arrived","source":"sim"`)
	sim.Process.Signal(syscall.SIGINT)
	if code := waitExit(t, sim, ssc); code != 0 {
		t.Fatalf("sim exited %d", code)
	}
	events(`"event":"card removed","source":"pcsc"`, `"event":"departed","source":"sim"`)
	watch.Process.Signal(syscall.SIGINT)
	if code := waitExit(t, watch, wsc); code != exitOK {
		t.Fatalf("devices --watch exited %d after Ctrl-C, want 0:\n%s", code, wseen)
	}
	// Without --watch an interruption is an interruption.
	if !endsOnInterrupt(&devicesCmd{Watch: true}) || endsOnInterrupt(&devicesCmd{}) {
		t.Error("only devices --watch ends on an interrupt")
	}
}

package umockdev_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authbench/authbench/internal/testenv"
	"github.com/authbench/authbench/internal/umockdevtest"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/umockdev"
)

// guard is the failure guard for one host program; it is never reached when
// things work.
const guard = time.Minute

// newChip makes a deterministic simulated chip, closed at cleanup.
func newChip(t *testing.T, seed string, profile chip.Profile) *chip.Chip {
	t.Helper()
	c, err := chip.New(chip.Options{Seed: []byte(seed), Profile: profile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("chip: %v", err)
		}
	})
	return c
}

// host runs an unmodified host program with the testbed's keys visible and
// returns its standard output; it fails the test when the program fails.
func host(t *testing.T, tb *umockdev.Testbed, stdin string, name string, args ...string) string {
	t.Helper()
	out, err := hostResult(t, tb, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func hostResult(t *testing.T, tb *umockdev.Testbed, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = tb.Environ(os.Environ())
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

func testRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile("../../testdata/attestation/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in testdata/attestation/ca.pem")
	}
	return pool
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestFido2Tools drives the simulated chip with libfido2's command-line
// tools through the emulated hidraw node, in both profiles: FIDO2, and
// U2F-only (no CBOR capability in CTAPHID_INIT), which libfido2 drives
// over CTAPHID_MSG with U2F register and authenticate. fido2-cred -V
// checks the attestation signature, the test checks its certificate chains
// to the test CA, and fido2-assert -V checks every assertion with the
// public key fido2-cred reported.
func TestFido2Tools(t *testing.T) {
	for _, tc := range []struct {
		profile chip.Profile
		format  string
	}{
		{chip.ProfileFIDO2, "packed"},
		{chip.ProfileU2F, "fido-u2f"},
	} {
		t.Run(tc.profile.String(), func(t *testing.T) {
			testenv.LookPath(t, "fido2-tools", "fido2-token", "apt-get install fido2-tools")
			c := newChip(t, "fido2-tools "+tc.profile.String(), tc.profile)
			tb := umockdevtest.Start(t, umockdev.Key{Chip: c, Serial: c.Serial()})
			node := tb.Devices()[0].Hidraw

			list := host(t, tb, "", "fido2-token", "-L")
			if !strings.Contains(list, node+": vendor=0x1209, product=0x0001 (authbench authbench simulated chip)") {
				t.Fatalf("fido2-token -L:\n%s", list)
			}
			info := host(t, tb, "", "fido2-token", "-I", node)
			if tc.format == "packed" {
				aaguid := c.AAGUID()
				if !strings.Contains(info, "FIDO_2_0") || !strings.Contains(info, fmt.Sprintf("aaguid: %x", aaguid[:])) {
					t.Fatalf("fido2-token -I:\n%s", info)
				}
			} else if !strings.Contains(info, "nocbor") || strings.Contains(info, "FIDO_2_0") {
				t.Fatalf("fido2-token -I of a U2F-only key:\n%s", info)
			}

			dir := t.TempDir()
			cdh := sha256.Sum256([]byte("fido2-cred " + tc.profile.String()))
			made := host(t, tb, strings.Join([]string{b64(cdh[:]), "fido2.authbench.test", "alice", b64([]byte("user-1"))}, "\n")+"\n",
				"fido2-cred", "-M", node, "es256")
			lines := strings.Split(strings.TrimSpace(made), "\n")
			if len(lines) < 7 || lines[2] != tc.format {
				t.Fatalf("fido2-cred -M:\n%s", made)
			}
			der, err := base64.StdEncoding.DecodeString(lines[6])
			if err != nil {
				t.Fatal(err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: testRoots(t), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Fatalf("attestation certificate does not chain to the test CA: %v", err)
			}
			verified := host(t, tb, made, "fido2-cred", "-V", "es256")
			vl := strings.SplitN(strings.TrimSpace(verified), "\n", 2)
			if len(vl) != 2 || vl[0] != lines[4] || !strings.HasPrefix(vl[1], "-----BEGIN PUBLIC KEY-----") {
				t.Fatalf("fido2-cred -V:\n%s", verified)
			}
			pub := filepath.Join(dir, "cred.pem")
			if err := os.WriteFile(pub, []byte(vl[1]+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}

			var counters []string
			for i := range 2 {
				cdh := sha256.Sum256(fmt.Appendf(nil, "fido2-assert %v %d", tc.profile, i))
				got := host(t, tb, strings.Join([]string{b64(cdh[:]), "fido2.authbench.test", lines[4]}, "\n")+"\n",
					"fido2-assert", "-G", "-p", node)
				host(t, tb, got, "fido2-assert", "-V", "-p", pub, "es256")
				al := strings.Split(strings.TrimSpace(got), "\n")
				if len(al) < 4 {
					t.Fatalf("fido2-assert -G:\n%s", got)
				}
				counters = append(counters, al[2])
			}
			if counters[0] == counters[1] {
				t.Errorf("two assertions with the same authenticator data (sign counter did not move)")
			}

			// An assertion with a signature of other data does not verify.
			got := host(t, tb, strings.Join([]string{b64(cdh[:]), "fido2.authbench.test", lines[4]}, "\n")+"\n",
				"fido2-assert", "-G", "-p", node)
			al := strings.Split(strings.TrimSpace(got), "\n")
			other := sha256.Sum256([]byte("not what was signed"))
			al[0] = b64(other[:])
			if out, err := hostResult(t, tb, strings.Join(al, "\n")+"\n", "fido2-assert", "-V", "-p", pub, "es256"); err == nil {
				t.Errorf("fido2-assert -V accepted a signature over other data:\n%s", out)
			}
		})
	}
}

// TestFido2ToolsBadAttestation shows the interop check can fail: a chip
// whose signatures cover other bytes makes fido2-cred -V refuse its
// credential.
func TestFido2ToolsBadAttestation(t *testing.T) {
	testenv.LookPath(t, "fido2-tools", "fido2-cred", "apt-get install fido2-tools")
	c, err := chip.New(chip.Options{Seed: []byte("bad attestation"), Faults: chip.Faults{BadSignature: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tb := umockdevtest.Start(t, umockdev.Key{Chip: c, Serial: c.Serial()})
	cdh := sha256.Sum256([]byte("fido2-cred bad"))
	made := host(t, tb, strings.Join([]string{b64(cdh[:]), "fido2.authbench.test", "alice", b64([]byte("user-1"))}, "\n")+"\n",
		"fido2-cred", "-M", tb.Devices()[0].Hidraw, "es256")
	if out, err := hostResult(t, tb, made, "fido2-cred", "-V", "es256"); err == nil {
		t.Fatalf("fido2-cred -V accepted a bad attestation signature:\n%s", out)
	}
}

// python runs testdata/interop/fido2_hid.py with the keys visible.
func python(t *testing.T) string {
	t.Helper()
	py := testenv.LookPath(t, "python3-fido2", "/usr/bin/python3", "apt-get install python3-fido2")
	if err := exec.Command(py, "-c", "import fido2.hid").Run(); err != nil {
		testenv.Missing(t, "python3-fido2", "python-fido2 does not import; apt-get install python3-fido2")
	}
	return py
}

const fido2Script = "../../testdata/interop/fido2_hid.py"

// TestPythonFido2 drives the chip with python-fido2's hidraw backend:
// makeCredential with a packed attestation its own verifier accepts, and
// assertions whose signatures it checks.
func TestPythonFido2(t *testing.T) {
	py := python(t)
	c := newChip(t, "python-fido2", chip.ProfileFIDO2)
	tb := umockdevtest.Start(t, umockdev.Key{Chip: c, Serial: c.Serial()})
	out := host(t, tb, "", py, fido2Script, "register", "3")
	var got struct {
		Path     string
		VID, PID int
		Versions []string
		AAGUID   string
		Fmt      string
		X5C      int
		Counters []int
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("fido2_hid.py printed %q: %v", out, err)
	}
	aaguid := c.AAGUID()
	if got.Path != "/dev/hidraw0" || got.VID != 0x1209 || got.PID != 1 || got.Fmt != "packed" || got.X5C != 1 ||
		got.AAGUID != hex.EncodeToString(aaguid[:]) || len(got.Counters) != 3 {
		t.Errorf("python-fido2 saw %+v", got)
	}
}

// TestHidrawUnplugWhileWaiting unplugs the key while python-fido2 waits
// for it to be touched: its read fails with EIO, as on a departed hidraw
// device, well before its deadline; afterwards no host finds the key.
func TestHidrawUnplugWhileWaiting(t *testing.T) {
	py := python(t)
	testenv.LookPath(t, "fido2-tools", "fido2-token", "apt-get install fido2-tools")
	asked := make(chan struct{})
	var once sync.Once
	c, err := chip.New(chip.Options{Seed: []byte("unplug hidraw"), PresenceFunc: func(chip.Op) chip.Presence {
		once.Do(func() { close(asked) })
		return chip.Never
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tb := umockdevtest.Start(t, umockdev.Key{Chip: c, Serial: c.Serial()})

	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, fido2Script, "wait")
	cmd.Env = tb.Environ(os.Environ())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	select {
	case <-asked:
	case <-ctx.Done():
		t.Fatalf("the chip was never asked for a touch: %s", stderr.String())
	}
	start := time.Now()
	if err := tb.Unplug(ctx, 0); err != nil {
		t.Fatal(err)
	}
	var last string
	for lines.Scan() {
		last = lines.Text()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("fido2_hid.py wait: %v: %s", err, stderr.String())
	}
	took := time.Since(start)
	var ended struct {
		Error string
		Errno int
	}
	if err := json.Unmarshal([]byte(last), &ended); err != nil || ended.Errno != int(syscall.EIO) {
		t.Fatalf("python-fido2 after unplugging: %q (%v)", last, err)
	}
	t.Logf("python-fido2 saw the key leave after %v: %s", took, ended.Error)

	if _, err := os.Lstat(tb.Dir() + "/dev/hidraw0"); !os.IsNotExist(err) {
		t.Errorf("hidraw node still there: %v", err)
	}
	if list := host(t, tb, "", "fido2-token", "-L"); strings.TrimSpace(list) != "" {
		t.Errorf("fido2-token -L after unplugging:\n%s", list)
	}
}

// BenchmarkStart measures what a testbed with one key costs to bring up
// and take down: Python with GObject introspection, the testbed's sysfs
// and nodes, and the chip's UDP link.
func BenchmarkStart(b *testing.B) {
	c, err := chip.New(chip.Options{Seed: []byte("bench")})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for b.Loop() {
		tb, err := umockdev.Start(ctx, []umockdev.Key{{Chip: c, Serial: c.Serial()}}, umockdev.Options{})
		if errors.Is(err, umockdev.ErrMissing) {
			b.Skip(err)
		}
		if err != nil {
			b.Fatal(err)
		}
		if err := tb.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

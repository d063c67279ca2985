package devicetest_test

import (
	"context"
	"crypto/x509"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/devicetest"
	"github.com/authbench/authbench/sim/chip"
)

// testRoots returns the simulator's test attestation CA as a root pool.
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

// simChip is a simulated chip with a switch for the cancel check.
type simChip struct {
	*chip.Chip
	hold atomic.Bool
}

func newSimChip(t *testing.T, seed string, faults chip.Faults) *simChip {
	t.Helper()
	s := &simChip{}
	c, err := chip.New(chip.Options{
		Seed:   []byte(seed),
		Faults: faults,
		PresenceFunc: func(chip.Op) chip.Presence {
			if s.hold.Load() {
				return chip.Never
			}
			return chip.Auto
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Chip = c
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("chip.Close: %v", err)
		}
	})
	return s
}

func (s *simChip) opts(t *testing.T) devicetest.ChipOptions {
	return devicetest.ChipOptions{
		Roots:            testRoots(t),
		Destructive:      true,
		WithholdPresence: s.hold.Store,
	}
}

func TestChipSuiteInProcess(t *testing.T) {
	s := newSimChip(t, "in-process", chip.Faults{})
	rep := devicetest.RunT(t, devicetest.ChipSuite(s.opts(t)), s.Chip, devicetest.RunOptions{})
	logCounts(t, rep)
}

// overCTAPHID serves s over an in-memory HID report pipe and returns a
// target that speaks CTAPHID to it.
func overCTAPHID(t *testing.T, s *simChip) *devicetest.MessengerChip {
	t.Helper()
	host, dev := ctaphid.NewPipe()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ctaphid.Serve(ctx, dev, s.Chip, ctaphid.ServeOptions{}) }()
	conn, err := ctaphid.Open(ctx, host, ctaphid.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-served
		host.Close()
	})
	return devicetest.NewMessengerChip(conn)
}

// overAPDU serves s as an ISO 7816 card and returns a target that speaks
// CTAP over APDUs (chaining, GET RESPONSE, 9100 polling) to it.
func overAPDU(t *testing.T, s *simChip) *devicetest.MessengerChip {
	t.Helper()
	card := apdu.NewCard(s.Chip, apdu.CardOptions{})
	t.Cleanup(func() { card.Close() })
	cl := apdu.NewClient(card, apdu.ClientOptions{})
	if _, err := cl.Select(context.Background()); err != nil {
		t.Fatal(err)
	}
	return devicetest.NewMessengerChip(cl)
}

func TestChipSuiteCTAPHID(t *testing.T) {
	s := newSimChip(t, "ctaphid", chip.Faults{})
	rep := devicetest.RunT(t, devicetest.ChipSuite(s.opts(t)), overCTAPHID(t, s), devicetest.RunOptions{})
	logCounts(t, rep)
}

func TestChipSuiteAPDU(t *testing.T) {
	s := newSimChip(t, "apdu", chip.Faults{})
	rep := devicetest.RunT(t, devicetest.ChipSuite(s.opts(t)), overAPDU(t, s), devicetest.RunOptions{})
	logCounts(t, rep)
}

// TestChipSuiteWithoutOptions runs the suite as a bench with no roots, no
// presence control and no destructive checks would: nothing fails, and the
// checks that need what is missing say so.
func TestChipSuiteWithoutOptions(t *testing.T) {
	s := newSimChip(t, "plain", chip.Faults{})
	rep := devicetest.RunSuite(t.Context(), devicetest.ChipSuite(devicetest.ChipOptions{}), overAPDU(t, s), devicetest.RunOptions{})
	if f := rep.Failed(); len(f) != 0 {
		t.Errorf("failed: %q", f)
	}
	for name, want := range map[string]string{
		"cancel.presence": "--operator",
		"reset":           "--destructive",
	} {
		r := rep.Result(name)
		if r.Status != devicetest.Skip || !strings.Contains(r.Message, want) {
			t.Errorf("%s: %s %q, want a skip naming the flag %q", name, r.Status, r.Message, want)
		}
		if strings.Contains(r.Message, "Options.") {
			t.Errorf("%s: the skip reason names a Go field: %q", name, r.Message)
		}
	}
	// An attestation whose chain could not be checked is not a pass.
	if r := rep.Result("makecredential.attestation"); r.Status != devicetest.NotChecked || !strings.Contains(r.Message, "no attestation roots given (--roots FILE)") {
		t.Errorf("attestation without roots: %s %q, want not checked", r.Status, r.Message)
	}
}

// TestChipSuiteRejectsUntrustedAttestation: with roots that do not include
// the simulator's CA, the attestation check fails.
func TestChipSuiteRejectsUntrustedAttestation(t *testing.T) {
	s := newSimChip(t, "untrusted", chip.Faults{})
	opts := s.opts(t)
	opts.Roots = x509.NewCertPool()
	rep := devicetest.RunSuite(t.Context(), devicetest.ChipSuite(opts), s.Chip, devicetest.RunOptions{})
	if f := rep.Failed(); !slices.Equal(f, []string{"makecredential.attestation", "u2f.register-authenticate"}) {
		t.Fatalf("failed %q", f)
	}
	if m := rep.Result("makecredential.attestation").Message; !strings.Contains(m, "does not chain to the configured attestation roots") {
		t.Errorf("message %q", m)
	}
}

func logCounts(t *testing.T, rep *devicetest.Report) {
	p, f, s := rep.Counts()
	t.Logf("%s against %s: %d passed, %d failed, %d skipped", rep.Suite, rep.Target, p, f, s)
}

// TestChipSuiteCatchesFaults shows that the suite can fail: each fault of
// the simulated chip makes the checks that should notice it fail, with a
// message an operator can act on, and leaves the others passing.
func TestChipSuiteCatchesFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults chip.Faults
		fail   []string // exactly the checks that must fail
		msg    string   // part of the message of the first of them
	}{
		{"IgnoreExcludeList", chip.Faults{IgnoreExcludeList: true},
			[]string{"makecredential.exclude-list", "makecredential.long-message"},
			"made a new credential"},
		{"CounterStuck", chip.Faults{CounterStuck: true},
			[]string{"getassertion.counter", "u2f.register-authenticate"},
			"sign counter did not increase: 1 then 1"},
		{"BadSignature", chip.Faults{BadSignature: true},
			[]string{"makecredential.attestation", "getassertion.signature", "getassertion.counter",
				"resident.replace", "getassertion.next", "u2f.register-authenticate"},
			"does not verify"},
		{"WrongRPIDHash", chip.Faults{WrongRPIDHash: true},
			[]string{"makecredential.authdata", "getassertion.signature", "getassertion.counter",
				"resident.replace", "getassertion.next", "u2f.register-authenticate"},
			"rpIdHash is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSimChip(t, "faulty "+tt.name, tt.faults)
			rep := devicetest.RunSuite(t.Context(), devicetest.ChipSuite(s.opts(t)), s.Chip, devicetest.RunOptions{})
			got := rep.Failed()
			if !slices.Equal(got, tt.fail) {
				for _, r := range rep.Results {
					t.Logf("%s: %s %s", r.Name, r.Status, r.Message)
				}
				t.Fatalf("failed checks %q, want %q", got, tt.fail)
			}
			if m := rep.Result(tt.fail[0]).Message; !strings.Contains(m, tt.msg) {
				t.Errorf("%s says %q, want it to mention %q", tt.fail[0], m, tt.msg)
			}
			for _, name := range tt.fail {
				t.Logf("%s: %s", name, rep.Result(name).Message)
			}
		})
	}
}

// unsortedInfo answers getInfo with map keys out of canonical order and
// passes every other message on.
type unsortedInfo struct{ m ctap2.Messenger }

func (u unsortedInfo) CBOR(ctx context.Context, req []byte) ([]byte, error) {
	if len(req) == 1 && req[0] == ctap2.CmdGetInfo {
		aaguid := append([]byte{0x03, 0x50}, make([]byte, 16)...)
		versions := append([]byte{0x01, 0x81, 0x68}, "FIDO_2_0"...)
		return append(append([]byte{0x00, 0xA2}, aaguid...), versions...), nil
	}
	return u.m.CBOR(ctx, req)
}

// served is a messenger that hands each message to a device-side handler
// in-process.
type served struct{ c *chip.Chip }

func (s served) CBOR(ctx context.Context, req []byte) ([]byte, error) {
	return s.c.ServeCTAP2(ctx, req), nil
}

func TestChipSuiteCatchesNonCanonicalInfo(t *testing.T) {
	s := newSimChip(t, "unsorted", chip.Faults{})
	target := devicetest.NewMessengerChip(unsortedInfo{served{s.Chip}})
	rep := devicetest.RunSuite(t.Context(), devicetest.ChipSuite(s.opts(t)), target,
		devicetest.RunOptions{Select: func(n string) bool { return strings.HasPrefix(n, "info.") }})
	r := rep.Result("info.canonical")
	if r.Status != devicetest.Fail || !strings.Contains(r.Message, "not canonical") {
		t.Errorf("info.canonical: %s %q", r.Status, r.Message)
	}
	t.Logf("info.canonical: %s", r.Message)
}

func TestChipSuiteAttestationNone(t *testing.T) {
	c, err := chip.New(chip.Options{Seed: []byte("none"), AttestationNone: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	only := devicetest.RunOptions{Select: func(n string) bool { return n == "makecredential.attestation" }}
	rep := devicetest.RunSuite(t.Context(), devicetest.ChipSuite(devicetest.ChipOptions{}), c, only)
	if r := rep.Result("makecredential.attestation"); r.Status != devicetest.Pass {
		t.Errorf("none accepted by default: %s %q", r.Status, r.Message)
	}
	rep = devicetest.RunSuite(t.Context(), devicetest.ChipSuite(devicetest.ChipOptions{RequireAttestation: true}), c, only)
	if r := rep.Result("makecredential.attestation"); r.Status != devicetest.Fail || !strings.Contains(r.Message, `format "none"`) {
		t.Errorf("none with RequireAttestation: %s %q", r.Status, r.Message)
	}
}

func TestChipSuiteNeedsAChip(t *testing.T) {
	rep := devicetest.RunSuite(t.Context(), devicetest.ChipSuite(devicetest.ChipOptions{}), "not a chip", devicetest.RunOptions{})
	if p, f, _ := rep.Counts(); p != 0 || f != len(rep.Results) || !strings.Contains(rep.Results[0].Message, "not a device.Chip") {
		t.Errorf("%d passed, %d failed: %q", p, f, rep.Results[0].Message)
	}
}

// TestTouchNeeded: a chip that waits for its touch makes the suite prompt,
// once per check, naming the check.
func TestTouchNeeded(t *testing.T) {
	c, err := chip.New(chip.Options{Seed: []byte("touch"), Presence: chip.Delay(time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var mu sync.Mutex
	var prompted []string
	opts := devicetest.ChipOptions{TouchNeeded: func(check string) {
		mu.Lock()
		defer mu.Unlock()
		prompted = append(prompted, check)
	}}
	only := func(n string) bool { return n == "getassertion.counter" || n == "makecredential.exclude-list" }
	rep := devicetest.RunSuite(t.Context(), devicetest.ChipSuite(opts), overCTAPHID(t, &simChip{Chip: c}), devicetest.RunOptions{Select: only})
	if f := rep.Failed(); len(f) != 0 {
		t.Fatalf("failed %q", f)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(prompted, []string{"getassertion.counter", "makecredential.exclude-list"}) {
		t.Errorf("prompted for %q", prompted)
	}
}

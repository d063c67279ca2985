package vicc_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/internal/pcscdtest"
	"github.com/authbench/authbench/internal/testenv"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/vicc"
)

// TestPythonFido2Interop drives a simulated chip through pcscd + vpcd with
// Debian's python-fido2, a CTAP2 client we did not write: getInfo,
// makeCredential with packed attestation (longer than 256 bytes, so it comes
// back through 61xx and GET RESPONSE) checked by python-fido2's own verifier,
// and getAssertion with the signature checked against the credential key.
func TestPythonFido2Interop(t *testing.T) {
	d := pcscdtest.Start(t)
	py := testenv.LookPath(t, "python3-fido2", "/usr/bin/python3", "apt-get install python3-fido2 python3-pyscard")
	if out, err := exec.Command(py, "-c", "import fido2.pcsc, smartcard").CombinedOutput(); err != nil {
		testenv.Missing(t, "python3-fido2", "python modules fido2.pcsc and smartcard not importable: "+string(out))
	}
	c, err := chip.New(chip.Options{Seed: []byte("interop")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	card := apdu.NewCard(c, apdu.CardOptions{})
	defer card.Close()
	var getResponses atomic.Int32 // GET RESPONSE commands: answers longer than 256 bytes
	conn := vicc.New(d.Addrs[1], card, vicc.Options{Fault: func(_ int, a []byte) vicc.Fault {
		if len(a) >= 2 && a[1] == 0xC0 {
			getResponses.Add(1)
		}
		return vicc.FaultNone
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- conn.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-conn.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("vpcd never spoke to the simulated card")
	}

	cmd := exec.Command(py, "../../testdata/interop/fido2_pcsc.py", pcscdtest.Readers[1], "5")
	cmd.Env = d.Env()
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("python-fido2: %v\n%s%s", err, out, ee.Stderr)
		}
		t.Fatal(err)
	}
	var res struct {
		Versions   []string `json:"versions"`
		Fmt        string   `json:"fmt"`
		X5C        int      `json:"x5c"`
		Counters   []uint32 `json:"counters"`
		Assertions int      `json:"assertions"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("python-fido2 printed %q: %v", out, err)
	}
	if res.Fmt != "packed" || res.X5C != 1 || res.Assertions != 5 {
		t.Fatalf("python-fido2 saw %+v", res)
	}
	if len(res.Counters) == 0 || res.Counters[0] != 1 {
		t.Fatalf("counters %v, want starting at 1", res.Counters)
	}
	if st := conn.Stats(); st.APDUs < 5 {
		t.Fatalf("only %d APDUs reached the card", st.APDUs)
	}
	if getResponses.Load() == 0 {
		t.Fatal("no GET RESPONSE: the packed attestation did not come back through 61xx")
	}
	t.Logf("python-fido2 (%d GET RESPONSE): %s", getResponses.Load(), out)
}

// TestPythonFido2InteropU2FOnly drives a U2F-only simulated chip through
// pcscd + vpcd with python-fido2: it takes the card for a U2F-only device
// (SELECT answers U2F_V2, getInfo is refused with 6D00), registers with
// U2F_REGISTER checked by python-fido2's verifier, and authenticates with a
// rising counter. The certificate is the model's batch certificate.
func TestPythonFido2InteropU2FOnly(t *testing.T) {
	d := pcscdtest.Start(t)
	py := testenv.LookPath(t, "python3-fido2", "/usr/bin/python3", "apt-get install python3-fido2 python3-pyscard")
	c, err := chip.New(chip.Options{Seed: []byte("interop u2f"), Profile: chip.ProfileU2F})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	card := apdu.NewCard(c, apdu.CardOptions{})
	defer card.Close()
	var nfcctap atomic.Int32 // NFCCTAP_MSG commands: python-fido2's getInfo probe
	conn := vicc.New(d.Addrs[1], card, vicc.Options{Fault: func(_ int, a []byte) vicc.Fault {
		if len(a) >= 2 && a[0] == 0x80 && a[1] == 0x10 {
			nfcctap.Add(1)
		}
		return vicc.FaultNone
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- conn.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-conn.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("vpcd never spoke to the simulated card")
	}
	cmd := exec.Command(py, "../../testdata/interop/fido2_pcsc_u2f.py", pcscdtest.Readers[1], "3")
	cmd.Env = d.Env()
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("python-fido2: %v\n%s%s", err, out, ee.Stderr)
		}
		t.Fatal(err)
	}
	var res struct {
		CBOR        bool     `json:"cbor"`
		Version     string   `json:"version"`
		Certificate string   `json:"certificate"`
		Counters    []uint32 `json:"counters"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("python-fido2 printed %q: %v", out, err)
	}
	if res.CBOR || res.Version != "U2F_V2" || len(res.Counters) != 3 || res.Counters[0] != 1 {
		t.Fatalf("python-fido2 saw %+v", res)
	}
	if nfcctap.Load() == 0 {
		t.Error("python-fido2 did not probe getInfo")
	}
	if res.Certificate != hex.EncodeToString(c.Certificate().Raw) {
		t.Error("the registration's certificate is not the chip's batch certificate")
	}
	t.Logf("python-fido2: cbor %v, version %s, counters %v", res.CBOR, res.Version, res.Counters)
}

//go:build cgo

package pcsc

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/internal/pcscdtest"
	"github.com/authbench/authbench/internal/testenv"
	"github.com/authbench/authbench/sim/vicc"
)

// getAssertion through pcscd and vpcd, with this driver and with
// python-fido2, on the same simulated chip (same seed). Both report
// ns/assertion, the time of the getAssertion loop alone; the target is
// ours at least twice as fast.
//
//	go test -run '^$' -bench GetAssertion ./driver/pcsc

const benchChip = "bench"

// BenchmarkGetAssertionPCSC measures the driver with the default options
// (a transaction that lingers, shared by the burst), with a transaction per
// command (TxLinger -1) and with Options.Exclusive (none).
func BenchmarkGetAssertionPCSC(b *testing.B) {
	pcscdTest(b)
	pc := openContext(b, Options{})
	s := insert(b, pc, 0, newSim(b, benchChip), apdu.CardOptions{}, vicc.Options{})
	for _, bb := range []struct {
		name string
		opts Options
	}{
		{"default", Options{}},
		{"tx=command", Options{TxLinger: -1}},
		{"exclusive", Options{Exclusive: true}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			cpc := openContext(b, bb.opts)
			ch, err := cpc.OpenChip(testCtx(b), s.reader)
			if err != nil {
				b.Fatal(err)
			}
			defer ch.Close()
			benchAssertions(b, ch)
		})
	}
}

func benchAssertions(b *testing.B, ch *Chip) {
	ctx := testCtx(b)
	att, err := ch.MakeCredential(ctx, &ctap2.MakeCredentialRequest{
		ClientDataHash:   hash("bench registration"),
		RP:               ctap2.RPEntity{ID: testRP},
		User:             ctap2.UserEntity{ID: []byte("bench-user")},
		PubKeyCredParams: es256(),
	})
	if err != nil {
		b.Fatal(err)
	}
	ad, err := ctap2.ParseAuthData(att.AuthData)
	if err != nil {
		b.Fatal(err)
	}
	req := &ctap2.GetAssertionRequest{
		RPID:           testRP,
		ClientDataHash: hash("bench login"),
		AllowList:      []ctap2.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: ad.AttestedCredential.CredentialID}},
	}
	n := 0
	for b.Loop() {
		if _, err := ch.GetAssertion(ctx, req); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/assertion")
}

// fido2Script is the python-fido2 driver kept with the interop vectors.
var fido2Script = filepath.Join("..", "..", "testdata", "interop", "fido2_pcsc.py")

// pythonFido2 returns the python interpreter with python-fido2 and pyscard,
// or skips (fails under AUTHBENCH_REQUIRE).
func pythonFido2(t testing.TB) string {
	t.Helper()
	py := testenv.LookPath(t, "python3-fido2", "/usr/bin/python3", "apt-get install python3-fido2 python3-pyscard")
	if err := exec.Command(py, "-c", "import fido2.pcsc, smartcard").Run(); err != nil {
		testenv.Missing(t, "python3-fido2", "python modules fido2.pcsc and smartcard not importable; apt-get install python3-fido2 python3-pyscard")
	}
	return py
}

// fido2Result is what fido2_pcsc.py prints.
type fido2Result struct {
	Versions   []string `json:"versions"`
	Format     string   `json:"fmt"`
	X5C        int      `json:"x5c"`
	Assertions int      `json:"assertions"`
	Seconds    float64  `json:"seconds"`
}

func runFido2(t testing.TB, d *pcscdtest.Daemon, py, reader string, rounds int) *fido2Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*guard)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, fido2Script, reader, strconv.Itoa(rounds))
	cmd.Env = d.Env()
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("python-fido2: %v\n%s%s", err, out, stderr)
	}
	var r fido2Result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("python-fido2 output %q: %v", out, err)
	}
	return &r
}

// TestPythonFido2Interop drives the simulated chip through pcscd with
// python-fido2, a client we did not write.
func TestPythonFido2Interop(t *testing.T) {
	d := pcscdTest(t)
	py := pythonFido2(t)
	pc := openContext(t, Options{})
	s := insert(t, pc, 0, newSim(t, "interop"), apdu.CardOptions{}, vicc.Options{})
	r := runFido2(t, d, py, s.reader, 3)
	if r.Format != ctap2.FormatPacked || r.X5C == 0 || r.Assertions != 3 {
		t.Fatalf("python-fido2 saw %+v", r)
	}
}

func BenchmarkGetAssertionPythonFido2(b *testing.B) {
	d := pcscdTest(b)
	py := pythonFido2(b)
	pc := openContext(b, Options{})
	s := insert(b, pc, 0, newSim(b, benchChip), apdu.CardOptions{}, vicc.Options{})
	b.ResetTimer()
	r := runFido2(b, d, py, s.reader, b.N)
	b.StopTimer()
	if r.Assertions != b.N {
		b.Fatalf("python-fido2 ran %d assertions, want %d", r.Assertions, b.N)
	}
	b.ReportMetric(r.Seconds*1e9/float64(b.N), "ns/assertion")
}

// BenchmarkGetAssertionAnchored measures, in one run, getAssertion through
// pcscd and vpcd against its floor: one bare SCardTransmit
// round trip to the same card (an NFCCTAP_GETRESPONSE with nothing
// pending, which the card answers at once) plus the chip's own time (an
// identical chip answering the same getAssertion APDU in-process). It
// reports each, and "x-floor", the ratio of an assertion to the floor; the
// target for the default options is at most 1.25. The three are
// interleaved, one of each per round, so that a machine whose load changes
// during the run slows all of them alike; the bare transmit goes through
// the chip's own card handle, so that the chip's lingering transaction does
// not hold it up.
//
//	go test -run '^$' -bench GetAssertionAnchored -benchtime 2000x ./driver/pcsc
func BenchmarkGetAssertionAnchored(b *testing.B) {
	pcscdTest(b)
	pc := openContext(b, Options{})
	s := insert(b, pc, 0, newSim(b, benchChip+" anchored"), apdu.CardOptions{}, vicc.Options{})
	ctx := testCtx(b)

	// The same chip in-process, with the same credential.
	twin := apdu.NewCard(newSim(b, benchChip+" anchored"), apdu.CardOptions{})
	defer twin.Close()
	if got := twin.Process(ctx, []byte{0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x06, 0x47, 0x2F, 0x00, 0x01}); len(got) < 2 {
		b.Fatal("SELECT")
	}
	mc := &ctap2.MakeCredentialRequest{
		ClientDataHash:   hash("bench registration"),
		RP:               ctap2.RPEntity{ID: testRP},
		User:             ctap2.UserEntity{ID: []byte("bench-user")},
		PubKeyCredParams: es256(),
	}
	ch, err := pc.OpenChip(ctx, s.reader)
	if err != nil {
		b.Fatal(err)
	}
	att, err := ch.MakeCredential(ctx, mc)
	ch.Close()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ctap2.NewClient(apdu.NewClient(twin, apdu.ClientOptions{})).MakeCredential(ctx, mc); err != nil {
		b.Fatal(err)
	}
	ad, err := ctap2.ParseAuthData(att.AuthData)
	if err != nil {
		b.Fatal(err)
	}
	req := &ctap2.GetAssertionRequest{
		RPID:           testRP,
		ClientDataHash: hash("bench login"),
		AllowList:      []ctap2.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: ad.AttestedCredential.CredentialID}},
	}
	msg, err := ctap2.EncodeRequest(ctap2.CmdGetAssertion, req)
	if err != nil {
		b.Fatal(err)
	}
	getAssertion, err := (&apdu.Command{CLA: apdu.CLAProprietary, INS: apdu.INSNFCCTAPMsg, P1: apdu.P1GetResponseSupported, Data: msg, Ne: apdu.MaxShortNe}).Encode()
	if err != nil {
		b.Fatal(err)
	}
	if resp := twin.Process(ctx, getAssertion); len(resp) < 3 || resp[0] != 0 || resp[len(resp)-2] != 0x90 {
		b.Fatalf("in-process getAssertion answered % X", resp)
	}

	getResponse := []byte{apdu.CLAProprietary, apdu.INSNFCCTAPGetResponse, 0x00, 0x00, 0x00}
	for _, bb := range []struct {
		name string
		opts Options
	}{
		{"default", Options{}},
		{"tx=command", Options{TxLinger: -1}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			ch, err := openContext(b, bb.opts).OpenChip(ctx, s.reader)
			if err != nil {
				b.Fatal(err)
			}
			defer ch.Close()
			// The worker may still be ending the previous command's
			// transaction (without linger); the bare round trip starts when
			// it is idle.
			idle := func() error {
				_, err := call(ctx, ch.w, "idle", ch.reader, func() (struct{}, error) { return struct{}{}, nil })
				return err
			}
			bare := func() error {
				_, err := call(ctx, ch.w, opTransmit, ch.reader, func() ([]byte, error) { return ch.card.Transmit(getResponse) })
				return err
			}
			var transmit, chip, assertion time.Duration
			n := 0
			for b.Loop() {
				if err := idle(); err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				if err := bare(); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				twin.Process(ctx, getAssertion)
				t2 := time.Now()
				if _, err := ch.GetAssertion(ctx, req); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				transmit, chip, assertion = transmit+t1.Sub(t0), chip+t2.Sub(t1), assertion+t3.Sub(t2)
				n++
			}
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
			b.ReportMetric(per(transmit), "ns/transmit")
			b.ReportMetric(per(chip), "ns/chip")
			b.ReportMetric(per(assertion), "ns/assertion")
			b.ReportMetric(per(assertion)/(per(transmit)+per(chip)), "x-floor")
		})
	}
}

package devicetest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/devicetest"
	"github.com/authbench/authbench/internal/testenv"
)

// pcscTarget is a target that describes itself as a chip on a PC/SC reader.
type pcscTarget struct{}

func (pcscTarget) DeviceInfo() device.Info {
	return device.Info{Kind: device.KindChip, Transport: "pcsc", Path: "Reader 0"}
}

// TestStopOnRemoval: a card pulled during a check is reported once, as an
// error naming the operation; the run stops, the later checks are not run
// (they are skipped as "not run", none of them waits or touches the
// target), and the report says why it stopped. This is what a bench saw as
// "apdu: malformed response APDU" eleven times, a second each.
func TestStopOnRemoval(t *testing.T) {
	var after atomic.Int32
	var probed atomic.Bool
	checks := []devicetest.Check{
		{Name: "first", Run: pass},
		{Name: "pulled", Run: func(context.Context, *devicetest.Run) error {
			return fmt.Errorf("ctap2: authenticatorMakeCredential: pcsc: transmit on \"Reader 0\": %w", device.ErrRemoved)
		}},
	}
	for i := range 11 {
		checks = append(checks, devicetest.Check{Name: fmt.Sprintf("later%d", i), Run: func(context.Context, *devicetest.Run) error {
			after.Add(1)
			return nil
		}})
	}
	s := devicetest.Suite{Name: "chip", Checks: checks, Probe: func(context.Context, any) error {
		probed.Store(true)
		return nil
	}}
	rep := devicetest.RunSuite(t.Context(), s, pcscTarget{}, devicetest.RunOptions{})
	if n := after.Load(); n != 0 {
		t.Errorf("%d checks ran after the card was pulled", n)
	}
	if probed.Load() {
		t.Error("a removed card was probed")
	}
	const want = "card removed during makeCredential; remaining checks not run"
	if rep.Stopped != want {
		t.Errorf("Stopped = %q, want %q", rep.Stopped, want)
	}
	if r := rep.Result("pulled"); r.Status != devicetest.Error || !strings.Contains(r.Message, "device removed") {
		t.Errorf("pulled: %s %q", r.Status, r.Message)
	}
	tally := rep.Tally()
	if tally.Passed != 1 || tally.Errors != 1 || tally.Failed != 0 || tally.Skipped != 11 || rep.Passed() {
		t.Errorf("tally %+v, passed %v", tally, rep.Passed())
	}
	for i := range 11 {
		r := rep.Result(fmt.Sprintf("later%d", i))
		if r.Status != devicetest.Skip || !r.NotRun || r.Message != "not run: "+want {
			t.Errorf("later%d: %+v", i, r)
		}
	}
	// The error is in the reports once; "not run" says the rest.
	var md bytes.Buffer
	devicetest.WriteMarkdown(&md, rep)
	if n := strings.Count(md.String(), "device removed"); n != 2 { // table row and detail section
		t.Errorf("the removal is in the Markdown %d times:\n%s", n, md.String())
	}
	if !strings.Contains(md.String(), "# chip conformance: ERROR") || !strings.Contains(md.String(), "**Stopped: "+want+"**") {
		t.Errorf("Markdown verdict or stop:\n%s", md.String())
	}
}

// TestStopWhenUnresponsive: a check that times out is an error; the run
// goes on when the target still answers Suite.Probe, and stops when it does
// not, instead of letting every later check wait for its own deadline.
func TestStopWhenUnresponsive(t *testing.T) {
	var answers atomic.Bool
	answers.Store(true)
	var later atomic.Int32
	s := devicetest.Suite{Name: "code-device", Checks: []devicetest.Check{
		{Name: "slow", Run: func(ctx context.Context, r *devicetest.Run) error {
			<-ctx.Done()
			return fmt.Errorf("frame: PRESS (SEQ 3): no answer after 3 tries of 1s: %w", device.ErrTimeout)
		}},
		{Name: "then-mute", Run: func(ctx context.Context, r *devicetest.Run) error {
			answers.Store(false)
			<-ctx.Done()
			return fmt.Errorf("frame: STATUS (SEQ 4): no answer: %w", device.ErrTimeout)
		}},
		{Name: "a", Run: func(ctx context.Context, r *devicetest.Run) error { later.Add(1); <-ctx.Done(); return ctx.Err() }},
		{Name: "b", Run: func(ctx context.Context, r *devicetest.Run) error { later.Add(1); <-ctx.Done(); return ctx.Err() }},
	}, Probe: func(ctx context.Context, target any) error {
		if answers.Load() {
			return nil
		}
		<-ctx.Done()
		return fmt.Errorf("frame: IDENTIFY: %w (%w)", device.ErrTimeout, ctx.Err())
	}}
	start := time.Now()
	rep := devicetest.RunSuite(t.Context(), s, nil, devicetest.RunOptions{Timeout: 20 * time.Millisecond})
	if r := rep.Result("slow"); r.Status != devicetest.Error {
		t.Errorf("slow: %s %q", r.Status, r.Message)
	}
	if r := rep.Result("then-mute"); r.Status != devicetest.Error {
		t.Errorf("then-mute: %s %q", r.Status, r.Message)
	}
	if n := later.Load(); n != 0 {
		t.Errorf("%d checks ran after the device stopped answering", n)
	}
	if !strings.HasPrefix(rep.Stopped, "device stopped answering during STATUS") || !strings.HasSuffix(rep.Stopped, "remaining checks not run") {
		t.Errorf("Stopped = %q", rep.Stopped)
	}
	if r := rep.Result("b"); !r.NotRun {
		t.Errorf("b: %+v", r)
	}
	t.Logf("%v: %s", time.Since(start).Round(time.Millisecond), rep.Stopped)
}

// TestStopWhileProfiling: a target that cannot be reached while its profile
// is found gives one error entry, and no check runs.
func TestStopWhileProfiling(t *testing.T) {
	s := devicetest.Suite{Name: "chip", Checks: []devicetest.Check{{Name: "a", Run: pass}, {Name: "b", Run: pass}},
		Profile: func(ctx context.Context, r *devicetest.Run) (string, error) {
			return "", fmt.Errorf("ctap2: authenticatorGetInfo: %w", device.ErrRemoved)
		}}
	rep := devicetest.RunSuite(t.Context(), s, pcscTarget{}, devicetest.RunOptions{})
	if a := rep.Result("a"); a.Status != devicetest.Error || !strings.Contains(a.Message, "profile could not be found") {
		t.Errorf("a: %+v", a)
	}
	if b := rep.Result("b"); b.Status != devicetest.Skip || !b.NotRun {
		t.Errorf("b: %+v", b)
	}
	if rep.Stopped != "card removed during getInfo; remaining checks not run" {
		t.Errorf("Stopped = %q", rep.Stopped)
	}
}

// TestNotChecked: a check that could not check part of what it is about is
// "not checked", not a pass, in the tally and in every report.
func TestNotChecked(t *testing.T) {
	s := devicetest.Suite{Name: "chip", Checks: []devicetest.Check{
		{Name: "makecredential.attestation", Run: func(ctx context.Context, r *devicetest.Run) error {
			r.NotChecked("no attestation roots configured: the chain was not checked")
			return nil
		}},
		{Name: "returned", Run: func(context.Context, *devicetest.Run) error {
			return devicetest.NotCheckedf("no secret")
		}},
		{Name: "but-failed", Run: func(ctx context.Context, r *devicetest.Run) error {
			r.NotChecked("roots")
			return errors.New("the signature does not verify")
		}},
	}}
	rep := devicetest.RunSuite(t.Context(), s, nil, devicetest.RunOptions{})
	if r := rep.Result("makecredential.attestation"); r.Status != devicetest.NotChecked || !strings.Contains(r.Message, "no attestation roots") {
		t.Errorf("attestation: %+v", r)
	}
	if r := rep.Result("returned"); r.Status != devicetest.NotChecked || r.Message != "no secret" {
		t.Errorf("returned: %+v", r)
	}
	if r := rep.Result("but-failed"); r.Status != devicetest.Fail {
		t.Errorf("but-failed: %+v", r)
	}
	if tl := rep.Tally(); tl.NotChecked != 2 || tl.Passed != 0 || tl.Failed != 1 {
		t.Errorf("tally %+v", tl)
	}
	var b bytes.Buffer
	devicetest.WriteHTML(&b, rep)
	if !strings.Contains(b.String(), `<td class="not-checked">not checked</td>`) {
		t.Errorf("HTML does not show not checked:\n%s", b.String())
	}
	b.Reset()
	devicetest.WriteMarkdown(&b, rep)
	if !strings.Contains(b.String(), "| `makecredential.attestation` | *not checked* |") || !strings.Contains(b.String(), "2 not checked") {
		t.Errorf("Markdown does not show not checked:\n%s", b.String())
	}
	b.Reset()
	devicetest.WriteJUnit(&b, rep)
	if !strings.Contains(b.String(), `<skipped message="not checked: no attestation roots configured: the chain was not checked" type="not-checked">`) {
		t.Errorf("JUnit does not show not checked:\n%s", b.String())
	}
}

// everyOutcome is a report with a result of every kind, a device header
// and a stop.
func everyOutcome(t *testing.T, artifactDir string) *devicetest.Report {
	t.Helper()
	s := devicetest.Suite{Name: "chip", Checks: []devicetest.Check{
		{Name: "ok", Spec: "CTAP 2.1 §6.4", Run: pass},
		{Name: "bad", Spec: "WebAuthn §6.1.1 (signature counter)", Run: func(context.Context, *devicetest.Run) error {
			return errors.New(`counter 5 then 5 & <"quoted">`)
		}},
		{Name: "n/a", Spec: "FIDO U2F Raw Message Formats §6.1", Run: func(context.Context, *devicetest.Run) error { return devicetest.Skipf("no U2F") }},
		{Name: "roots", Spec: "WebAuthn §8.2", Run: func(ctx context.Context, r *devicetest.Run) error {
			r.NotChecked("no roots")
			return nil
		}},
		{Name: "audio.digits", Spec: "RFC 6238 §4; CDP/1 §4 PRESS, AUDIO", Run: func(ctx context.Context, r *devicetest.Run) error {
			return r.Attach("said me.wav", "audio/wav", []byte("RIFF...."))
		}},
		{Name: "pulled", Spec: "CTAP 2.1 §6.1", Run: func(context.Context, *devicetest.Run) error {
			return fmt.Errorf("ctap2: authenticatorMakeCredential: %w", device.ErrRemoved)
		}},
		{Name: "after", Run: pass},
	}, Describe: func(ctx context.Context, r *devicetest.Run, d *devicetest.DeviceSummary) error {
		d.AAGUID = "f8a011f3-8c0a-4d15-8006-17111f9edc7d"
		d.Firmware = "1.0.0"
		d.Versions = []string{"FIDO_2_0", "U2F_V2"}
		return nil
	}}
	return devicetest.RunSuite(t.Context(), s, pcscTarget{}, devicetest.RunOptions{
		ArtifactDir: artifactDir, Tool: "authbench v9.9.9",
		Device: device.Info{Serial: "AB-0000000001"},
	})
}

// TestJUnitSchema: the JUnit report validates against the Jenkins JUnit
// schema (testdata/junit/junit-10.xsd) with xmllint, with every kind of
// result in it, and uses <failure> for failed checks and <error> for those
// that could not run.
func TestJUnitSchema(t *testing.T) {
	xmllint := testenv.LookPath(t, "xmllint", "xmllint", "apt-get install libxml2-utils")
	dir := t.TempDir()
	rep := everyOutcome(t, filepath.Join(dir, "artifacts"))
	other := devicetest.RunSuite(t.Context(), toySuite(), nil, devicetest.RunOptions{})
	path := filepath.Join(dir, "junit.xml")
	var b bytes.Buffer
	if err := (devicetest.ReportOptions{Dir: dir}).WriteJUnit(&b, rep, other); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ValidateJUnit(t, xmllint, path)
	out := b.String()
	for _, want := range []string{
		`<failure message="counter 5 then 5 &amp; &lt;&#34;quoted&#34;&gt;" type="fail">`,
		`<error message="ctap2: authenticatorMakeCredential: device removed" type="error">`,
		`<skipped message="not run: card removed during makeCredential; remaining checks not run" type="not-run">`,
		`<property name="device.serial" value="AB-0000000001">`,
		`<property name="device.aaguid" value="f8a011f3-8c0a-4d15-8006-17111f9edc7d">`,
		`<property name="tool" value="authbench v9.9.9">`,
		`errors="1"`,
		"artifact: artifacts/audio.digits/said me.wav",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("JUnit lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "<testsuites") && strings.Contains(strings.SplitN(out, "\n", 3)[1], "skipped=") {
		t.Errorf("<testsuites> has a skipped attribute, which the schema lacks")
	}
}

// ValidateJUnit runs xmllint --schema on path.
func ValidateJUnit(t *testing.T, xmllint, path string) {
	t.Helper()
	schema, err := filepath.Abs("../../testdata/junit/junit-10.xsd")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(xmllint, "--noout", "--schema", schema, path).CombinedOutput()
	if err != nil {
		t.Fatalf("the JUnit report does not validate against %s: %v\n%s", schema, err, out)
	}
}

// TestReportHeaderAndLinks: the HTML and Markdown reports name the device
// (serial, AAGUID, firmware), the profile and the tool's version, link the
// artifacts relative to the report's own directory (so that the report
// works from anywhere, and moved along with them), give WAV files an audio
// player, and link the public specs.
func TestReportHeaderAndLinks(t *testing.T) {
	dir := t.TempDir()
	rep := everyOutcome(t, filepath.Join(dir, "wav"))
	a := rep.Result("audio.digits").Artifacts[0]
	if _, err := os.Stat(a.Path); err != nil {
		t.Fatal(err)
	}
	reports := filepath.Join(dir, "reports", "today")
	o := devicetest.ReportOptions{Dir: reports}
	var b bytes.Buffer
	if err := o.WriteHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`<td class="serial">AB-0000000001</td>`,
		`<td class="aaguid">f8a011f3-8c0a-4d15-8006-17111f9edc7d</td>`,
		`<td class="firmware">1.0.0</td>`,
		`<td class="tool">authbench v9.9.9</td>`,
		`<a href="../../wav/audio.digits/said%20me.wav">`,
		`<audio controls preload="none" src="../../wav/audio.digits/said%20me.wav"></audio>`,
		`<a href="https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html">CTAP 2.1 §6.4</a>`,
		`<a href="https://www.rfc-editor.org/rfc/rfc6238#section-4">RFC 6238 §4</a>`,
		`CDP/1, the code-device protocol: docs/cdp1.md`,
		`<p class="stopped">Stopped: card removed during makeCredential; remaining checks not run</p>`,
		`<td class="error">error</td>`,
		`<span class="verdict-FAILED">FAILED</span>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML lacks %s", want)
		}
	}
	// The link resolves from the report's directory.
	rel := "../../wav/audio.digits/said me.wav"
	if _, err := os.Stat(filepath.Join(reports, filepath.FromSlash(rel))); err != nil {
		t.Errorf("the link does not resolve from the report: %v", err)
	}
	if t.Failed() {
		t.Log(page)
	}

	b.Reset()
	if err := o.WriteMarkdown(&b, rep); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"- Device: chip on pcsc Reader 0, serial AB-0000000001, firmware 1.0.0, AAGUID f8a011f3-8c0a-4d15-8006-17111f9edc7d, speaks FIDO\\_2\\_0, U2F\\_V2",
		"- Checked by: authbench v9.9.9",
		"- artifact: [../../wav/audio.digits/said me.wav](../../wav/audio.digits/said%20me.wav)",
		"[WebAuthn §6.1.1 (signature counter)](https://www.w3.org/TR/webauthn-2/)",
		"| `roots` | *not checked* |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %s:\n%s", want, md)
		}
	}
}

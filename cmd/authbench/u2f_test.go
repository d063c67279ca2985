package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/authbench/authbench/internal/pcscdtest"
	"github.com/authbench/authbench/internal/umockdevtest"
)

// chipTransport is one way `authbench sim` exposes a simulated chip, and
// the selector the other commands reach it with. Adding a transport to
// chipTransports runs every test below over it too.
type chipTransport struct {
	name string
	// start runs `authbench sim --chip ... simArgs...` for the rest of the
	// test and returns the selector of its chip.
	start func(t *testing.T, simArgs ...string) string
}

var chipTransports = []chipTransport{
	{"pcsc", func(t *testing.T, simArgs ...string) string {
		// The second reader (TestCheckPCSC uses the first), one card at a
		// time: it is in when PC/SC says so, and the next test waits until
		// PC/SC has seen it leave.
		d := pcscdtest.Start(t)
		reader := pcscdtest.Readers[1]
		t.Cleanup(func() { waitReader(t, reader, false) })
		startSim(t, append([]string{"--chip", "pcsc=" + d.Addrs[1]}, simArgs...)...)
		waitReader(t, reader, true)
		return "pcsc:" + reader
	}},
	{"udp", func(t *testing.T, simArgs ...string) string {
		devs := startSim(t, append([]string{"--chip", "udp=0"}, simArgs...)...)
		return "udp:" + devs[0].Addr
	}},
	{"usb", func(t *testing.T, simArgs ...string) string {
		// A key on an emulated USB bus, which this process's libusb sees
		// for the rest of the test: the commands take the real path,
		// gousb, libusb and usbdevfs.
		umockdevtest.Require(t)
		devs := startSim(t, append([]string{"--chip", "usb"}, simArgs...)...)
		umockdevtest.Use(t, devs[0].Testbed)
		return "usb:serial=" + devs[0].Serial
	}},
}

// junitProfile returns the profile property of the first suite of a JUnit
// report.
func junitProfile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Properties []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"properties>property"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil || len(doc.Suites) == 0 {
		t.Fatalf("JUnit report does not parse: %v", err)
	}
	for _, p := range doc.Suites[0].Properties {
		if p.Name == "profile" {
			return p.Value
		}
	}
	return ""
}

// The checks of each profile: the U2F checks run for U2F-only and FIDO2
// chips, the CTAP2 checks for FIDO2 chips only.
var (
	u2fChecks   = []string{"u2f.version", "u2f.register-authenticate", "u2f.check-only", "u2f.errors"}
	ctap2Checks = []string{"info.fields", "info.canonical", "makecredential.long-message", "error.pin-uv-auth-param", "resident.replace"}
	chipChecks  = []string{"makecredential.authdata", "makecredential.attestation", "getassertion.signature", "getassertion.counter",
		"getassertion.unknown-credential", "makecredential.exclude-list"}
)

// checkProfile runs `authbench check` against sel and checks that it
// passes in profile, running the checks that belong to it and skipping the
// others, and that all three reports name the profile.
func checkProfile(t *testing.T, sel, profile string, transport bool) {
	t.Helper()
	dir := t.TempDir()
	junit, md, html := filepath.Join(dir, "junit.xml"), filepath.Join(dir, "report.md"), filepath.Join(dir, "report.html")
	// The test CA is the root of the simulated chips' attestation: with it
	// every attestation is checked (without, it is "not checked").
	code, out := runCmd(t, "check", "--device", sel, "--report", junit, "--markdown", md, "--html", html, "--roots", "../../testdata/attestation/ca.pem")
	if code != 0 {
		t.Fatalf("check %s exited %d:\n%s", sel, code, out)
	}
	if !strings.Contains(out, "("+profile+" profile): ") {
		t.Errorf("the summary does not name the %s profile:\n%s", profile, out)
	}
	if got := junitProfile(t, junit); got != profile {
		t.Errorf("JUnit profile %q, want %q", got, profile)
	}
	if b, _ := os.ReadFile(md); !bytes.Contains(b, []byte("- Profile: "+profile)) {
		t.Errorf("the Markdown report does not name the profile:\n%s", b)
	}
	if b, _ := os.ReadFile(html); !bytes.Contains(b, []byte(`<b class="profile">`+profile+`</b>`)) {
		t.Error("the HTML report does not name the profile")
	}
	cases := junitCases(t, junit)
	want := map[string]string{}
	for _, c := range chipChecks {
		want[c] = "pass"
	}
	for _, c := range u2fChecks {
		want[c] = "pass"
	}
	for _, c := range ctap2Checks {
		want[c] = "pass"
		if profile == "U2F-only" {
			want[c] = "skip"
		}
	}
	if transport {
		want["transport.profile"] = "pass"
	}
	for name, st := range want {
		if cases[name] != st {
			t.Errorf("%s: %s, want %s", name, cases[name], st)
		}
	}
	for name, st := range cases {
		if st == "fail" {
			t.Errorf("check %s failed", name)
		}
	}
}

// TestCheckU2FOnly: a U2F-only simulated chip passes `authbench check` in
// the U2F-only profile on every transport and in-process; a FIDO2 chip
// runs the CTAP2 and the U2F checks.
func TestCheckU2FOnly(t *testing.T) {
	for _, tr := range chipTransports {
		t.Run(tr.name, func(t *testing.T) {
			checkProfile(t, tr.start(t, "--u2f-only"), "U2F-only", true)
		})
		t.Run(tr.name+"/fido2", func(t *testing.T) {
			checkProfile(t, tr.start(t), "FIDO2", true)
		})
	}
	t.Run("in-process", func(t *testing.T) {
		checkProfile(t, "sim:chip:u2f", "U2F-only", false)
		checkProfile(t, "sim:chip", "FIDO2", false)
	})
}

// serveForCLI runs a real `authbench serve` trusting the test attestation
// CA (plus extra flags), and returns its URL and support token file.
func serveForCLI(t *testing.T, extra ...string) (url, tokens string) {
	t.Helper()
	dir := t.TempDir()
	url, _, _ = startServe(t, append(serveArgs(dir), extra...)...)
	return url, filepath.Join(dir, "tokens")
}

// identityPassword is the password of the identities createIdentity
// creates: the first factor of their logins.
const identityPassword = "the password of a chip's owner"

// createIdentity creates an identity with a password (identityPassword)
// with `authbench identity create`.
func createIdentity(t *testing.T, url, tokens, id string) {
	t.Helper()
	if code, out := runCmdIn(t, identityPassword+"\n", "identity", "create", "--server", url, "--token-file", tokens, "--identity", id, "--password-stdin"); code != 0 {
		t.Fatalf("identity create %s exited %d:\n%s", id, code, out)
	}
}

var authenticatorLine = regexp.MustCompile(`authenticator\s+(chip-\S+)`)

// enrollAndLogin enrols the chip at sel for id with `authbench enroll`,
// checks the attestation line, and logs in with the password and the chip
// twice with `authbench login`. It returns the enroll output.
func enrollAndLogin(t *testing.T, url, tokens, id, sel, attestation string) string {
	t.Helper()
	code, out := runCmd(t, "enroll", "--server", url, "--token-file", tokens, "--identity", id, "--device", sel)
	if code != 0 {
		t.Fatalf("enroll %s exited %d:\n%s", sel, code, out)
	}
	if !strings.Contains(out, "attestation         "+attestation) {
		t.Errorf("enroll output lacks %q:\n%s", attestation, out)
	}
	m := authenticatorLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no authenticator in:\n%s", out)
	}
	for i := range 2 {
		code, lout := runCmdIn(t, identityPassword+"\n", "login", "--server", url, "--identity", id, "--password-stdin", "--authenticator", m[1], "--device", sel)
		if code != 0 || !strings.Contains(lout, "logged in to "+id+" with two factors (") || !strings.Contains(lout, " and "+m[1]+")") {
			t.Fatalf("login %d with %s exited %d:\n%s", i+1, sel, code, lout)
		}
	}
	return out
}

// TestEnrollLoginU2FOnly: a U2F-only chip is enrolled against a real
// `authbench serve` through `authbench enroll` (a fido-u2f attestation,
// trusted through the attestation roots) and logs in through `authbench
// login`, on every transport; a second chip of the same model enrols for
// another person (the server tells chips apart by credential ID, not by
// their shared batch certificate).
func TestEnrollLoginU2FOnly(t *testing.T) {
	url, tokens := serveForCLI(t)
	for _, tr := range chipTransports {
		t.Run(tr.name, func(t *testing.T) {
			for i := range 2 {
				id := fmt.Sprintf("u2f-%s-%d", tr.name, i)
				t.Run(id, func(t *testing.T) {
					createIdentity(t, url, tokens, id)
					sel := tr.start(t, "--u2f-only", "--seed", fmt.Sprintf("%x", id))
					out := enrollAndLogin(t, url, tokens, id, sel, "fido-u2f, trusted")
					if !strings.Contains(out, "00000000-0000-0000-0000-000000000000") {
						t.Errorf("a U2F-only chip has no AAGUID:\n%s", out)
					}
				})
			}
		})
	}
}

// TestEnrollAttestationKinds: `authbench serve` works with each kind of
// attestation of `authbench sim --attestation`: batch and serial are
// trusted through the roots; self and none are refused, unless the server
// runs with --allow-none-attestation, which records them as untrusted.
func TestEnrollAttestationKinds(t *testing.T) {
	strict, strictTokens := serveForCLI(t)
	lax, laxTokens := serveForCLI(t, "--allow-none-attestation")
	udp := chipTransports[1]
	for _, tt := range []struct {
		kind, profile string
		simArgs       []string
		format        string
		trusted       bool
	}{
		{"batch", "fido2", nil, "packed", true},
		{"serial", "fido2", nil, "packed", true},
		{"self", "fido2", nil, "packed", false},
		{"none", "fido2", nil, "none", false},
		{"serial", "u2f", []string{"--u2f-only"}, "fido-u2f", true},
		{"self", "u2f", []string{"--u2f-only"}, "fido-u2f", false},
	} {
		t.Run(tt.profile+"/"+tt.kind, func(t *testing.T) {
			id := "att-" + tt.profile + "-" + tt.kind
			sel := udp.start(t, append([]string{"--attestation", tt.kind, "--seed", fmt.Sprintf("%x", id)}, tt.simArgs...)...)
			if tt.trusted {
				createIdentity(t, strict, strictTokens, id)
				enrollAndLogin(t, strict, strictTokens, id, sel, tt.format+", trusted")
				return
			}
			createIdentity(t, strict, strictTokens, id)
			code, out := runCmd(t, "enroll", "--server", strict, "--token-file", strictTokens, "--identity", id, "--device", sel)
			if code != 1 || !strings.Contains(out, "does not trust this chip") {
				t.Errorf("a %s attestation against a strict server: exit %d:\n%s", tt.kind, code, out)
			}
			createIdentity(t, lax, laxTokens, id)
			enrollAndLogin(t, lax, laxTokens, id, sel, tt.format+", NOT trusted")
		})
	}
}

// TestSimU2FOnlyFlags: the profile shows in what sim prints, and --u2f-only
// refuses --attestation none.
func TestSimU2FOnlyFlags(t *testing.T) {
	devs := startSim(t, "--chip", "udp=0", "--u2f-only")
	if len(devs) != 1 || devs[0].Profile != "U2F-only" {
		t.Errorf("sim printed %+v", devs)
	}
	if code, out := runCmd(t, "sim", "--chip", "udp=0", "--u2f-only", "--attestation", "none"); code != 2 || !strings.Contains(out, "always carries an attestation certificate") {
		t.Errorf("--u2f-only --attestation none exited %d:\n%s", code, out)
	}
	if code, out := runCmd(t, "sim", "--chip", "udp=0", "--attestation", "basic"); code != 2 || !strings.Contains(out, "--attestation") {
		t.Errorf("--attestation basic exited %d:\n%s", code, out)
	}
}

package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/driver/pcsc"
	"github.com/authbench/authbench/internal/pcscdtest"
	"github.com/authbench/authbench/server/api/apitest"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/udphid"
	"github.com/authbench/authbench/sim/vicc"
)

// cliServer is an embedded server for the command tests, with a support
// token in a file and one person (with a password) on it.
type cliServer struct {
	*demoServer
	clock     *demoClock
	tokenFile string
	support   *client.Client
	person    string
	password  string
	pwAuth    string
}

func startCLIServer(t *testing.T) *cliServer {
	t.Helper()
	clock := newDemoClock(time.Now())
	s, err := startDemoServer(context.Background(), "", clock.Now, []byte("cli test"), apitest.ForTest(t).Wrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cs := &cliServer{demoServer: s, clock: clock, person: "person-cli", password: "pw of person-cli"}
	cs.tokenFile = filepath.Join(t.TempDir(), "support.token")
	if err := os.WriteFile(cs.tokenFile, []byte(s.SupportToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cs.support, err = client.New(s.URL, client.Options{Token: s.SupportToken, Origin: s.Origin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cs.support.CloseIdleConnections)
	id, err := cs.support.CreateIdentity(context.Background(), client.CreateIdentityRequest{ID: cs.person, Password: cs.password})
	if err != nil {
		t.Fatal(err)
	}
	cs.pwAuth = id.Authenticators[0].ID
	return cs
}

// args returns the flags that point a command at the server as support.
func (cs *cliServer) args(cmd string, more ...string) []string {
	return append([]string{cmd, "--server", cs.URL, "--token-file", cs.tokenFile, "--identity", cs.person}, more...)
}

// identity returns what the server holds for the person.
func (cs *cliServer) identity(t *testing.T) *client.Identity {
	t.Helper()
	id, err := cs.support.Identity(context.Background(), cs.person)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// serveUDPChip serves c over CTAPHID on a UDP port and returns the
// selector of it.
func serveUDPChip(t *testing.T, c *chip.Chip) string {
	t.Helper()
	dev, err := udphid.Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctaphid.Serve(ctx, dev, c, ctaphid.ServeOptions{Major: 1})
	}()
	t.Cleanup(func() { cancel(); dev.Close(); <-done })
	return "udp:" + dev.LocalAddr().String()
}

// TestEnrollPrintsTouchAndElement: a chip that waits for a touch makes
// `authbench enroll` say so, and the new element is printed.
func TestEnrollPrintsTouchAndElement(t *testing.T) {
	cs := startCLIServer(t)
	c, err := chip.New(chip.Options{Seed: []byte("enroll touch"), Presence: chip.Delay(300 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sel := serveUDPChip(t, c)
	code, out := runCmd(t, cs.args("enroll", "--device", sel, "--label", "my key")...)
	if code != 0 {
		t.Fatalf("enroll exited %d:\n%s", code, out)
	}
	id := cs.identity(t)
	var a *client.Authenticator
	for i := range id.Authenticators {
		if id.Authenticators[i].Kind == client.KindChip {
			a = &id.Authenticators[i]
		}
	}
	if a == nil || a.State != client.StateActive {
		t.Fatalf("no active chip on the server: %+v", id)
	}
	// The chip's serial number is not shown: its attestation certificate is
	// the model's batch certificate, which names no chip.
	for _, want := range []string{"Touch your chip…", a.ID, a.CredentialID, a.Element.AAGUID, "packed, trusted", "my key"} {
		if !strings.Contains(out, want) {
			t.Errorf("enroll output lacks %q:\n%s", want, out)
		}
	}
	// Enrolling the same chip again is refused with advice.
	code, out = runCmd(t, cs.args("enroll", "--device", sel)...)
	if code != 1 || !strings.Contains(out, "already enrolled") && !strings.Contains(out, "as many chips as allowed") {
		t.Errorf("second enrolment exited %d:\n%s", code, out)
	}
	// The status table shows it.
	code, out = runCmd(t, cs.args("status")...)
	if code != 0 || !strings.Contains(out, a.ID) || !strings.Contains(out, "sign count 0") || !strings.Contains(out, "packed trusted") {
		t.Errorf("status exited %d:\n%s", code, out)
	}
	code, out = runCmd(t, cs.args("status", "--json")...)
	var got client.Identity
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Authenticator(a.ID) == nil {
		t.Errorf("status --json exited %d:\n%s", code, out)
	}
}

// TestEnrollErrors: what goes wrong is said in words a developer can act
// on.
func TestEnrollErrors(t *testing.T) {
	cs := startCLIServer(t)
	wrongToken := filepath.Join(t.TempDir(), "wrong.token")
	os.WriteFile(wrongToken, []byte("not-the-token\n"), 0o600)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unreachable server", []string{"enroll", "--server", "http://127.0.0.1:1", "--token-file", wrongToken, "--identity", "p", "--device", "sim:chip"}, exitUnreachable, "cannot reach the server at http://127.0.0.1:1"},
		{"wrong token", []string{"enroll", "--server", cs.URL, "--token-file", wrongToken, "--identity", cs.person, "--device", "sim:chip"}, 1, "the server refused the token"},
		{"no token", []string{"enroll", "--server", cs.URL, "--identity", cs.person, "--device", "sim:chip"}, 2, "a token is needed"},
		{"unknown identity", []string{"enroll", "--server", cs.URL, "--token-file", cs.tokenFile, "--identity", "nobody", "--device", "sim:chip"}, 1, `no identity "nobody"`},
		{"not a chip", cs.args("enroll", "--device", "sim:code-display"), 2, "is not a chip"},
		{"bad selector", cs.args("enroll", "--device", "bluetooth:1"), 2, "unknown selector"},
		{"no device", cs.args("enroll"), 2, "missing flags: --device"},
		{"bad server URL", []string{"enroll", "--server", "localhost:8080", "--token-file", wrongToken, "--identity", "p", "--device", "sim:chip"}, 2, "want http://"},
		{"no chip on UDP", cs.args("enroll", "--device", "udp:127.0.0.1:9", "--timeout", "1s"), exitUnreachable, "nothing answered at udp:127.0.0.1:9 within"},
		{"token on the command line", []string{"enroll", "--server", cs.URL, "--token", "x", "--identity", cs.person, "--device", "sim:chip"}, 2, "unknown flag --token"},
	}
	t.Setenv("AUTHBENCH_TOKEN", "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("exited %d (want %d), output lacks %q:\n%s", code, tt.code, tt.want, out)
			}
		})
	}
	// $AUTHBENCH_TOKEN is a way to give the token.
	t.Setenv("AUTHBENCH_TOKEN", cs.SupportToken)
	if code, out := runCmd(t, "status", "--server", cs.URL, "--identity", cs.person); code != 0 {
		t.Errorf("status with $AUTHBENCH_TOKEN exited %d:\n%s", code, out)
	}
}

// TestEnrollPCSC: the developer's path with a chip in a PC/SC reader,
// through a real pcscd and vpcd: errors for a missing reader and an empty
// reader, then enrol, log in, block, and enrol the same chip again.
func TestEnrollPCSC(t *testing.T) {
	d := pcscdtest.Start(t)
	cs := startCLIServer(t)
	reader := pcscdtest.Readers[1]

	code, out := runCmd(t, cs.args("enroll", "--device", "pcsc:No Such Reader")...)
	if code != exitUnreachable || !strings.Contains(out, `no reader "No Such Reader"`) {
		t.Errorf("unknown reader exited %d:\n%s", code, out)
	}
	code, out = runCmd(t, cs.args("enroll", "--device", "pcsc:"+reader)...)
	if code != exitUnreachable || !strings.Contains(out, "no chip in reader") || !strings.Contains(out, "insert it") {
		t.Errorf("empty reader exited %d:\n%s", code, out)
	}
	code, out = runCmd(t, cs.args("enroll", "--device", "pcsc:7")...)
	if code != exitUnreachable || !strings.Contains(out, "readers") {
		t.Errorf("reader number out of range exited %d:\n%s", code, out)
	}

	// The chip waits for a touch: NFCCTAP keepalives (SW 9100) reach the
	// prompt.
	c, err := chip.New(chip.Options{Seed: []byte("enroll pcsc"), Presence: chip.Delay(200 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	card := apdu.NewCard(c, apdu.CardOptions{})
	defer card.Close()
	conn := vicc.New(d.Addrs[1], card, vicc.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { conn.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	select {
	case <-conn.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("vpcd did not connect")
	}
	waitCard(t, reader)

	code, out = runCmd(t, cs.args("enroll", "--device", "pcsc:"+reader)...)
	if code != 0 || !strings.Contains(out, "Touch your chip…") || !strings.Contains(out, "packed, trusted") {
		t.Fatalf("enroll through pcscd exited %d:\n%s", code, out)
	}
	first := chipOf(t, cs)
	session := filepath.Join(t.TempDir(), "session")
	code, out = runCmdIn(t, cs.password+"\n", "login", "--server", cs.URL, "--identity", cs.person, "--password-stdin",
		"--device", "pcsc:"+reader, "--session-file", session)
	if code != 0 || !strings.Contains(out, "logged in") {
		t.Fatalf("login through pcscd exited %d:\n%s", code, out)
	}
	// The person blocks the chip with the session of the password and
	// the chip (which ends with the block).
	code, out = runCmd(t, "block", "--server", cs.URL, "--token-file", session, "--identity", cs.person,
		"--authenticator", first.ID, "--reason", "lost")
	if code != 0 || !strings.Contains(out, "can be added again") {
		t.Fatalf("block exited %d:\n%s", code, out)
	}
	code, out = runCmd(t, cs.args("enroll", "--device", "pcsc:"+reader)...)
	if code != 0 {
		t.Fatalf("enrolling the blocked chip again exited %d:\n%s", code, out)
	}
	second := chipOf(t, cs)
	if second.ID == first.ID || second.CredentialID == first.CredentialID {
		t.Errorf("re-added chip: %+v after %+v", second, first)
	}
	code, out = runCmdIn(t, cs.password+"\n", "login", "--server", cs.URL, "--identity", cs.person, "--password-stdin", "--authenticator", first.ID, "--device", "pcsc:"+reader)
	if code != 1 || !strings.Contains(out, "permanently blocked") {
		t.Errorf("login with the blocked element exited %d:\n%s", code, out)
	}
}

// waitCard waits until pcscd sees a card in reader (it notices a new card
// at its next poll).
func waitCard(t *testing.T, reader string) { waitReader(t, reader, true) }

// waitReader waits until PC/SC reports a card in reader, or none.
func waitReader(t *testing.T, reader string, present bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // failure guard only
	defer cancel()
	pc, err := pcsc.Open(ctx, pcsc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	readers, err := pc.Readers(ctx)
	for err == nil {
		for _, r := range readers {
			if r.Name == reader && r.CardPresent == present {
				return
			}
		}
		readers, err = pc.Wait(ctx, readers)
	}
	t.Fatalf("card present %v in %q: %v", present, reader, err)
}

// chipOf returns the person's newest chip authenticator that is not
// blocked.
func chipOf(t *testing.T, cs *cliServer) *client.Authenticator {
	t.Helper()
	id := cs.identity(t)
	for i := len(id.Authenticators) - 1; i >= 0; i-- {
		if a := &id.Authenticators[i]; a.Kind == client.KindChip && a.State != client.StateBlocked {
			return a
		}
	}
	t.Fatalf("no chip: %+v", id)
	return nil
}

func TestTokenFromFile(t *testing.T) {
	for content, want := range map[string]string{
		"tok123\n":       "tok123",
		"  tok123  \r\n": "tok123",
		"# authbench support tokens: one \"operator-id token\" per line.\nsupport abcdefghijklmnop\nother x\n": "abcdefghijklmnop",
		"\n\n# only comments\n": "",
		"":                      "",
	} {
		if got := tokenFromFile(content); got != want {
			t.Errorf("%q: %q, want %q", content, got, want)
		}
	}
}

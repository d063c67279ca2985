package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/pskc"
	"github.com/authbench/authbench/sim/app"
	"github.com/authbench/authbench/sim/code"
)

// TestLoginCodeDeviceOverPTY: a code display on a pty, enrolled through
// the server, logs in with `authbench login --device serial:PATH`; wrong
// codes typed with --code suspend it; the person reactivates it with the
// session of a password login.
func TestLoginCodeDeviceOverPTY(t *testing.T) {
	cs := startCLIServer(t)
	ctx := context.Background()
	dev, err := code.New(code.Options{Seed: []byte("cli pty"), Now: cs.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	p, err := code.ServePTY(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tp := dev.TOTP()
	var doc bytes.Buffer
	if err := pskc.Write(&doc, []pskc.Key{{Serial: dev.Serial(), ID: "k1", Algorithm: pskc.TOTP, Secret: tp.Secret}}, pskc.EncryptOptions{Key: cs.PSKCKey}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.support.ImportPSKC(ctx, doc.Bytes()); err != nil {
		t.Fatal(err)
	}
	// Enrol over the pty (the port is closed again before the command
	// opens it).
	port, err := serial.Open(p.Path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	a, err := client.EnrollCodeDevice(ctx, cs.support, cs.person, "", frame.NewHost(port, nil))
	port.Close()
	if err != nil {
		t.Fatal(err)
	}

	login := func(more ...string) (int, string) {
		return runCmdIn(t, cs.password+"\n", append([]string{"login", "--server", cs.URL, "--identity", cs.person, "--password-stdin"}, more...)...)
	}
	cs.clock.Advance(30 * time.Second)
	if code, out := login("--device", "serial:"+p.Path); code != 0 || !strings.Contains(out, "logged in to "+cs.person+" with two factors ("+cs.pwAuth+" and "+a.ID+")") {
		t.Fatalf("login over the pty exited %d:\n%s", code, out)
	}
	// The same step again: replayed.
	if code, out := login("--device", "serial:"+p.Path); code != 1 || !strings.Contains(out, "already used") {
		t.Errorf("a second code of the same step exited %d:\n%s", code, out)
	}
	wrong := "000000"
	for s := tp.Step(cs.clock.Now()) - 1; s <= tp.Step(cs.clock.Now())+1; s++ {
		if c, _ := tp.Code(s); c == wrong {
			wrong = "111111"
		}
	}
	for i := 1; i <= 3; i++ {
		code, out := login("--code", wrong, "--authenticator", a.ID)
		want := fmt.Sprintf("%d failed attempt", i)
		if i == 3 {
			want = "now temporarily blocked"
		}
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("wrong code %d exited %d, want %q:\n%s", i, code, want, out)
		}
	}
	// The password alone is not enough.
	if code, out := login(); code != 2 || !strings.Contains(out, "second factor") {
		t.Errorf("the password alone exited %d:\n%s", code, out)
	}
	// Self-service: the app's login gives a session of two other factors.
	seed := []byte("cli pty app")
	ap, err := app.New(app.Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	au, err := client.EnrollApp(ctx, cs.support, cs.person, "phone", ap, ap.PIN())
	if err != nil {
		t.Fatal(err)
	}
	session := filepath.Join(t.TempDir(), "session")
	appLogin := []string{"login", "--server", cs.URL, "--identity", cs.person, "--authenticator", au.ID, "--app-seed-file", secretFile(t, fmt.Sprintf("%x", seed))}
	// Without --session-file or --show-token the token is not printed.
	if code, out := runCmdIn(t, ap.PIN()+"\n", appLogin...); code != 0 || strings.Contains(out, "session token:") || !strings.Contains(out, "not shown") {
		t.Errorf("app login exited %d, or printed the token:\n%s", code, out)
	}
	if code, out := runCmdIn(t, ap.PIN()+"\n", append(appLogin, "--session-file", session)...); code != 0 {
		t.Fatalf("app login exited %d:\n%s", code, out)
	}
	if code, out := runCmd(t, "reactivate", "--server", cs.URL, "--token-file", session, "--identity", cs.person, "--authenticator", a.ID); code != 0 || !strings.Contains(out, "state active") {
		t.Fatalf("reactivate exited %d:\n%s", code, out)
	}
	cs.clock.Advance(30 * time.Second)
	if code, out := login("--device", "serial:"+p.Path); code != 0 {
		t.Errorf("login after reactivation exited %d:\n%s", code, out)
	}
	code, out := runCmd(t, cs.args("status")...)
	if code != 0 || !strings.Contains(out, dev.Serial()) || !strings.Contains(out, "code-display") || !strings.Contains(out, "6 digits/30s sha1") {
		t.Errorf("status exited %d:\n%s", code, out)
	}
	// The person lists their sessions (the app's, and the one of the
	// password and the code display above) and ends the other one.
	list := func() []client.SessionInfo {
		t.Helper()
		var v []client.SessionInfo
		runJSON(t, "", &v, "sessions", "list", "--server", cs.URL, "--token-file", session, "--identity", cs.person, "--json")
		return v
	}
	var other string
	for _, s := range list() {
		if !s.Current && strings.Join(s.Authenticators, "+") == cs.pwAuth+"+"+a.ID {
			other = s.ID
		}
	}
	if other == "" {
		t.Fatalf("sessions list lacks the session of the password and the code display: %+v", list())
	}
	if code, out := runCmd(t, "sessions", "list", "--server", cs.URL, "--token-file", session, "--identity", cs.person); code != 0 || !strings.Contains(out, "(this one)") || !strings.Contains(out, other) {
		t.Errorf("sessions list exited %d:\n%s", code, out)
	}
	if code, out := runCmd(t, "sessions", "end", "--server", cs.URL, "--token-file", session, "--identity", cs.person, "--session", other); code != 0 || !strings.Contains(out, "ended session "+other) {
		t.Errorf("sessions end exited %d:\n%s", code, out)
	}
	for _, s := range list() {
		if s.ID == other {
			t.Errorf("session %s is still listed after it was ended", other)
		}
	}
	if code, out := runCmd(t, "sessions", "end", "--server", cs.URL, "--token-file", session, "--identity", cs.person, "--session", other); code != 1 || !strings.Contains(out, "ended already") {
		t.Errorf("ending it twice exited %d:\n%s", code, out)
	}
	if code, out := runCmd(t, "logout", "--server", cs.URL, "--token-file", session); code != 0 || !strings.Contains(out, "logged out") {
		t.Errorf("logout exited %d:\n%s", code, out)
	}
	if code, out := runCmd(t, "logout", "--server", cs.URL, "--token-file", session); code != 1 || !strings.Contains(out, "ended already") {
		t.Errorf("logout twice exited %d:\n%s", code, out)
	}
}

// TestLoginAppAndBlock: the simulated app logs in with its seed in
// $AUTHBENCH_APP_SEED (never on the command line) and the PIN on standard
// input; a wrong PIN counts; the owner blocks it for good.
func TestLoginAppAndBlock(t *testing.T) {
	cs := startCLIServer(t)
	seed := []byte("cli app")
	a, err := app.New(app.Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	au, err := client.EnrollApp(context.Background(), cs.support, cs.person, "phone", a, a.PIN())
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"login", "--server", cs.URL, "--identity", cs.person, "--authenticator", au.ID}
	// The seed on the command line is refused.
	if code, out := runCmdIn(t, a.PIN()+"\n", append(base, "--app-seed", fmt.Sprintf("%x", seed))...); code != exitUsage {
		t.Errorf("login --app-seed HEX exited %d:\n%s", code, out)
	}
	t.Setenv(appSeedEnv, fmt.Sprintf("%x", seed))
	if code, out := runCmdIn(t, a.PIN()+"\n", append(base, "--show-token")...); code != 0 || !strings.Contains(out, "session token: ") {
		t.Fatalf("app login exited %d:\n%s", code, out)
	}
	wrong := "000000"
	if a.PIN() == wrong {
		wrong = "111111"
	}
	if code, out := runCmdIn(t, wrong+"\n", base...); code != 1 || !strings.Contains(out, "1 failed attempt") {
		t.Errorf("wrong PIN exited %d:\n%s", code, out)
	}
	if code, out := runCmdIn(t, "12\n", base...); code != 1 {
		t.Errorf("malformed PIN exited %d:\n%s", code, out)
	}
	if code, out := runCmd(t, cs.args("block", "--authenticator", au.ID, "--reason", "stolen")...); code != 2 || !strings.Contains(out, "lost") || !strings.Contains(out, "compromised") {
		t.Errorf("bad reason exited %d:\n%s", code, out)
	}
	if code, out := runCmd(t, cs.args("block", "--authenticator", au.ID, "--reason", "compromised")...); code != 0 || !strings.Contains(out, "new MitID app") {
		t.Errorf("block exited %d:\n%s", code, out)
	}
	if code, out := runCmdIn(t, a.PIN()+"\n", base...); code != 1 || !strings.Contains(out, "permanently blocked") {
		t.Errorf("login with the blocked app exited %d:\n%s", code, out)
	}
	if code, out := runCmd(t, cs.args("reactivate", "--authenticator", au.ID)...); code != 1 || !strings.Contains(out, "permanently blocked") {
		t.Errorf("reactivating the blocked app exited %d:\n%s", code, out)
	}
	code, out := runCmd(t, cs.args("status")...)
	if code != 0 || !strings.Contains(out, "blocked (compromised)") || !strings.Contains(out, "deleted") {
		t.Errorf("status exited %d:\n%s", code, out)
	}
}

func TestLoginUsage(t *testing.T) {
	seedFile := secretFile(t, "00")
	for _, args := range [][]string{
		{"login", "--identity", "p"},
		{"login", "--identity", "p", "--authenticator", "a"},
		{"login", "--identity", "p", "--code", "1"},
		{"login", "--identity", "p", "--password-stdin"},
		{"login", "--identity", "p", "--password-stdin", "--code", "1", "--device", "sim:chip"},
		{"login", "--identity", "p", "--authenticator", "a", "--app-seed-file", seedFile},
		{"login", "--identity", "p", "--authenticator", "a", "--app-seed-file", seedFile, "--password-stdin"},
		{"login", "--identity", "p", "--app-seed-file", seedFile},
		{"login", "--identity", "p", "--authenticator", "a", "--app-seed-file", seedFile + ".missing"},
		{"login", "--identity", "p", "--authenticator", "a", "--app-seed", "00"},
		{"block", "--token-file", "/dev/null", "--identity", "p", "--authenticator", "a"},
		{"status", "--token-file", "/dev/null"},
		{"login", "--identity", "p", "--authenticator", "a", "--code", "123456", "--pin", "123456"},
	} {
		if code, out := runCmd(t, args...); code != 2 {
			t.Errorf("%v exited %d, want 2:\n%s", args, code, out)
		}
	}
	_ = device.KindChip
	// A seed left in the environment does not turn a password login into
	// an app login.
	t.Setenv(appSeedEnv, "00")
	if code, out := runCmdIn(t, "pw\n", "login", "--identity", "p", "--password-stdin"); code != 2 || !strings.Contains(out, "second factor") {
		t.Errorf("a password login with $%s set exited %d:\n%s", appSeedEnv, code, out)
	}
}

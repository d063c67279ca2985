package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.bug.st/serial"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, to change a record behind the server's back

	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/pskc"
)

// TestServerCommands is the operator's day against a real authbench serve
// with the support token in a file: a provisioning station exports the
// secrets of two code devices in factory mode (authbench sim --factory on
// ptys) into an encrypted PSKC document and seals them; pskc import puts
// them into the server; a person activates one with the code it shows
// (the secret went device → station → server intact); identity
// show|block|unblock; audit list recomputes every event's hash, and
// catches one changed behind the server's back.
func TestServerCommands(t *testing.T) {
	devs := startSim(t, "--code-display", "pty", "--audio-reader", "pty", "--factory")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "pskc.key")
	key := bytes.Repeat([]byte{0x5a}, 16)
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url, stop, stderr := startServe(t, append(serveArgs(dir), "--pskc-key-file", keyFile)...)
	tokens := filepath.Join(dir, "tokens")
	server := []string{"--server", url, "--token-file", tokens}
	ctx := context.Background()

	// The station: both devices, one document, then sealed.
	batch := filepath.Join(dir, "batch.pskc")
	var exp exportResult
	runJSON(t, "", &exp, "pskc", "export", "--device", "serial:"+devs[0].Path, "--device", "serial:"+devs[1].Path,
		"--pskc-key-file", keyFile, "--out", batch, "--seal", "--json")
	if len(exp.Keys) != 2 || exp.Keys[0].Serial != devs[0].Serial || exp.Keys[1].Kind != "audio-code-reader" || !exp.Keys[1].Sealed {
		t.Fatalf("export: %+v", exp)
	}
	if fi, err := os.Stat(batch); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the batch file: %v %v", fi, err)
	}
	doc, _ := os.ReadFile(batch)
	c, err := pskc.Parse(bytes.NewReader(doc), pskc.PreShared{pskc.DefaultKeyName: key})
	if err != nil || len(c.Keys) != 2 || len(c.Keys[0].Secret) == 0 || c.Keys[0].Algorithm != pskc.TOTP {
		t.Fatalf("the batch does not parse under the key: %v %+v", err, c)
	}
	if bytes.Contains(doc, c.Keys[0].Secret) || bytes.Contains(doc, []byte("PlainValue>"+hex.EncodeToString(c.Keys[0].Secret))) {
		t.Fatal("a secret is in the clear")
	}
	// A sealed device gives its secret to nobody, and nothing is written.
	again := filepath.Join(dir, "again.pskc")
	code, out := runCmd(t, "pskc", "export", "--device", "serial:"+devs[0].Path, "--pskc-key-file", keyFile, "--out", again)
	if code != 1 || !strings.Contains(out, "is sealed, not in factory mode") {
		t.Errorf("export from a sealed device exited %d: %s", code, out)
	}
	if _, err := os.Stat(again); err == nil {
		t.Error("a failed export wrote its file")
	}
	code, out = runCmd(t, "pskc", "export", "--device", "serial:"+devs[0].Path, "--out", again)
	if code != exitUsage || !strings.Contains(out, "never written in the clear") {
		t.Errorf("export without a key exited %d: %s", code, out)
	}

	// The server imports the batch, once.
	code, out = runCmd(t, append([]string{"pskc", "import", batch}, server...)...)
	if code != 0 || !strings.Contains(out, "imported 2 code device secrets: "+devs[0].Serial+", "+devs[1].Serial) {
		t.Fatalf("pskc import exited %d: %s", code, out)
	}
	t.Logf("pskc import: %s", firstLine(out))
	code, out = runCmd(t, append([]string{"pskc", "import", batch}, server...)...)
	if code != 1 || !strings.Contains(out, "already waiting") || !strings.Contains(out, "nothing was imported") {
		t.Errorf("a second import exited %d: %s", code, out)
	}
	tampered := filepath.Join(dir, "tampered.pskc")
	i := bytes.Index(doc, []byte("<pskc:ValueMAC>")) + len("<pskc:ValueMAC>")
	bad := append([]byte(nil), doc...)
	bad[i] ^= 'A' ^ 'B'
	if bad[i] == doc[i] {
		bad[i] = 'C'
	}
	os.WriteFile(tampered, bad, 0o600)
	code, out = runCmd(t, append([]string{"pskc", "import", tampered}, server...)...)
	if code != 1 || !strings.Contains(out, "integrity check") {
		t.Errorf("a tampered document exited %d: %s", code, out)
	}

	// The code display activates with the code it shows.
	support, err := client.New(url, client.Options{Token: supportToken(t, tokens)})
	if err != nil {
		t.Fatal(err)
	}
	defer support.CloseIdleConnections()
	if _, err := support.CreateIdentity(ctx, client.CreateIdentityRequest{ID: "alice", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	added, err := support.AddAuthenticator(ctx, "alice", client.AddRequest{Kind: "code-display", Serial: devs[0].Serial})
	if err != nil {
		t.Fatal(err)
	}
	port, err := serial.Open(devs[0].Path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	h := frame.NewHost(port, nil)
	a, err := client.ActivateCodeDevice(ctx, support, "alice", added.Authenticator.ID, h)
	h.Close()
	port.Close()
	if err != nil || a.State != client.StateActive {
		t.Fatalf("activating with the device's code: %+v %v", a, err)
	}

	// identity show, block, unblock.
	var shown client.Identity
	runJSON(t, "", &shown, append([]string{"identity", "show", "--identity", "alice", "--json"}, server...)...)
	if shown.State != "active" || len(shown.Authenticators) != 2 {
		t.Errorf("identity show: %+v", shown)
	}
	code, out = runCmd(t, append([]string{"identity", "show", "--identity", "alice"}, server...)...)
	if code != 0 || !strings.Contains(out, "identity alice: active, 2 authenticator(s)") {
		t.Errorf("identity show exited %d: %s", code, out)
	}
	t.Logf("identity show: %s", firstLine(out))
	code, out = runCmd(t, append([]string{"identity", "block", "--identity", "alice", "--reason", "misuse suspected"}, server...)...)
	if code != 0 || !strings.Contains(out, "identity alice blocked") || !strings.Contains(out, "temporarily-blocked (misuse suspected)") {
		t.Fatalf("identity block exited %d: %s", code, out)
	}
	t.Logf("identity block: %s", firstLine(out))
	if _, err := support.WithToken("").PasswordLogin(ctx, "alice", "correct horse battery", ""); !errors.Is(err, client.ErrIdentityBlocked) {
		t.Errorf("a login of the blocked identity: %v", err)
	}
	code, out = runCmd(t, append([]string{"identity", "block", "--identity", "alice", "--reason", "again"}, server...)...)
	if code != 1 || !strings.Contains(out, "blocked already") {
		t.Errorf("a second block exited %d: %s", code, out)
	}
	code, out = runCmd(t, append([]string{"identity", "unblock", "--identity", "alice", "--note", "cleared"}, server...)...)
	if code != 0 || !strings.Contains(out, "identity alice active again") {
		t.Fatalf("identity unblock exited %d: %s", code, out)
	}
	t.Logf("identity unblock: %s", firstLine(out))
	code, out = runCmd(t, append([]string{"identity", "unblock", "--identity", "alice"}, server...)...)
	if code != 1 || !strings.Contains(out, "is not blocked") {
		t.Errorf("a second unblock exited %d: %s", code, out)
	}
	code, out = runCmd(t, append([]string{"identity", "block", "--identity", "nobody", "--reason", "x"}, server...)...)
	if code != 1 || !strings.Contains(out, `no identity "nobody"`) {
		t.Errorf("blocking an unknown identity exited %d: %s", code, out)
	}

	// audit list: the trail, every hash recomputed.
	var trail auditList
	runJSON(t, "", &trail, append([]string{"audit", "list", "--identity", "alice", "--json"}, server...)...)
	var types []string
	for _, ev := range trail.Events {
		types = append(types, ev.Type)
	}
	for _, want := range []string{"identity.created", "authenticator.added", "authenticator.activated", "identity.blocked", "identity.unblocked"} {
		if !strings.Contains(strings.Join(types, " "), want) {
			t.Errorf("audit list lacks %s: %v", want, types)
		}
	}
	if len(trail.Mismatched) != 0 || len(trail.Unlinked) != 0 {
		t.Errorf("hashes that do not recompute: %v; events not linked: %v", trail.Mismatched, trail.Unlinked)
	}
	code, out = runCmd(t, append([]string{"audit", "list", "--identity", "alice"}, server...)...)
	if code != 0 || !strings.Contains(out, "each hash recomputes from its event and links to the one before") || !strings.Contains(out, "identity.blocked") {
		t.Errorf("audit list exited %d: %s", code, out)
	}
	t.Logf("audit list: %s", lastLine(out))
	var page auditList
	runJSON(t, "", &page, append([]string{"audit", "list", "--identity", "alice", "--limit", "2", "--json"}, server...)...)
	if len(page.Events) != 2 || page.Next == nil || *page.Next != page.Events[1].Seq {
		t.Errorf("one page of 2: %+v", page)
	}

	// A record changed behind the server's back no longer hashes to its
	// hash, and audit list says so.
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d: %s", code, stderr)
	}
	raw, err := sql.Open("sqlite", filepath.Join(dir, "authbench.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TRIGGER audit_append_only_update`,
		`UPDATE audit SET body = CAST(replace(CAST(body AS TEXT), 'misuse suspected', 'nothing happened') AS BLOB) WHERE event_type = 'identity.blocked'`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	url, _, _ = startServe(t, append(serveArgs(dir), "--pskc-key-file", keyFile)...)
	code, out = runCmd(t, "audit", "list", "--identity", "alice", "--server", url, "--token-file", tokens)
	if code != 1 || !strings.Contains(out, "HASH MISMATCH") || !strings.Contains(out, "1 of ") {
		t.Errorf("audit list of a changed record exited %d: %s", code, out)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// TestPSKCExportPassphrase: a station with a passphrase instead of a key
// (RFC 6030 §6.2), from $AUTHBENCH_PSKC_PASSPHRASE; a device left in
// factory mode gives the same secret again; an existing file is never
// overwritten; unreachable devices and servers exit 3.
func TestPSKCExportPassphrase(t *testing.T) {
	devs := startSim(t, "--code-display", "pty", "--factory")
	dir := t.TempDir()
	t.Setenv("AUTHBENCH_PSKC_PASSPHRASE", "a station passphrase")
	var secrets [][]byte
	for _, name := range []string{"one.pskc", "two.pskc"} {
		out := filepath.Join(dir, name)
		code, text := runCmd(t, "pskc", "export", "--device", "serial:"+devs[0].Path, "--out", out, "--key-name", "batch-7")
		if code != 0 || !strings.Contains(text, "wrote 1 secret ("+devs[0].Serial+") to "+out) || !strings.Contains(text, "PBKDF2") {
			t.Fatalf("export exited %d: %s", code, text)
		}
		t.Logf("pskc export: %s", lastLine(text))
		doc, _ := os.ReadFile(out)
		c, err := pskc.Parse(bytes.NewReader(doc), pskc.Passphrase("a station passphrase"))
		if err != nil || len(c.Keys) != 1 || c.Keys[0].Serial != devs[0].Serial {
			t.Fatalf("%s: %v %+v", name, err, c)
		}
		secrets = append(secrets, c.Keys[0].Secret)
	}
	if !bytes.Equal(secrets[0], secrets[1]) {
		t.Error("a device in factory mode gave two different secrets")
	}
	code, text := runCmd(t, "pskc", "export", "--device", "serial:"+devs[0].Path, "--out", filepath.Join(dir, "one.pskc"))
	if code != 1 || !strings.Contains(text, "never overwritten") {
		t.Errorf("export over an existing file exited %d: %s", code, text)
	}
	code, text = runCmd(t, "pskc", "export", "--device", "serial:"+filepath.Join(dir, "no-such-tty"), "--out", filepath.Join(dir, "three.pskc"))
	if code != exitUnreachable || !strings.Contains(text, "is the device connected?") {
		t.Errorf("export from a missing device exited %d: %s", code, text)
	}
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte("op-1 support-token-for-tests-0123456789\n"), 0o600)
	code, text = runCmd(t, "pskc", "import", filepath.Join(dir, "one.pskc"), "--server", "http://"+freePort(t, "tcp"), "--token-file", tokens)
	if code != exitUnreachable || !strings.Contains(text, "cannot reach the server") {
		t.Errorf("import into no server exited %d: %s", code, text)
	}
}

// TestServeSupportTokenForm: a support token is a bearer token of the form
// the API's contract states (RFC 6750 b64token, 16 to 256 characters);
// serve refuses a token file that holds another, naming the line and never
// the token.
func TestServeSupportTokenForm(t *testing.T) {
	for _, token := range []string{"token-with-a-bang!-0123456789", "token\"quoted\"-0123456789", strings.Repeat("t", 257)} {
		dir := t.TempDir()
		path := filepath.Join(dir, "tokens")
		if err := os.WriteFile(path, []byte("# tokens\nsupport "+token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := run(refusalContext(t), &env{stdout: &stdout, stderr: &stderr}, append([]string{"serve"}, append(serveArgs(dir), "--support-token-file", path)...))
		msg := stderr.String()
		if code != 1 || !strings.Contains(msg, "line 2: a token is at most 256 letters") || strings.Contains(msg, token) {
			t.Errorf("token %.20q: exit %d, stderr %q", token, code, msg)
		}
	}
}

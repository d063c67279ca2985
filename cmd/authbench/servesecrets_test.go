package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/server/service/servicetest"
)

// TestServeSupportTokenFileMode: like ssh with a private key, serve
// refuses a support token file that other users may read or write, and
// says which chmod fixes it.
func TestServeSupportTokenFileMode(t *testing.T) {
	const token = "scaletest-token-0123456789abcdef"
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o666} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "tokens")
			if err := os.WriteFile(path, []byte("support "+token+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := run(refusalContext(t), &env{stdout: &stdout, stderr: &stderr}, append([]string{"serve"}, append(serveArgs(dir), "--support-token-file", path)...))
			msg := stderr.String()
			if code != 1 || !strings.Contains(msg, "are too open") || !strings.Contains(msg, "chmod 600 "+path) {
				t.Fatalf("exit %d, stderr %q", code, msg)
			}
			if strings.Contains(msg, token) || strings.Contains(stdout.String(), "listening") {
				t.Fatalf("the token was printed, or the server started: %q %q", msg, stdout.String())
			}
		})
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "tokens")
			if err := os.WriteFile(path, []byte("support "+token+"\n"), mode); err != nil {
				t.Fatal(err)
			}
			url, stop, stderr := startServe(t, append(serveArgs(dir), "--support-token-file", path)...)
			if code, body := request(t, "GET", url+"/v1/identities/nobody", token, ""); code != 404 {
				t.Fatalf("with the token of a %v file: %d %s", mode, code, body)
			}
			if code := stop(); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
		})
	}
}

// TestServePSKCKeySources: the pre-shared PSKC key comes from a file of
// mode 0600 or from $AUTHBENCH_PSKC_KEY, so that it is not on the command
// line (/proc/PID/cmdline); an imported document opens with it. The
// command line form still works, with a warning.
func TestServePSKCKeySources(t *testing.T) {
	key := []byte("0123456789abcdef")
	keyHex := hex.EncodeToString(key)
	writeKey := func(t *testing.T, mode os.FileMode, text string) string {
		path := filepath.Join(t.TempDir(), "pskc.key")
		if err := os.WriteFile(path, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name string
		args []string
		env  string
		warn bool
	}{
		{"file", []string{"--pskc-key-file", writeKey(t, 0o600, keyHex+"\n")}, "", false},
		{"environment", nil, keyHex, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(pskcKeyEnv, tt.env)
			dir := t.TempDir()
			url, stop, stderr := startServe(t, append(serveArgs(dir), tt.args...)...)
			token := supportToken(t, filepath.Join(dir, "tokens"))
			dev := servicetest.CodeDevice{Serial: "KV-" + tt.name[:4] + string(rune('0'+i)), Secret: []byte("a secret of twenty!!")}
			doc, err := servicetest.PSKC(key, dev)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("POST", url+"/v1/pskc", bytes.NewReader(doc))
			req.Header.Set("Content-Type", "application/pskc+xml")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), dev.Serial) {
				t.Fatalf("PSKC import with the key from %s: %d %s", tt.name, resp.StatusCode, body)
			}
			if code := stop(); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if warned := strings.Contains(stderr.String(), "/proc/PID/cmdline"); warned != tt.warn {
				t.Errorf("warned about the command line: %v, want %v: %s", warned, tt.warn, stderr)
			}
			if strings.Contains(stderr.String(), keyHex) {
				t.Error("the PSKC key was logged")
			}
		})
	}
}

func TestServePSKCKeyRefusals(t *testing.T) {
	keyHex := "000102030405060708090a0b0c0d0e0f"
	dir := t.TempDir()
	file := func(name string, mode os.FileMode, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	open := file("open.key", 0o644, keyHex)
	tests := []struct {
		name     string
		args     []string
		env      string
		wantCode int
		wantErr  string
	}{
		{"readable by others", []string{"--pskc-key-file", open}, "", 1, "chmod 600 " + open},
		{"not hex", []string{"--pskc-key-file", file("bad.key", 0o600, "not a key")}, "", 1, "in hex"},
		{"short", []string{"--pskc-key-file", file("short.key", 0o600, "0011")}, "", 2, "16, 24 or 32 bytes"},
		{"missing file", []string{"--pskc-key-file", filepath.Join(dir, "none")}, "", 1, "no such file"},
		{"file and environment", []string{"--pskc-key-file", file("ok.key", 0o600, keyHex)}, keyHex, 2, "give the PSKC key once"},
		{"environment not hex", nil, "zz", 1, "$" + pskcKeyEnv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(pskcKeyEnv, tt.env)
			var stdout, stderr bytes.Buffer
			code := run(refusalContext(t), &env{stdout: &stdout, stderr: &stderr}, append([]string{"serve"}, append(serveArgs(t.TempDir()), tt.args...)...))
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("exit %d, stderr %q", code, stderr.String())
			}
			if strings.Contains(stderr.String(), keyHex) {
				t.Fatal("the key was printed")
			}
		})
	}
}

// refusalContext bounds a serve that should refuse to start: should it
// start after all, it stops after a while and the test fails on its exit
// status instead of hanging.
func refusalContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// supportToken returns the first token of a support token file.
func supportToken(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") {
			return f[1]
		}
	}
	t.Fatalf("no token in %s", path)
	return ""
}

// TestServeArgon2Flags: the argon2id budget and wait are checked and
// logged at start.
func TestServeArgon2Flags(t *testing.T) {
	for _, tt := range []struct{ args []string }{
		{[]string{"--argon2-memory-budget", "0"}},
		{[]string{"--argon2-wait", "1m"}},
		{[]string{"--argon2-wait", "-1s"}},
	} {
		var stdout, stderr bytes.Buffer
		code := run(refusalContext(t), &env{stdout: &stdout, stderr: &stderr}, append([]string{"serve"}, append(serveArgs(t.TempDir()), tt.args...)...))
		if code != 2 || !strings.Contains(stderr.String(), tt.args[0]) {
			t.Fatalf("%v: exit %d, stderr %q", tt.args, code, stderr.String())
		}
	}
	_, stop, stderr := startServe(t, append(serveArgs(t.TempDir()), "--argon2-memory-budget", "57", "--argon2-wait", "5s")...)
	if code := stop(); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if log := stderr.String(); !strings.Contains(log, "argon2id_memory_budget_mib=57") || !strings.Contains(log, "concurrent_hashes=3") || !strings.Contains(log, "wait=5s") {
		t.Fatalf("the start did not log the budget: %s", log)
	}
}

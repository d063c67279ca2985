package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/authbench/authbench/server/api/apitest"
)

// lockedBuffer collects a command's stderr from its goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServe runs `authbench serve ARGS` in-process until it prints its
// URL, and returns the URL and a function that stops it (like SIGINT) and
// returns its exit status.
func startServe(t *testing.T, args ...string) (url string, stop func() int, stderr *lockedBuffer) {
	t.Helper()
	contract := apitest.ForTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr = &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: pw, stderr: stderr, wrapAPI: contract.Wrap}, append([]string{"serve"}, args...))
		pw.Close()
	}()
	var once sync.Once
	code := 0
	stop = func() int {
		once.Do(func() {
			cancel()
			go io.Copy(io.Discard, pr)
			code = <-done
		})
		return code
	}
	t.Cleanup(func() { stop() })
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "authbench server listening on "); ok {
			go io.Copy(io.Discard, pr)
			return u, stop, stderr
		}
	}
	t.Fatalf("serve ended before listening (exit %d): %s", stop(), stderr.String())
	return "", nil, nil
}

func serveArgs(dir string) []string {
	return []string{
		"--addr", "127.0.0.1:0",
		"--db", filepath.Join(dir, "authbench.db"),
		"--master-key", filepath.Join(dir, "master.key"),
		"--support-token-file", filepath.Join(dir, "tokens"),
		"--attestation-roots", "../../testdata/attestation/ca.pem",
		"--log-level", "debug",
	}
}

func request(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The first run creates the master key and a support token file (0600);
// a restart on the same files keeps the data; SIGINT-like cancellation
// shuts down cleanly.
func TestServeFirstRunAndRestart(t *testing.T) {
	dir := t.TempDir()
	url, stop, stderr := startServe(t, serveArgs(dir)...)
	for _, f := range []string{"master.key", "tokens"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", f, fi.Mode().Perm())
		}
	}
	tokens, err := os.ReadFile(filepath.Join(dir, "tokens"))
	if err != nil {
		t.Fatal(err)
	}
	var token string
	for _, line := range strings.Split(string(tokens), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") {
			if f[0] != "support" {
				t.Fatalf("operator %q", f[0])
			}
			token = f[1]
		}
	}
	if token == "" {
		t.Fatalf("no token in %q", tokens)
	}
	if code, body := request(t, "GET", url+"/healthz", "", ""); code != 200 {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, body := request(t, "POST", url+"/v1/identities", token, `{"id":"alice","password":"correct horse"}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr.String(), token) {
		t.Fatal("the support token was logged")
	}
	if !strings.Contains(stderr.String(), "master key") {
		t.Errorf("no warning about the new master key: %s", stderr)
	}

	url, stop, stderr = startServe(t, serveArgs(dir)...)
	if code, body := request(t, "GET", url+"/v1/identities/alice", token, ""); code != 200 || !strings.Contains(body, `"kind":"password"`) {
		t.Fatalf("after restart: %d %s", code, body)
	}
	if code, _ := request(t, "GET", url+"/v1/identities/alice", "wrong-token", ""); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

func TestServeRefusals(t *testing.T) {
	dir := t.TempDir()
	badTokens := filepath.Join(dir, "bad-tokens")
	os.WriteFile(badTokens, []byte("support\n"), 0o600)
	shortKey := filepath.Join(dir, "short-key")
	os.WriteFile(shortKey, []byte("0011\n"), 0o600)
	shortTokens := filepath.Join(dir, "short-tokens")
	os.WriteFile(shortTokens, []byte("support abc\n"), 0o600)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"postgres", []string{"--db", "postgres://user:hunter2@db/authbench"}, 1, "cannot open the PostgreSQL store"},
		{"log level", []string{"--log-level", "loud"}, 2, "--log-level"},
		{"argument", []string{"extra"}, 2, "unexpected argument"},
		{"token file", []string{"--support-token-file", badTokens}, 1, "operator-id token"},
		{"short token", []string{"--support-token-file", shortTokens}, 1, "at least"},
		{"roots", []string{"--attestation-roots", filepath.Join(dir, "none.pem")}, 1, "--attestation-roots"},
		{"pskc key", []string{"--pskc-key-file", shortKey}, 2, "16, 24 or 32 bytes"},
		{"pskc key on the command line", []string{"--pskc-key", "00112233445566778899aabbccddeeff"}, 2, "unknown flag --pskc-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(serveArgs(t.TempDir()), tt.args...)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), &env{stdout: &stdout, stderr: &stderr}, append([]string{"serve"}, args...))
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("exit %d, stderr %q", code, stderr.String())
			}
			if strings.Contains(stderr.String(), "hunter2") {
				t.Fatal("the database password was printed")
			}
		})
	}
}

// TestServeSettings: serve takes its settings from a JSON --config file,
// the environment over the file, and flags over both; a key that names no
// flag is an error; the secrets have no flag.
func TestServeSettings(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "serve.json")
	write := func(v string) {
		if err := os.WriteFile(cfg, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"addr": "127.0.0.1:0", "db": "` + filepath.Join(dir, "cfg.db") + `", "master-key": "` + filepath.Join(dir, "master.key") +
		`", "support-token-file": "` + filepath.Join(dir, "tokens") + `", "attestation-roots": "../../testdata/attestation/ca.pem", "log-level": "error"}`)

	// The file alone: its paths are used, and at level error the warning
	// about the new token file is not logged.
	url, stop, stderr := startServe(t, "--config", cfg)
	if code, body := request(t, "GET", url+"/healthz", "", ""); code != 200 {
		t.Fatalf("healthz %d %s", code, body)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, f := range []string{"cfg.db", "master.key", "tokens"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the config file's %s was not used: %v", f, err)
		}
	}
	if strings.Contains(stderr.String(), "level=WARN") {
		t.Errorf("log-level error from the file was not used:\n%s", stderr)
	}

	// The environment wins over the file.
	os.Remove(filepath.Join(dir, "tokens"))
	t.Setenv("AUTHBENCH_LOG_LEVEL", "info")
	_, stop, stderr = startServe(t, "--config", cfg)
	stop()
	if !strings.Contains(stderr.String(), "created a support token file") {
		t.Errorf("$AUTHBENCH_LOG_LEVEL=info did not win over the file:\n%s", stderr)
	}

	// A flag wins over both.
	os.Remove(filepath.Join(dir, "tokens"))
	_, stop, stderr = startServe(t, "--config", cfg, "--log-level", "error")
	stop()
	if strings.Contains(stderr.String(), "level=WARN") {
		t.Errorf("--log-level error did not win over the environment:\n%s", stderr)
	}

	// A misspelt key is an error, not silently ignored.
	write(`{"adr": "127.0.0.1:0"}`)
	var out bytes.Buffer
	if code := run(context.Background(), &env{stdout: &out, stderr: &out}, []string{"serve", "--config", cfg}); code != exitUsage || !strings.Contains(out.String(), "no flag named adr") {
		t.Errorf("a misspelt key exited %d:\n%s", code, out.String())
	}
}

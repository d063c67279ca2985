package scaletest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authbench/authbench/server/secrets"
)

// The tests run the real binary: TestMain removes the directory it was
// built into and checks that every server process it started has exited
// and that no goroutine of the tests is left running.

var (
	buildOnce sync.Once
	buildDir  string // where the binary is built; removed by TestMain
	binPath   string // the authbench binary, after buildOnce
	buildErr  error
	modRoot   string // the module root, after buildOnce

	allProcs procRegistry
)

func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if err := allProcs.exited(); err != nil {
		fmt.Fprintln(os.Stderr, "scaletest:", err)
		code = 1
	}
	if code == 0 {
		if err := goroutinesSettle(before, 10*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "scaletest:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// goroutinesSettle waits until no more goroutines run than before (the
// tests' HTTP connections and process waiters have ended), failing after
// guard.
func goroutinesSettle(before int, guard time.Duration) error {
	deadline := time.Now().Add(guard)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return nil
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			return fmt.Errorf("%d goroutines still running after the tests (%d before):\n%s", n, before, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// authbench returns the path of the authbench binary, building it on the
// first call (go build ./cmd/authbench in the module root).
func authbench(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		modRoot, buildErr = moduleRoot()
		if buildErr != nil {
			return
		}
		if buildDir, buildErr = os.MkdirTemp("", "scaletest-bin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "authbench")
		cmd := exec.Command(goTool(), "build", "-o", binPath, "./cmd/authbench")
		cmd.Dir = modRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/authbench: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// goTool returns the go command: the one in PATH, else $GOROOT/bin/go.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// moduleRoot returns the directory of go.mod (go env GOMOD).
func moduleRoot() (string, error) {
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside the authbench module")
	}
	return filepath.Dir(mod), nil
}

// serverConfig is what every replica of one test shares.
type serverConfig struct {
	DB          string   // SQLite file or postgres:// URL
	MasterKey   string   // master key file
	TokenFile   string   // support token file
	RootsFile   string   // attestation roots (PEM)
	PSKCKeyFile string   // pre-shared PSKC key (hex), mode 0600
	Extra       []string // more arguments
	Env         []string // more environment variables (NAME=VALUE)
	// DefaultLimits runs the servers with their default login rate
	// limits instead of limits far above any burst of the tests.
	DefaultLimits bool
}

// args returns the command line of `authbench serve` for cfg.
func (cfg serverConfig) args() []string {
	a := []string{"serve",
		"--addr", "127.0.0.1:0",
		"--db", cfg.DB,
		"--master-key", cfg.MasterKey,
		"--support-token-file", cfg.TokenFile,
		"--attestation-roots", cfg.RootsFile,
		"--pskc-key-file", cfg.PSKCKeyFile,
		"--rp-id", "localhost",
		"--log-level", "warn",
		// No burst should be answered 503 busy: a burst of 64 wrong PINs
		// or passwords queues for the argon2id budget (the default, two
		// hashes per CPU) as long as serve allows. The argon2id tests give
		// their own budget and wait in Extra.
		"--argon2-wait", argon2Wait,
	}
	if !cfg.DefaultLimits {
		// Every attempt of a burst must reach the lockout logic at once.
		a = append(a, "--login-limit-source", "100000/1ms", "--login-limit-authenticator", "100000/1ms")
	}
	return append(a, cfg.Extra...)
}

// listening is the line `authbench serve` prints on stdout once it serves.
const listening = "authbench server listening on "

// server is one running `authbench serve` process.
type server struct {
	URL  string
	cmd  *exec.Cmd
	out  *lineWatcher  // stdout
	log  *syncBuffer   // stderr
	done chan struct{} // closed when the process has exited
	err  error         // the exit status, once done is closed
}

// startServer starts `authbench serve` with cfg and waits until it prints
// its URL. It fails when the process exits first or says nothing within a
// generous guard time; errNotSupported comes back when serve refuses the
// database URL because this build has no PostgreSQL store.
func startServer(t testing.TB, cfg serverConfig) (*server, error) {
	t.Helper()
	bin := authbench(t)
	// The database password goes in $PGPASSWORD (which pgx reads), not on
	// the command line, where every user could read it.
	env := append(childEnv(), cfg.Env...)
	if u, err := url.Parse(cfg.DB); err == nil && u.User != nil && strings.HasPrefix(u.Scheme, "postgres") {
		if pw, ok := u.User.Password(); ok {
			env = append(env, "PGPASSWORD="+pw)
			u.User = url.User(u.User.Username())
			cfg.DB = u.String()
		}
	}
	cmd := exec.Command(bin, cfg.args()...)
	cmd.Env = env
	s := &server{cmd: cmd, out: newLineWatcher(listening), log: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = s.out
	cmd.Stderr = s.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start authbench serve: %w", err)
	}
	allProcs.add(s)
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	select {
	case url := <-s.out.found:
		s.URL = strings.TrimSpace(url)
		return s, nil
	case <-s.done:
		msg := strings.TrimSpace(s.log.String())
		if strings.Contains(msg, "PostgreSQL support arrives") || strings.Contains(msg, "not supported") {
			return nil, fmt.Errorf("%w: %s", errNotSupported, msg)
		}
		return nil, fmt.Errorf("authbench serve exited before listening (%v): %s", s.err, msg)
	case <-time.After(30 * time.Second): // failure guard only
		s.kill()
		return nil, fmt.Errorf("authbench serve printed no URL in 30 s: %s", s.log.String())
	}
}

// errNotSupported: serve does not take a postgres:// database yet.
var errNotSupported = errors.New("authbench serve does not support this database")

// childEnv is the test's environment without the variables that would
// override the flags the tests give (a master key, a PSKC key or
// passphrase).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, secrets.EnvVar+"=") || strings.HasPrefix(kv, "AUTHBENCH_PSKC_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// kill sends SIGKILL (kill -9: no shutdown code runs) and waits for the
// process to be gone.
func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// stop asks the server to shut down (SIGTERM) and waits; after a guard
// time it kills it.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.kill()
	}
}

// procRegistry remembers every process started, so that TestMain can
// prove none outlives the tests.
type procRegistry struct {
	mu    sync.Mutex
	procs []*server
}

func (r *procRegistry) add(s *server) {
	r.mu.Lock()
	r.procs = append(r.procs, s)
	r.mu.Unlock()
}

// exited returns an error naming the processes still running.
func (r *procRegistry) exited() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var running []string
	for _, s := range r.procs {
		select {
		case <-s.done:
		default:
			running = append(running, fmt.Sprintf("pid %d (%s)", s.cmd.Process.Pid, s.URL))
			s.kill()
		}
	}
	if len(running) > 0 {
		return fmt.Errorf("server processes left running after the tests: %s", strings.Join(running, ", "))
	}
	return nil
}

// lineWatcher is a process's stdout: it sends the rest of the first line
// that starts with prefix on found, and keeps nothing else.
type lineWatcher struct {
	prefix string
	found  chan string

	mu   sync.Mutex
	line []byte
	sent bool
}

func newLineWatcher(prefix string) *lineWatcher {
	return &lineWatcher{prefix: prefix, found: make(chan string, 1)}
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range p {
		if b != '\n' {
			if len(w.line) < 4096 {
				w.line = append(w.line, b)
			}
			continue
		}
		if s := string(w.line); !w.sent && strings.HasPrefix(s, w.prefix) {
			w.found <- strings.TrimPrefix(s, w.prefix)
			w.sent = true
		}
		w.line = w.line[:0]
	}
	return len(p), nil
}

// syncBuffer is a bytes.Buffer safe for the process's writer goroutine
// and the test reading it; it keeps the last 64 KiB.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if n := b.buf.Len(); n > 64<<10 {
		b.buf.Next(n - 64<<10)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runCommand runs the authbench binary with args (e.g. "audit", "verify")
// and returns its combined output.
func runCommand(ctx context.Context, t testing.TB, args ...string) (string, error) {
	t.Helper()
	args = slices.Clone(args)
	env := childEnv()
	// As for serve: a database password goes in $PGPASSWORD, not on the
	// command line.
	for i := 1; i < len(args); i++ {
		u, err := url.Parse(args[i])
		if args[i-1] != "--db" || err != nil || u.User == nil || !strings.HasPrefix(u.Scheme, "postgres") {
			continue
		}
		if pw, ok := u.User.Password(); ok {
			env = append(env, "PGPASSWORD="+pw)
			u.User = url.User(u.User.Username())
			args[i] = u.String()
		}
	}
	cmd := exec.CommandContext(ctx, authbench(t), args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

package scaletest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/internal/testenv"
	"github.com/authbench/authbench/server/api/apitest"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/sim/chip"
)

// backend is a kind of database the servers share.
type backend struct {
	name     string
	replicas int
	// open returns the database for one test (an SQLite path, a fresh
	// PostgreSQL database URL) or skips the test.
	open func(t testing.TB) string
}

var backends = []backend{
	{name: "sqlite", replicas: 1, open: func(t testing.TB) string { return filepath.Join(t.TempDir(), "authbench.db") }},
	{name: "postgres", replicas: 3, open: freshPostgres},
}

// forEachBackend runs fn as a subtest per backend, all at the same time.
// The subtests are not marked parallel (they spend most of their time
// waiting for the servers' rate limits, not on the CPU), so that
// `go test -parallel` does not queue them behind one another.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	concurrently(t, len(backends), func(i int) string { return backends[i].name }, func(t *testing.T, i int) { fn(t, backends[i]) })
}

// concurrently runs n subtests at once, each in its own goroutine, and
// waits for them all.
func concurrently(t *testing.T, n int, name func(i int) string, fn func(t *testing.T, i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(name(i), func(t *testing.T) { fn(t, i) })
		}()
	}
	wg.Wait()
}

// cluster is the servers of one test on one database, with the files
// they share.
type cluster struct {
	t       testing.TB
	backend string
	cfg     serverConfig
	pskcKey []byte
	token   string // the support token

	mu      sync.Mutex
	servers []*server
	srcs    *sources
}

// newCluster starts n replicas of `authbench serve` on db, one after the
// other, sharing one master key, one support-token file, one PSKC key file
// and the test attestation CA; opts change their configuration first. They
// are stopped at the end of the test.
func newCluster(t testing.TB, name, db string, n int, opts ...func(*serverConfig)) *cluster {
	t.Helper()
	c := newClusterFiles(t, name, db)
	keys, err := secrets.GenerateKeyring(nil)
	fatal(t, err)
	keyFile, err := keys.MarshalKeyFile()
	fatal(t, err)
	for _, o := range opts {
		o(&c.cfg)
	}
	fatal(t, os.WriteFile(c.cfg.MasterKey, keyFile, 0o600))
	for range n {
		s, err := startServer(t, c.cfg)
		if errors.Is(err, errNotSupported) {
			testenv.Missing(t, "postgresql", err.Error())
		}
		fatal(t, err)
		c.add(s)
	}
	return c
}

// newClusterWith is newCluster with extra command line arguments for
// `authbench serve`.
func newClusterWith(t testing.TB, name, db string, n int, extra ...string) *cluster {
	t.Helper()
	return newCluster(t, name, db, n, func(cfg *serverConfig) { cfg.Extra = append(cfg.Extra, extra...) })
}

// withDefaultLimits runs the cluster's servers with their default login
// rate limits (serverConfig.DefaultLimits).
func withDefaultLimits(cfg *serverConfig) { cfg.DefaultLimits = true }

// clientAt returns a client without credentials of server i whose
// connections come from source address slot.
func (c *cluster) clientAt(i, slot int) *client.Client { return c.dial(i, slot, "") }

// newClusterFiles returns a cluster without servers on db, with its
// support-token file, PSKC key file and attestation CA written; the master
// key file is named but not written.
func newClusterFiles(t testing.TB, name, db string, extra ...string) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{t: t, backend: name, pskcKey: random(t, 16), token: hex.EncodeToString(random(t, 24)), srcs: newSources(t)}
	c.cfg = serverConfig{
		DB:          db,
		MasterKey:   filepath.Join(dir, "master.key"),
		TokenFile:   filepath.Join(dir, "support-tokens"),
		RootsFile:   filepath.Join(dir, "attestation-ca.pem"),
		PSKCKeyFile: filepath.Join(dir, "pskc.key"),
		Extra:       extra,
	}
	fatal(t, os.WriteFile(c.cfg.TokenFile, []byte("scaletest "+c.token+"\n"), 0o600))
	fatal(t, os.WriteFile(c.cfg.RootsFile, chip.TestCACertPEM(), 0o600))
	fatal(t, os.WriteFile(c.cfg.PSKCKeyFile, []byte(hex.EncodeToString(c.pskcKey)+"\n"), 0o600))
	t.Cleanup(c.close)
	return c
}

// add makes s one of the cluster's servers.
func (c *cluster) add(s *server) {
	c.mu.Lock()
	c.servers = append(c.servers, s)
	c.mu.Unlock()
}

// close stops the servers (their logs go to the test log when it failed)
// and the clients' connections.
func (c *cluster) close() {
	c.mu.Lock()
	servers := c.servers
	c.mu.Unlock()
	for _, s := range servers {
		s.stop()
		if c.t.Failed() {
			c.t.Logf("log of the server at %s:\n%s", s.URL, tail(s.log.String(), 4000))
		}
	}
	c.srcs.close()
}

// replicas returns how many servers the cluster has.
func (c *cluster) replicas() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.servers)
}

// client returns a client of server i (mod the number of servers), whose
// connections come from source address slot i, with token (""
// for none).
func (c *cluster) client(i int, token string) *client.Client { return c.dial(i, i, token) }

// dial returns a client of server i (mod the number of servers) with
// token ("" for none), whose connections come from source address slot.
func (c *cluster) dial(i, slot int, token string) *client.Client {
	c.mu.Lock()
	s := c.servers[i%len(c.servers)]
	c.mu.Unlock()
	cl, err := client.New(s.URL, client.Options{
		HTTPClient: &http.Client{Transport: c.srcs.transport(slot), Timeout: 30 * time.Second},
		Token:      token,
		Origin:     origin,
	})
	fatal(c.t, err)
	return cl
}

// support returns a support client of server i.
func (c *cluster) support(i int) *client.Client { return c.client(i, c.token) }

// anon returns a client of server i without credentials.
func (c *cluster) anon(i int) *client.Client { return c.client(i, "") }

// sources hands out HTTP transports whose connections come from distinct
// loopback addresses (127.0.0.2 and up), as many clients on many machines
// would. Every exchange through them is checked against the OpenAPI
// document (apitest.Validator.Transport): a server answering anything the
// contract does not describe fails the test. The server's per-source login rate limit (server/api: bursts of
// 60, then 10 per second, per client address) is meant for one client
// spraying many identities; these tests are many clients.
type sources struct {
	mu   sync.Mutex
	tr   map[int]*http.Transport
	bind bool
	// contract checks the exchanges of a test; nil in benchmarks, whose
	// clients' time is the server's measure.
	contract *apitest.Validator
}

// sourceSlots is the number of distinct source addresses used.
const sourceSlots = 200

func newSources(t testing.TB) *sources {
	s := &sources{tr: map[int]*http.Transport{}, bind: canBindLoopback()}
	if _, bench := t.(*testing.B); !bench {
		s.contract = apitest.ForTest(t)
	}
	return s
}

// transport returns the transport of source address slot i (mod
// sourceSlots), checked against the contract.
func (s *sources) transport(i int) http.RoundTripper {
	slot := i % sourceSlots
	s.mu.Lock()
	defer s.mu.Unlock()
	tr := s.tr[slot]
	if tr == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		if s.bind {
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+slot))}
		}
		tr = &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
		s.tr[slot] = tr
	}
	if s.contract == nil {
		return tr
	}
	return s.contract.Transport(tr)
}

func (s *sources) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tr := range s.tr {
		tr.CloseIdleConnections()
	}
}

var (
	bindOnce sync.Once
	bindOK   bool
)

// canBindLoopback reports whether connections can come from 127.0.0.2
// (Linux routes all of 127/8 to the loopback interface; other systems may
// not).
func canBindLoopback() bool {
	bindOnce.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return
		}
		defer ln.Close()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
		conn, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		conn.Close()
		bindOK = true
	})
	return bindOK
}

func fatal(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func random(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	fatal(t, err)
	return b
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// testContext returns a context that ends well before the test binary's
// deadline (a failure guard: nothing here should take that long).
func testContext(t *testing.T) context.Context {
	deadline := time.Now().Add(2 * time.Minute)
	if d, ok := t.Deadline(); ok && d.Add(-5*time.Second).Before(deadline) {
		deadline = d.Add(-5 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// uniqueName returns prefix followed by random hex, for IDs and database
// names that must not collide between runs.
func uniqueName(t testing.TB, prefix string) string {
	return prefix + strings.ToLower(hex.EncodeToString(random(t, 6)))
}

// checks returns how many guesses at the secrets of authenticators of kind
// the servers have evaluated (authbench_verifier_checks_total, summed over
// the replicas).
func (c *cluster) checks(t testing.TB, ctx context.Context, kind string) int {
	t.Helper()
	n := 0
	prefix := `authbench_verifier_checks_total{kind="` + kind + `"} `
	for i := range c.replicas() {
		m, err := c.anon(i).Metrics(ctx)
		fatal(t, err)
		for _, line := range strings.Split(m, "\n") {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				k, err := strconv.Atoi(strings.TrimSpace(v))
				fatal(t, err)
				n += k
			}
		}
	}
	return n
}

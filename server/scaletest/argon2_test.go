package scaletest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/secrets"
)

// The attacker of issue #10: many password adds or logins at once, each an
// argon2id computation of 19 MiB (secrets.DefaultParams), used to drive the
// server's memory up (48 adds refused 409 raised the peak by ~1.6 GiB).
// The servers here run with the default argon2id parameters and a budget
// of argon2Slots computations; the bound on the peak resident memory is
// derived from it, not from the number of requests.
const (
	argon2Concurrent = 64 // password adds, then logins, sent at once
	argon2Slots      = 4  // computations of 19 MiB the budget holds
	// gcFactor: a freed argon2id block stays in the Go heap until the
	// next collection, which GOGC=100 starts when the heap has doubled
	// since the last one (serve's default --gc-headroom, the argon2id
	// budget, no later while the blocks are live), and the concurrent
	// collector overshoots that goal while the next 19 MiB blocks are
	// allocated: measured here, the peak grew by 2 to 2.8 times the
	// budget under GOGC=100, by 2 to 2.3 times with the headroom.
	gcFactor = 3
	// rssMargin covers what else a burst of requests allocates (goroutines,
	// connections, JSON, the store's caches) besides argon2id blocks.
	rssMargin = 64 << 20
)

// argon2MiB is the memory cost of one argon2id computation with the
// server's parameters, in MiB (rounded up).
var argon2MiB = (uint64(secrets.DefaultParams().Memory) + 1023) >> 10

// TestArgon2MemoryBounded sends 64 password adds at once, then 64
// password logins at once, to `authbench serve` (one on SQLite, three
// replicas on PostgreSQL) and asserts that no server's peak resident
// memory (VmHWM in /proc/PID/status) grew by more than the argon2id
// budget allows: slots × 19 MiB, twice for the garbage collector, plus a
// margin. Every request is answered as the API says: 201 or 200, or, when
// the shared machine is so slow that a request waited argon2Wait for room,
// 503 busy with Retry-After (such an add is sent again before the logins);
// never a broken connection.
//
// It is not parallel: it runs alone, before the parallel tests, so that
// its 256 argon2id computations do not starve their bursts of CPU (and
// theirs do not blur its figures).
func TestArgon2MemoryBounded(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc/PID/status to read the peak resident memory from")
	}
	budget := argon2Slots * argon2MiB
	forEachBackend(t, func(t *testing.T, b backend) {
		db := b.open(t)
		c := newClusterWith(t, b.name, db, b.replicas, "--argon2-memory-budget", strconv.FormatUint(budget, 10), "--argon2-wait", argon2Wait)
		ctx := testContext(t)
		ids := setupPasswordless(t, ctx, c, "argon2-", argon2Concurrent)
		base := c.peaks(t)

		pw := func(i int) string { return "a password of " + ids[i] + " ✓" }
		add := func(i int) (string, string) {
			return "/v1/identities/" + ids[i] + "/authenticators", fmt.Sprintf(`{"kind":"password","label":"pw","password":%q}`, pw(i))
		}
		adds := c.passwordBurst(ctx, len(ids), add, c.token)
		afterAdds := c.peaks(t)
		t.Logf("%d password adds at once over %d server(s): %s", len(ids), c.replicas(), adds)
		adds.check(t, "password adds", "201")
		c.addAgain(t, ctx, ids, add)

		// The first step of a login: the password (the identities have no
		// second factor; a right password is answered 200 all the same).
		logins := c.passwordBurst(ctx, len(ids), func(i int) (string, string) {
			return "/v1/identities/" + ids[i] + "/login/password", fmt.Sprintf(`{"password":%q}`, pw(i))
		}, "")
		after := c.peaks(t)
		t.Logf("%d password logins at once over %d server(s): %s", len(ids), c.replicas(), logins)
		logins.check(t, "password logins", "200")
		bound := uint64(gcFactor*budget<<20) + rssMargin
		for i := range base {
			t.Logf("server %d: peak resident memory %d MiB after set-up, %d MiB after the adds, %d MiB after the logins (+%d MiB; bound +%d MiB: %d × %d MiB × %d + %d MiB)",
				i, base[i]>>20, afterAdds[i]>>20, after[i]>>20, (after[i]-base[i])>>20, bound>>20, argon2Slots, argon2MiB, gcFactor, rssMargin>>20)
			if after[i] > base[i]+bound {
				t.Errorf("server %d: the peak resident memory grew by %d MiB under %d concurrent password requests; the argon2id budget of %d MiB allows at most %d MiB",
					i, (after[i]-base[i])>>20, argon2Concurrent, budget, bound>>20)
			}
		}
	})
}

// TestArgon2Busy runs a server whose budget holds one argon2id
// computation and that does not wait for room: of 64 password adds sent
// at once, those that find the budget taken are refused with 503 busy and
// a Retry-After header, nothing is stored for them, and each succeeds
// when sent again.
func TestArgon2Busy(t *testing.T) {
	t.Parallel()
	db := backends[0].open(t)
	c := newClusterWith(t, "sqlite", db, 1, "--argon2-memory-budget", strconv.FormatUint(argon2MiB, 10), "--argon2-wait", "0s")
	ctx := testContext(t)
	ids := setupPasswordless(t, ctx, c, "busy-", argon2Concurrent)
	base := c.peaks(t)
	add := func(i int) (string, string) {
		return "/v1/identities/" + ids[i] + "/authenticators", `{"kind":"password","label":"pw","password":"correct horse battery staple"}`
	}
	got := c.passwordBurst(ctx, len(ids), add, c.token)
	after := c.peaks(t)
	t.Logf("%d password adds at once, budget for one argon2id computation, no wait: %s; peak resident memory %d → %d MiB",
		len(ids), got, base[0]>>20, after[0]>>20)
	got.check(t, "password adds", "201")
	if got.get("503 busy") == 0 {
		t.Errorf("no request was refused busy although %d arrived at once for one argon2id slot: %s", len(ids), got)
	}
	if bound := uint64(gcFactor*argon2MiB<<20) + rssMargin; after[0] > base[0]+bound {
		t.Errorf("the peak resident memory grew by %d MiB; one argon2id slot allows %d MiB", (after[0]-base[0])>>20, bound>>20)
	}
	// The refused adds stored nothing and go through when sent again.
	c.addAgain(t, ctx, ids, add)
}

// argon2Wait is how long the servers of TestArgon2MemoryBounded let a
// request wait for room: as long as serve allows, so that only a machine
// starved of CPU makes them answer 503 busy.
const argon2Wait = "20s"

// check fails t unless every answer of h is ok, or 503 busy with a
// Retry-After header.
func (h *httpTally) check(t *testing.T, what, ok string) {
	t.Helper()
	if o := h.others(ok, "503 busy"); len(o) > 0 {
		t.Errorf("%s answered %v, want %s or 503 busy", what, o, ok)
	}
	if h.retryAfter != h.get("503 busy") {
		t.Errorf("%s: %d of %d busy answers carried Retry-After", what, h.retryAfter, h.get("503 busy"))
	}
}

// addAgain sends add(i) again, after a while, for every identity that has
// no authenticator yet (its add was refused busy), until it is stored; an
// identity with more than one authenticator means a refused add stored
// something.
func (c *cluster) addAgain(t *testing.T, ctx context.Context, ids []string, add func(i int) (string, string)) {
	t.Helper()
	for i := range ids {
		p, err := c.support(0).Identity(ctx, ids[i])
		fatal(t, err)
		if n := len(p.Authenticators); n > 1 {
			t.Fatalf("identity %s has %d authenticators", ids[i], n)
		}
		if len(p.Authenticators) == 1 {
			continue
		}
		path, body := add(i)
		for {
			code, _, _ := c.post(ctx, i, path, body, c.token)
			if code == "201" {
				break
			}
			if code != "503 busy" {
				t.Fatalf("identity %s: the add sent again was answered %s", ids[i], code)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// setupPasswordless creates n identities without authenticators.
func setupPasswordless(t *testing.T, ctx context.Context, c *cluster, prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uniqueName(t, prefix)
	}
	_, err := prepare(ctx, n, 8, func(i int) error {
		_, err := c.support(i).CreateIdentity(ctx, client.CreateIdentityRequest{ID: ids[i]})
		return err
	})
	fatal(t, err)
	return ids
}

// httpTally counts answers by "STATUS" or "STATUS code" and the busy
// answers that carried a Retry-After header of at least one second.
type httpTally struct {
	*tally
	mu         sync.Mutex
	retryAfter int
}

// passwordBurst prepares n requests (req returns the path and the JSON
// body; an empty path is a failed preparation, its body the error), then
// sends them at the same instant, request i to server i, and counts the
// answers.
func (c *cluster) passwordBurst(ctx context.Context, n int, req func(i int) (path, body string), token string) *httpTally {
	paths, bodies := make([]string, n), make([]string, n)
	for i := range n {
		paths[i], bodies[i] = req(i)
	}
	h := &httpTally{tally: newTally()}
	var wg, ready sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-start
			if paths[i] == "" {
				h.add("preparation failed: "+bodies[i], 0)
				return
			}
			code, retry, _ := c.post(ctx, i, paths[i], bodies[i], token)
			h.add(code, 0)
			if retry {
				h.mu.Lock()
				h.retryAfter++
				h.mu.Unlock()
			}
		}()
	}
	ready.Wait()
	close(start)
	wg.Wait()
	return h
}

// post sends one JSON request to server i and returns "STATUS" for a 2xx,
// "STATUS code" otherwise, whether a 503 carried a Retry-After of at least
// one second, and the body.
func (c *cluster) post(ctx context.Context, i int, path, body, token string) (code string, retryAfter bool, respBody string) {
	c.mu.Lock()
	s := c.servers[i%len(c.servers)]
	c.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+path, strings.NewReader(body))
	if err != nil {
		return "request: " + err.Error(), false, ""
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Transport: c.srcs.transport(i), Timeout: 90 * time.Second}).Do(req)
	if err != nil {
		return "transport: " + err.Error(), false, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	code = strconv.Itoa(resp.StatusCode)
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		json.Unmarshal(b, &e)
		code += " " + e.Error.Code
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		retryAfter = err == nil && secs >= 1
	}
	return code, retryAfter, string(b)
}

// peaks returns the peak resident memory (VmHWM) of each server, in bytes.
func (c *cluster) peaks(t *testing.T) []uint64 {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]uint64, len(c.servers))
	for i, s := range c.servers {
		v, err := procStatus(s.cmd.Process.Pid, "VmHWM")
		fatal(t, err)
		out[i] = v
	}
	return out
}

// procStatus reads a "kB" field of /proc/PID/status, in bytes.
func procStatus(pid int, field string) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			break
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s in kB", pid, field)
}

package scaletest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/authbench/authbench/server/client"
)

// The servers' login endpoints are rate limited per identity and per
// source. The test servers run with limits far above any burst here
// (serverConfig.args), so every attempt of a burst reaches the lockout
// logic at once. Should a request still be refused with 429 — refused
// before anything is checked: "a rate-limited attempt is not a failed
// attempt" — the tests send it again until it gets a real answer, and
// before a burst they give the buckets time to fill up.
const (
	identityBurst  = 30
	identityRefill = identityBurst * 200 * time.Millisecond
)

// answer is the code of an API answer: "ok" for a 2xx, the error code of
// the contract ("wrong_code", "authenticator_suspended", ...), or
// "transport: ..." when no answer came.
func answer(err error) string {
	if err == nil {
		return "ok"
	}
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return "transport: " + err.Error()
}

// isRateLimited reports whether err is a 429 answer that asks to try
// again: rate_limited, or attempts_in_flight (every attempt left is being
// checked). Neither checked nor counted anything.
func isRateLimited(err error) bool {
	return errors.Is(err, client.ErrRateLimited) || errors.Is(err, client.ErrAttemptsInFlight)
}

// served calls try until its answer is not rate_limited, pausing a little
// between tries, and returns the last error and how many tries were rate
// limited. It gives up when ctx ends.
func served(ctx context.Context, try func() error) (err error, limited int) {
	for {
		err = try()
		if !isRateLimited(err) {
			return err, limited
		}
		limited++
		pause := 150*time.Millisecond + rand.N(450*time.Millisecond)
		select {
		case <-ctx.Done():
			return fmt.Errorf("still rate limited after %d tries: %w", limited, context.Cause(ctx)), limited
		case <-time.After(pause):
		}
	}
}

// tally counts answers by code.
type tally struct {
	mu      sync.Mutex
	n       map[string]int
	limited int // tries refused with 429 and sent again
	first   int // attempts answered at their first try (not rate limited)
}

func newTally() *tally { return &tally{n: map[string]int{}} }

func (t *tally) add(code string, limited int) {
	t.mu.Lock()
	t.n[code]++
	t.limited += limited
	if limited == 0 {
		t.first++
	}
	t.mu.Unlock()
}

// get returns the count of code.
func (t *tally) get(code string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n[code]
}

// others returns the codes outside allowed, with their counts.
func (t *tally) others(allowed ...string) map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	for k, v := range t.n {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			out[k] = v
		}
	}
	return out
}

// String lists the counts, largest first, then how many attempts got
// through the rate limit at once: "authenticator_suspended=61 wrong_code=3
// (30 answered at the first try; 291 tries rate limited and sent again)".
func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.n))
	for k := range t.n {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if t.n[keys[i]] != t.n[keys[j]] {
			return t.n[keys[i]] > t.n[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, t.n[k])
	}
	fmt.Fprintf(&b, " (%d answered at the first try; %d tries rate limited and sent again)", t.first, t.limited)
	return b.String()
}

// prepare runs fn(i) for i in [0, n) with at most par at a time, each
// until its answer is not rate limited, and returns the first error and
// whether any call was rate limited (so that the caller lets the buckets
// fill up before the burst).
func prepare(ctx context.Context, n, par int, fn func(i int) error) (limited bool, err error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		lim   bool
	)
	sem := make(chan struct{}, par)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err, l := served(ctx, func() error { return fn(i) })
			mu.Lock()
			lim = lim || l > 0
			if err != nil && first == nil {
				first = fmt.Errorf("attempt %d: %w", i, err)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lim, first
}

// refill waits until the servers' per-identity buckets are full again
// when the preparation was rate limited.
func refill(ctx context.Context, limited bool) {
	if !limited {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(identityRefill):
	}
}

// burst sends n attempts at the same instant: n goroutines wait on one
// channel, then each calls fn(i) (again while rate limited). It returns
// the answers by code.
func burst(ctx context.Context, n int, fn func(i int) error) *tally {
	t := newTally()
	var (
		wg    sync.WaitGroup
		ready sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-start
			err, l := served(ctx, func() error { return fn(i) })
			t.add(answer(err), l)
		}()
	}
	ready.Wait()
	close(start)
	wg.Wait()
	return t
}

// bodies collects the answers of a burst by error code, in full (status,
// code, message and details), to check that they do not differ.
type bodies struct {
	mu  sync.Mutex
	all map[string]map[string]bool
}

func newBodies() *bodies { return &bodies{all: map[string]map[string]bool{}} }

func (b *bodies) add(err error) {
	var ae *client.APIError
	if !errors.As(err, &ae) {
		return
	}
	full := fmt.Sprintf("%d %s %q %v", ae.Status, ae.Code, ae.Message, ae.Details)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.all[ae.Code] == nil {
		b.all[ae.Code] = map[string]bool{}
	}
	b.all[ae.Code][full] = true
}

// distinct returns the different answers with code.
func (b *bodies) distinct(code string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for k := range b.all[code] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

package scaletest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/server/client"
)

// thiefLogin is one login attempt of the thief: when its first request
// was sent, and whether it got a session.
type thiefLogin struct {
	start time.Time
	ok    bool
	err   error
}

// TestRefusedOnceAcknowledged is the thief who holds the victim's chip and
// knows the password, and logs in with them again and again while the
// owner logs in with the app and support acts: once support's request to
// block the identity, or the chip, has been answered, no login the thief
// begins afterwards succeeds — the server (SQLite, whose store answers a
// login's reads from memory) never reads the state from before an
// acknowledged block. Between the blocks the identity is unblocked and
// the thief's logins succeed again, so the refusals are the blocks'.
func TestRefusedOnceAcknowledged(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "sqlite", backends[0].open(t), 1)
	ctx := testContext(t)
	v := newVictim(t, ctx, c, true)

	var (
		mu     sync.Mutex
		logins []thiefLogin
	)
	// since returns the thief's logins begun after at, and how many of
	// them succeeded.
	since := func(at time.Time) (n, ok int) {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range logins {
			if l.start.After(at) {
				n++
				if l.ok {
					ok++
				}
			}
		}
		return n, ok
	}
	wait := func(what string, done func() bool) {
		t.Helper()
		for !done() {
			if t.Failed() {
				t.FailNow() // a client's error, reported already
			}
			if ctx.Err() != nil {
				t.Fatalf("waiting for %s: %v", what, ctx.Err())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // the thief
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			_, err := client.LoginPasswordChip(ctx, c.anon(i%8), v.id, v.password, v.chip, v.chipDev)
			mu.Lock()
			logins = append(logins, thiefLogin{start: start, ok: err == nil, err: err})
			mu.Unlock()
			// A login under way when the chip is blocked ends not found:
			// its key is gone.
			if err != nil && !errors.Is(err, client.ErrIdentityBlocked) && !errors.Is(err, client.ErrBlocked) && !errors.Is(err, client.ErrNotFound) {
				t.Errorf("the thief's login: %v", err)
				return
			}
		}
	})
	for g := range 2 { // the owner, on the app: reads and writes of the same identity
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := client.LoginApp(ctx, c.anon(8+g), v.id, v.app.ID, v.phone, v.phone.PIN())
				if err != nil && !errors.Is(err, client.ErrIdentityBlocked) {
					t.Errorf("the owner's login: %v", err)
					return
				}
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()

	support := c.support(0)
	check := func(what string, ack time.Time) {
		t.Helper()
		// A few of the thief's logins begun after the answer.
		wait("the thief's logins after "+what, func() bool { n, _ := since(ack); return n >= 3 })
		if n, ok := since(ack); ok > 0 {
			t.Fatalf("%d of %d logins the thief began after %s was answered succeeded", ok, n, what)
		}
	}
	for round := range 3 {
		mark := time.Now()
		wait("a login of the thief", func() bool { _, ok := since(mark); return ok > 0 })
		if _, err := support.BlockIdentity(ctx, v.id, "misuse"); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		check("the identity's block", time.Now())
		if _, err := support.UnblockIdentity(ctx, v.id, "checked"); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	mark := time.Now()
	wait("a login of the thief", func() bool { _, ok := since(mark); return ok > 0 })
	if _, err := support.Block(ctx, v.id, v.chip, client.ReasonLost); err != nil {
		t.Fatal(err)
	}
	check("the chip's block", time.Now())
	mu.Lock()
	t.Logf("the thief began %d logins", len(logins))
	mu.Unlock()
}

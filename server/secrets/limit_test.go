package secrets

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestLimiterRefusesBeyondBudget: computations take their memory cost from
// the budget; one that finds no room is refused with a *BusyError at once
// (wait 0) and gets room again when another gives its memory back.
func TestLimiterRefusesBeyondBudget(t *testing.T) {
	l := NewLimiter(3*1024, 0) // three computations of 1 MiB
	if l.Slots(1024) != 3 || l.Slots(4096) != 1 || l.Budget() != 3*1024 {
		t.Fatalf("slots %d, %d; budget %d", l.Slots(1024), l.Slots(4096), l.Budget())
	}
	ctx := context.Background()
	var releases []func()
	for i := range 3 {
		r, err := l.Acquire(ctx, 1024)
		if err != nil {
			t.Fatalf("computation %d: %v", i, err)
		}
		releases = append(releases, r)
	}
	if l.InUse() != 3*1024 {
		t.Fatalf("in use %d KiB", l.InUse())
	}
	_, err := l.Acquire(ctx, 1024)
	var be *BusyError
	if !errors.Is(err, ErrBusy) || !errors.As(err, &be) || be.RetryAfter != RetryAfter || be.Budget != 3*1024 {
		t.Fatalf("a fourth computation: %v, want a *BusyError", err)
	}
	if l.Refused() != 1 {
		t.Fatalf("refused %d", l.Refused())
	}
	releases[0]()
	releases[0]() // a second call gives nothing back twice
	if l.InUse() != 2*1024 {
		t.Fatalf("in use %d KiB after one release", l.InUse())
	}
	r, err := l.Acquire(ctx, 1024)
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if _, err := l.Acquire(ctx, 1024); !errors.Is(err, ErrBusy) {
		t.Fatalf("a release was counted twice: %v", err)
	}
	r()
	for _, r := range releases[1:] {
		r()
	}
	// A computation larger than the budget runs alone.
	r, err = l.Acquire(ctx, 10*1024)
	if err != nil || l.InUse() != 3*1024 {
		t.Fatalf("an oversized computation: %v, in use %d", err, l.InUse())
	}
	if _, err := l.Acquire(ctx, 8); !errors.Is(err, ErrBusy) {
		t.Fatalf("beside an oversized computation: %v", err)
	}
	r()
}

// TestLimiterWaits: a computation waits for room up to the limiter's wait,
// first come first served, and a cancelled context ends the wait.
func TestLimiterWaits(t *testing.T) {
	l := NewLimiter(1024, time.Minute)
	ctx := context.Background()
	r, err := l.Acquire(ctx, 1024)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		r2, err := l.Acquire(ctx, 1024)
		if err == nil {
			r2()
		}
		got <- err
	}()
	r() // the waiter gets the room
	if err := <-got; err != nil {
		t.Fatalf("the waiting computation: %v", err)
	}
	r, _ = l.Acquire(ctx, 1024)
	defer r()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Acquire(cctx, 1024); !errors.Is(err, context.Canceled) {
		t.Fatalf("with a cancelled context: %v", err)
	}
	short := NewLimiter(1024, 10*time.Millisecond)
	r3, _ := short.Acquire(ctx, 1024)
	defer r3()
	if _, err := short.Acquire(ctx, 1024); !errors.Is(err, ErrBusy) {
		t.Fatalf("after the wait ran out: %v", err)
	}
}

// TestHashUnderLimiter: Hash, Verify and Check run under the process-wide
// limiter: never more memory at once than its budget, however many run,
// and ErrBusy (not a mismatch) when there is no room.
func TestHashUnderLimiter(t *testing.T) {
	fast := FastParams() // 64 KiB
	l := NewLimiter(3*64, time.Minute)
	prev := SetLimiter(l)
	defer SetLimiter(prev)
	if CurrentLimiter() != l {
		t.Fatal("SetLimiter did not take")
	}
	enc, err := fast.Hash("a password")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				if _, err := fast.Hash("a password"); err != nil {
					t.Error(err)
				}
			} else if ok, _, err := fast.Verify(enc, "a password"); !ok || err != nil {
				t.Errorf("Verify = %v, %v", ok, err)
			}
		}()
	}
	wg.Wait()
	if l.Peak() > l.Budget() || l.Peak() == 0 || l.InUse() != 0 {
		t.Fatalf("%d KiB of argon2id memory in use at once (budget %d), %d still in use", l.Peak(), l.Budget(), l.InUse())
	}

	SetLimiter(NewLimiter(64, 0))
	r, err := CurrentLimiter().Acquire(context.Background(), 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fast.Hash("a password"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Hash while busy: %v", err)
	}
	if ok, _, err := fast.Verify(enc, "a password"); ok || !errors.Is(err, ErrBusy) {
		t.Fatalf("Verify while busy = %v, %v; want ErrBusy", ok, err)
	}
	v, _ := ParseVerifier(enc)
	if ok, err := v.Check("a password"); ok || !errors.Is(err, ErrBusy) {
		t.Fatalf("Check while busy = %v, %v; want ErrBusy", ok, err)
	}
	r()
	if ok, _, err := fast.Verify(enc, "a password"); !ok || err != nil {
		t.Fatalf("Verify after the release = %v, %v", ok, err)
	}
}

func TestDefaultBudget(t *testing.T) {
	l := NewLimiter(0, DefaultWait)
	if l.Budget() != DefaultBudget() || l.Budget() < 64<<10 || l.Slots(0) < 2 {
		t.Fatalf("default limiter: %v, %d slots", l, l.Slots(0))
	}
	if s := l.String(); s == "" {
		t.Fatal("no description")
	}
}

// TestLimiterCounts: Running, Waiting, InUse and Refused say what the
// limiter holds (what /metrics shows).
func TestLimiterCounts(t *testing.T) {
	l := NewLimiter(1024, time.Minute)
	ctx := context.Background()
	r, err := l.Acquire(ctx, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if l.Running() != 1 || l.InUse() != 1024 || l.Waiting() != 0 {
		t.Fatalf("one running: running %d, in use %d, waiting %d", l.Running(), l.InUse(), l.Waiting())
	}
	got := make(chan func(), 1)
	go func() {
		r2, err := l.Acquire(ctx, 512)
		if err != nil {
			t.Error(err)
		}
		got <- r2
	}()
	for l.Waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	r()
	r2 := <-got
	if l.Running() != 1 || l.InUse() != 512 || l.Waiting() != 0 {
		t.Fatalf("the waiter runs: running %d, in use %d, waiting %d", l.Running(), l.InUse(), l.Waiting())
	}
	r2()
	r2() // a second release gives nothing back twice
	if l.Running() != 0 || l.InUse() != 0 {
		t.Fatalf("all released: running %d, in use %d", l.Running(), l.InUse())
	}
	short := NewLimiter(1024, 0)
	r3, _ := short.Acquire(ctx, 1024)
	short.Acquire(ctx, 1024)
	r3()
	if short.Refused() != 1 || short.Running() != 0 {
		t.Fatalf("refused %d, running %d", short.Refused(), short.Running())
	}
}

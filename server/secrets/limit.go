package secrets

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/sync/semaphore"
)

// DefaultWait is how long an argon2id computation waits for room under
// the memory budget before it gives up with a *BusyError.
const DefaultWait = 2 * time.Second

// RetryAfter is the wait a *BusyError suggests to the client. One
// argon2id computation with DefaultParams takes tens of milliseconds, so
// a queue that was full drains within it.
const RetryAfter = time.Second

// Limiter bounds the memory that argon2id computations running at the same
// time may hold. Each computation takes its memory cost (the m parameter,
// in KiB) from the budget for as long as it runs and gives it back after;
// one that finds no room waits, first come first served, for at most the
// limiter's wait, and then fails with a *BusyError instead of growing the
// process. A computation whose memory cost is above the whole budget runs
// alone.
//
// The memory an argon2id computation holds is its m parameter (RFC 9106
// §3.1): 19 MiB for DefaultParams. The Go heap keeps freed blocks until
// the next garbage collection, which GOGC=100 starts when the heap has
// doubled (and serve's --gc-headroom, internal/gcpace, no later while the
// blocks make up most of the live heap), so the process's peak resident
// memory grows by a small multiple of the budget (2 to 2.8 times was
// measured with 64 concurrent requests), not with the number of requests.
//
// Hash, Verify, VerifyPassword, VerifyPIN and Verifier.Check run under the
// process-wide limiter (SetLimiter; until then one with DefaultBudget and
// DefaultWait, see CurrentLimiter), so that every caller in the process
// shares one budget, whichever Service or replica it belongs to.
type Limiter struct {
	budget int64 // KiB
	wait   time.Duration
	sem    *semaphore.Weighted

	busy    atomic.Uint64 // computations refused
	running atomic.Int64  // KiB held now
	peak    atomic.Int64  // the most KiB ever held at once
	active  atomic.Int64  // computations holding memory now
	waiting atomic.Int64  // computations waiting for room now
}

// NewLimiter returns a limiter with a memory budget of budget KiB in which
// a computation waits at most wait for room (0: refuse at once when there
// is none). A budget of 0 takes DefaultBudget(); a negative wait is 0.
func NewLimiter(budget uint64, wait time.Duration) *Limiter {
	if budget == 0 {
		budget = DefaultBudget()
	}
	if budget > 1<<40 {
		budget = 1 << 40
	}
	if wait < 0 {
		wait = 0
	}
	return &Limiter{budget: int64(budget), wait: wait, sem: semaphore.NewWeighted(int64(budget))}
}

// DefaultBudget is the memory budget in KiB of a Limiter made with budget
// 0: room for two computations with DefaultParams per CPU the Go runtime
// uses (GOMAXPROCS; more at once would only wait for a core), and at
// least 64 MiB.
func DefaultBudget() uint64 {
	b := 2 * uint64(runtime.GOMAXPROCS(0)) * uint64(DefaultParams().Memory)
	return max(b, 64<<10)
}

// Budget returns the memory budget in KiB.
func (l *Limiter) Budget() uint64 { return uint64(l.budget) }

// Wait returns how long a computation waits for room.
func (l *Limiter) Wait() time.Duration { return l.wait }

// Slots returns how many computations with memory cost m KiB (0 means
// DefaultParams) fit in the budget at once: at least 1.
func (l *Limiter) Slots(m uint32) int {
	if m == 0 {
		m = DefaultParams().Memory
	}
	return int(max(1, l.budget/int64(m)))
}

// Refused returns how many computations gave up waiting for room since
// the limiter was made.
func (l *Limiter) Refused() uint64 { return l.busy.Load() }

// InUse returns the memory, in KiB, that the computations running now
// hold.
func (l *Limiter) InUse() uint64 { return uint64(l.running.Load()) }

// Running returns how many computations hold memory from the budget now.
func (l *Limiter) Running() int { return int(l.active.Load()) }

// Waiting returns how many computations wait for room now.
func (l *Limiter) Waiting() int { return int(l.waiting.Load()) }

// Peak returns the most memory, in KiB, that computations held at once
// since the limiter was made: never more than the budget.
func (l *Limiter) Peak() uint64 { return uint64(l.peak.Load()) }

// String describes the limiter: "argon2id memory budget 76 MiB, wait 2s".
func (l *Limiter) String() string {
	return "argon2id memory budget " + strconv.FormatInt(l.budget>>10, 10) + " MiB, wait " + l.wait.String()
}

// Acquire takes memory KiB from the budget, waiting at most the limiter's
// wait (and no longer than ctx) for room, and returns the function that
// gives it back (call it exactly once). A request for more than the whole
// budget takes the whole budget.
//
// It returns a *BusyError (wrapping ErrBusy) when there was no room in
// time, or ctx's error when ctx ended first.
func (l *Limiter) Acquire(ctx context.Context, memory uint32) (release func(), err error) {
	n := min(int64(max(memory, 1)), l.budget)
	if !l.sem.TryAcquire(n) {
		if l.wait <= 0 {
			return nil, l.refuse(memory)
		}
		wctx, cancel := context.WithTimeout(ctx, l.wait)
		l.waiting.Add(1)
		err := l.sem.Acquire(wctx, n)
		l.waiting.Add(-1)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, l.refuse(memory)
		}
	}
	l.active.Add(1)
	now := l.running.Add(n)
	for p := l.peak.Load(); now > p; p = l.peak.Load() {
		if l.peak.CompareAndSwap(p, now) {
			break
		}
	}
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			l.active.Add(-1)
			l.running.Add(-n)
			l.sem.Release(n)
		}
	}, nil
}

func (l *Limiter) refuse(memory uint32) error {
	l.busy.Add(1)
	return &BusyError{Memory: memory, Budget: uint64(l.budget), Waited: l.wait, RetryAfter: RetryAfter}
}

// limiter is the process-wide Limiter.
var limiter atomic.Pointer[Limiter]

// CurrentLimiter returns the process-wide limiter that Hash, Verify and
// Check run under: the one last given to SetLimiter, or one with
// DefaultBudget and DefaultWait.
func CurrentLimiter() *Limiter {
	if l := limiter.Load(); l != nil {
		return l
	}
	limiter.CompareAndSwap(nil, NewLimiter(0, DefaultWait))
	return limiter.Load()
}

// SetLimiter makes l the process-wide limiter (nil restores the default)
// and returns the previous one. Computations running keep the budget of
// the limiter they started under.
func SetLimiter(l *Limiter) (previous *Limiter) {
	if l == nil {
		l = NewLimiter(0, DefaultWait)
	}
	previous = CurrentLimiter()
	limiter.Store(l)
	return previous
}

// idKey is argon2.IDKey under the process-wide limiter.
func idKey(secret, salt []byte, p Params) ([]byte, error) {
	release, err := CurrentLimiter().Acquire(context.Background(), p.Memory)
	if err != nil {
		return nil, err
	}
	defer release()
	return argon2.IDKey(secret, salt, p.Time, p.Memory, p.Threads, p.KeyLen), nil
}

// BusyError is an argon2id computation refused because the memory budget
// was taken for longer than the limiter's wait: the server is busy with
// other hashes. Nothing was checked or counted; the same request may be
// sent again after RetryAfter. It unwraps to ErrBusy.
type BusyError struct {
	Memory     uint32        // KiB the computation needed
	Budget     uint64        // KiB of the whole budget
	Waited     time.Duration // how long it waited
	RetryAfter time.Duration // when to try again
}

// Error says that the server is busy and when to try again.
func (e *BusyError) Error() string {
	return fmt.Sprintf("secrets: %s: all of the %d MiB for password and PIN hashing are in use (waited %v); try again in %v",
		ErrBusy, e.Budget>>10, e.Waited, e.RetryAfter)
}

// Unwrap returns ErrBusy.
func (e *BusyError) Unwrap() error { return ErrBusy }

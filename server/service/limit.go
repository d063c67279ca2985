package service

import (
	"sync"
	"time"
)

// Rate is a token bucket: Burst tokens at most, one more every Every. The
// zero Rate takes the default of the option it is in; Every < 0 turns the
// limit off.
type Rate struct {
	Burst int
	Every time.Duration
}

func (r Rate) or(def Rate) Rate {
	if r.Burst == 0 {
		r.Burst = def.Burst
	}
	if r.Every == 0 {
		r.Every = def.Every
	}
	return r
}

// Or returns r with its zero fields taken from def.
func (r Rate) Or(def Rate) Rate { return r.or(def) }

// maxBuckets bounds the memory of a Limiter; beyond it, buckets that are
// full again are dropped.
const maxBuckets = 100_000

// Limiter is a set of token buckets by key, in memory (each replica keeps
// its own). It is safe for concurrent use; a nil *Limiter allows
// everything.
type Limiter struct {
	rate Rate
	now  func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewLimiter returns a Limiter of rate r on clock now (nil: time.Now), or
// nil when r turns the limit off (Every or Burst < 0).
func NewLimiter(r Rate, now func() time.Time) *Limiter {
	if r.Every < 0 || r.Burst < 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{rate: r, now: now, buckets: map[string]*bucket{}}
}

// Allow takes a token for key and reports whether there was one; when not,
// it returns how long until the next one.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: float64(l.rate.Burst), last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) * float64(l.rate.Every))
}

func (l *Limiter) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens += float64(el) / float64(l.rate.Every)
		if max := float64(l.rate.Burst); b.tokens > max {
			b.tokens = max
		}
		b.last = now
	}
}

// prune drops the buckets that are full again, and if that is not enough,
// all of them (a flood of new keys must not grow memory without bound).
func (l *Limiter) prune(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= float64(l.rate.Burst) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}

// allow applies Options.LoginLimit to checks of authenticator aid of
// identity identityID (op names the ceremony: "login", "activate"). It
// returns a *RateLimitError when the bucket is empty. With the limit off
// it builds no key.
func (s *Service) allow(op, identityID, aid string) error {
	if s.limit == nil {
		return nil
	}
	if ok, wait := s.limit.Allow(op + "\x00" + identityID + "\x00" + aid); !ok {
		return &RateLimitError{RetryAfter: wait}
	}
	return nil
}

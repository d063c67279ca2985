package api

import (
	"sync"
	"time"
)

// Rate is a token bucket: Burst tokens at most, one more every Every.
// The zero Rate takes the default of the field it is in; Every < 0
// disables that limit.
type Rate struct {
	Burst int
	Every time.Duration
}

// RateLimit configures the login rate limits (see the package doc).
type RateLimit struct {
	// PerSource limits login requests per client address; default bursts
	// of 60, then one every 100 ms.
	PerSource Rate
	// PerIdentity limits login requests per identity; default bursts of
	// 30, then one every 200 ms.
	PerIdentity Rate
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

// maxBuckets bounds the memory of a limiter; beyond it, buckets that are
// full again are dropped.
const maxBuckets = 100_000

// limiter is a set of token buckets by key.
type limiter struct {
	rate Rate
	now  func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(r Rate, now func() time.Time) *limiter {
	if r.Every < 0 || r.Burst < 0 {
		return nil
	}
	return &limiter{rate: r, now: now, buckets: map[string]*bucket{}}
}

// allow takes a token for key and reports whether there was one; when not,
// it returns how long until the next one.
func (l *limiter) allow(key string) (bool, time.Duration) {
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
	wait := time.Duration((1 - b.tokens) * float64(l.rate.Every))
	return false, wait
}

func (l *limiter) refill(b *bucket, now time.Time) {
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
func (l *limiter) prune(now time.Time) {
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

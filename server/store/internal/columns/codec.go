package columns

import (
	"fmt"
	"math"
	"time"

	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/store"
)

// Codec converts values for one store.
type Codec struct {
	// Name ("sqlite", "postgres") prefixes error messages.
	Name string
	// Int32Counters refuses stored authenticator failures and suspensions
	// outside 0 to 1<<31-1 (error wrapping store.ErrInvalid).
	Int32Counters bool
}

// The storable times: what int64 nanoseconds cover (1677-09-21 to
// 2262-04-11).
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// Time converts t for storing: nil (NULL) for the zero time. A time out of
// the storable range is an error wrapping store.ErrInvalid.
func (c Codec) Time(t time.Time) (any, error) {
	if t.IsZero() {
		return nil, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return nil, fmt.Errorf("%s: %w: time %v out of range (1677-09-21 to 2262-04-11)", c.Name, store.ErrInvalid, t)
	}
	return t.UnixNano(), nil
}

// Times converts several times for storing, stopping at the first error.
func (c Codec) Times(ts ...time.Time) ([]any, error) {
	out := make([]any, len(ts))
	for i, t := range ts {
		v, err := c.Time(t)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// FromNanos converts a stored time back: nil (NULL) is the zero time.
func FromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

// ClampNanos returns now in Unix nanoseconds, clamped to the storable
// range, for comparisons.
func ClampNanos(now time.Time) int64 {
	switch {
	case now.Before(minTime):
		return math.MinInt64
	case now.After(maxTime):
		return math.MaxInt64
	}
	return now.UnixNano()
}

// U63 converts a uint64 for storing in a 64-bit integer column; a value
// above math.MaxInt64 is an error wrapping store.ErrInvalid.
func (c Codec) U63(v uint64, what string) (int64, error) {
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("%s: %w: %s %d out of range", c.Name, store.ErrInvalid, what, v)
	}
	return int64(v), nil
}

// FromI64 converts a stored integer that must not be negative; a negative
// one is an error wrapping store.ErrInvalid.
func (c Codec) FromI64(v int64, what string) (uint64, error) {
	if v < 0 {
		return 0, fmt.Errorf("%s: %w: stored %s %d is negative", c.Name, store.ErrInvalid, what, v)
	}
	return uint64(v), nil
}

// NilIfEmpty returns nil (NULL) for an empty b.
func NilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// NonNil returns b, or an empty slice for nil (a NOT NULL byte column).
func NonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// OTPParams converts stored OTP parameters, refusing values out of range
// (an error wrapping store.ErrInvalid) and those store.OTPParams.Check
// refuses.
func OTPParams(digits, period, alg int64) (store.OTPParams, error) {
	if digits < 0 || digits > 8 || period < 0 || period > 1<<16 || alg < 0 || alg > 255 {
		return store.OTPParams{}, fmt.Errorf("%w: stored OTP parameters out of range", store.ErrInvalid)
	}
	p := store.OTPParams{Digits: int(digits), Period: time.Duration(period) * time.Second, Algorithm: otp.Algorithm(alg)}
	if err := p.Check(); err != nil {
		return store.OTPParams{}, err
	}
	return p, nil
}

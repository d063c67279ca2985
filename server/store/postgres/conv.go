package postgres

import (
	"fmt"
	"math"
	"time"

	"github.com/authbench/authbench/server/store"
)

// Times are stored as BIGINT Unix nanoseconds (UTC); the zero time.Time is
// NULL. That covers what int64 nanoseconds cover (1677-09-21 to
// 2262-04-11); other times are refused.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// tm converts t for storing: nil (NULL) for the zero time.
func tm(t time.Time) (any, error) {
	if t.IsZero() {
		return nil, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return nil, fmt.Errorf("postgres: %w: time %v out of range (1677-09-21 to 2262-04-11)", store.ErrInvalid, t)
	}
	return t.UnixNano(), nil
}

// times converts several times for storing, stopping at the first error.
func times(ts ...time.Time) ([]any, error) {
	out := make([]any, len(ts))
	for i, t := range ts {
		v, err := tm(t)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// fromNanos converts a stored time back.
func fromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

// clampNanos returns now in Unix nanoseconds, clamped to the storable range,
// for comparisons.
func clampNanos(now time.Time) int64 {
	switch {
	case now.Before(minTime):
		return math.MinInt64
	case now.After(maxTime):
		return math.MaxInt64
	}
	return now.UnixNano()
}

// u63 converts a uint64 for storing in a BIGINT column.
func u63(v uint64, what string) (int64, error) {
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("postgres: %w: %s %d out of range", store.ErrInvalid, what, v)
	}
	return int64(v), nil
}

// fromI64 converts a stored BIGINT that must not be negative.
func fromI64(v int64, what string) (uint64, error) {
	if v < 0 {
		return 0, fmt.Errorf("postgres: %w: stored %s %d is negative", store.ErrInvalid, what, v)
	}
	return uint64(v), nil
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// nonNil returns b, or an empty slice for nil (a NOT NULL BYTEA).
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// scanner is pgx.Row or pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

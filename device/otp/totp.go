package otp

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Defaults used for zero fields of TOTP.
const (
	DefaultDigits    = 6
	DefaultPeriod    = 30 * time.Second // RFC 6238 §5.2 recommends 30 s
	DefaultAlgorithm = SHA1
)

// TOTP holds the parameters of a time-based one-time password generator
// (RFC 6238 §4). Zero fields take the defaults: 6 digits, a 30 s period,
// HMAC-SHA-1 and T0 at the Unix epoch.
//
// A TOTP never prints its secret: it implements fmt.Formatter and
// slog.LogValuer with the secret redacted, and Secret is left out of
// encoding/json. The methods do not modify p and are safe for concurrent use.
type TOTP struct {
	Secret    []byte        `json:"-"`                  // shared secret K; never printed
	Digits    int           `json:"digits,omitzero"`    // 6..8; 0 means 6
	Period    time.Duration `json:"period,omitzero"`    // time step X, a whole number of seconds; 0 means 30 s
	Algorithm Algorithm     `json:"algorithm,omitzero"` // 0 means SHA1
	T0        time.Time     `json:"t0,omitzero"`        // start of step 0; the zero Time means the Unix epoch
}

// Match is a successful TOTP check.
type Match struct {
	// Step is the time step the code belongs to. Store it as the new
	// highest used step so that the code cannot be used again
	// (RFC 6238 §5.2).
	Step uint64
	// Drift is Step minus the step of the verification time, in steps
	// (-skew..+skew). A server may record it to follow a drifting clock
	// (RFC 6238 §6).
	Drift int
}

func (p *TOTP) digits() int {
	if p.Digits == 0 {
		return DefaultDigits
	}
	return p.Digits
}

func (p *TOTP) algorithm() Algorithm {
	if p.Algorithm == 0 {
		return DefaultAlgorithm
	}
	return p.Algorithm
}

// period returns X in whole seconds, or 0 when Period is not usable.
func (p *TOTP) period() uint64 {
	d := p.Period
	if d == 0 {
		d = DefaultPeriod
	}
	if d < time.Second || d%time.Second != 0 {
		return 0
	}
	return uint64(d / time.Second)
}

func (p *TOTP) t0() time.Time {
	if p.T0.IsZero() {
		return time.Unix(0, 0)
	}
	return p.T0
}

// Validate reports whether the parameters are usable. It returns an error
// wrapping ErrInvalidParameters for an empty secret, digits outside 6..8, an
// unknown algorithm, or a period that is not a positive whole number of
// seconds.
func (p *TOTP) Validate() error {
	if p.period() == 0 {
		return fmt.Errorf("%w: period %v (want a whole number of seconds)", ErrInvalidParameters, p.Period)
	}
	return checkParams(p.Secret, p.digits(), p.algorithm())
}

// step returns the time step of t (RFC 6238 §4.2: floor((t - T0) / X)) and
// false when t is before T0 or the period is unusable.
func (p *TOTP) step(t time.Time) (uint64, bool) {
	x := p.period()
	if x == 0 {
		return 0, false
	}
	t0 := p.t0()
	tu, t0u := t.Unix(), t0.Unix()
	if tu < t0u {
		return 0, false
	}
	secs := uint64(tu) - uint64(t0u) // fits: tu >= t0u
	if t.Nanosecond() < t0.Nanosecond() {
		if secs == 0 {
			return 0, false
		}
		secs--
	}
	return secs / x, true
}

// Step returns the time step that t falls in: floor((t - T0) / X)
// (RFC 6238 §4.2). Times before T0, and unusable parameters, give 0.
func (p *TOTP) Step(t time.Time) uint64 {
	s, _ := p.step(t)
	return s
}

// Start returns the time at which step begins: T0 + step*X. It saturates at
// the largest representable time instead of overflowing.
func (p *TOTP) Start(step uint64) time.Time {
	t0 := p.t0()
	x := p.period()
	if x == 0 {
		return t0
	}
	if step > math.MaxUint64/x {
		return time.Unix(math.MaxInt64, 0)
	}
	off := step * x
	base := t0.Unix()
	if off > uint64(math.MaxInt64) || base > math.MaxInt64-int64(off) {
		return time.Unix(math.MaxInt64, 0)
	}
	return time.Unix(base+int64(off), int64(t0.Nanosecond()))
}

// Expires returns the time at which the codes of step stop being current:
// the start of step+1.
func (p *TOTP) Expires(step uint64) time.Time {
	if step == math.MaxUint64 {
		return time.Unix(math.MaxInt64, 0)
	}
	return p.Start(step + 1)
}

// ValidFor returns how long the code current at t stays current: the time
// from t to the end of its step. It is meaningful only for t at or after T0.
func (p *TOTP) ValidFor(t time.Time) time.Duration {
	return p.Expires(p.Step(t)).Sub(t)
}

// Code returns the code of time step step: HOTP(K, step) (RFC 6238 §4.2).
// It returns an error wrapping ErrInvalidParameters when the parameters are
// unusable (see Validate).
func (p *TOTP) Code(step uint64) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	return HOTP(p.Secret, step, p.digits(), p.algorithm())
}

// At returns the code current at time t and its time step.
// It returns an error wrapping ErrInvalidParameters when the parameters are
// unusable (see Validate) or t is before T0.
func (p *TOTP) At(t time.Time) (code string, step uint64, err error) {
	if err := p.Validate(); err != nil {
		return "", 0, err
	}
	s, ok := p.step(t)
	if !ok {
		return "", 0, fmt.Errorf("%w: time %v is before T0", ErrInvalidParameters, t)
	}
	c, err := HOTP(p.Secret, s, p.digits(), p.algorithm())
	if err != nil {
		return "", 0, err
	}
	return c, s, nil
}

// Verify checks code as entered at time t (RFC 6238 §5.2). It accepts the
// code of the current step and of up to skew steps before and after it
// (skew 1 is the RFC's recommendation for network delay), but only for steps
// strictly greater than after, the highest step already used (pass 0 when no
// code has been used yet). On success it returns the matched step, which the
// caller must store as the new highest used step, and its drift.
//
// Every candidate step is computed and compared in constant time
// (crypto/subtle), with no early exit on a match. When the code matches more
// than one usable step, the highest one wins.
//
// It returns an error wrapping ErrInvalidParameters for unusable parameters
// (see Validate), skew outside 0..MaxWindow or t before T0; ErrMismatch when
// code is not Digits decimal digits or matches no candidate step; and
// ErrReplayed when it matches only steps at or below after. Servers should
// count both ErrMismatch and ErrReplayed as failed attempts.
func (p *TOTP) Verify(code string, t time.Time, skew int, after uint64) (Match, error) {
	if err := p.Validate(); err != nil {
		return Match{}, err
	}
	if skew < 0 || skew > MaxWindow {
		return Match{}, fmt.Errorf("%w: skew %d (want 0 to %d)", ErrInvalidParameters, skew, MaxWindow)
	}
	cur, ok := p.step(t)
	if !ok {
		return Match{}, fmt.Errorf("%w: time %v is before T0", ErrInvalidParameters, t)
	}
	digits := p.digits()
	if err := checkCodeFormat(code, digits); err != nil {
		return Match{}, err
	}
	g, err := newGenerator(p.Secret, digits, p.algorithm())
	if err != nil {
		return Match{}, err
	}
	var buf [MaxDigits]byte
	found, replayed, drift := 0, 0, 0
	for d := -skew; d <= skew; d++ {
		// The candidate step cur+d must exist (no wrap below 0 or above
		// 2^64-1); which steps exist depends only on public values.
		var s uint64
		if d < 0 {
			if cur < uint64(-d) {
				continue
			}
			s = cur - uint64(-d)
		} else {
			if cur > math.MaxUint64-uint64(d) {
				continue
			}
			s = cur + uint64(d)
		}
		eq := subtle.ConstantTimeCompare([]byte(code), g.code(s, &buf))
		// Whether s is above the watermark is public too; the match itself
		// only flows through constant-time selects.
		fresh := 0
		if s > after {
			fresh = 1
		}
		hit := eq & fresh
		found |= hit
		replayed |= eq &^ fresh
		drift = subtle.ConstantTimeSelect(hit, d, drift)
	}
	switch {
	case found == 1:
		s := cur + uint64(drift) // drift < 0 wraps back into range: cur+drift >= 0 was checked
		return Match{Step: s, Drift: drift}, nil
	case replayed == 1:
		return Match{}, fmt.Errorf("%w: time step not above %d", ErrReplayed, after)
	}
	return Match{}, ErrMismatch
}

// String describes the parameters with the secret redacted.
func (p TOTP) String() string {
	per := "invalid period"
	if x := p.period(); x != 0 {
		per = (time.Duration(x) * time.Second).String()
	}
	sec := "none"
	if len(p.Secret) > 0 {
		sec = "redacted"
	}
	return fmt.Sprintf("otp.TOTP{%s, %d digits, %s, T0 %d, secret %s}",
		p.algorithm(), p.digits(), per, p.t0().Unix(), sec)
}

// Format implements fmt.Formatter so that no verb (%v, %+v, %#v, %x, %d,
// ...) prints the secret: every verb prints String.
func (p TOTP) Format(f fmt.State, verb rune) {
	fmt.Fprint(f, p.String())
}

// LogValue implements slog.LogValuer with the secret left out.
func (p TOTP) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("algorithm", p.algorithm().String()),
		slog.Int("digits", p.digits()),
		slog.Duration("period", time.Duration(p.period())*time.Second),
		slog.Int64("t0", p.t0().Unix()),
		slog.Bool("secret_set", len(p.Secret) > 0),
	)
}

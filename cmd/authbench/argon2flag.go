package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/authbench/authbench/server/secrets"
)

// argon2Flag is a set of argon2id parameters (RFC 9106 §3.1) on the
// command line, written as in a PHC string: "m=19456,t=2,p=1" (memory in
// KiB, passes, lanes). The salt and hash lengths stay at 16 and 32
// bytes. The zero value means secrets.DefaultParams.
type argon2Flag secrets.Params

// params returns the parameters, secrets.DefaultParams for the zero
// value.
func (a argon2Flag) params() secrets.Params {
	if a == (argon2Flag{}) {
		return secrets.DefaultParams()
	}
	return secrets.Params(a)
}

func (a argon2Flag) String() string { return a.params().String() }

// weaker reports whether a costs less memory or fewer passes than
// secrets.DefaultParams.
func (a argon2Flag) weaker() bool {
	p, d := a.params(), secrets.DefaultParams()
	return p.Memory < d.Memory || p.Time < d.Time
}

func (a *argon2Flag) UnmarshalText(b []byte) error {
	const want = "want m=KiB,t=PASSES,p=LANES such as m=19456,t=2,p=1"
	var p secrets.Params
	seen := map[string]bool{}
	for part := range strings.SplitSeq(string(b), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || seen[k] {
			return fmt.Errorf("%q: %s", b, want)
		}
		seen[k] = true
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > secrets.MaxThreads {
				return fmt.Errorf("p=%d: at most %d lanes", n, secrets.MaxThreads)
			}
			p.Threads = uint8(n)
		default:
			return fmt.Errorf("%q: %s", b, want)
		}
	}
	if len(seen) != 3 {
		return fmt.Errorf("%q: %s", b, want)
	}
	switch {
	case p.Threads < 1:
		return fmt.Errorf("p=%d: at least 1 lane", p.Threads)
	case p.Time < 1 || p.Time > secrets.MaxTime:
		return fmt.Errorf("t=%d: 1 to %d passes", p.Time, secrets.MaxTime)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > secrets.MaxMemory:
		return fmt.Errorf("m=%d: %d to %d KiB (at least 8 per lane)", p.Memory, 8*uint32(p.Threads), secrets.MaxMemory)
	}
	p.SaltLen, p.KeyLen = 16, 32
	*a = argon2Flag(p)
	return nil
}

package main

import (
	"fmt"
	"log/slog"
	"strconv"

	"github.com/authbench/authbench/internal/gcpace"
)

// gcHeadroomFlag is --gc-headroom of serve and load: "argon2" (the zero
// value: as much as the argon2id memory budget), "off" (Go's default
// collector, GOGC=100) or a number of MiB. See internal/gcpace.
type gcHeadroomFlag struct {
	off bool
	mib uint64 // 0: the argon2id memory budget
}

// gcHeadroomHelp is the help of --gc-headroom, shared by serve and load.
const gcHeadroomHelp = "Garbage the heap may gather between two garbage collections: after each one it may grow by its live size (as under GOGC=100) or by this many MiB, whichever is more, so that a server with a small heap spends less CPU collecting, and a burst of argon2id hashes, whose blocks are live, grows it as under GOGC=100. argon2 (the default): as much as the argon2id memory budget; off: Go's default. GOGC or GOMEMLIMIT in the environment win over it."

func (g gcHeadroomFlag) String() string {
	switch {
	case g.off:
		return "off"
	case g.mib == 0:
		return "argon2"
	}
	return strconv.FormatUint(g.mib, 10)
}

func (g *gcHeadroomFlag) UnmarshalText(b []byte) error {
	switch v := string(b); v {
	case "off":
		*g = gcHeadroomFlag{off: true}
	case "argon2", "":
		*g = gcHeadroomFlag{}
	default:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 1 || n > 1<<20 {
			return fmt.Errorf("%q: want a number of MiB (1 to %d), argon2 or off", v, 1<<20)
		}
		*g = gcHeadroomFlag{mib: n}
	}
	return nil
}

// start paces the process's garbage collector with the headroom g names,
// budget being the argon2id memory budget in KiB, and returns what undoes
// it. It logs what the collector does; the environment's GOGC or
// GOMEMLIMIT, "off", and a pacer already running in this process (a
// second server in one test process) leave the collector as it is.
func (g gcHeadroomFlag) start(budget uint64, log *slog.Logger) (stop func()) {
	if p := g.pace(budget, log); p != nil {
		return p.Stop
	}
	return func() {}
}

// pace is start returning the pacer (nil when it leaves the collector as
// it is), whose Stop undoes it.
func (g gcHeadroomFlag) pace(budget uint64, log *slog.Logger) *gcpace.Pacer {
	if env := gcpace.Environment(); env != "" {
		log.Info("garbage collector set by the environment; --gc-headroom not applied", "env", env)
		return nil
	}
	if g.off {
		log.Info("garbage collector at Go's default (--gc-headroom off)")
		return nil
	}
	headroom := g.mib << 20
	if g.mib == 0 {
		headroom = budget << 10
	}
	p, err := gcpace.Start(headroom)
	if err != nil {
		log.Info("garbage collector not paced", "err", err)
		return nil
	}
	log.Info("garbage collector paced", "heap_headroom_mib", headroom>>20)
	return p
}

package main

import (
	"bytes"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

func TestGCHeadroomFlag(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "argon2", want: "argon2"},
		{in: "off", want: "off"},
		{in: "128", want: "128"},
		{in: "0", err: "want a number of MiB"},
		{in: "-5", err: "want a number of MiB"},
		{in: "1GiB", err: "want a number of MiB"},
		{in: "1048577", err: "want a number of MiB"},
	} {
		var g gcHeadroomFlag
		err := g.UnmarshalText([]byte(tc.in))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one saying %q", tc.in, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.err == "" && g.String() != tc.want:
			t.Errorf("%q: %q", tc.in, g.String())
		}
	}
}

// gcSettings returns the process's GOGC and memory limit.
func gcSettings() (int, int64) {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p, debug.SetMemoryLimit(-1)
}

// The default paces the collector with the argon2id budget as headroom
// and stops doing so at stop; GOGC or GOMEMLIMIT in the environment, or
// "off", leave it alone.
func TestGCHeadroomStart(t *testing.T) {
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	percent, limit := gcSettings()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	stop := gcHeadroomFlag{}.start(76<<10, log)
	p, l := gcSettings()
	if l == math.MaxInt64 || l == limit || p == percent {
		t.Errorf("paced: GOGC %d, memory limit %d; before: %d, %d", p, l, percent, limit)
	}
	if !strings.Contains(logs.String(), "heap_headroom_mib=76") {
		t.Errorf("log: %s", logs.String())
	}
	stop()
	if p, l := gcSettings(); p != percent || l != limit {
		t.Errorf("after stop: GOGC %d, memory limit %d; want %d, %d", p, l, percent, limit)
	}

	logs.Reset()
	gcHeadroomFlag{off: true}.start(76<<10, log)()
	t.Setenv("GOMEMLIMIT", "1GiB")
	gcHeadroomFlag{mib: 64}.start(76<<10, log)()
	if p, l := gcSettings(); p != percent || l != limit {
		t.Errorf("off and GOMEMLIMIT: GOGC %d, memory limit %d; want %d, %d", p, l, percent, limit)
	}
	for _, want := range []string{"--gc-headroom off", `env="GOMEMLIMIT=1GiB"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log has no %q: %s", want, logs.String())
		}
	}
}

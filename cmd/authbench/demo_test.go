package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/server/api/apitest"
	"github.com/authbench/authbench/sim/chip"
)

// TestDemo runs the whole story: the embedded server, the simulated chip,
// code display, audio code reader and app, every step over HTTP. It must
// exit 0 with no ✗, tell every part of the story, and leave no goroutine
// behind.
func TestDemo(t *testing.T) {
	before := runtime.NumGoroutine()
	var out, errOut bytes.Buffer
	code := run(context.Background(), &env{stdout: &out, stderr: &errOut, wrapAPI: apitest.ForTest(t).Wrap}, []string{"demo", "--seed", "00"})
	if code != 0 {
		t.Fatalf("demo exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	text := out.String()
	if strings.Contains(text, "✗") || !strings.Contains(text, "every step behaved as the rules say") {
		t.Fatalf("demo output:\n%s", text)
	}
	for _, want := range []string{
		"== MitID chip", "== MitID code display", "== MitID audio code reader", "== MitID app",
		"== The chip is lost", "== The whole identity", "== Audit",
		"== An attacker who knows only the identity ID", "== Sessions",
		"two-factor",                  // every session
		"403 authenticator_suspended", // the attacker's guesses, all answered alike
		"409 already_registered",      // somebody else's add of the display's serial
		"never block for good",
		"401 sign_count",            // the clone
		"401 code_replayed",         // codes are single use
		"409 serial_revoked",        // order a new authenticator
		"409 quota_exceeded",        // one code device
		"403 authenticator_blocked", // the blocked chip
		"403 identity_blocked",
		"it said “", // the audio reader, decoded
		"chain intact",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo does not show %q:\n%s", want, text)
		}
	}
	// --seed makes the devices: the chip is the one chip.New makes from it.
	c, err := chip.New(chip.Options{Seed: []byte{0}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !strings.Contains(text, "serial "+c.Serial()) {
		t.Errorf("the demo's chip is not the one of seed 00 (%s):\n%s", c.Serial(), text)
	}
	// Every goroutine of the demo (server, simulators) ends with it.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left after the demo, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package main

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authbench/authbench/sim/app"
)

// TestAppRespond: the response `authbench app respond` prints is the
// seeded app's signature over the transfer code's bytes, the proof the
// server's app login verifies (ECDSA P-256 over SHA-256, DER, unpadded
// base64url); another challenge's or another app's signature does not
// verify; bad input is a usage error.
func TestAppRespond(t *testing.T) {
	seed := []byte("the seed of the phone of the test")
	seedFile := filepath.Join(t.TempDir(), "app.seed")
	if err := os.WriteFile(seedFile, []byte(hex.EncodeToString(seed)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	pub := a.PublicKey().(*ecdsa.PublicKey)
	challenge := make([]byte, 32)
	for i := range challenge {
		challenge[i] = byte(i * 7)
	}
	code := base64.RawURLEncoding.EncodeToString(challenge)
	verifies := func(resp string, msg []byte) bool {
		sig, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(resp))
		if err != nil {
			t.Fatalf("the response %q is not unpadded base64url: %v", resp, err)
		}
		h := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(pub, h[:], sig)
	}

	code1, out := runCmd(t, "app", "respond", "--app-seed-file", seedFile, "--challenge", code)
	if code1 != 0 {
		t.Fatalf("app respond exited %d:\n%s", code1, out)
	}
	if !verifies(out, challenge) {
		t.Errorf("the response does not verify under the app's key over the challenge: %q", out)
	}
	other := append([]byte(nil), challenge...)
	other[0] ^= 1
	if verifies(out, other) {
		t.Error("the response verifies over another challenge")
	}

	// From standard input, with --json.
	var v appResponse
	runJSON(t, code+"\n", &v, "app", "respond", "--app-seed-file", seedFile, "--json")
	if v.Challenge != code || !verifies(v.Response, challenge) {
		t.Errorf("--json from stdin: %+v", v)
	}

	// Another app's response does not verify under this app's key.
	t.Setenv(appSeedEnv, hex.EncodeToString([]byte("another phone")))
	if c, out := runCmd(t, "app", "respond", "--challenge", code); c != 0 || verifies(out, challenge) {
		t.Errorf("another app's response: exit %d, verifies under this app's key:\n%s", c, out)
	}
	t.Setenv(appSeedEnv, "")

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no seed", "", []string{"--challenge", code}, "--app-seed-file"},
		{"no challenge", "", []string{"--app-seed-file", seedFile}, "--challenge CODE"},
		{"not base64url", "", []string{"--app-seed-file", seedFile, "--challenge", "not a code!"}, "not unpadded base64url"},
	} {
		c, out := runCmdIn(t, tc.stdin, append([]string{"app", "respond"}, tc.args...)...)
		if c != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d, want 2 and %q:\n%s", tc.name, c, tc.want, out)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/authbench/authbench/server/api/apitest"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/sim/app"
	"github.com/authbench/authbench/sim/chip"
)

// runJSON runs a command in-process and decodes its standard output, which
// must be one JSON value and nothing else, into v.
func runJSON(t *testing.T, stdin string, v any, args ...string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), &env{stdout: &out, stderr: &errOut, stdin: strings.NewReader(stdin), wrapAPI: apitest.ForTest(t).Wrap}, args)
	if code != 0 {
		t.Fatalf("%q exited %d:\n%s%s", args, code, out.String(), errOut.String())
	}
	dec := json.NewDecoder(&out)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%q --json printed what is not JSON: %v\n%s", args, err, out.String())
	}
	if dec.More() {
		t.Fatalf("%q --json printed more than one JSON value:\n%s", args, out.String())
	}
}

// TestJSONOutput: every command that reports something prints, with
// --json, exactly one JSON document on standard output (prompts and
// progress go to standard error), holding what the text says.
func TestJSONOutput(t *testing.T) {
	cs := startCLIServer(t)

	t.Run("version", func(t *testing.T) {
		var v versionInfo
		runJSON(t, "", &v, "version", "--json")
		if v.Go == "" || v.Version == "" {
			t.Errorf("%+v", v)
		}
	})
	t.Run("check", func(t *testing.T) {
		var v struct {
			Passed, Failed int
			Target         string
			Results        []struct{ Name, Status string }
		}
		runJSON(t, "", &v, "check", "--device", "sim:chip", "--run", "info.", "--json")
		if v.Passed != 2 || v.Failed != 0 || v.Target != "sim:chip" || len(v.Results) < 15 {
			t.Errorf("%+v", v)
		}
	})
	t.Run("devices", func(t *testing.T) {
		var v []listedDevice
		runJSON(t, "", &v, "devices", "--json", "--timeout", "100ms")
	})
	t.Run("identity create", func(t *testing.T) {
		var v client.Identity
		runJSON(t, "", &v, "identity", "create", "--server", cs.URL, "--token-file", cs.tokenFile, "--identity", "json-person", "--json")
		if v.ID != "json-person" || v.State != "active" {
			t.Errorf("%+v", v)
		}
	})
	t.Run("status", func(t *testing.T) {
		var v client.Identity
		runJSON(t, "", &v, cs.args("status", "--json")...)
		if v.ID != cs.person || len(v.Authenticators) == 0 {
			t.Errorf("%+v", v)
		}
	})
	var chipAuth client.Authenticator
	// The chip enrolled here is the second factor of the login below.
	c, err := chip.New(chip.Options{Seed: []byte("json enroll")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	chipSel := serveUDPChip(t, c)
	t.Run("enroll", func(t *testing.T) {
		runJSON(t, "", &chipAuth, cs.args("enroll", "--device", chipSel, "--json")...)
		if chipAuth.Kind != client.KindChip || chipAuth.State != client.StateActive || chipAuth.CredentialID == "" {
			t.Errorf("%+v", chipAuth)
		}
	})
	t.Run("login", func(t *testing.T) {
		session := filepath.Join(t.TempDir(), "session")
		var v map[string]any
		runJSON(t, cs.password+"\n", &v, "login", "--server", cs.URL, "--identity", cs.person, "--device", chipSel,
			"--password-stdin", "--session-file", session, "--json")
		tok, _ := os.ReadFile(session)
		if v["identity"] != cs.person || v["session_file"] != session || v["expires_at"] == nil || len(bytes.TrimSpace(tok)) == 0 {
			t.Errorf("%v", v)
		}
		if v["level"] != "two-factor" || fmt.Sprint(v["authenticators"]) != fmt.Sprint([]any{cs.pwAuth, chipAuth.ID}) {
			t.Errorf("the session's level and authenticators: %v", v)
		}
		if _, ok := v["session"]; ok {
			t.Errorf("the token is in the JSON without --show-token: %v", v)
		}
		runJSON(t, cs.password+"\n", &v, "login", "--server", cs.URL, "--identity", cs.person, "--device", chipSel,
			"--password-stdin", "--show-token", "--json")
		if s, _ := v["session"].(string); s == "" {
			t.Errorf("no token with --show-token: %v", v)
		}
	})
	t.Run("reactivate", func(t *testing.T) {
		a, err := app.New(app.Options{Seed: []byte("json app")})
		if err != nil {
			t.Fatal(err)
		}
		au, err := client.EnrollApp(context.Background(), cs.support, cs.person, "phone", a, a.PIN())
		if err != nil {
			t.Fatal(err)
		}
		wrong := "000000"
		if a.PIN() == wrong {
			wrong = "111111"
		}
		for range 3 {
			client.LoginApp(context.Background(), cs.support.WithToken(""), cs.person, au.ID, a, wrong)
		}
		var v client.Authenticator
		runJSON(t, "", &v, cs.args("reactivate", "--authenticator", au.ID, "--json")...)
		if v.ID != au.ID || v.State != client.StateActive {
			t.Errorf("%+v", v)
		}
	})
	t.Run("block", func(t *testing.T) {
		var v client.Authenticator
		runJSON(t, "", &v, cs.args("block", "--authenticator", chipAuth.ID, "--reason", "lost", "--json")...)
		if v.ID != chipAuth.ID || v.State != client.StateBlocked || !v.Element.Wiped {
			t.Errorf("%+v", v)
		}
	})
	t.Run("audit verify", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "authbench.db")
		dir := filepath.Dir(db)
		url, stop, _ := startServe(t, append(serveArgs(dir), "--db", db)...)
		_ = url
		if code := stop(); code != 0 {
			t.Fatalf("serve exited %d", code)
		}
		var v struct {
			OK      bool `json:"ok"`
			Records int  `json:"records"`
		}
		runJSON(t, "", &v, "audit", "verify", "--db", db, "--master-key", filepath.Join(dir, "master.key"), "--json")
		if !v.OK {
			t.Errorf("%+v", v)
		}
	})
	t.Run("demo", func(t *testing.T) {
		var v demoJSON
		runJSON(t, "", &v, "demo", "--seed", "0102", "--json")
		if !v.OK || len(v.Steps) < 30 {
			t.Errorf("ok %v, %d steps", v.OK, len(v.Steps))
		}
	})
}

// reportsNothing are the commands without --json, each with the reason it
// has nothing to report. Every other command (every leaf of the model) must
// take --json: TestEveryReportingCommandTakesJSON fails for a new command
// that reports something and lacks it.
var reportsNothing = map[string]string{
	// Its outcome is its exit status; on success it prints one fixed
	// sentence ("logged out: the session has ended").
	"logout": "the exit status is the outcome",
	// Always an error: MitID chips have no credential management, so it
	// only says why it cannot delete and points to reset.
	"credentials delete": "never succeeds on a chip of the family; says why",
	// A server until interrupted: its only line on standard output names
	// the address it listens on, its logs go to standard error.
	"serve": "runs a server; no report",
	// Their output is a document of its own format (a shell script, roff,
	// help text), not a report.
	"completion": "prints a shell script",
	"man":        "prints roff",
	"help":       "prints help text",
}

// TestEveryReportingCommandTakesJSON walks the command line's model: the
// README promises --json on every command that reports something.
func TestEveryReportingCommandTakesJSON(t *testing.T) {
	leaves := map[string]bool{}
	for _, n := range commandNodes(t) {
		if n.Type != kong.CommandNode || len(n.Children) > 0 {
			continue
		}
		leaves[n.Path()] = true
		hasJSON := slices.ContainsFunc(n.Flags, func(f *kong.Flag) bool { return f.Name == "json" && f.IsBool() })
		_, exempt := reportsNothing[n.Path()]
		switch {
		case !hasJSON && !exempt:
			t.Errorf("authbench %s reports something and has no --json", n.Path())
		case hasJSON && exempt:
			t.Errorf("authbench %s has --json: take it off the list of commands that report nothing", n.Path())
		}
	}
	for name := range reportsNothing {
		if !leaves[name] {
			t.Errorf("the list of commands that report nothing names %q, which is no command", name)
		}
	}
	if len(leaves) < 30 {
		t.Errorf("only %d commands in the model", len(leaves))
	}
}

// TestDemoSeedGivesSameIDs: the seed drives the server's randomness too,
// so that two demos with one seed tell the story with the same IDs.
func TestDemoSeedGivesSameIDs(t *testing.T) {
	ids := func(seed string) []string {
		var v demoJSON
		runJSON(t, "", &v, "demo", "--seed", seed, "--json")
		var all []string
		re := regexp.MustCompile(`\b(app|chip|ko|kv|pw)-[0-9a-f]{16}\b|credential [A-Za-z0-9_-]{12}`)
		for _, s := range v.Steps {
			all = append(all, re.FindAllString(s.Detail, -1)...)
		}
		if len(all) < 8 {
			t.Fatalf("only %d IDs in the demo of seed %s: %v", len(all), seed, all)
		}
		return all
	}
	a, b := ids("0102"), ids("0102")
	if !slices.Equal(a, b) {
		t.Errorf("the same seed gave other IDs:\n%v\n%v", a, b)
	}
	if c := ids("0103"); slices.Equal(a, c) {
		t.Errorf("another seed gave the same IDs: %v", c)
	}
}

package main

import (
	"context"
	"strings"
	"testing"

	"github.com/authbench/authbench/server/api/apitest"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/secrets"
)

func TestIdentityCreate(t *testing.T) {
	srv, err := embedded.Start(context.Background(), embedded.Options{Hasher: secrets.FastParams(), Wrap: apitest.ForTest(t).Wrap})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	t.Setenv("AUTHBENCH_TOKEN", srv.SupportToken)
	code, out := runCmd(t, "identity", "create", "--server", srv.URL, "--identity", "bob")
	if code != 0 || !strings.Contains(out, "identity bob: active") {
		t.Fatalf("identity create exited %d:\n%s", code, out)
	}
	t.Setenv("AUTHBENCH_TOKEN", "wrong")
	code, out = runCmd(t, "identity", "create", "--server", srv.URL, "--identity", "carol")
	if code == 0 {
		t.Fatalf("identity create with a wrong token succeeded:\n%s", out)
	}
	if code, _ := runCmd(t, "identity", "remove"); code != 2 {
		t.Fatalf("unknown subcommand exited %d, want 2", code)
	}
}

// TestIdentityFindings: an empty --identity is a usage error (not a random
// ID), a taken ID is reported as such, and a --server URL copied with the
// API's /v1 works.
func TestIdentityFindings(t *testing.T) {
	srv, err := embedded.Start(context.Background(), embedded.Options{Hasher: secrets.FastParams(), Wrap: apitest.ForTest(t).Wrap})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	t.Setenv("AUTHBENCH_TOKEN", srv.SupportToken)
	code, out := runCmd(t, "identity", "create", "--server", srv.URL, "--identity", "")
	if code != exitUsage || !strings.Contains(out, "empty ID") {
		t.Errorf("--identity \"\" exited %d:\n%s", code, out)
	}
	if code, out := runCmd(t, "identity", "create", "--server", srv.URL+"/v1", "--identity", "dora"); code != 0 || !strings.Contains(out, "identity dora: active") {
		t.Fatalf("create with a /v1 URL exited %d:\n%s", code, out)
	}
	code, out = runCmd(t, "identity", "create", "--server", srv.URL, "--identity", "dora")
	if code != exitFailed || !strings.Contains(out, `the identity "dora" exists already`) || strings.Contains(out, "authenticator") {
		t.Errorf("a taken ID exited %d:\n%s", code, out)
	}
	if code, out := runCmd(t, "status", "--server", srv.URL+"/v1/", "--identity", "dora"); code != 0 || !strings.Contains(out, "identity dora") {
		t.Errorf("status with a /v1/ URL exited %d:\n%s", code, out)
	}
}

// TestWrongServerPath: a --server URL with a path the server does not
// have is reported as such (exit 3, naming --server), not as a missing
// identity or authenticator; the right URL with a missing identity still
// says that.
func TestWrongServerPath(t *testing.T) {
	srv, err := embedded.Start(context.Background(), embedded.Options{Hasher: secrets.FastParams(), Wrap: apitest.ForTest(t).Wrap})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	t.Setenv("AUTHBENCH_TOKEN", srv.SupportToken)
	if code, out := runCmd(t, "identity", "create", "--server", srv.URL, "--identity", "erin"); code != 0 {
		t.Fatalf("identity create exited %d:\n%s", code, out)
	}
	wrong := srv.URL + "/api"
	for _, args := range [][]string{
		{"status", "--identity", "erin"},
		{"identity", "show", "--identity", "erin"},
		{"identity", "block", "--identity", "erin", "--reason", "test"},
		{"identity", "unblock", "--identity", "erin"},
		{"audit", "list", "--identity", "erin"},
		{"sessions", "list", "--identity", "erin"},
		{"block", "--identity", "erin", "--authenticator", "a1", "--reason", "lost"},
		{"reactivate", "--identity", "erin", "--authenticator", "a1"},
		{"enroll", "--identity", "erin", "--device", "sim:chip"},
		{"logout"},
	} {
		code, out := runCmd(t, append(args, "--server", wrong)...)
		if code != exitUnreachable || !strings.Contains(out, "has no such endpoint") || !strings.Contains(out, "--server") ||
			strings.Contains(out, "no identity") || strings.Contains(out, "no such identity") {
			t.Errorf("%q with --server %s exited %d:\n%s", args, wrong, code, out)
		}
	}
	code, out := runCmdIn(t, "pw\n", "login", "--server", wrong, "--identity", "erin", "--password-stdin", "--code", "123456")
	if code != exitUnreachable || !strings.Contains(out, "has no such endpoint") {
		t.Errorf("login with --server %s exited %d:\n%s", wrong, code, out)
	}
	for _, args := range [][]string{
		{"status", "--identity", "nobody"},
		{"audit", "list", "--identity", "nobody"},
		{"identity", "block", "--identity", "nobody", "--reason", "test"},
	} {
		code, out := runCmd(t, append(args, "--server", srv.URL)...)
		if code != exitFailed || !strings.Contains(out, `no identity "nobody"`) {
			t.Errorf("%q of a missing identity exited %d:\n%s", args, code, out)
		}
	}
}

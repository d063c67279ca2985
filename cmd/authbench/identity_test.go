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

package main

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authbench/authbench/server/secrets"
)

func TestArgon2Flag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want secrets.Params
		err  string
	}{
		{in: "m=19456,t=2,p=1", want: secrets.DefaultParams()},
		{in: "m=64,t=1,p=1", want: secrets.FastParams()},
		{in: "p=2, t=3, m=65536", want: secrets.Params{Memory: 65536, Time: 3, Threads: 2, SaltLen: 16, KeyLen: 32}},
		{in: "m=64,t=1", err: "want m=KiB"},
		{in: "m=64,t=1,p=1,x=2", err: "want m=KiB"},
		{in: "m=64,m=64,t=1", err: "want m=KiB"},
		{in: "m=-1,t=1,p=1", err: "want m=KiB"},
		{in: "m=64,t=0,p=1", err: "t=0"},
		{in: "m=64,t=17,p=1", err: "t=17"},
		{in: "m=7,t=1,p=1", err: "m=7"},
		{in: "m=16,t=1,p=4", err: "at least 8 per lane"},
		{in: "m=262145,t=1,p=1", err: "m=262145"},
		{in: "m=64,t=1,p=0", err: "p=0"},
		{in: "m=64,t=1,p=17", err: "p=17"},
		{in: "", err: "want m=KiB"},
	} {
		var f argon2Flag
		err := f.UnmarshalText([]byte(tc.in))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one saying %q", tc.in, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.err == "" && f.params() != tc.want:
			t.Errorf("%q: %+v, want %+v", tc.in, f.params(), tc.want)
		}
	}
	if (argon2Flag{}).params() != secrets.DefaultParams() || (argon2Flag{}).weaker() {
		t.Error("the zero flag is not the default parameters")
	}
	if !argon2Flag(secrets.FastParams()).weaker() {
		t.Error("the fast parameters are not weaker than the default")
	}
}

// TestServeArgon2: serve hashes new verifiers with --argon2 (warning
// when they are cheaper than the default), a server with the default
// parameters rehashes such a verifier at its next right password, and bad
// parameters are a usage error.
func TestServeArgon2(t *testing.T) {
	dir := t.TempDir()
	args := serveArgs(dir)
	url, stop, stderr := startServe(t, append(args, "--argon2", "m=64,t=1,p=1")...)
	token := supportToken(t, filepath.Join(dir, "tokens"))
	if code, body := request(t, "POST", url+"/v1/identities", token, `{"id":"alice","password":"correct horse"}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	stop()
	if s := stderr.String(); !strings.Contains(s, `argon2id="m=64,t=1,p=1"`) || !strings.Contains(s, "below the default") {
		t.Errorf("serve --argon2 m=64,t=1,p=1 logged:\n%s", s)
	}
	if v := verifiers(t, filepath.Join(dir, "authbench.db")); len(v) != 1 || !strings.HasPrefix(v[0], "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("verifiers %q: want one made with m=64,t=1,p=1", v)
	}

	url, stop, stderr = startServe(t, args...)
	if code, body := request(t, "POST", url+"/v1/identities/alice/login/password", "", `{"password":"correct horse"}`); code != 200 {
		t.Fatalf("password login: %d %s", code, body)
	}
	stop()
	if s := stderr.String(); !strings.Contains(s, `argon2id="m=19456,t=2,p=1"`) || strings.Contains(s, "below the default") {
		t.Errorf("serve without --argon2 logged:\n%s", s)
	}
	if v := verifiers(t, filepath.Join(dir, "authbench.db")); len(v) != 1 || !strings.HasPrefix(v[0], "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("verifiers %q: want the one rehashed with the default parameters", v)
	}

	var out bytes.Buffer
	if code := run(context.Background(), &env{stdout: &out, stderr: &out}, append([]string{"serve"}, append(serveArgs(t.TempDir()), "--argon2", "m=1,t=1,p=1")...)); code != exitUsage || !strings.Contains(out.String(), "m=1") {
		t.Errorf("serve --argon2 m=1,t=1,p=1 exited %d:\n%s", code, out.String())
	}
}

// verifiers returns the password verifiers in the SQLite database at
// path (opened read-only).
func verifiers(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT verifier FROM password_elements")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, to tamper with the file

	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/secrets"
)

// TestAuditVerify: the chains of a real server's database verify against
// the checkpoint it wrote at shutdown; after one record is altered behind
// the store's back, verify says where it breaks and exits 1; without the
// master key it refuses to guess.
func TestAuditVerify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, keyFile := filepath.Join(dir, "authbench.db"), filepath.Join(dir, "master.key")
	keys, err := secrets.GenerateKeyring(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.WriteFile(keyFile); err != nil {
		t.Fatal(err)
	}
	t.Setenv(secrets.EnvVar, "")
	srv, err := embedded.Start(ctx, embedded.Options{DB: db, Keyring: keys, Hasher: secrets.FastParams()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(srv.URL, client.Options{Token: srv.SupportToken})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := c.CreateIdentity(ctx, client.CreateIdentityRequest{ID: id, Password: "correct horse battery " + id}); err != nil {
			t.Fatal(err)
		}
	}
	c.CloseIdleConnections()
	srv.Close()

	code, out := runCmd(t, "audit", "verify", "--db", db, "--master-key", keyFile)
	if code != 0 || !strings.Contains(out, "audit log intact: 9 records in 3 chains, 1 checkpoint\n") || strings.Contains(out, "newer than") || strings.Contains(out, "no checkpoint") {
		t.Fatalf("verify of an intact log exited %d: %s", code, out)
	}
	t.Log(strings.TrimSpace(out))
	code, out = runCmd(t, "audit", "verify", "--db", db, "--master-key", filepath.Join(dir, "missing.key"))
	if code != 1 || !strings.Contains(out, "needs the master key") {
		t.Fatalf("verify without the key exited %d: %s", code, out)
	}

	raw, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TRIGGER audit_append_only_update`,
		`UPDATE audit SET body = CAST(replace(CAST(body AS TEXT), 'support', 'Support') AS BLOB) WHERE identity_id = 'b' AND seq = 1`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	code, out = runCmd(t, "audit", "verify", "--db", db, "--master-key", keyFile)
	if code != 1 || !strings.Contains(out, `[hash] chain of identity "b", record 1: hash mismatch`) {
		t.Fatalf("verify of a tampered chain exited %d: %s", code, out)
	}
	t.Log(strings.TrimSpace(out))
}

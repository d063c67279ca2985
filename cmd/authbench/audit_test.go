package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, to tamper with the file

	"github.com/authbench/authbench/server/api/apitest"
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
	srv, err := embedded.Start(ctx, embedded.Options{DB: db, Keyring: keys, Hasher: secrets.FastParams(), Wrap: apitest.ForTest(t).Wrap})
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
	if code != exitUsage || !strings.Contains(out, "needs the master key") {
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

// TestAuditVerifyReadOnly: the verifier only reads. A missing file is not
// created, an empty file gets no schema, a database of an older schema is
// not migrated, and an intact database is left byte for byte as it was.
func TestAuditVerifyReadOnly(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	if code, out := runCmd(t, "audit", "verify", "--db", missing); code != exitUsage || !strings.Contains(out, "no such file") {
		t.Errorf("verify of a missing file exited %d:\n%s", code, out)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("verify created %s: %v", missing, err)
	}

	empty := filepath.Join(dir, "empty.db")
	os.WriteFile(empty, nil, 0o600)
	if code, out := runCmd(t, "audit", "verify", "--db", empty); code != exitFailed || !strings.Contains(out, "not an authbench database") {
		t.Errorf("verify of an empty file exited %d:\n%s", code, out)
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
		t.Errorf("verify wrote into the empty file: %v %v", fi.Size(), err)
	}

	db := filepath.Join(t.TempDir(), "authbench.db")
	keys, err := secrets.GenerateKeyring(nil)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if err := keys.WriteFile(keyFile); err != nil {
		t.Fatal(err)
	}
	srv, err := embedded.Start(context.Background(), embedded.Options{DB: db, Keyring: keys, Hasher: secrets.FastParams(), Wrap: apitest.ForTest(t).Wrap})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(srv.URL, client.Options{Token: srv.SupportToken})
	if _, err := c.CreateIdentity(context.Background(), client.CreateIdentityRequest{ID: "ro", Password: "correct horse battery ro"}); err != nil {
		t.Fatal(err)
	}
	c.CloseIdleConnections()
	srv.Close()

	before := snapshotDir(t, filepath.Dir(db))
	if code, out := runCmd(t, "audit", "verify", "--db", db, "--master-key", keyFile); code != 0 {
		t.Fatalf("verify exited %d:\n%s", code, out)
	}
	if after := snapshotDir(t, filepath.Dir(db)); !maps.Equal(before, after) {
		t.Errorf("verify changed the database's directory:\nbefore %v\nafter  %v", before, after)
	}

	// An older schema: verify refuses it and leaves it as it is.
	raw, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	var last int
	raw.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&last)
	if _, err := raw.Exec(`DELETE FROM schema_migrations WHERE version = ?`, last); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	code, out := runCmd(t, "audit", "verify", "--db", db, "--master-key", keyFile)
	if code != exitFailed || !strings.Contains(out, "older") {
		t.Errorf("verify of an older schema exited %d:\n%s", code, out)
	}
	raw, _ = sql.Open("sqlite", db)
	defer raw.Close()
	var now int
	raw.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&now)
	if now != last-1 {
		t.Errorf("verify migrated the database: version %d, was %d", now, last-1)
	}
}

// snapshotDir returns the SHA-256 of every file in dir, by name.
func snapshotDir(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][32]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = sha256.Sum256(b)
	}
	return m
}

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

// TestAuditVerify: the chain of a real server's database verifies; after
// one record is altered behind the store's back, verify says where it
// breaks and exits 1.
func TestAuditVerify(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "authbench.db")
	srv, err := embedded.Start(ctx, embedded.Options{DB: db, Hasher: secrets.FastParams(), Wrap: apitest.ForTest(t).Wrap})
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

	code, out := runCmd(t, "audit", "verify", "--db", db)
	if code != 0 || !strings.Contains(out, "audit chain intact") {
		t.Fatalf("verify of an intact chain exited %d: %s", code, out)
	}

	raw, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TRIGGER audit_append_only_update`,
		`UPDATE audit SET body = CAST(replace(CAST(body AS TEXT), 'b', 'x') AS BLOB) WHERE seq = (SELECT MIN(seq) FROM audit WHERE identity_id = 'b')`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	code, out = runCmd(t, "audit", "verify", "--db", db)
	if code != 1 || !strings.Contains(out, "BROKEN at record") {
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
	if code, out := runCmd(t, "audit", "verify", "--db", missing); code != exitFailed {
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
	srv, err := embedded.Start(context.Background(), embedded.Options{DB: db, Hasher: secrets.FastParams(), Wrap: apitest.ForTest(t).Wrap})
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
	if code, out := runCmd(t, "audit", "verify", "--db", db); code != 0 {
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
	code, out := runCmd(t, "audit", "verify", "--db", db)
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

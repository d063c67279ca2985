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

// TestAuditVerify: the chain of a real server's database verifies; after
// one record is altered behind the store's back, verify says where it
// breaks and exits 1.
func TestAuditVerify(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "authbench.db")
	srv, err := embedded.Start(ctx, embedded.Options{DB: db, Hasher: secrets.FastParams()})
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

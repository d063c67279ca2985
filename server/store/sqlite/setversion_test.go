package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// TestMigrateAuthenticatorsVersion upgrades a database made with schema 1
// (no authenticator set version): its identities start at version 0 and
// guarded adds work on them.
func TestMigrateAuthenticatorsVersion(t *testing.T) {
	ctx := context.Background()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	limitPool(db, 1)
	if err := migrateWith(ctx, db, ms[:1], time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO identities (id, state, created_at, version) VALUES ('old-1', 'active', 0, 3)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path, Options{Chain: nopChain{}})
	if err != nil {
		t.Fatalf("Open of a schema 1 database: %v", err)
	}
	defer s.Close()
	set, err := s.AuthenticatorSet(ctx, "old-1")
	if err != nil || set.Version != 0 || len(set.Authenticators) != 0 {
		t.Fatalf("AuthenticatorSet(old-1) = %+v, %v; want version 0, none", set, err)
	}
	id, err := s.Identity(ctx, "old-1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := domain.Policy{}.Add(id, nil, nil, domain.AddRequest{ID: "pw-1", Kind: device.KindPassword}, domain.System("test"), time.Unix(1700000001, 0))
	if err != nil {
		t.Fatal(err)
	}
	el := store.Element{Password: &store.PasswordElement{Verifier: "$argon2id$x"}}
	if err := s.CreateAuthenticatorAt(ctx, c, el, 0); err != nil {
		t.Fatalf("CreateAuthenticatorAt on an upgraded identity: %v", err)
	}
	if set, err = s.AuthenticatorSet(ctx, "old-1"); err != nil || set.Version != 1 || len(set.Authenticators) != 1 {
		t.Errorf("after the add: %+v, %v; want version 1 with pw-1", set, err)
	}
	// The identity row keeps its own version apart.
	if id2, err := s.Identity(ctx, "old-1"); err != nil || id2.Version != 3 {
		t.Errorf("identity after the add: %+v, %v; want version 3 unchanged", id2, err)
	}
	// A negative stored value is refused as a malformed row.
	if err := s.onWriter(func(c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `PRAGMA ignore_check_constraints = 1`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.onWriter(func(c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `UPDATE identities SET authenticators_version = -1 WHERE id = 'old-1'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.onWriter(func(c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `PRAGMA ignore_check_constraints = 0`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticatorSet(ctx, "old-1"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("AuthenticatorSet with a negative stored version: %v, want ErrInvalid", err)
	}
}

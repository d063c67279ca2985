package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/internal/pgtest"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/postgres"
	"github.com/authbench/authbench/server/store/storetest"
)

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := postgres.Open(ctx, "postgres://127.0.0.1/x", postgres.Options{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("no Chain: %v", err)
	}
	if _, err := postgres.Open(ctx, "postgres://u:hunter2@[::1/x", postgres.Options{Chain: storetest.Chain{}}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("bad URL: %v", err)
	} else if errors.Is(err, store.ErrInvalid) && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestMigrateRefusesNewer: a database migrated by a newer program is
// refused, and reopening an up-to-date one changes nothing.
func TestMigrateRefusesNewer(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "test_")
	ctx := context.Background()
	s := open(t, url, schema)
	v, err := s.SchemaVersion(ctx)
	must(t, err)
	must(t, s.Close())
	s = open(t, url, schema) // idempotent
	if v2, err := s.SchemaVersion(ctx); err != nil || v2 != v {
		t.Fatalf("after reopening: version %d, %v; want %d", v2, err, v)
	}
	must(t, s.Close())

	c, err := pgx.Connect(ctx, url)
	must(t, err)
	defer c.Close(ctx)
	_, err = c.Exec(ctx, "INSERT INTO "+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+" VALUES ($1, 'future', 0)", v+1)
	must(t, err)
	_, err = postgres.Open(ctx, url, postgres.Options{Chain: storetest.Chain{}, Schema: schema})
	var se *postgres.SchemaError
	if !errors.As(err, &se) || !errors.Is(err, postgres.ErrSchemaTooNew) || se.Version != v+1 || se.Known != v {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

// TestAppendOnly: the triggers refuse to change or delete audit records,
// tombstones and registered credential IDs, even with SQL from outside
// the store.
func TestAppendOnly(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "test_")
	ctx := context.Background()
	s := open(t, url, schema)
	defer s.Close()
	id := newIdentity(t, s, "id-1")
	a := domain.Authenticator{ID: "app-1", IdentityID: id.ID, Kind: device.KindApp, State: domain.StatePending,
		Ref: ref(device.KindApp, "1"), CreatedAt: t0, Version: 1}
	must(t, s.CreateAuthenticator(ctx, domain.Change{Authenticator: a}, element(device.KindApp, "1")))
	must(t, s.PutTombstone(ctx, domain.Tombstone{AuthenticatorID: "old", IdentityID: id.ID, Kind: device.KindChip, BlockedAt: t0}))
	must(t, s.PutAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: 1, At: t0, KeyID: "k1", Body: []byte{1}, MAC: []byte{2}}))

	c, err := pgx.Connect(ctx, url)
	must(t, err)
	defer c.Close(ctx)
	for _, q := range []string{
		"UPDATE audit SET event_type = 'x'", "DELETE FROM audit", "TRUNCATE audit",
		"UPDATE tombstones SET reason = 'x'", "DELETE FROM tombstones", "TRUNCATE tombstones",
		"UPDATE credential_ids SET authenticator_id = 'x'", "DELETE FROM credential_ids", "TRUNCATE credential_ids",
		"UPDATE audit_checkpoints SET key_id = 'x'", "DELETE FROM audit_checkpoints", "TRUNCATE audit_checkpoints",
	} {
		tb := pgx.Identifier{schema}.Sanitize()
		_, err := c.Exec(ctx, "SET search_path = "+tb+"; "+q)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "P0001" {
			t.Errorf("%s: %v, want the trigger's refusal", q, err)
		}
	}
}

// TestCommitLogin checks the login abilities the service finds by type
// assertion: one transaction, and nothing written when the guard refuses.
func TestCommitLogin(t *testing.T) {
	url := pgtest.URL(t)
	s := open(t, url, pgtest.Schema(t, url, "test_"))
	defer s.Close()
	ctx := context.Background()
	p := domain.DefaultPolicy()
	id := newIdentity(t, s, "id-1")
	add := func(aid string, kind device.Kind) domain.Authenticator {
		a := domain.Authenticator{ID: aid, IdentityID: id.ID, Kind: kind, State: domain.StatePending, Ref: ref(kind, aid), CreatedAt: t0, Version: 1}
		must(t, s.CreateAuthenticator(ctx, domain.Change{Authenticator: a}, element(kind, aid)))
		c, err := p.Activate(id, a, sys, t0)
		must(t, err)
		must(t, s.ApplyChange(ctx, c))
		return c.Authenticator
	}
	kv, chip := add("kv-1", device.KindCodeDisplay), add("chip-1", device.KindChip)
	sess := func(tok string) *store.Session {
		return &store.Session{TokenHash: []byte(tok), ID: "ses-" + tok, IdentityID: id.ID, Level: store.LevelTwoFactor,
			Authenticators: []string{"kv-1", "chip-1"}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	}
	head := func() uint64 { // the number of audit records
		n := uint64(0)
		for _, err := range s.AuditRecords(ctx) {
			must(t, err)
			n++
		}
		return n
	}

	c, err := p.RecordSuccess(kv, t0)
	must(t, err)
	if ok, err := s.CommitLogin(ctx, store.Login{Change: c, Session: sess("t1"), OTP: &store.OTPGuard{Step: 7, Drift: 1}}); !ok || err != nil {
		t.Fatalf("first OTP login: %v %v", ok, err)
	}
	h := head()
	c2, err := p.RecordSuccess(c.Authenticator, t0)
	must(t, err)
	if ok, err := s.CommitLogin(ctx, store.Login{Change: c2, Session: sess("t2"), OTP: &store.OTPGuard{Step: 7, Drift: 1}}); ok || err != nil {
		t.Fatalf("replayed step: %v %v, want false, nil", ok, err)
	}
	if _, err := s.Session(ctx, []byte("t2"), t0); !errors.Is(err, store.ErrNotFound) || head() != h {
		t.Errorf("a refused login wrote something: session %v, head %d (was %d)", err, head(), h)
	}
	if _, err := s.CommitLogin(ctx, store.Login{Change: c, Session: sess("t3"), OTP: &store.OTPGuard{Step: 8, Drift: 1}}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("stale version: %v", err)
	}
	if el, err := s.Element(ctx, "kv-1"); err != nil || el.Code.HighestStep != 7 {
		t.Errorf("after a conflict the watermark moved: %+v %v", el.Code, err)
	}

	spent := func(k string) store.Ceremony { return store.Ceremony{Key: k, ExpiresAt: t0.Add(time.Minute)} }
	c, err = p.RecordSuccess(chip, t0)
	must(t, err)
	if ok, err := s.CommitLogin(ctx, store.Login{Change: c, Session: sess("c1"), Chip: &store.ChipGuard{Spent: spent("ch-1"), Count: 5}}); !ok || err != nil {
		t.Fatalf("first chip login: %v %v", ok, err)
	}
	c2, err = p.RecordSuccess(c.Authenticator, t0)
	must(t, err)
	if _, err := s.CommitLogin(ctx, store.Login{Change: c2, Session: sess("c2"), Chip: &store.ChipGuard{Spent: spent("ch-1"), Count: 6}}); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("a spent challenge: %v", err)
	}
	if ok, err := s.CommitLogin(ctx, store.Login{Change: c2, Session: sess("c2"), Chip: &store.ChipGuard{Spent: spent("ch-2"), Count: 5}}); ok || err != nil {
		t.Errorf("a counter that did not increase: %v %v", ok, err)
	}
	if _, err := s.TakeCeremony(ctx, "ch-2", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused chip login stored its spent challenge: %v", err)
	}
	if ok, err := s.CommitLogin(ctx, store.Login{Change: c2, Session: sess("c2"), Chip: &store.ChipGuard{Spent: spent("ch-2"), Count: 6}}); !ok || err != nil {
		t.Errorf("next chip login: %v %v", ok, err)
	}
}

// TestMigrateAuditChains: a database holding the single audit chain of
// before per-identity chains (schema before the audit_chains migration) is
// migrated when a store opens it, and its records keep verifying.
func TestMigrateAuditChains(t *testing.T) {
	ctx := context.Background()
	url, schema, db := before(t, "audit_chains")
	for _, r := range storetest.LegacyLog() {
		_, err := db.ExecContext(ctx, `INSERT INTO audit (seq, at, event_type, identity_id, authenticator_id, prev_hash, hash, body)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, int64(r.Seq), r.At.UnixNano(), string(r.Type), r.IdentityID, r.AuthenticatorID, r.PrevHash, r.Hash, r.Body)
		must(t, err)
	}
	s := open(t, url, schema)
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != postgres.KnownVersion() {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}
	storetest.CheckMigrated(t, s, &storetest.SQLTamperer{DB: db, Numbered: true, Unlock: []string{"DROP TRIGGER IF EXISTS audit_append_only ON audit"}})
}

// TestOpenReadOnly: a read-only store creates and migrates nothing: it
// refuses a schema without tables (and does not create it) and an older
// schema (and leaves it older), reads a current one, and cannot write.
func TestOpenReadOnly(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "test_")
	ctx := context.Background()
	ro := postgres.Options{Chain: storetest.Chain{}, Schema: schema, ReadOnly: true}
	if _, err := postgres.Open(ctx, url, ro); !errors.Is(err, postgres.ErrNotAStore) {
		t.Fatalf("read-only Open of an empty schema: %v", err)
	}
	c, err := pgx.Connect(ctx, url)
	must(t, err)
	defer c.Close(ctx)
	var n int
	must(t, c.QueryRow(ctx, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema).Scan(&n))
	if n != 0 {
		t.Fatal("the read-only Open created the schema")
	}

	s := open(t, url, schema)
	v, err := s.SchemaVersion(ctx)
	must(t, err)
	must(t, s.Close())
	s, err = postgres.Open(ctx, url, ro)
	must(t, err)
	if _, err := s.SchemaVersion(ctx); err != nil {
		t.Errorf("read-only store cannot read: %v", err)
	}
	ic, err := domain.NewIdentity("read-only", sys, t0)
	must(t, err)
	if err := s.CreateIdentity(ctx, ic); err == nil {
		t.Error("a read-only store wrote")
	}
	must(t, s.Close())

	table := pgx.Identifier{schema, "schema_migrations"}.Sanitize()
	_, err = c.Exec(ctx, "DELETE FROM "+table+" WHERE version = $1", v)
	must(t, err)
	if _, err := postgres.Open(ctx, url, ro); !errors.Is(err, postgres.ErrSchemaOld) {
		t.Fatalf("read-only Open of an older schema: %v", err)
	}
	must(t, c.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+table).Scan(&n))
	if n != v-1 {
		t.Errorf("the read-only Open migrated: version %d, want %d", n, v-1)
	}
}

// TestMigrateSessionProofs: a database whose sessions kept their proofs in
// session_authenticators (schema before the session_proofs migration) is
// migrated when a store opens it; its sessions still work and still end
// with their authenticators.
func TestMigrateSessionProofs(t *testing.T) {
	ctx := context.Background()
	url, schema, db := before(t, "session_proofs")
	must(t, storetest.WriteLegacySessions(ctx, db, true))
	s := open(t, url, schema)
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != postgres.KnownVersion() {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}
	storetest.CheckMigratedSessions(t, s)
}

// before makes a schema of its own migrated up to, not including, the
// migration named name, and returns the server's URL, the schema and a
// database/sql handle on it (closed when the test ends).
func before(t *testing.T, name string) (url, schema string, db *sql.DB) {
	t.Helper()
	url = pgtest.URL(t)
	schema = pgtest.Schema(t, url, "test_")
	must(t, postgres.MigrateBefore(context.Background(), url, schema, name))
	cfg, err := pgx.ParseConfig(url)
	must(t, err)
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	db = stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	return url, schema, db
}

// TestMigrateSpentMarksByExpiry: as the SQLite store's, the spent marks of
// the old form are rewritten into the server's new one and stay spent.
func TestMigrateSpentMarksByExpiry(t *testing.T) {
	url, schema, db := before(t, "spent_marks_by_expiry")
	must(t, storetest.WriteOldSpentMarks(context.Background(), db))
	s := open(t, url, schema)
	defer s.Close()
	storetest.CheckMigratedSpentMarks(t, s, db)
}

// TestMigrateOTPWatermark: as the SQLite store's, the OTP watermarks of the
// code devices move from code_elements into the authenticators' rows, and
// replays of used steps stay refused.
func TestMigrateOTPWatermark(t *testing.T) {
	url, schema, db := before(t, "otp_watermark_in_authenticators")
	must(t, storetest.WriteWatermarkedCodeDevices(context.Background(), db, true))
	s := open(t, url, schema)
	defer s.Close()
	if v, err := s.SchemaVersion(context.Background()); err != nil || v != postgres.KnownVersion() {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}
	storetest.CheckMigratedWatermarks(t, s, db)
}

package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/internal/pgtest"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/postgres"
)

// TestWipeLeavesNoCopy writes secret material through the store (and
// replaces, consumes and re-stores some of it), wipes it with permanent
// blocks, and checks that
//   - a dump of every table of the schema (each row as text, as pg_dump
//     would write it) holds no copy, right after the wipe;
//   - after VACUUM (FULL) of the secret tables, the raw pages of those
//     tables and their TOAST tables (read with pageinspect, when the
//     extension can be created) hold no copy either.
//
// Before the VACUUM the dead row versions are still in the pages; the test
// logs what it finds there, which is the trade-off the package
// documentation describes.
func TestWipeLeavesNoCopy(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "test_")
	ctx := context.Background()
	s := open(t, url, schema)
	defer s.Close()
	p := domain.DefaultPolicy()

	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	var (
		imported = random(64)
		otpNew   = random(64)
		chipKey  = random(77)
		appKey   = random(65)
		pin      = "$argon2id$" + hex.EncodeToString(random(48))
		// Large enough to be moved to the TOAST table, and random, so
		// that compression does not hide it.
		password = "$argon2id$" + hex.EncodeToString(random(4000))
	)
	all := map[string][]byte{"import": imported, "new OTP secret": otpNew,
		"chip key": chipKey, "app key": appKey, "PIN verifier": []byte(pin), "password verifier": []byte(password)}

	id := newIdentity(t, s, "id-1")
	params := store.OTPParams{Digits: 6, Period: 30 * time.Second, Algorithm: otp.SHA1}
	must(t, s.PutImport(ctx, store.Import{Serial: "KV-1", Secret: store.Sealed{KeyID: "k1", Blob: imported}, OTPParams: params}))
	im, err := s.TakeImport(ctx, "KV-1")
	must(t, err)
	adds := []struct {
		id   string
		kind device.Kind
		ref  domain.Ref
		el   store.Element
	}{
		{"kv-1", device.KindCodeDisplay, domain.Ref{Serial: "KV-1"}, store.Element{Code: &store.CodeElement{Secret: im.Secret, OTPParams: params}}},
		{"chip-1", device.KindChip, domain.Ref{CredentialID: "cred-1"}, store.Element{Chip: &store.ChipElement{PublicKey: chipKey}}},
		{"app-1", device.KindApp, domain.Ref{CredentialID: "appkey-1"}, store.Element{App: &store.AppElement{PublicKey: appKey, PINVerifier: "old-pin"}}},
		{"pw-1", device.KindPassword, domain.Ref{}, store.Element{Password: &store.PasswordElement{Verifier: password}}},
	}
	var auths []domain.Authenticator
	for _, a := range adds {
		existing, err := s.ListAuthenticators(ctx, id.ID)
		must(t, err)
		c, err := p.Add(id, existing, nil, domain.AddRequest{ID: a.id, Kind: a.kind, Ref: a.ref}, sys, t0)
		must(t, err)
		must(t, s.CreateAuthenticator(ctx, c, a.el))
		c, err = p.Activate(id, c.Authenticator, sys, t0)
		must(t, err)
		must(t, s.ApplyChange(ctx, c))
		auths = append(auths, c.Authenticator)
	}
	must(t, s.UpdateSecret(ctx, "kv-1", im.Secret, store.Sealed{KeyID: "k2", Blob: otpNew}))
	must(t, s.UpdateVerifier(ctx, "app-1", "old-pin", pin))
	for step := uint64(1); step <= 3; step++ { // each leaves a dead copy of the row
		if _, err := s.AdvanceOTPStep(ctx, "kv-1", step, 0); err != nil {
			t.Fatal(err)
		}
	}

	c, err := pgx.Connect(ctx, url)
	must(t, err)
	defer c.Close(ctx)
	// The dump check is not vacuous: the live secrets are found before
	// the wipe.
	if dump := dumpSchema(t, c, schema); !bytes.Contains(dump, []byte(hex.EncodeToString(chipKey))) {
		t.Fatal("the chip key is not in the dump before the wipe: the dump misses bytea columns")
	}

	for _, a := range auths {
		c, err := p.Block(a, domain.Support("op-1"), domain.ReasonCompromised, t0)
		must(t, err)
		must(t, s.ApplyChange(ctx, c))
	}
	dump := dumpSchema(t, c, schema)
	for name, b := range all {
		if bytes.Contains(dump, b) || bytes.Contains(dump, []byte(hex.EncodeToString(b))) {
			t.Errorf("after the wipe: the %s is in the dump of the tables", name)
		}
	}

	inspect := pageinspect(t, c)
	if inspect {
		pages := rawPages(t, c, schema)
		var left []string
		for name, b := range all {
			if bytes.Contains(pages, b[:32]) {
				left = append(left, name)
			}
		}
		t.Logf("before VACUUM, dead row versions in the table files still hold: %s", strings.Join(left, ", "))
	}
	must(t, s.Vacuum(ctx, false))
	if inspect {
		pages := rawPages(t, c, schema)
		var left []string
		for name, b := range all {
			if bytes.Contains(pages, b[:32]) {
				left = append(left, name)
			}
		}
		t.Logf("after plain VACUUM, the table files still hold: %s", strings.Join(left, ", "))
	}
	if !inspect {
		must(t, s.Vacuum(ctx, true))
		return
	}
	// VACUUM (FULL) must keep row versions that an open snapshot may still
	// see — any transaction in the database, such as another test's. Such
	// a snapshot ends soon, so vacuum again until the copies are gone, and
	// fail only when they outlive every try.
	var remaining []string
	for try := 0; try < 40; try++ {
		must(t, s.Vacuum(ctx, true))
		pages := rawPages(t, c, schema)
		remaining = remaining[:0]
		for name, b := range all {
			for off := 0; off+32 <= len(b); off += 32 {
				if i := bytes.Index(pages, b[off:off+32]); i >= 0 {
					remaining = append(remaining, fmt.Sprintf("bytes %d.. of the %s (at %d)", off, name, i))
					break
				}
			}
		}
		if len(remaining) == 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, r := range remaining {
		t.Errorf("after VACUUM (FULL), still in the table files: %s", r)
	}
	// The elements are still there, wiped.
	for _, a := range auths {
		el, err := s.Element(ctx, a.ID)
		must(t, err)
		if el.WipedAt.IsZero() {
			t.Errorf("%s: not marked wiped", a.ID)
		}
	}
}

// dumpSchema returns every row of every table of schema as text, the way
// a logical dump sees the database.
func dumpSchema(t *testing.T, c *pgx.Conn, schema string) []byte {
	t.Helper()
	ctx := context.Background()
	rows, err := c.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1`, schema)
	must(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	must(t, err)
	if len(tables) < 10 {
		t.Fatalf("only %d tables in schema %s", len(tables), schema)
	}
	var out bytes.Buffer
	for _, tb := range tables {
		q := "SELECT t::text FROM " + pgx.Identifier{schema, tb}.Sanitize() + " t"
		rows, err := c.Query(ctx, q)
		must(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		must(t, err)
		for _, l := range lines {
			out.WriteString(l)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

// pageinspect makes the pageinspect extension available, or reports that
// it cannot (not a superuser, contrib not installed).
func pageinspect(t *testing.T, c *pgx.Conn) bool {
	t.Helper()
	ctx := context.Background()
	for range 3 { // parallel test processes may create it at once
		if _, err := c.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA public"); err == nil {
			return true
		}
		var ok bool
		if c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pageinspect')").Scan(&ok) == nil && ok {
			return true
		}
	}
	t.Log("pageinspect is not available: the raw pages are not checked")
	return false
}

// rawPages returns the raw pages of the secret tables of schema and of
// their TOAST tables.
func rawPages(t *testing.T, c *pgx.Conn, schema string) []byte {
	t.Helper()
	ctx := context.Background()
	rows, err := c.Query(ctx, `SELECT r.oid::regclass::text FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
WHERE n.nspname = $1 AND r.relname = ANY($2)
UNION ALL
SELECT r.reltoastrelid::regclass::text FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
WHERE n.nspname = $1 AND r.relname = ANY($2) AND r.reltoastrelid <> 0`, schema, postgres.SecretTables())
	must(t, err)
	rels, err := pgx.CollectRows(rows, pgx.RowTo[string])
	must(t, err)
	if len(rels) < 10 {
		t.Fatalf("only %d relations: %v", len(rels), rels)
	}
	var out []byte
	for _, rel := range rels {
		rows, err := c.Query(ctx, `SELECT public.get_raw_page($1::text, b::bigint)
FROM generate_series(0, pg_relation_size($1::text::regclass) / current_setting('block_size')::bigint - 1) b`, rel)
		must(t, err)
		pages, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		must(t, err)
		for _, p := range pages {
			out = append(out, p...)
		}
	}
	return out
}

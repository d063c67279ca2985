package sqlite

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/storetest"
)

// TestMigrateOneBTreeRows: a database whose authenticators, elements,
// credential IDs and tombstones were rowid tables (schema before the one_btree_rows
// migration) is migrated when a store opens it; every element reads as
// it was written, a blocked chip's credential stays refused and its
// tombstone found, the kept-forever rows stay kept, and the chip's owner
// can block it and enroll it again.
func TestMigrateOneBTreeRows(t *testing.T) {
	ctx := context.Background()
	path, db, ms := before(t, "one_btree_rows", "&_pragma=foreign_keys(1)")
	t1 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	for _, q := range []string{
		`INSERT INTO identities (id, state, created_at, version, authenticators_version) VALUES ('id-1', 'active', ` + itoa(t1) + `, 1, 5)`,
		`INSERT INTO authenticators (id, identity_id, kind, state, credential_id, created_at, activated_at, version)
			VALUES ('pw-1', 'id-1', 'password', 'active', '', ` + itoa(t1) + `, ` + itoa(t1) + `, 1),
			('chip-1', 'id-1', 'chip', 'active', 'cred-1', ` + itoa(t1) + `, ` + itoa(t1) + `, 1),
			('kv-1', 'id-1', 'code-display', 'active', '', ` + itoa(t1) + `, ` + itoa(t1) + `, 1),
			('app-1', 'id-1', 'app', 'active', 'appkey-1', ` + itoa(t1) + `, ` + itoa(t1) + `, 1)`,
		`UPDATE authenticators SET serial = 'KV-1' WHERE id = 'kv-1'`,
		`INSERT INTO credential_ids (credential_id, authenticator_id, registered_at) VALUES
			('cred-0', 'chip-0', ` + itoa(t1) + `), ('cred-1', 'chip-1', ` + itoa(t1) + `), ('appkey-1', 'app-1', ` + itoa(t1) + `)`,
		`INSERT INTO password_elements (authenticator_id, verifier) VALUES ('pw-1', '$argon2id$pw-1')`,
		`INSERT INTO chip_elements (authenticator_id, public_key, aaguid, sign_count, attestation_format, backup_eligible)
			VALUES ('chip-1', X'0102', X'A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5', 7, 'packed', 1)`,
		`INSERT INTO code_elements (authenticator_id, secret, key_id, digits, period_s, algorithm, drift, highest_step)
			VALUES ('kv-1', X'5345414C4544', 'k1', 6, 30, 1, -1, 1000)`,
		`INSERT INTO app_elements (authenticator_id, public_key, pin_verifier) VALUES ('app-1', X'0A0B', '$argon2id$pin-1')`,
		`INSERT INTO tombstones (authenticator_id, identity_id, kind, credential_id, reason, blocked_at, by_kind, by_id)
			VALUES ('chip-0', 'id-1', 'chip', 'cred-0', 'lost', ` + itoa(t1) + `, 'support', 'op-1')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := migrated(t, path, ms)
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE sql LIKE '%WITHOUT ROWID%' AND name IN
		('authenticators', 'credential_ids', 'chip_elements', 'code_elements', 'app_elements', 'password_elements', 'tombstones')`).Scan(&n); err != nil || n != 7 {
		t.Errorf("tables WITHOUT ROWID after the migration: %d of 7, %v", n, err)
	}
	// No element went with the old authenticators table.
	if err := db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM authenticators) + (SELECT COUNT(*) FROM chip_elements) +
		(SELECT COUNT(*) FROM code_elements) + (SELECT COUNT(*) FROM app_elements) + (SELECT COUNT(*) FROM password_elements)`).Scan(&n); err != nil || n != 8 {
		t.Errorf("authenticators and elements after the migration: %d rows, %v; want 8", n, err)
	}
	want := map[string]store.Element{
		"pw-1":   {Password: &store.PasswordElement{Verifier: "$argon2id$pw-1"}},
		"chip-1": {Chip: &store.ChipElement{PublicKey: []byte{1, 2}, AAGUID: []byte{0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5}, SignCount: 7, AttestationFormat: "packed", BackupEligible: true}},
		"app-1":  {App: &store.AppElement{PublicKey: []byte{0x0A, 0x0B}, PINVerifier: "$argon2id$pin-1"}},
	}
	for id, w := range want {
		el, err := s.Element(ctx, id)
		if err != nil || render(el, nil) != render(w, nil) {
			t.Errorf("Element(%s) = %s, %v; want %s", id, render(el, nil), err, render(w, nil))
		}
	}
	kv, err := s.Element(ctx, "kv-1")
	if err != nil || kv.Code == nil || string(kv.Code.Secret.Blob) != "SEALED" || kv.Code.HighestStep != 1000 || kv.Code.Drift != -1 || kv.Code.Digits != 6 {
		t.Errorf("Element(kv-1) = %s, %v", render(kv, nil), err)
	}
	// The OTP guard still holds at its migrated watermark.
	if ok, err := s.AdvanceOTPStep(ctx, "kv-1", 1000, 0); err != nil || ok {
		t.Errorf("AdvanceOTPStep to the used step 1000 = %v, %v; want refused", ok, err)
	}
	if ts, err := s.FindTombstones(ctx, domain.Ref{CredentialID: "cred-0"}); err != nil || len(ts) != 1 || ts[0].AuthenticatorID != "chip-0" || ts[0].Reason != domain.ReasonLost {
		t.Errorf("FindTombstones(cred-0) = %+v, %v", ts, err)
	}
	for _, q := range []string{`DELETE FROM tombstones`, `UPDATE credential_ids SET authenticator_id = 'x'`, `DELETE FROM credential_ids`} {
		if _, err := db.ExecContext(ctx, q); err == nil {
			t.Errorf("%s: allowed after the migration", q)
		}
	}
	// The blocked chip's credential stays refused; the active one can be
	// blocked, and a new credential enrolled.
	set, err := s.AuthenticatorSet(ctx, "id-1")
	if err != nil {
		t.Fatal(err)
	}
	again := domain.Authenticator{ID: "chip-2", IdentityID: "id-1", Kind: device.KindChip, State: domain.StatePending,
		Ref: domain.Ref{CredentialID: "cred-0"}, CreatedAt: time.Unix(0, t1), Version: 1}
	if err := s.CreateAuthenticatorAt(ctx, domain.Change{Authenticator: again}, storetest.ElementFor(device.KindChip, "chip-2"), set.Version); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("adding the revoked credential cred-0 again: %v; want store.ErrDuplicate", err)
	}
	o := &storetest.ChipOwner{S: s, Identity: set.Identity, Version: set.Version}
	for _, a := range set.Authenticators {
		if a.ID == "chip-1" {
			o.Chip = a
		}
	}
	at := time.Unix(0, t1).Add(time.Hour)
	if err := o.Block(ctx, at); err != nil {
		t.Fatalf("block chip-1: %v", err)
	}
	if el, err := s.Element(ctx, "chip-1"); err != nil || el.Chip == nil || el.Chip.PublicKey != nil || el.WipedAt.IsZero() {
		t.Errorf("chip-1 after its block: %s, %v; want wiped", render(el, nil), err)
	}
	if err := o.Enroll(ctx, at); err != nil {
		t.Fatalf("enroll a new chip: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestMigrateOTPWatermark: a database whose code devices kept their OTP
// watermarks in code_elements (schema before otp_watermark_in_authenticators)
// is migrated when a store opens it; the watermarks move into the
// authenticators' rows, and replays of used steps stay refused.
func TestMigrateOTPWatermark(t *testing.T) {
	path, db, ms := before(t, "otp_watermark_in_authenticators", "&_pragma=foreign_keys(1)")
	if err := storetest.WriteWatermarkedCodeDevices(context.Background(), db, false); err != nil {
		t.Fatal(err)
	}
	s := migrated(t, path, ms)
	storetest.CheckMigratedWatermarks(t, s, db)
}

package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/storetest"
)

// TestMigrateAuthenticatorsByIdentity: a database whose authenticators
// were keyed by their ID alone (schema before the authenticators_by_identity
// migration) is migrated when a store opens it: the table is keyed by
// (identity_id, id) with a unique index of the IDs, every record and
// element reads as it was written, a session made before the upgrade
// still authenticates, an ID stays unique across identities, and the
// owner logs in with password and code (the OTP guard holding at its
// migrated watermark), adds and removes an authenticator.
func TestMigrateAuthenticatorsByIdentity(t *testing.T) {
	ctx := context.Background()
	path, db, ms := before(t, "authenticators_by_identity", "&_pragma=foreign_keys(1)")
	t1 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n1 := itoa(t1.UnixNano())
	token := secrets.TokenHash("old session")
	for _, q := range []string{
		`INSERT INTO identities (id, state, created_at, version, authenticators_version) VALUES
			('id-1', 'active', ` + n1 + `, 1, 3), ('id-2', 'active', ` + n1 + `, 1, 1)`,
		`INSERT INTO authenticators (id, identity_id, kind, state, serial, credential_id, created_at, activated_at, version) VALUES
			('pw-1', 'id-1', 'password', 'active', '', '', ` + n1 + `, ` + n1 + `, 1),
			('kv-1', 'id-1', 'code-display', 'active', 'KV-1', '', ` + n1 + `, ` + n1 + `, 2),
			('chip-1', 'id-1', 'chip', 'active', '', 'cred-1', ` + n1 + `, ` + n1 + `, 1),
			('pw-2', 'id-2', 'password', 'active', '', '', ` + n1 + `, ` + n1 + `, 1)`,
		`INSERT INTO credential_ids (credential_id, authenticator_id, registered_at) VALUES ('cred-1', 'chip-1', ` + n1 + `)`,
		`INSERT INTO password_elements (authenticator_id, verifier) VALUES ('pw-1', '$argon2id$pw-1'), ('pw-2', '$argon2id$pw-2')`,
		`INSERT INTO chip_elements (authenticator_id, public_key, aaguid, sign_count, attestation_format)
			VALUES ('chip-1', X'0102', X'A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5', 7, 'packed')`,
		`INSERT INTO code_elements (authenticator_id, secret, key_id, digits, period_s, algorithm, drift, highest_step)
			VALUES ('kv-1', X'5345414C4544', 'k1', 6, 30, 1, -1, 1000)`,
		`INSERT INTO sessions (token_hash, id, identity_id, level, proof_1, proof_2, created_at, expires_at)
			VALUES (X'` + hexOf(token) + `', 'sess-1', 'id-1', 'two-factor', 'pw-1', 'kv-1', ` + n1 + `, ` + itoa(t1.Add(time.Hour).UnixNano()) + `)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := migrated(t, path, ms)

	// The key, the unique index of the IDs, and no index by identity.
	var key string
	if err := db.QueryRowContext(ctx, `SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_table_info('authenticators') WHERE pk > 0 ORDER BY pk)`).Scan(&key); err != nil || key != "identity_id,id" {
		t.Errorf("primary key of authenticators: %q, %v; want identity_id,id", key, err)
	}
	var unique, old int
	if err := db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM pragma_index_list('authenticators') WHERE name = 'authenticators_id' AND "unique"),
		(SELECT COUNT(*) FROM pragma_index_list('authenticators') WHERE name = 'authenticators_identity')`).Scan(&unique, &old); err != nil || unique != 1 || old != 0 {
		t.Errorf("indexes of authenticators: authenticators_id unique %d, authenticators_identity %d, %v; want 1, 0", unique, old, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM authenticators) + (SELECT COUNT(*) FROM chip_elements) +
		(SELECT COUNT(*) FROM code_elements) + (SELECT COUNT(*) FROM password_elements) + (SELECT COUNT(*) FROM sessions)`).Scan(&n); err != nil || n != 9 {
		t.Errorf("authenticators, elements and sessions after the migration: %d rows, %v; want 9", n, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_foreign_key_check`).Scan(&n); err != nil || n != 0 {
		t.Errorf("foreign key violations after the migration: %d, %v", n, err)
	}

	set, err := s.AuthenticatorSet(ctx, "id-1")
	if err != nil || len(set.Authenticators) != 3 || set.Version != 3 {
		t.Fatalf("AuthenticatorSet(id-1) = %+v, %v; want 3 authenticators at version 3", set, err)
	}
	var pw, kv domain.Authenticator
	for _, a := range set.Authenticators {
		switch a.ID {
		case "pw-1":
			pw = a
		case "kv-1":
			kv = a
		}
	}
	if pw.ID == "" || kv.ID == "" || kv.Serial != "KV-1" || kv.Version != 2 || !kv.CreatedAt.Equal(t1) {
		t.Fatalf("migrated records: password %+v, code display %+v", pw, kv)
	}
	if el, err := s.Element(ctx, "chip-1"); err != nil || el.Chip == nil || el.Chip.SignCount != 7 || string(el.Chip.PublicKey) != "\x01\x02" {
		t.Errorf("Element(chip-1) = %s, %v", render(el, nil), err)
	}
	if found, err := s.FindAuthenticators(ctx, domain.Ref{CredentialID: "cred-1"}); err != nil || len(found) != 1 || found[0].ID != "chip-1" {
		t.Errorf("FindAuthenticators(cred-1) = %+v, %v", found, err)
	}
	if found, err := s.FindAuthenticators(ctx, domain.Ref{Serial: "KV-1"}); err != nil || len(found) != 1 || found[0].ID != "kv-1" {
		t.Errorf("FindAuthenticators(KV-1) = %+v, %v", found, err)
	}
	// The session made before the upgrade authenticates, by its proofs
	// read by their new key.
	if se, err := s.Session(ctx, token, t1.Add(time.Minute)); err != nil || se.ID != "sess-1" || len(se.Authenticators) != 2 {
		t.Errorf("Session(old token) = %+v, %v", se, err)
	}

	// An ID stays unique across identities: another identity cannot take
	// pw-1.
	twin := domain.Authenticator{ID: "pw-1", IdentityID: "id-2", Kind: device.KindPassword, State: domain.StatePending, CreatedAt: t1, Version: 1}
	if err := s.CreateAuthenticatorAt(ctx, domain.Change{Authenticator: twin}, storetest.ElementFor(device.KindPassword, "pw-1"), 1); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("adding pw-1 to id-2: %v; want store.ErrDuplicate", err)
	}

	// A two-factor code login: both records and the watermark move, in
	// one commit, and the used step stays used.
	p := domain.DefaultPolicy()
	at := t1.Add(2 * time.Minute)
	pc, err := p.RecordSuccess(pw, at)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := p.RecordSuccess(kv, at)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := s.CommitLogin(ctx, store.Login{Change: kc, Prior: &pc, PriorPlain: true, OTP: &store.OTPGuard{Step: 1001},
		Session: &store.Session{TokenHash: secrets.TokenHash("new session"), ID: "sess-2", IdentityID: "id-1",
			Level: store.LevelTwoFactor, Authenticators: []string{"pw-1", "kv-1"}, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}})
	if err != nil || !ok {
		t.Fatalf("code login after the migration: %v, %v", ok, err)
	}
	for _, c := range []domain.Change{pc, kc} {
		got, err := s.Authenticator(ctx, c.Authenticator.ID)
		if err != nil || got.Version != c.Authenticator.Version || !got.LastUsedAt.Equal(at) {
			t.Errorf("%s after the login: %+v, %v; want version %d, last used %v", c.Authenticator.ID, got, err, c.Authenticator.Version, at)
		}
	}
	if ok, err := s.AdvanceOTPStep(ctx, "kv-1", 1001, 0); err != nil || ok {
		t.Errorf("AdvanceOTPStep to the used step 1001 = %v, %v; want refused", ok, err)
	}
	if se, err := s.Session(ctx, secrets.TokenHash("new session"), at); err != nil || se.ID != "sess-2" {
		t.Errorf("Session(new token) = %+v, %v", se, err)
	}

	// A new authenticator is added, and a pending one removed with its
	// element.
	add := domain.Authenticator{ID: "pw-3", IdentityID: "id-2", Kind: device.KindPassword, State: domain.StatePending, CreatedAt: at, Version: 1}
	if err := s.CreateAuthenticatorAt(ctx, domain.Change{Authenticator: add}, storetest.ElementFor(device.KindPassword, "pw-3"), 1); err != nil {
		t.Fatalf("add pw-3: %v", err)
	}
	gone := add
	gone.Version = 2
	if err := s.ApplyChange(ctx, domain.Change{Authenticator: gone, Remove: true}); err != nil {
		t.Fatalf("remove pending pw-3: %v", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM password_elements WHERE authenticator_id = 'pw-3'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("elements of the removed pw-3: %d, %v; want 0", n, err)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

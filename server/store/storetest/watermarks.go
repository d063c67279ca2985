package storetest

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// WriteWatermarkedCodeDevices writes, into a database db of a schema from
// before the OTP watermark moved into the authenticators' rows (migration
// otp_watermark_in_authenticators), an identity with a password, an active
// code display whose watermark is at step 1000 (drift -1) and a blocked
// audio code reader whose element was wiped at step 500 (drift 2).
// numbered says whether db's placeholders are $1, $2, ...
func WriteWatermarkedCodeDevices(ctx context.Context, db *sql.DB, numbered bool) error {
	tp := &SQLTamperer{DB: db, Numbered: numbered}
	t0 := T0.UnixNano()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO identities (id, state, created_at, version, authenticators_version) VALUES ('id-1', 'active', ?, 1, 3)`, []any{t0}},
		{`INSERT INTO authenticators (id, identity_id, kind, state, serial, created_at, activated_at, last_used_at, version) VALUES
			('pw-1', 'id-1', 'password', 'active', '', ?, ?, ?, 5),
			('kv-1', 'id-1', 'code-display', 'active', 'KV-1', ?, ?, ?, 4)`, []any{t0, t0, t0, t0, t0, t0}},
		{`INSERT INTO authenticators (id, identity_id, kind, state, serial, created_at, activated_at, blocked_at, block_reason, version) VALUES
			('kv-2', 'id-1', 'audio-code-reader', 'blocked', 'KV-2', ?, ?, ?, 'lost', 6)`, []any{t0, t0, t0}},
		{`INSERT INTO password_elements (authenticator_id, verifier) VALUES ('pw-1', '$argon2id$pw-1')`, nil},
		{`INSERT INTO code_elements (authenticator_id, secret, key_id, digits, period_s, algorithm, drift, highest_step) VALUES
			('kv-1', ?, 'k1', 6, 30, 1, -1, 1000)`, []any{[]byte("SEALED-kv-1")}},
		{`INSERT INTO code_elements (authenticator_id, secret, key_id, digits, period_s, algorithm, drift, highest_step, wiped_at) VALUES
			('kv-2', NULL, NULL, 8, 60, 2, 2, 500, ?)`, []any{t0}},
	} {
		if err := tp.exec(ctx, q.sql, q.args...); err != nil {
			return err
		}
	}
	return nil
}

// CheckMigratedWatermarks checks a store whose database db held the rows of
// WriteWatermarkedCodeDevices before the migration: no authenticator or
// element is lost, each code device keeps its watermark, drift and
// parameters, a replay of a used step (or an older one) is refused and a
// newer step accepted, by CommitLogin as by AdvanceOTPStep, and the wiped
// element stays wiped.
func CheckMigratedWatermarks(t *testing.T, s store.Store, db *sql.DB) {
	t.Helper()
	ctx := context.Background()
	var auths, codes int
	if err := db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM authenticators), (SELECT COUNT(*) FROM code_elements)`).Scan(&auths, &codes); err != nil || auths != 3 || codes != 2 {
		t.Fatalf("after the migration: %d authenticators and %d code elements, %v; want 3 and 2", auths, codes, err)
	}
	kv, err := s.Element(ctx, "kv-1")
	if err != nil || kv.Code == nil || kv.Code.HighestStep != 1000 || kv.Code.Drift != -1 || string(kv.Code.Secret.Blob) != "SEALED-kv-1" ||
		kv.Code.Secret.KeyID != "k1" || kv.Code.Digits != 6 || kv.Code.Period != 30*time.Second || !kv.WipedAt.IsZero() {
		t.Errorf("Element(kv-1) = %+v, %v; want the watermark 1000, drift -1 and its secret and parameters", kv.Code, err)
	}
	kv2, err := s.Element(ctx, "kv-2")
	if err != nil || kv2.Code == nil || kv2.Code.HighestStep != 500 || kv2.Code.Drift != 2 || kv2.Code.Secret.Blob != nil ||
		kv2.Code.Digits != 8 || kv2.Code.Period != time.Minute || kv2.WipedAt.IsZero() {
		t.Errorf("Element(kv-2) = %+v (wiped at %v), %v; want the watermark 500, drift 2, wiped", kv2.Code, kv2.WipedAt, err)
	}
	// Replays of the used step and of an older one: refused, nothing moves.
	p := domain.DefaultPolicy()
	login := func(step uint64) (bool, error) {
		a, err := s.Authenticator(ctx, "kv-1")
		if err != nil {
			return false, err
		}
		c, err := p.RecordSuccess(a, T0.Add(time.Hour))
		if err != nil {
			return false, err
		}
		return s.CommitLogin(ctx, store.Login{Change: c, OTP: &store.OTPGuard{Step: step}})
	}
	for _, step := range []uint64{1000, 999, 1} {
		if ok, err := login(step); ok || err != nil {
			t.Errorf("a code login with the used step %d after the migration = %v, %v; want refused (false, nil)", step, ok, err)
		}
		if ok, err := s.AdvanceOTPStep(ctx, "kv-1", step, 0); ok || err != nil {
			t.Errorf("AdvanceOTPStep(kv-1, %d) after the migration = %v, %v; want refused", step, ok, err)
		}
	}
	if a, err := s.Authenticator(ctx, "kv-1"); err != nil || a.Version != 4 {
		t.Errorf("kv-1 after refused logins: version %d, %v; want 4 (nothing written)", a.Version, err)
	}
	if ok, err := login(1001); !ok || err != nil {
		t.Errorf("a code login with the new step 1001 = %v, %v; want accepted", ok, err)
	}
	if el, err := s.Element(ctx, "kv-1"); err != nil || el.Code == nil || el.Code.HighestStep != 1001 {
		t.Errorf("Element(kv-1) after step 1001: %+v, %v", el.Code, err)
	}
	if ok, err := login(1001); ok || err != nil {
		t.Errorf("step 1001 again = %v, %v; want refused", ok, err)
	}
	if _, err := s.AdvanceOTPStep(ctx, "kv-2", 600, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AdvanceOTPStep of the wiped kv-2: %v, want store.ErrNotFound", err)
	}
	if a, err := s.Authenticator(ctx, "kv-2"); err != nil || a.Kind != device.KindAudioCodeReader || a.State != domain.StateBlocked {
		t.Errorf("kv-2 after the migration: %+v, %v", a, err)
	}
}

package sqlite

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authbench/authbench/server/store"
)

// TestMigrateSpentMarksByExpiry: the spent marks of a database written
// before the spent_marks_by_expiry migration ("spent:" and the challenge)
// are rewritten into the server's new form ("spent:", the expiry's Unix
// milliseconds in 11 hex digits, the challenge; service.spentKey), so a
// token spent before the upgrade is still refused as spent after it;
// every other ceremony keeps its key and no row is lost.
func TestMigrateSpentMarksByExpiry(t *testing.T) {
	ctx := context.Background()
	path, db, ms := before(t, "spent_marks_by_expiry", "")
	exp := time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.UTC)
	var challenges [3][]byte
	for i := range challenges {
		challenges[i] = make([]byte, 32)
		for j := range challenges[i] {
			challenges[i][j] = byte(7*i + j)
		}
	}
	b64 := base64.RawURLEncoding
	oldKey := func(ch []byte) string { return "spent:" + b64.EncodeToString(ch) }
	newKey := func(ch []byte, exp time.Time) string {
		return fmt.Sprintf("spent:%011x%s", exp.UnixMilli(), b64.EncodeToString(ch))
	}
	rows := []struct {
		key string
		exp time.Time
	}{
		{oldKey(challenges[0]), exp},                  // a login's mark
		{oldKey(challenges[1]), exp.Add(time.Minute)}, // a registration's
		{newKey(challenges[2], exp), exp},             // the new form already
		{"reg-ceremony-1", exp},                       // a ceremony, not a mark
		{"spent:short", exp},                          // not a mark of a challenge
	}
	for i, r := range rows {
		if _, err := db.ExecContext(ctx, `INSERT INTO ceremonies (ckey, identity_id, data, expires_at) VALUES (?, ?, ?, ?)`,
			r.key, fmt.Sprintf("id-%d", i), []byte{byte(i)}, r.exp.UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	s := migrated(t, path, ms)
	got := map[string]string{}
	rs, err := db.QueryContext(ctx, `SELECT ckey, identity_id FROM ceremonies`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var k, id string
		if err := rs.Scan(&k, &id); err != nil {
			t.Fatal(err)
		}
		got[id] = k
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"id-0": newKey(challenges[0], exp),
		"id-1": newKey(challenges[1], exp.Add(time.Minute)),
		"id-2": newKey(challenges[2], exp),
		"id-3": "reg-ceremony-1",
		"id-4": "spent:short",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ceremonies after the migration:\n got %v\nwant %v", got, want)
	}
	// A replay after the upgrade, of a token spent before it, names the
	// mark in the new form: refused as spent.
	for i, ch := range challenges[:2] {
		e := exp.Add(time.Duration(i) * time.Minute)
		err := s.PutCeremony(ctx, store.Ceremony{Key: newKey(ch, e), IdentityID: fmt.Sprintf("id-%d", i), ExpiresAt: e})
		if !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("spending challenge %d again after the upgrade: %v; want store.ErrDuplicate", i, err)
		}
	}
}

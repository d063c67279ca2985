package storetest

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/authbench/authbench/server/store"
)

// The ceremonies a database holds before the spent_marks_by_expiry
// migration, for WriteOldSpentMarks and CheckMigratedSpentMarks: spent
// marks of the old form ("spent:" and a 32-byte challenge in base64url),
// one of the new form, and keys that are no such mark.
var (
	spentExpiry = time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.UTC)
	challenges  = func() (cs [3][]byte) {
		for i := range cs {
			cs[i] = make([]byte, 32)
			for j := range cs[i] {
				cs[i][j] = byte(7*i + j + 0xe0) // base64url with - and _
			}
		}
		return cs
	}()
)

func oldSpentKey(ch []byte) string { return "spent:" + base64.RawURLEncoding.EncodeToString(ch) }

// NewSpentKey is the key of the spent mark of challenge ch, of a ceremony
// that expires at exp, as the server forms it (service.spentKey): "spent:",
// exp's Unix milliseconds in 11 hex digits, ch in base64url.
func NewSpentKey(ch []byte, exp time.Time) string {
	return fmt.Sprintf("spent:%011x%s", exp.UnixMilli(), base64.RawURLEncoding.EncodeToString(ch))
}

// oldCeremonies maps each row's identity to its key and expiry.
func oldCeremonies() map[string]struct {
	key string
	exp time.Time
} {
	type row = struct {
		key string
		exp time.Time
	}
	return map[string]row{
		"id-0": {oldSpentKey(challenges[0]), spentExpiry},                  // a login's mark
		"id-1": {oldSpentKey(challenges[1]), spentExpiry.Add(time.Minute)}, // a registration's
		"id-2": {NewSpentKey(challenges[2], spentExpiry), spentExpiry},     // the new form already
		"id-3": {"reg-ceremony-1", spentExpiry},                            // a ceremony, not a mark
		"id-4": {"spent:short", spentExpiry},                               // no challenge's mark
	}
}

// WriteOldSpentMarks writes ceremonies of the old form into db, a
// database (SQLite or PostgreSQL) at the schema before the
// spent_marks_by_expiry migration.
func WriteOldSpentMarks(ctx context.Context, db *sql.DB) error {
	for id, r := range oldCeremonies() {
		q := fmt.Sprintf(`INSERT INTO ceremonies (ckey, identity_id, expires_at) VALUES ('%s', '%s', %d)`, r.key, id, r.exp.UnixNano())
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// CheckMigratedSpentMarks checks the ceremonies WriteOldSpentMarks wrote,
// after s migrated the database db: the old marks are in the new form,
// the rest kept their keys, no row is lost, and a token spent before the
// upgrade is refused as spent after it (its mark, formed anew, exists).
func CheckMigratedSpentMarks(t *testing.T, s store.Store, db *sql.DB) {
	t.Helper()
	ctx := context.Background()
	got := map[string]string{}
	rs, err := db.QueryContext(ctx, `SELECT ckey, identity_id FROM ceremonies`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
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
	want := map[string]string{}
	for id, r := range oldCeremonies() {
		want[id] = r.key
	}
	want["id-0"] = NewSpentKey(challenges[0], spentExpiry)
	want["id-1"] = NewSpentKey(challenges[1], spentExpiry.Add(time.Minute))
	if !maps.Equal(got, want) {
		t.Errorf("ceremonies after the migration:\n got %v\nwant %v", got, want)
	}
	for i, ch := range challenges[:2] {
		exp := spentExpiry.Add(time.Duration(i) * time.Minute)
		err := s.PutCeremony(ctx, store.Ceremony{Key: NewSpentKey(ch, exp), IdentityID: fmt.Sprintf("id-%d", i), ExpiresAt: exp})
		if !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("spending challenge %d again after the upgrade: %v; want store.ErrDuplicate", i, err)
		}
	}
}

package sqlite

import (
	"context"
	"testing"

	"github.com/authbench/authbench/server/store/storetest"
)

// TestMigrateSpentMarksByExpiry: the spent marks of a database written
// before the spent_marks_by_expiry migration ("spent:" and the challenge)
// are rewritten into the server's new form ("spent:", the expiry's Unix
// milliseconds in 11 hex digits, the challenge; service.spentKey), so a
// token spent before the upgrade is still refused as spent after it;
// every other ceremony keeps its key and no row is lost.
func TestMigrateSpentMarksByExpiry(t *testing.T) {
	path, db, ms := before(t, "spent_marks_by_expiry", "")
	if err := storetest.WriteOldSpentMarks(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	storetest.CheckMigratedSpentMarks(t, migrated(t, path, ms), db)
}

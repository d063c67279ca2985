package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// Planner is a store of the SQL core that explains its hot statements
// (sqlcore.Store.QueryPlans).
type Planner interface {
	QueryPlans(ctx context.Context) ([]sqlcore.Plan, error)
}

// indexedLookups are hot statements that find a row by a credential ID or
// a serial, with the index each must use: the partial indexes
// (of the rows whose credential ID, or serial, is not empty) serve a statement only
// when it repeats their predicate, and without them every login and add
// reads the whole table.
var indexedLookups = map[string][]string{
	"identity-set":                 {"authenticators_identity"},
	"sign-advance":                 {"authenticators_credential"},
	"chip-live":                    {"authenticators_credential"},
	"serial-revoked":               {"tombstones_serial"},
	"authenticators-find":          {"authenticators_serial", "authenticators_credential"},
	"tombstones-find":              {"tombstones_serial", "tombstones_credential"},
	"attempts-in-flight":           {"attempts_authenticator", "attempts_serial"},
	"attempt-insert-authenticator": {"attempts_authenticator", "attempts_serial"},
	"attempt-insert-import":        {"attempts_authenticator", "attempts_serial"},
}

// CheckQueryPlans fails t when the plan of a hot statement of s reads a
// whole table (or a whole index), or when a lookup by credential ID or
// serial does not use its index.
func CheckQueryPlans(t *testing.T, s Planner) {
	t.Helper()
	plans, err := s.QueryPlans(context.Background())
	if err != nil {
		t.Fatalf("QueryPlans: %v", err)
	}
	seen := map[string]bool{}
	for _, p := range plans {
		seen[p.Name] = true
		if len(p.Scans) > 0 {
			t.Errorf("%s reads all of %s:\n%s\nplan:\n%s", p.Name, strings.Join(p.Scans, ", "), p.SQL, p.Text)
		}
		for _, ix := range indexedLookups[p.Name] {
			if !strings.Contains(p.Text, ix) {
				t.Errorf("%s does not use index %s:\n%s\nplan:\n%s", p.Name, ix, p.SQL, p.Text)
			}
		}
	}
	for name := range indexedLookups {
		if !seen[name] {
			t.Errorf("no hot statement %s among the %d explained", name, len(plans))
		}
	}
	if len(plans) < 40 {
		t.Errorf("only %d hot statements explained", len(plans))
	}
}

package storetest

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// Planner is a store of the SQL core that explains its statements
// (sqlcore.Store.QueryPlans) and lists the indexes of its schema.
type Planner interface {
	QueryPlans(ctx context.Context) ([]sqlcore.Plan, error)
	Indexes(ctx context.Context) ([]string, error)
}

// indexedLookups are statements (hot, unless marked cold) with the index
// each must use
// ("a|b": either name, as the two databases call it). The partial
// indexes of the rows whose serial is not empty serve a statement only
// when it repeats their predicate, and without them every login and add
// reads the whole table; a credential ID is found by the key of
// credential_ids. A session is found by its token
// hash and its proofs by their primary keys; the sessions of an
// identity, and of an authenticator (among its identity's), through
// sessions_identity. The head of an audit chain is its row of
// audit_heads (PostgreSQL) or its last record, found by the log's key
// (SQLite).
//
// An authenticator named by its identity and ID (a login's updates, a
// session's proofs) is found by SQLite's key, (identity_id, id), and by
// PostgreSQL through its key or its index of (identity_id, created_at,
// id), reading no index of IDs.
var indexedLookups = map[string][]string{
	"identity-set":                        {"authenticators_identity|USING PRIMARY KEY (identity_id=?)"},
	"authenticators-of-identity":          {"authenticators_identity|USING PRIMARY KEY (identity_id=?)"},
	"mirror-authenticators":               {"authenticators_identity|USING PRIMARY KEY (identity_id=?)"},
	"authenticator-update":                {byKey},
	"authenticator-update-same-state":     {byKey},
	"authenticator-update-otp":            {byKey},
	"authenticator-update-same-state-otp": {byKey},
	"authenticator-delete":                {byKey},
	"sign-advance":                        {"credential_ids_pkey|SEARCH credential_ids USING PRIMARY KEY (credential_id=?)"},
	"chip-live":                           {"credential_ids_pkey|SEARCH credential_ids USING PRIMARY KEY (credential_id=?)"},
	"serial-revoked":                      {"tombstones_serial"},
	"authenticators-find":                 {"authenticators_serial", "credential_ids_pkey|SEARCH credential_ids USING PRIMARY KEY (credential_id=?)"},
	"tombstones-find":                     {"tombstones_serial", "tombstones_credential"},
	"attempts-in-flight":                  {"attempts_authenticator", "attempts_serial"},
	"attempt-insert-authenticator":        {"attempts_authenticator", "attempts_serial"},
	"attempt-insert-import":               {"attempts_authenticator", "attempts_serial"},
	"session-by-token":                    {"sessions_pkey|USING PRIMARY KEY (token_hash=?)", byKey, "identities_pkey|sqlite_autoindex_identities_1 (id=?)"},
	"sessions-of-identity":                {"sessions_identity", byKey},
	"sessions-end-of":                     {"sessions_identity"},
	"identity-sessions-end":               {"sessions_identity"},
	"session-end":                         {"sessions_identity"},
	"session-delete":                      {"sessions_pkey|USING PRIMARY KEY (token_hash=?)"},
	"ceremony-take":                       {"ceremonies_pkey|USING PRIMARY KEY (ckey=?)"},
	"audit-head":                          {"audit_heads_pkey|sqlite_autoindex_audit_1 (identity_id=?)"},
	// cold: a checkpoint's heads, a row of audit_heads each or the last
	// record of each chain, the chains found by seeks in the log's key.
	"audit-heads": {"audit_heads|sqlite_autoindex_audit_1 (identity_id>?)"},
}

// byKey: the plans that find an authenticator by its identity and ID.
const byKey = "authenticators_pkey|authenticators_identity|USING PRIMARY KEY (identity_id=? AND id=?)"

// constraintIndexes are the indexes no statement needs to read: they
// enforce a rule of the schema. Every other index must serve a plan, or
// it is written at every insert for nothing.
var constraintIndexes = map[string]string{
	"authenticators_serial_in_use": "a serial is in use by at most one authenticator per quota",
}

// CheckQueryPlans fails t when the plan of a hot statement of s reads a
// whole table (or a whole index), when a lookup does not use its index
// (indexedLookups), or when an index of the schema serves no statement.
func CheckQueryPlans(t *testing.T, s Planner) {
	t.Helper()
	ctx := context.Background()
	plans, err := s.QueryPlans(ctx)
	if err != nil {
		t.Fatalf("QueryPlans: %v", err)
	}
	seen := map[string]bool{}
	hot := 0
	for _, p := range plans {
		seen[p.Name] = true
		for _, ix := range indexedLookups[p.Name] {
			if !slices.ContainsFunc(strings.Split(ix, "|"), func(ix string) bool { return strings.Contains(p.Text, ix) }) {
				t.Errorf("%s does not use index %s:\n%s\nplan:\n%s", p.Name, ix, p.SQL, p.Text)
			}
		}
		if !p.Hot {
			continue
		}
		hot++
		if len(p.Scans) > 0 {
			t.Errorf("%s reads all of %s:\n%s\nplan:\n%s", p.Name, strings.Join(p.Scans, ", "), p.SQL, p.Text)
		}
	}
	for name := range indexedLookups {
		if !seen[name] {
			t.Errorf("no statement %s among the %d explained", name, len(plans))
		}
	}
	if hot < 40 {
		t.Errorf("only %d hot statements explained", hot)
	}
	indexes, err := s.Indexes(ctx)
	if err != nil {
		t.Fatalf("Indexes: %v", err)
	}
	if len(indexes) < 10 {
		t.Fatalf("Indexes = %v", indexes)
	}
	for _, ix := range indexes {
		if constraintIndexes[ix] != "" {
			continue
		}
		// A name in a plan is followed by a space, a parenthesis or the
		// end of its line.
		used := regexp.MustCompile(`\b` + regexp.QuoteMeta(ix) + `( |\(|$)`)
		if !slices.ContainsFunc(plans, func(p sqlcore.Plan) bool { return used.MatchString(strings.ReplaceAll(p.Text, "\n", " ")) }) {
			t.Errorf("no statement uses index %s", ix)
		}
	}
}

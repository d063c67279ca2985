package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/internal/pgtest"
	"github.com/authbench/authbench/server/store/postgres"
	"github.com/authbench/authbench/server/store/storetest"
)

// statementTrace records the statements a PostgreSQL store sends (alone or
// in a pipeline) and its round trips.
type statementTrace struct {
	mu         sync.Mutex
	statements []string
	roundTrips int
}

func (r *statementTrace) add(sql string, trip bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sql != "" {
		r.statements = append(r.statements, strings.Join(strings.Fields(sql), " "))
	}
	if trip {
		r.roundTrips++
	}
}

func (r *statementTrace) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.add(d.SQL, true)
	return ctx
}
func (r *statementTrace) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *statementTrace) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.add("", true)
	return ctx
}
func (r *statementTrace) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	r.add(d.SQL, false)
}
func (r *statementTrace) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// take returns what was recorded since the last take, and forgets it.
func (r *statementTrace) take() (statements []string, roundTrips int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	statements, roundTrips = r.statements, r.roundTrips
	r.statements, r.roundTrips = nil, 0
	return statements, roundTrips
}

// TestLifecycleStatements counts the statements (transaction control
// included) and the round trips of the writes of a chip's lifecycle on
// PostgreSQL: the statements are the SQL core's, the same on SQLite, where
// the writer knows the audit head without reading it. A statement added
// to an enroll or a block, or a statement that no longer travels with the
// others, fails here. (The B-trees an enroll and a block write are
// counted on SQLite, server/store/sqlite.TestLifecycleBTrees.)
func TestLifecycleStatements(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	tr := &statementTrace{}
	s, err := postgres.Open(ctx, url, postgres.Options{Chain: storetest.Chain{}, Schema: pgtest.Schema(t, url, "test_"), MaxConns: 1, Tracer: tr})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	o, err := storetest.WarmChipOwner(ctx, s, "id-1", "id-2", t0)
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Second)
	for _, step := range []struct {
		name       string
		fn         func(context.Context, time.Time) error
		statements int
		roundTrips int
	}{
		{"enroll", o.Enroll, lifecycleStatements["enroll"], lifecycleRoundTrips["enroll"]},
		{"block", o.Block, lifecycleStatements["block"], lifecycleRoundTrips["block"]},
		{"re-add", o.Enroll, lifecycleStatements["enroll"], lifecycleRoundTrips["enroll"]},
	} {
		tr.take()
		if err := step.fn(ctx, at); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		stmts, trips := tr.take()
		t.Logf("%s: %d statements in %d round trips:\n\t%s", step.name, len(stmts), trips, strings.Join(stmts, "\n\t"))
		if len(stmts) > step.statements {
			t.Errorf("%s: %d statements, want at most %d", step.name, len(stmts), step.statements)
		}
		if trips > step.roundTrips {
			t.Errorf("%s: %d round trips, want at most %d", step.name, trips, step.roundTrips)
		}
	}
}

// lifecycleStatements are the most statements of an enroll (or re-add)
// and of a block on PostgreSQL, BEGIN and COMMIT included, and
// lifecycleRoundTrips the most round trips they take: the statements whose
// answer is only checked go out together, with the read of the audit
// chain's head (the one answer a write needs), and the audit records, the
// move of the head and COMMIT in a second. An enroll: BEGIN, the spent
// ceremony, the set version's bump, the credential ID, the authenticator,
// its element, the head, the two records, the head's move, COMMIT. A
// block: BEGIN, the authenticator's update, the end of its sessions, the
// wipe of its element, the tombstone, the head, the record, the head's
// move, COMMIT.
var (
	lifecycleStatements = map[string]int{"enroll": 10, "block": 9}
	lifecycleRoundTrips = map[string]int{"enroll": 2, "block": 2}
)

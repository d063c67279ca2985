package scaletest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, to tamper with the file

	"github.com/authbench/authbench/server/audit"
	"github.com/authbench/authbench/server/client"
)

// TestAuditTamperingFound is the attack on the audit log DESIGN §5 and
// issue 11 name, against real servers: people's histories are written
// through every replica; the servers stop cleanly (each seals a last
// checkpoint); `authbench audit verify` passes. Then someone with write
// access to the database deletes the newest three records of bob's chain
// (and moves his head back, so that the store looks consistent), and
// alters one of carol's records and recomputes every hash after it, as the
// documented canonical form allows: verify fails, naming each chain and
// record.
func TestAuditTamperingFound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testContext(t)
		db := b.open(t)
		c := newCluster(t, b.name, db, b.replicas)
		people := []string{"alice", "bob", "carol"}
		for i, id := range people {
			_, err := c.support(i).CreateIdentity(ctx, client.CreateIdentityRequest{ID: id, Password: "correct horse battery " + id})
			fatal(t, err)
		}
		for round := range 4 {
			for i, id := range people {
				s := c.support(round + i) // every replica writes to every chain
				_, err := s.BlockIdentity(ctx, id, "misuse")
				fatal(t, err)
				_, err = s.UnblockIdentity(ctx, id, fmt.Sprint("round ", round))
				fatal(t, err)
			}
		}
		c.mu.Lock()
		for _, s := range c.servers {
			s.stop()
		}
		c.mu.Unlock()

		verify := func() (audit.Report, string, bool) {
			t.Helper()
			out, err := runCommand(ctx, t, "audit", "verify", "--db", db, "--master-key", c.cfg.MasterKey, "--json")
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatalf("audit verify: %v\n%s", err, out)
			}
			var v struct {
				OK       bool            `json:"ok"`
				Records  int             `json:"records"`
				Unsealed int             `json:"unsealed"`
				Problems []audit.Problem `json:"problems"`
			}
			if jerr := json.Unmarshal([]byte(out), &v); jerr != nil {
				t.Fatalf("audit verify --json: %v\n%s", jerr, out)
			}
			if v.OK != (err == nil) {
				t.Fatalf("audit verify says ok=%v but exits with %v", v.OK, err)
			}
			return audit.Report{Records: v.Records, Unsealed: v.Unsealed, Problems: v.Problems}, out, v.OK
		}
		rep, out, ok := verify()
		if !ok || rep.Unsealed != 0 {
			t.Fatalf("the untouched log after a clean shutdown: %s", out)
		}
		t.Logf("%s: %d records verified, all sealed by the checkpoints written at shutdown", b.name, rep.Records)

		raw := openRaw(t, b.name, db)
		bob := raw.chain(ctx, "bob")
		n := len(bob)
		raw.exec(ctx, `DELETE FROM audit WHERE identity_id = ? AND seq > ?`, "bob", n-3)
		if b.name == "postgres" { // SQLite takes the head from the last record
			raw.exec(ctx, `UPDATE audit_heads SET seq = ?, hash = ? WHERE identity_id = ?`, n-3, bob[n-4].Hash[:], "bob")
		}
		rep, out, ok = verify()
		if ok || len(rep.Problems) != 1 {
			t.Fatalf("bob's newest three records deleted: %s", out)
		}
		p := rep.Problems[0]
		if p.Kind != audit.ProblemTruncated || p.Chain != "bob" || p.Seq != uint64(n) ||
			!strings.Contains(p.Message, fmt.Sprintf("records %d to %d were deleted", n-2, n)) {
			t.Errorf("bob's newest three records deleted: %+v", p)
		}

		carol := raw.chain(ctx, "carol")
		edit := len(carol) - 4
		var prev audit.Hash
		for i, r := range carol {
			if i < edit {
				prev = r.Hash
				continue
			}
			if i == edit {
				r.Reason = "a reason nobody gave"
			}
			r.PrevHash = prev
			r.Hash = r.ComputeHash()
			prev = r.Hash
			body, _ := r.MarshalBinary()
			raw.exec(ctx, `UPDATE audit SET prev_hash = ?, hash = ?, body = ? WHERE identity_id = ? AND seq = ?`,
				r.PrevHash[:], r.Hash[:], body, "carol", r.Seq)
		}
		if b.name == "postgres" {
			raw.exec(ctx, `UPDATE audit_heads SET hash = ? WHERE identity_id = ?`, prev[:], "carol")
		}
		rep, out, ok = verify()
		if ok || len(rep.Problems) != 2 {
			t.Fatalf("carol's record altered and re-chained: %s", out)
		}
		p = rep.Problems[1]
		if p.Kind != audit.ProblemRewritten || p.Chain != "carol" || p.Seq < carol[edit].Seq ||
			!strings.Contains(p.Message, `identity "carol"`) {
			t.Errorf("carol's record %d altered and re-chained: %+v", carol[edit].Seq, p)
		}
		text, _ := runCommand(ctx, t, "audit", "verify", "--db", db, "--master-key", c.cfg.MasterKey)
		t.Logf("%s: audit verify after the attacks:\n%s", b.name, text)
	})
}

// rawDB is the database of a test opened behind the servers' back.
type rawDB struct {
	t        *testing.T
	db       *sql.DB
	numbered bool
}

func openRaw(t *testing.T, backend, db string) *rawDB {
	t.Helper()
	r := &rawDB{t: t}
	var unlock []string
	if backend == "postgres" {
		cfg, err := pgx.ParseConfig(db)
		fatal(t, err)
		r.db, r.numbered = stdlib.OpenDB(*cfg), true
		unlock = []string{"DROP TRIGGER IF EXISTS audit_append_only ON audit"}
	} else {
		d, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(10000)")
		fatal(t, err)
		r.db = d
		unlock = []string{"DROP TRIGGER IF EXISTS audit_append_only_update", "DROP TRIGGER IF EXISTS audit_append_only_delete"}
	}
	t.Cleanup(func() { r.db.Close() })
	for _, q := range unlock {
		r.exec(context.Background(), q)
	}
	return r
}

func (r *rawDB) exec(ctx context.Context, query string, args ...any) {
	r.t.Helper()
	if r.numbered {
		for i := 1; strings.Contains(query, "?"); i++ {
			query = strings.Replace(query, "?", fmt.Sprint("$", i), 1)
		}
	}
	if _, err := r.db.ExecContext(ctx, query, args...); err != nil {
		r.t.Fatalf("%s: %v", query, err)
	}
}

// chain reads the records of identity id's chain, decoded.
func (r *rawDB) chain(ctx context.Context, id string) []audit.Record {
	r.t.Helper()
	q := `SELECT body FROM audit WHERE identity_id = ? ORDER BY seq`
	if r.numbered {
		q = strings.Replace(q, "?", "$1", 1)
	}
	rows, err := r.db.QueryContext(ctx, q, id)
	fatal(r.t, err)
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		var body []byte
		fatal(r.t, rows.Scan(&body))
		rec, err := audit.ParseRecord(body)
		fatal(r.t, err)
		out = append(out, *rec)
	}
	fatal(r.t, rows.Err())
	if len(out) < 6 {
		r.t.Fatalf("the chain of %s has only %d records", id, len(out))
	}
	return out
}

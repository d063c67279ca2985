package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// querier is what *pgx.Conn and pgx.Tx have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// conn runs the core's statements on a connection or in a transaction.
// pgx keeps each connection's prepared statements, keyed by their text
// (QueryExecModeCacheStatement, its default): a statement is parsed and
// planned once per connection.
type conn struct{ q querier }

var _ sqlcore.Tx = conn{}

// Exec implements sqlcore.Tx.
func (c conn) Exec(ctx context.Context, q *sqlcore.Stmt, args ...any) (int64, error) {
	tag, err := c.q.Exec(ctx, q.SQL, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// QueryRow implements sqlcore.Tx.
func (c conn) QueryRow(ctx context.Context, q *sqlcore.Stmt, args ...any) sqlcore.Row {
	return row{c.q.QueryRow(ctx, q.SQL, args...)}
}

// Query implements sqlcore.Tx.
func (c conn) Query(ctx context.Context, q *sqlcore.Stmt, args ...any) (sqlcore.Rows, error) {
	return c.q.Query(ctx, q.SQL, args...)
}

type row struct{ r pgx.Row }

func (r row) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sqlcore.ErrNoRows
	}
	return err
}

// params finds the numbered placeholders of a statement.
var params = regexp.MustCompile(`\$([0-9]+)`)

// Explain implements sqlcore.Backend: the generic plan of q, the one a
// prepared statement gets once PostgreSQL stops planning it for each set
// of values (plan_cache_mode = force_generic_plan), with sequential scans
// disabled (enable_seqscan = off), so that the small tables of a test
// cannot make a scan the cheaper choice: a Seq Scan in the plan then means
// no index can serve the statement. Full scans of an index (an Index Scan
// without an Index Cond) count as scans too.
func (s *Store) Explain(ctx context.Context, q *sqlcore.Stmt) (string, []string, error) {
	n := 0
	for _, m := range params.FindAllStringSubmatch(q.SQL, -1) {
		var k int
		fmt.Sscan(m[1], &k)
		n = max(n, k)
	}
	var raw []byte
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			for _, set := range []string{"SET LOCAL enable_seqscan = off", "SET LOCAL plan_cache_mode = force_generic_plan"} {
				if _, err := tx.Exec(ctx, set); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, "PREPARE authbench_explain AS "+q.SQL); err != nil {
				return err
			}
			defer tx.Exec(context.WithoutCancel(ctx), "DEALLOCATE authbench_explain")
			exec := "EXECUTE authbench_explain"
			if n > 0 {
				exec += "(" + strings.TrimSuffix(strings.Repeat("NULL, ", n), ", ") + ")"
			}
			return tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+exec).Scan(&raw)
		})
	})
	if err != nil {
		return "", nil, err
	}
	var plans []struct{ Plan planNode }
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
		return "", nil, fmt.Errorf("postgres: explain %s: unexpected plan %s", q.Name, raw)
	}
	var b strings.Builder
	var scans []string
	plans[0].Plan.walk(0, &b, &scans)
	return b.String(), scans, nil
}

// planNode is a node of EXPLAIN (FORMAT JSON).
type planNode struct {
	NodeType  string     `json:"Node Type"`
	Relation  string     `json:"Relation Name"`
	Index     string     `json:"Index Name"`
	IndexCond string     `json:"Index Cond"`
	Filter    string     `json:"Filter"`
	Plans     []planNode `json:"Plans"`
}

func (p *planNode) walk(depth int, b *strings.Builder, scans *[]string) {
	fmt.Fprintf(b, "%s%s", strings.Repeat("  ", depth), p.NodeType)
	if p.Relation != "" {
		fmt.Fprintf(b, " on %s", p.Relation)
	}
	if p.Index != "" {
		fmt.Fprintf(b, " using %s", p.Index)
	}
	if p.IndexCond != "" {
		fmt.Fprintf(b, " (%s)", p.IndexCond)
	}
	if p.Filter != "" {
		fmt.Fprintf(b, " filter %s", p.Filter)
	}
	b.WriteByte('\n')
	switch {
	case p.NodeType == "Seq Scan":
		*scans = append(*scans, p.Relation)
	case (p.NodeType == "Index Scan" || p.NodeType == "Index Only Scan") && p.IndexCond == "":
		*scans = append(*scans, p.Relation+" (all of index "+p.Index+")")
	}
	for i := range p.Plans {
		p.Plans[i].walk(depth+1, b, scans)
	}
}

package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

// pool runs functions with a connection of a pgxpool.Pool. pgxpool closes
// connections that come back broken (a cancelled query closes its
// connection in pgx) or still inside a transaction, instead of reusing
// them.
type pool struct {
	p *pgxpool.Pool
	// warming is set once the schema is this program's (after Open's
	// migration): connections dialled from then on are warmed.
	warming atomic.Bool
}

// newPool returns a pool of at most max connections of cfg. With min > 0
// it keeps min of them open (pgxpool's MinConns), and those it dials once
// startWarm was called are warmed (warmConn) as they are dialled.
func newPool(cfg *pgx.ConnConfig, max, min int) (*pool, error) {
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, fmt.Errorf("postgres: pool: %w", err)
	}
	pc.ConnConfig = cfg
	pc.MaxConns = int32(max)
	pl := &pool{}
	if min > 0 {
		pc.MinConns = int32(min)
		pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			if !pl.warming.Load() {
				return nil // the schema may not be there yet
			}
			return warmConn(ctx, c)
		}
	}
	if pl.p, err = pgxpool.NewWithConfig(context.Background(), pc); err != nil {
		return nil, fmt.Errorf("postgres: pool: %w", err)
	}
	return pl, nil
}

// startWarm closes the connections dialled so far and dials the pool's
// MinConns again, each warmed (warmConn), before it returns. It returns
// the error of dialling or warming one, or ctx's.
func (p *pool) startWarm(ctx context.Context) error {
	n := int(p.p.Config().MinConns)
	if n == 0 {
		return nil
	}
	p.warming.Store(true)
	p.p.Reset()
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := p.p.Acquire(ctx)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	return nil
}

// with runs fn with a connection of its own. It returns fn's error, the
// error of connecting, or ctx's error while it waits for a free connection.
func (p *pool) with(ctx context.Context, fn func(c *pgx.Conn) error) error {
	c, err := p.p.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return fn(c.Conn())
}

func (p *pool) close() { p.p.Close() }

// hotStatements are the core's statements on a request path, in this
// store's dialect.
var hotStatements = func() []string {
	var out []string
	for _, q := range sqlcore.Statements(dialect) {
		if q.Hot {
			out = append(out, q.SQL)
		}
	}
	return out
}()

// warmConn prepares the hot statements on a new connection and has
// PostgreSQL plan each of them (generic plans, plan_cache_mode), in two
// round trips, so that the first requests to use the connection do not
// parse, analyse and plan them, nor load the catalog entries of their
// tables, on their way. A replica that dials its connections at start
// (pool_min_conns) pays for that before it serves, not on its first
// logins; every connection of every replica pays once.
func warmConn(ctx context.Context, c *pgx.Conn) error {
	b := &pgx.Batch{}
	for _, sql := range hotStatements {
		sd, err := c.Prepare(ctx, sql, sql)
		if err != nil {
			return fmt.Errorf("postgres: prepare %q: %w", sql, err)
		}
		args := strings.TrimSuffix(strings.Repeat("NULL, ", len(sd.ParamOIDs)), ", ")
		if args != "" {
			args = "(" + args + ")"
		}
		b.Queue("EXPLAIN EXECUTE " + pgx.Identifier{sd.Name}.Sanitize() + args)
	}
	if err := c.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("postgres: plan the prepared statements: %w", err)
	}
	return nil
}

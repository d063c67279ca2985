package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pool runs functions with a connection of a pgxpool.Pool. pgxpool closes
// connections that come back broken (a cancelled query closes its
// connection in pgx) or still inside a transaction, instead of reusing
// them.
type pool struct {
	p *pgxpool.Pool
}

func newPool(cfg *pgx.ConnConfig, max int) (*pool, error) {
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, fmt.Errorf("postgres: pool: %w", err)
	}
	pc.ConnConfig = cfg
	pc.MaxConns = int32(max)
	p, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: pool: %w", err)
	}
	return &pool{p: p}, nil
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

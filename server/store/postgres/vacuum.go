package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// secretTables are the tables whose rows hold (or held) key material.
var secretTables = []string{"chip_elements", "code_elements", "app_elements", "password_elements", "imports"}

// Vacuum runs VACUUM on the tables that hold key material, so that the
// dead row versions left by wipes, consumed imports, replaced secrets and
// every OTP or counter update are removed from the table files (plain
// VACUUM marks their space free; full also rewrites each table into a new
// file, so no old bytes remain in it, at the cost of an exclusive lock
// while it runs). VACUUM cannot run inside a transaction; autovacuum does
// the plain kind by itself. It returns the database error.
func (s *Store) Vacuum(ctx context.Context, full bool) error {
	if s.closed.Load() {
		return errClosed
	}
	q := "VACUUM "
	if full {
		q = "VACUUM (FULL) "
	}
	return s.pool.with(ctx, func(c *pgx.Conn) error {
		for _, t := range secretTables {
			if _, err := c.Exec(ctx, q+t); err != nil {
				return fmt.Errorf("postgres: vacuum %s: %w", t, err)
			}
		}
		return nil
	})
}

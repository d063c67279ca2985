package sqlite

import (
	"context"
	"database/sql"
)

// ForgetMirror makes s forget the records it holds in memory, for a test
// that changed the database behind its back (what no program but the one
// that holds the file may do while it runs).
var ForgetMirror = forgetMirror

// StopAutoCheckpoint checkpoints the -wal file of s into the database,
// truncates it, and turns off the writer's automatic checkpoints: every
// frame written from then on stays in the -wal file, for a bench that
// counts them.
func StopAutoCheckpoint(s *Store) error {
	return s.onWriter(func(c *sql.Conn) error {
		ctx := context.Background()
		if _, err := c.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			return err
		}
		_, err := c.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0")
		return err
	})
}

// PagesOf returns the name of the table or index each page of s's
// database belongs to (the dbstat virtual table), as it is when called.
func PagesOf(s *Store) (map[uint32]string, error) {
	out := map[uint32]string{}
	err := s.onWriter(func(c *sql.Conn) error {
		rs, err := c.QueryContext(context.Background(), "SELECT name, pageno FROM dbstat")
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var name string
			var page uint32
			if err := rs.Scan(&name, &page); err != nil {
				return err
			}
			out[page] = name
		}
		return rs.Err()
	})
	return out, err
}

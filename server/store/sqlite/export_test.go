package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
)

// ForgetMirror makes s forget the records it holds in memory, for a test
// that changed the database behind its back (what no program but the one
// that holds the file may do while it runs).
var ForgetMirror = forgetMirror

// StopAutoCheckpoint checkpoints the -wal file of s into the database,
// truncates it, and turns off the writer's automatic checkpoints and the
// checkpointer's, periodic and after wipes (scrub.go): every frame written
// from then on stays in the -wal file, for a bench that counts them.
func StopAutoCheckpoint(s *Store) error {
	if s.scrub != nil {
		s.scrub.paused.Store(true)
	}
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

// WALFrames returns the page number of each frame in the -wal file at
// path (of its current generation: the frames whose salt is the header's),
// in order, and how many of them end a commit.
func WALFrames(path string) (pages []uint32, commits int, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	if len(data) < 32 {
		return nil, 0, fmt.Errorf("%s: no WAL header", path)
	}
	size := int(binary.BigEndian.Uint32(data[8:]))
	salt := string(data[16:24])
	for off := 32; off+24+size <= len(data); off += 24 + size {
		h := data[off : off+24]
		if string(h[8:16]) != salt {
			break
		}
		pages = append(pages, binary.BigEndian.Uint32(h))
		if binary.BigEndian.Uint32(h[4:]) != 0 {
			commits++
		}
	}
	return pages, commits, nil
}

// TotalChanges returns how many rows the write connection of s inserted,
// updated or deleted since it opened (SQLite's total_changes(), which
// counts the rows of triggers and foreign key actions too).
func TotalChanges(s *Store) (int64, error) {
	var n int64
	err := s.onWriter(func(c *sql.Conn) error {
		return c.QueryRowContext(context.Background(), "SELECT total_changes()").Scan(&n)
	})
	return n, err
}

package sqlite

import "github.com/authbench/authbench/server/store/internal/columns"

// col converts values to and from columns. Times are stored as INTEGER
// Unix nanoseconds (UTC), NULL for the zero time.Time; see package columns.
var col = columns.Codec{Name: "sqlite"}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

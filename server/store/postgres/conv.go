package postgres

import "github.com/authbench/authbench/server/store/internal/columns"

// col converts values to and from columns. Times are stored as BIGINT Unix
// nanoseconds (UTC), NULL for the zero time.Time; see package columns.
// Authenticator counters are INTEGER columns.
var col = columns.Codec{Name: "postgres", Int32Counters: true}

// scanner is pgx.Row or pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

// Package columns converts the values of packages domain and store to and
// from the column values the SQL stores (server/store/sqlite and
// server/store/postgres) keep, and checks a change before a store writes
// it. It holds no SQL and no driver: each store runs its own statements and
// transactions and passes the values through here on the way in and out.
//
// Times are Unix nanoseconds (UTC) in a 64-bit integer column, NULL for
// the zero time.Time; unsigned counters and versions are 64-bit integers
// that must not be negative. Row types (AuthenticatorRow, IdentityRow,
// AuditRow) are scan destinations in the column order of the stores'
// column lists, decoded after the scan.
package columns

// Package sqlcore is the one SQL core of the authbench stores: the
// statements of store.Store and the order of work of every method (a
// login, an audit append, an element's guard, an authenticator's change,
// a session, a reservation), written once for both databases. The stores
// (server/store/sqlite, server/store/postgres) are thin backends under it:
// they open the database, migrate it, and run the core's work in their
// own transactions, and a Dialect says what differs between them.
//
// # Dialect
//
// The statements are written with ? placeholders; a dialect with numbered
// placeholders ($1, $2, ...) gets them rewritten once, when the statement
// set is built. The other differences are few and named:
//
//   - locking: PostgreSQL takes row locks (SELECT ... FOR UPDATE, FOR
//     SHARE) and transaction advisory locks on code device serials, and
//     locks the head row of an audit chain by an upsert; SQLite needs
//     none of it, because a write transaction holds the database's one
//     write lock (BEGIN IMMEDIATE);
//   - booleans and 32-bit counters (columns.Codec);
//   - error classes: which driver errors mean a unique or foreign key
//     violation, a refused value, or a transaction to run again
//     (serialization failure, deadlock).
//
// Upserts (INSERT ... ON CONFLICT DO UPDATE) and RETURNING are written the
// same way in both (SQLite 3.35 and later).
//
// # Backends and statement caches
//
// A Backend runs the core's work: Write in a write transaction (SQLite's
// group-committing writer, PostgreSQL's transactions with their retries),
// Read outside one. Each connection keeps its statements prepared (a Stmt
// has an ID for per-connection caches), so a statement is parsed once per
// connection, not at every call. Write takes flags: whether the write must
// reach the disk before it returns (most do; an attempt's reservation does
// not), whether it removes secret material (SQLite then scrubs its
// write-ahead log in the background), and whether it is a single statement
// (PostgreSQL then runs it without a transaction block). A statement whose
// result the core does not read, only its error (an audit record, a
// session, the end of an attempt), runs through execLater: a transaction
// that offers Later (PostgreSQL's) sends it with the next statement or
// with the commit, in one round trip, and the others run it at once.
//
// # Query plans
//
// Statements on a request path are marked hot; Store.QueryPlans has the
// backend explain every statement, so that a test can refuse a hot plan
// that scans a table, and an index no plan uses
// (server/store/storetest.CheckQueryPlans).
package sqlcore

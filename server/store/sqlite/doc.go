// Package sqlite is the embedded default store of the authbench server
// (DESIGN §5): store.Store on an SQLite database file, through
// modernc.org/sqlite (pure Go, so the server builds with CGO_ENABLED=0).
//
// It sits under the server's HTTP API and ceremonies, beside the PostgreSQL
// store used when several replicas share a database; both pass the
// conformance suite server/store/storetest.
//
// # Durability
//
// A file database runs in WAL mode (https://sqlite.org/wal.html) with
// synchronous=FULL: every commit syncs the write-ahead log before the call
// returns, so an acknowledged change survives kill -9 of the process and
// also an OS crash or power loss. (WAL with synchronous=NORMAL would survive
// kill -9 too, since the data is already in the OS page cache, but could
// lose the last commits on power loss; an OTP watermark or a permanent
// block must not be lost, so FULL it is.) Foreign keys are enforced.
//
// The connections open the file through the VFS of internal/walvfs, the
// unix VFS but for the log: SQLite writes a WAL frame with two writes (its
// header, its page), and the VFS gathers a commit's frames in memory and
// writes them with one pwrite before the log is synced, and at the latest
// when the commit's last frame is complete, so the log holds the same bytes
// at every sync and after every commit as through the unix VFS. A commit
// then makes one system call to write its frames instead of two per frame.
//
// # Concurrency
//
// SQLite has one writer at a time. Instead of letting many connections
// fight for the lock and fail with SQLITE_BUSY, a Store sends every write
// through its one write connection, with group commit: writes queue, and
// whoever finds the connection free takes every write queued at that
// moment and runs them in one transaction (a failing write, say an
// ErrConflict, undoes only its own statements: the batch rolls back and
// runs again with each write inside its own SAVEPOINT), then commits once. One fsync thus acknowledges a whole batch, which is
// what lets 8 goroutines go faster than 1 on a durable file; no write
// returns before the commit of its batch. A caller's context applies while
// its write waits in the queue; once its batch has started it runs to the
// end (cancelling one statement would roll back the whole batch). Write
// transactions start with BEGIN IMMEDIATE (DSN _txlock=immediate), so they
// take the write lock up front and never fail half-way when upgrading a
// read lock.
//
// Reads outside transactions go to a pool of read-only connections
// (query_only), which WAL lets run beside the writer on the last committed
// state. One process writes a database file: Open locks the file against
// writing Stores of other processes (ErrInUse, owner.go); the writing
// Stores of one process that open the same file share the lock, run their
// write transactions one at a time and share what they hold in memory
// (below). The busy_timeout (Options.BusyTimeout) covers the readers of
// other processes (a verifier) and checkpoints. The guards (AdvanceOTPStep, AdvanceSignCount,
// TakeCeremony, TakeImport) are single conditional UPDATE/DELETE
// statements, so they hold across processes too; so is the quota guard of
// CreateAuthenticatorAt, which raises identities.authenticators_version
// only from the version the add was checked against (migration 0002), in
// the transaction that inserts the authenticator. The audit log is one
// hash chain per identity (migration 0004): an append reads the heads of
// its chains inside the write transaction (the last record of each, found
// by the log's key, since migration 0009), links its records to them, and
// those records are the new heads; (identity_id, seq) is the primary key,
// so every chain has one head whatever the locking; an append that loses a
// race for a seq is retried. The writer carries the heads it read or moved
// from one op and batch to the next instead of reading them again, and
// forgets them when an op or batch is rolled back or when another
// connection appended to the log (heads.go).
//
// # Reads from memory
//
// The records a login reads — an identity, its authenticators and their
// security elements — are held in memory once read or written
// (sqlcore.Mirror), exactly as the database has them, so a login's reads
// cost no statement. Every row the write connection inserts, updates or
// deletes in those tables is reported by SQLite's pre-update hook; the
// rows of a transaction reach the memory when it commits, before its
// writes return (so a read after an acknowledged write sees it: a blocked
// chip is refused at once), and those of a rolled back savepoint or
// transaction never do (changes.go). A statement that fails after it
// changed rows makes the store forget all it holds. It holds at most
// 65,536 identities and reads again those it forgot. A wipe reaches the
// memory like any update, so a wiped secret is no longer held there
// either. Only the store's own writes are seen: while a server has the
// file open, nothing else may change it (another program's edit of the
// file would be seen by the server only after a restart).
//
// An in-memory database (path "" or ":memory:", for tests) uses one
// connection for everything, because each connection to :memory: would be
// a database of its own.
//
// # Wiping secrets
//
// PRAGMA secure_delete=ON makes SQLite overwrite deleted content (a wiped
// column, a deleted row, a freed page) with zeros instead of leaving it in
// free space. In WAL mode older versions of a page live on in the -wal file
// until a checkpoint copies the log back and the log is reused, so after
// every write that deletes or replaces secret material (a wipe, a removed
// authenticator, a consumed import, a replaced secret or verifier) the store
// runs PRAGMA wal_checkpoint(TRUNCATE), which leaves a -wal file of zero
// bytes. It is not run on the request path: the commit of the wipe wakes
// a goroutine with a connection of its own (the checkpointer), which waits
// a quarter of the window (so that the wipes of that time share one
// truncation), copies the log back with a PASSIVE checkpoint while the
// writer goes on, and then truncates the log on the write connection
// between two batches, with a short busy timeout, until it completes (see
// scrub.go: the same goroutine keeps the log short between wipes, so that
// no commit pays for a checkpoint). The window: wiped key material is gone from the
// database file and its -wal file within ScrubWindow (2 s) of the wipe's
// commit, or of the end of a read transaction that was open at the wipe
// and lasted longer; a warning is logged when it takes longer. Close
// checkpoints once more. Copies on the file system below SQLite (backups,
// journaling file systems, SSD wear levelling) are out of its reach: the
// secrets are sealed by server/secrets for that reason.
//
// # Schema
//
// Migrations are SQL files embedded from migrations/, numbered from 0001
// without gaps, each applied in its own write transaction and recorded in
// the table schema_migrations (version, name, applied_at). Open refuses a
// database whose recorded version is newer than the newest migration it
// knows (*SchemaError, ErrSchemaTooNew), rather than risk writing a schema
// it does not understand.
//
// Times are INTEGER Unix nanoseconds in UTC, NULL for the zero time.Time
// (so from 1677-09-21 to 2262-04-11). Tombstones, registered credential IDs and audit
// records are protected by triggers against UPDATE and DELETE.
package sqlite

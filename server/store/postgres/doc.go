// Package postgres is the scale-out store of the authbench server (DESIGN
// §5): store.Store on a PostgreSQL database, through pgx (pure Go, so the
// server still builds with CGO_ENABLED=0). Several replicas of the server,
// each with its own Store, share one database.
//
// It sits under the server's HTTP API and ceremonies, beside the embedded
// SQLite store (server/store/sqlite); both pass the conformance suite
// server/store/storetest, and the tables are the same, in PostgreSQL types.
//
// # Concurrency across replicas
//
// Nothing is read, changed in Go, and written back. Every guard is one
// statement or one short READ COMMITTED transaction whose correctness
// rests on PostgreSQL's row locks: an UPDATE or DELETE that finds its row
// locked by another transaction waits for it to end and then evaluates its
// WHERE clause again on the committed row.
//
//   - AdvanceOTPStep and AdvanceSignCount are one conditional UPDATE each
//     (WHERE highest_step < $step; the counter rule of WebAuthn Level 2
//     §6.1.1): of replicas presenting one time step at once, exactly one
//     sees a changed row (RFC 6238 §5.2).
//   - ApplyChange, UpdateAuthenticator and UpdateIdentity are
//     UPDATE ... WHERE version = $old (compare-and-swap) in a transaction
//     with the wipe, the tombstone and the audit events.
//   - CreateAuthenticatorAt raises identities.authenticators_version only
//     from the version the quota was checked against, in the transaction
//     that inserts the authenticator (store.AuthenticatorSet).
//   - TakeCeremony and TakeImport are DELETE ... RETURNING.
//   - Adding a code device and writing the tombstone that revokes its
//     serial both take a transaction advisory lock on the serial first, so
//     a concurrent add cannot miss a block that commits meanwhile.
//   - The audit log is one hash chain per identity (migration 0003): an
//     append locks the audit_heads rows of the chains it appends to
//     (SELECT ... FOR NO KEY UPDATE, in byte order of the identity ID),
//     links its records to them and moves them (one new row version per
//     append), and (identity_id, seq) is the primary key. The locks are
//     held to the commit, so the audited writes of one person commit one
//     after another across all replicas, and those of different people do
//     not wait for each other. A chain's first appends, which find no row
//     to lock, race on the primary key, and the losers run again.
//     Checkpoints read the heads from a snapshot, without locks.
//
// A transaction that PostgreSQL aborts with a serialization failure
// (SQLSTATE 40001) or a deadlock (40P01) is run again, a few times.
//
// # Durability
//
// Commits wait for the write-ahead log to be flushed (synchronous_commit =
// on, PostgreSQL's default), so a change the store has acknowledged
// survives a crash of the database server, and kill -9 of the server
// process. If the database or role is configured with synchronous_commit =
// off, Open turns it on for the store's own sessions and logs a warning.
// With synchronous standbys (synchronous_standby_names), "on" also waits
// for the standby's flush. The one exception is a write the core marks
// sqlcore.Lapse (an attempt's reservation and release, a password's
// success before the second factor): its transaction runs with SET LOCAL
// synchronous_commit = off, so a crash of the database server may lose it,
// which fails closed (a lost reservation was in the UNLOGGED attempts
// table, which a crash empties anyway; a lost success leaves the failures
// counted); the next commit that waits for the flush takes it along.
//
// # Round trips
//
// Every round trip costs both processes a wake-up and a system call each
// way, which is most of what a login costs beyond its crypto, so the
// store sends as few as it can:
//
//   - BEGIN goes out with a transaction's first statement, in one
//     pipeline (pgx.Batch), and a transaction that ran no statement sends
//     nothing.
//   - A statement whose answer the core only checks (sqlcore.Later: an
//     insert, the share lock of a session's proofs, a versioned update of
//     a record that stays active, a replay guard) goes out with the next
//     statement whose answer it needs, never with COMMIT: a check that
//     refuses one rolls the transaction back. A versioned update that
//     changed no row, or a guard that did not move, is explained after
//     the rollback (record gone or changed; element gone, or a replay).
//     A login's commit is two round trips: everything up to the head of
//     the identity's audit chain, then the records, the session and
//     COMMIT.
//   - An attempt is reserved by one call of reserve_attempt (migration
//     0004), in autocommit: the subject's row lock and the insert that
//     counts the attempts in flight after it, each with a snapshot of its
//     own, as the two statements of a transaction would.
//
// A login (a password with its second factor chosen, then a chip or a
// code) makes eight round trips: three reads, two reservations, the
// release of the password's attempt, and the two of its commit.
//
// # Wiping secrets
//
// A wipe (Change.WipeSecret) sets the key material columns to NULL in the
// transaction that records the permanent block; consumed imports are
// deleted. PostgreSQL's MVCC keeps the old row version, secret included, in
// the table file as a dead tuple until VACUUM removes it, and so does every
// UPDATE of an element row (a sign counter) for the row it replaces. A
// code device's OTP watermark is in its authenticator's row, which holds
// no secret (migration 0009), so a code login leaves no copy of the
// sealed OTP secret behind. VACUUM cannot run inside a transaction, so the store cannot
// run it as part of the wipe. Even then, a plain VACUUM (and autovacuum)
// only marks the space free: the bytes stay in the page until the space is
// reused. Only a rewrite of the table (VACUUM (FULL), or CLUSTER) leaves a
// table file without them. The trade-off and what an operator should do:
//
//   - Keep autovacuum on (the default): dead versions are pruned soon, and
//     their space gets reused by new rows.
//   - Where a wiped secret must be gone from the database files, run
//     Store.Vacuum(ctx, true) (VACUUM (FULL) of the tables that hold key
//     material) periodically, say nightly, or after a permanent block. It
//     takes an ACCESS EXCLUSIVE lock on each of those tables while it
//     rewrites them (short for these small tables, but it blocks logins
//     meanwhile). A rewrite keeps the row versions that a transaction still
//     open in the database may see, so run it again if a long transaction
//     was running.
//   - The write-ahead log, WAL archives, base backups and replicas hold
//     copies as well until they are recycled or expire; plan their
//     retention accordingly. Secrets are sealed by server/secrets under a
//     master key for that reason: a leftover copy is ciphertext.
//
// # Schema
//
// Migrations are SQL files embedded from migrations/, numbered from 0001
// without gaps, each applied in its own transaction and recorded in
// schema_migrations (version, name, applied_at). Open holds a session
// advisory lock (pg_advisory_lock, keyed by the schema name) while it
// migrates, so replicas starting together migrate once. It refuses a
// database whose recorded version is newer than the newest migration it
// knows (*SchemaError, ErrSchemaTooNew). Options.Schema puts the tables in
// a schema of their own (tests use one per run).
//
// Times are BIGINT Unix nanoseconds in UTC, NULL for the zero time.Time (so
// from 1677-09-21 to 2262-04-11). Tombstones, registered credential IDs,
// audit records and audit checkpoints are protected by triggers against
// UPDATE, DELETE and TRUNCATE.
//
// # Connections
//
// The Store runs every call on a connection of a pgxpool.Pool of at most
// Options.MaxConns connections (the URL's pool_max_conns, else
// max(4, GOMAXPROCS)), dialled on demand; pgxpool drops the ones a
// cancelled call has broken. Replicas each have a pool of their own: the
// database serves the sum.
//
// The connections carry application_name = authbench (DefaultApplicationName)
// unless the URL or $PGAPPNAME names another, so that pg_stat_activity
// and the server's log tell the store's backends from other clients'.
//
// Every connection keeps the statements it ran prepared, and its sessions
// run with plan_cache_mode = force_generic_plan (unless the URL sets it):
// a statement is planned once per connection, with the generic plan the
// query-plan test checks, not for the values of its first five executions
// first. With pool_min_conns in the URL, Open dials that many connections
// before it returns and keeps them open, and prepares and plans every hot
// statement on each as it is dialled: a replica pays for its connections,
// their parsing, planning and catalog caches once, at start, and not on
// its first requests (every connection of every replica pays it, so this
// work grows with the connections, not with the logins).
package postgres

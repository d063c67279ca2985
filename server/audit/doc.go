// Package audit turns the lifecycle events of server/domain into an
// append-only, tamper-evident log: every Record carries the hash of the one
// before it, so that changing, deleting, inserting or reordering a stored
// record breaks the chain at that point (DESIGN §5 "Audit").
//
// It sits between server/domain, which says what happened (domain.Event),
// and server/store, which appends the records and reads them back. The
// package does no I/O: Next builds the record that follows another, and
// Verify (or a Checker, record by record) checks a chain the store reads
// out, naming the first break precisely.
//
// # Hashing
//
// A record's hash is
//
//	Hash = SHA-256(PrevHash | Canonical(record))
//
// where PrevHash is the previous record's Hash (32 zero bytes for the first
// record, the genesis value) and Canonical is a length-prefixed binary form
// of every other field, all integers big-endian:
//
//	version   u8 = 1
//	seq       u64
//	time      i64, Unix time in microseconds (UTC)
//	type, identity_id, authenticator_id,
//	actor.kind, actor.id, actor.via, reason
//	          each a string: u32 length | UTF-8 bytes
//	details   u32 count | count × (key string | value string), keys in
//	          strictly increasing byte order
//
// Time is kept to the microsecond because that is what PostgreSQL and
// SQLite keep; Next truncates it, so a record read back from either store
// hashes the same. A nil and an empty Details hash the same.
//
// The stored form (MarshalBinary, ParseRecord) is PrevHash | Canonical |
// Hash: its last 32 bytes are the SHA-256 of everything before them. A
// store may keep that, or the fields (Record has JSON tags); either way
// Verify recomputes the hashes from the fields.
//
// A chain proves that nothing was changed after the fact only relative to
// a hash kept elsewhere: someone who can rewrite the whole table can
// recompute every hash. Publish the head (Checker.Head) now and then, and
// Resume from a published head to check what came after it.
//
// # No secrets
//
// Next passes Details through RedactDetails: a value whose key names a
// secret (pin, password, otp, code, key, token, secret, seed, ...; see
// SecretKey) is replaced by "[redacted]" before it is hashed and stored.
// It also replaces invalid UTF-8 and NUL bytes in every string, which text
// columns and JSON would not keep as they are.
package audit

// Package audit turns the lifecycle events of server/domain into an
// append-only, tamper-evident log (DESIGN §5 "Audit"): one hash chain per
// identity, in which every Record carries the hash of the one before, and
// numbered, MACed checkpoints of the heads of all chains, so that a
// verifier finds a changed, inserted, reordered or deleted record, deleted
// newest records, and a history altered and re-chained, and says in which
// identity's chain and at which record.
//
// It sits between server/domain, which says what happened (domain.Event),
// and server/store, which keeps the records and checkpoints. It does no
// I/O of its own: Chain links records inside a store's append, Sealer
// writes checkpoints and VerifyLog reads everything back, through the
// store's audit interfaces (Log).
//
// # Chains
//
// Every identity has a chain of its own, and events of no identity (a PSKC
// import, say) have one more, named by the empty identity ID. Record Seq
// counts the records of its chain from 1. Appends to different chains
// never wait for each other, in one process or across replicas: a
// PostgreSQL store locks only the heads of the chains it appends to.
//
// # Hashing
//
// A record's hash is
//
//	Hash = SHA-256(PrevHash | Canonical(record))
//
// where PrevHash is the previous record's Hash in the same chain (32 zero
// bytes for record 1, the genesis value) and Canonical is a
// length-prefixed binary form of every other field, all integers
// big-endian:
//
//	version   u8 = 2 (1 for records from before per-identity chains)
//	seq       u64, the place in the identity's chain
//	time      i64, Unix time in microseconds (UTC)
//	type, identity_id, authenticator_id,
//	actor.kind, actor.id, actor.via, reason
//	          each a string: u32 length | UTF-8 bytes
//	details   u32 count | count × (key string | value string), keys in
//	          strictly increasing byte order
//
// The identity is inside the hash, so a record cannot be moved to another
// chain. Time is kept to the microsecond because that is what PostgreSQL
// and SQLite keep; Next truncates it, so a record read back from either
// store hashes the same. A nil and an empty Details hash the same. The API
// serves every field of a record (GET /v1/identities/{id}/audit), so
// anyone can recompute its hash and the links of the chain.
//
// The stored form (MarshalBinary, ParseRecord) is PrevHash | Canonical |
// Hash: its last 32 bytes are the SHA-256 of everything before them. A
// store keeps it, and the fields it indexes (Record has JSON tags); Verify
// recomputes the hashes from the fields, and FromStore checks that the
// indexed columns say what the body says.
//
// # Records from before per-identity chains
//
// The log used to be one chain for everyone: version 1 records, whose Seq
// counts all records and whose PrevHash is the hash of the record before,
// whoever it was about. The stores' migrations keep them byte for byte:
// each becomes part of its identity's chain, and the identity's next
// record follows its last version 1 record (Seq + 1, PrevHash its Hash).
// A Checker checks the hash and the order of version 1 records in an
// identity's chain; LegacyChecker checks them as the one chain they were.
// The first checkpoint after the migration seals them like any other
// record: what was cut from the single chain before that cannot be told.
//
// # Checkpoints
//
// A chain proves nothing about its end: someone with write access to the
// database can delete its newest records, or alter a record and recompute
// every hash after it, and the chain still holds. A Checkpoint seals the
// heads (last Seq and Hash) of the chains at one moment:
//
//	version u8 = 1 | seq u64 | time i64 (µs) | prev 32 bytes |
//	key_id string | full u8 | chains u64 | root 32 bytes |
//	heads u32 count | count × (chain string | seq u64 | hash 32 bytes)
//
// Checkpoints are numbered from 1 without gaps; prev is the SHA-256 of the
// canonical form of the checkpoint before (zeros for the first), so they
// form a chain of their own. root is the Merkle tree hash (RFC 6962 §2.1)
// of the heads of all chains after the checkpoint, in byte order of the
// identity, and chains their number; heads lists the heads that moved
// since the checkpoint before (full: all of them, as a server process's
// first checkpoint does). The MAC is HMAC-SHA256 over the canonical form
// under a key derived for MACPurpose from the master key key_id of the
// server's keyring (server/secrets: HKDF-SHA256), stored beside it. Keep a
// retired master key in the key file as long as the checkpoints it MACed
// should verify; a checkpoint under a key that is gone is reported.
//
// The server (Sealer) writes a checkpoint every minute by default
// (`serve --audit-checkpoint-every`) when a chain moved, and one more at a
// clean shutdown. It reads the heads from a snapshot and writes one row:
// no append waits for it. With several replicas, each seals; one that
// finds a checkpoint younger than half the period leaves it at that.
//
// VerifyLog then checks every chain from its genesis, every checkpoint
// (number, link, MAC, no chain sealed lower than before, the root), and
// that every record a checkpoint sealed is still there with the hash it
// had. Deleted newest records show as a chain ending before a sealed
// record ("truncated"); an altered and re-chained history as a sealed
// record whose hash differs ("rewritten", between the last seal that
// still matches and the first that does not); a deleted chain as
// "chain_gone".
//
// # The window
//
// What was appended after the newest checkpoint that seals its chain is
// protected by its chain alone: it can be cut, or rewritten and re-chained,
// without VerifyLog noticing. For a running server that is at most one
// checkpoint period (plus the time to write one); after a clean shutdown
// nothing; after a crash (kill -9), what came after the last periodic
// checkpoint. Report.Unsealed counts those records.
//
// The checkpoints themselves are protected by their MACs (forged or
// altered: the MAC fails; without the master key none can be made), their
// numbers (a removed one leaves a gap), their links (a replaced one breaks
// the next one's prev), and each other (a later checkpoint sealing a chain
// lower than an earlier one is reported). Deleting the newest checkpoints
// together with the records only they sealed cannot be seen from the
// database alone: the server logs the number and hash of every checkpoint
// it writes ("audit checkpoint"), and `authbench audit verify` prints the
// newest it found, so compare the two, or ship the log lines elsewhere. A
// server that finds its own newest checkpoint missing logs an error and
// goes on numbering after it, so the gap shows.
//
// # No secrets
//
// Next passes Details through RedactDetails: a value whose key names a
// secret (pin, password, otp, code, key, token, secret, seed, ...; see
// SecretKey) is replaced by "[redacted]" before it is hashed and stored.
// It also replaces invalid UTF-8 and NUL bytes in every string, which text
// columns and JSON would not keep as they are.
package audit

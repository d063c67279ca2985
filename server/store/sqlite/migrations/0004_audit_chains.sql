-- 0004: one audit hash chain per identity, and checkpoints of the chains'
-- heads.
--
-- The audit log was one chain: every append read and extended the same head,
-- so audited writes queued behind each other. Now every identity has a chain
-- of its own (and events of no identity one more, identity_id ''): seq counts
-- the records of the chain, and the primary key is (identity_id, seq).
--
-- Existing records keep their bytes and still verify: they are the "version
-- 1" records of server/audit, whose seq and prev_hash link them in one chain
-- across identities (checked as such), and each becomes the start of its
-- identity's chain; the identity's next record follows its last one
-- (seq + 1, prev_hash its hash). The first checkpoint seals them.
CREATE TABLE audit_chains (
	seq              INTEGER NOT NULL CHECK (seq > 0),
	at               INTEGER,
	event_type       TEXT    NOT NULL,
	identity_id      TEXT    NOT NULL DEFAULT '',
	authenticator_id TEXT    NOT NULL DEFAULT '',
	prev_hash        BLOB    NOT NULL,
	hash             BLOB    NOT NULL,
	body             BLOB    NOT NULL,
	PRIMARY KEY (identity_id, seq)
) STRICT;

INSERT INTO audit_chains (seq, at, event_type, identity_id, authenticator_id, prev_hash, hash, body)
	SELECT seq, at, event_type, identity_id, authenticator_id, prev_hash, hash, body FROM audit ORDER BY seq;
DROP TABLE audit;
ALTER TABLE audit_chains RENAME TO audit;

CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- The head of every chain: an append reads it, links its records to it and
-- moves it, in the transaction that inserts them; a checkpoint reads all of
-- them.
CREATE TABLE audit_heads (
	identity_id TEXT    NOT NULL PRIMARY KEY,
	seq         INTEGER NOT NULL CHECK (seq > 0),
	hash        BLOB    NOT NULL
) STRICT;

INSERT INTO audit_heads (identity_id, seq, hash)
	SELECT identity_id, seq, hash FROM audit AS a
	WHERE seq = (SELECT MAX(seq) FROM audit AS b WHERE b.identity_id = a.identity_id);

-- Numbered, MACed checkpoints of the heads (server/audit.Checkpoint); body is
-- the checkpoint's canonical form, mac its HMAC under a key derived from the
-- master key key_id. Kept forever.
CREATE TABLE audit_checkpoints (
	seq    INTEGER NOT NULL PRIMARY KEY CHECK (seq > 0),
	at     INTEGER,
	key_id TEXT    NOT NULL,
	body   BLOB    NOT NULL,
	mac    BLOB    NOT NULL
) STRICT;

CREATE TRIGGER audit_checkpoints_keep_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are kept forever'); END;
CREATE TRIGGER audit_checkpoints_keep_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are kept forever'); END;

-- 0003: one audit hash chain per identity, and checkpoints of the chains'
-- heads.
--
-- The audit log was one chain: every append locked the one row of
-- audit_head, so audited writes of every replica committed one at a time.
-- Now every identity has a chain of its own (and events of no identity one
-- more, identity_id ''): seq counts the records of the chain, the primary key
-- is (identity_id, seq), and an append locks only the head rows of its own
-- chains (audit_heads).
--
-- Existing records keep their bytes and still verify: they are the "version
-- 1" records of server/audit, whose seq and prev_hash link them in one chain
-- across identities (checked as such), and each becomes the start of its
-- identity's chain; the identity's next record follows its last one
-- (seq + 1, prev_hash its hash). The first checkpoint seals them.
--
-- identity_id sorts by bytes (COLLATE "C"), as in SQLite, so that both stores
-- list chains in one order.
DROP INDEX audit_identity;
ALTER TABLE audit DROP CONSTRAINT audit_pkey;
ALTER TABLE audit ALTER COLUMN identity_id TYPE TEXT COLLATE "C";
ALTER TABLE audit ADD PRIMARY KEY (identity_id, seq);

DROP TABLE audit_head;

-- The head of every chain. An append locks the rows of its chains (in byte
-- order of the identity ID, so that two appends never wait for each other in
-- a cycle), links its records to them and moves them, in the transaction that
-- inserts the records; a checkpoint reads all of them from a snapshot,
-- without locks.
CREATE TABLE audit_heads (
	identity_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	seq         BIGINT NOT NULL CHECK (seq >= 0),
	hash        BYTEA  NOT NULL
);

INSERT INTO audit_heads (identity_id, seq, hash)
	SELECT DISTINCT ON (identity_id) identity_id, seq, hash FROM audit ORDER BY identity_id, seq DESC;

-- Numbered, MACed checkpoints of the heads (server/audit.Checkpoint); body is
-- the checkpoint's canonical form, mac its HMAC under a key derived from the
-- master key key_id. Kept forever.
CREATE TABLE audit_checkpoints (
	seq    BIGINT NOT NULL PRIMARY KEY CHECK (seq > 0),
	at     BIGINT,
	key_id TEXT   NOT NULL,
	body   BYTEA  NOT NULL,
	mac    BYTEA  NOT NULL
);

CREATE TRIGGER audit_checkpoints_keep BEFORE UPDATE OR DELETE ON audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION keep_forever('audit checkpoints are kept forever');
CREATE TRIGGER audit_checkpoints_keep_truncate BEFORE TRUNCATE ON audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION keep_forever('audit checkpoints are kept forever');

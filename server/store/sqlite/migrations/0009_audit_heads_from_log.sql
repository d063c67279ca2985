-- 0009: the head of an audit chain is its last record.
--
-- Since 0004 every append moved the chain's row in audit_heads in the
-- transaction that inserted its records: one more B-tree written at a
-- random key (the identity) in every audited commit, one more page in the
-- WAL per login. SQLite needs no row to lock (a write transaction holds
-- the database's one write lock), and the log's key (identity_id, seq)
-- already finds the last record of a chain, whose seq and hash are the
-- head: an append now reads the head there and writes its records only,
-- and a checkpoint reads the last record of each chain. The log keeps
-- every record, so nothing is lost with the table.
--
-- The rows of audit_heads are the last sign of records cut from the end of
-- a chain (or appended past its head) since the last sealed checkpoint, so
-- before the table goes they are compared with the log: every chain with
-- records must have its row, at its last record, with that record's hash,
-- and every row a chain. If any disagrees, the CHECK below fails, the
-- migration (one transaction) is undone, and the database stays as it was
-- for a person to look at (with `authbench audit verify` of the release
-- that wrote it: this one reads only databases it has migrated).
CREATE TEMP TABLE audit_heads_disagreeing (
	chains INTEGER NOT NULL
		CONSTRAINT "audit_heads disagrees with the audit log (records cut or appended behind the store's back); the database is left as it was: check it with audit verify of the authbench that wrote it"
		CHECK (chains = 0)
);
INSERT INTO temp.audit_heads_disagreeing (chains)
	SELECT COUNT(*) FROM (
		SELECT h.identity_id FROM audit_heads AS h
		WHERE NOT EXISTS (
			SELECT 1 FROM audit AS a
			WHERE a.identity_id = h.identity_id AND a.seq = h.seq AND a.hash = h.hash
				AND a.seq = (SELECT MAX(b.seq) FROM audit AS b WHERE b.identity_id = h.identity_id))
		UNION
		SELECT a.identity_id FROM audit AS a
		WHERE NOT EXISTS (SELECT 1 FROM audit_heads AS h WHERE h.identity_id = a.identity_id)
	);
DROP TABLE temp.audit_heads_disagreeing;
DROP TABLE audit_heads;

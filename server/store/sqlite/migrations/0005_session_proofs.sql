-- 0005: a session row names what proved it; sessions and ceremonies are
-- kept in one B-tree each, keyed by what finds them.
--
-- A login wrote its session into five B-trees (the rowid table, the
-- token_hash key, sessions_expiry, sessions_id, sessions_identity) and each
-- of its two proofs into three more (session_authenticators: the rowid
-- table, its key and its authenticator index); the spent challenge of a
-- chip login went into three (ceremonies: the rowid table, the ckey key and
-- ceremonies_expiry). Every B-tree written at a random key is one more page
-- in the WAL at every commit.
--
-- Now:
--   - the proving authenticators are columns of the session (proof_1, and
--     proof_2 for the second factor, '' when there is none; a login proves
--     with one factor or two, store.Session), in the order they were
--     checked. The session is found by its token hash; the query checks
--     that its identity and both proofs are active. A change that takes an
--     authenticator out of the active state, or deletes it, deletes its
--     sessions in the same transaction, found through the identity's
--     sessions (sessions_identity), as session_authenticators' cascade and
--     its index did;
--   - sessions and ceremonies are WITHOUT ROWID tables: the row is stored
--     in the B-tree of its key, which no longer needs a second B-tree of
--     its own;
--   - a session's ID is unique among its identity's sessions (the owner
--     names it in EndSession): sessions_identity (identity_id, id) is
--     unique and serves every lookup by identity, and sessions_id goes;
--   - the expiry indexes stay: the sweeps use them, and their keys (now +
--     a lifetime) grow with time, so a commit's logins add to one page.
--
-- The sessions are copied with their proofs as the session's via names
-- them (the proofs in the order they were checked), if session_authenticators
-- links exactly those: there are one or two of them (a session proven with
-- more, which no login opens, ends here, as one whose rows disagree).

CREATE TABLE sessions_new (
	token_hash  BLOB    NOT NULL PRIMARY KEY,
	id          TEXT    NOT NULL CHECK (id <> ''),
	identity_id TEXT    NOT NULL REFERENCES identities (id),
	level       TEXT    NOT NULL,
	proof_1     TEXT    NOT NULL CHECK (proof_1 <> ''),
	proof_2     TEXT    NOT NULL DEFAULT '' CHECK (proof_2 <> proof_1),
	created_at  INTEGER,
	expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO sessions_new (token_hash, id, identity_id, level, proof_1, proof_2, created_at, expires_at)
	SELECT token_hash, id, identity_id, level, proof_1, proof_2, created_at, expires_at FROM (
		SELECT s.*,
			CASE WHEN instr(s.via, '+') > 0 THEN substr(s.via, 1, instr(s.via, '+') - 1) ELSE s.via END AS proof_1,
			CASE WHEN instr(s.via, '+') > 0 THEN substr(s.via, instr(s.via, '+') + 1) ELSE '' END AS proof_2
		FROM sessions s
	) AS p
	WHERE id <> '' AND proof_1 <> '' AND instr(proof_2, '+') = 0 AND proof_2 <> proof_1
		AND (SELECT COUNT(*) FROM session_authenticators sa WHERE sa.token_hash = p.token_hash)
			= (CASE proof_2 WHEN '' THEN 1 ELSE 2 END)
		AND (SELECT COUNT(*) FROM session_authenticators sa
			WHERE sa.token_hash = p.token_hash AND sa.authenticator_id IN (proof_1, proof_2))
			= (CASE proof_2 WHEN '' THEN 1 ELSE 2 END);

DROP TABLE session_authenticators;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;

CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE UNIQUE INDEX sessions_identity ON sessions (identity_id, id);

CREATE TABLE ceremonies_new (
	ckey        TEXT    NOT NULL PRIMARY KEY,
	identity_id TEXT    NOT NULL DEFAULT '',
	data        BLOB,
	expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO ceremonies_new (ckey, identity_id, data, expires_at)
	SELECT ckey, identity_id, data, expires_at FROM ceremonies;
DROP TABLE ceremonies;
ALTER TABLE ceremonies_new RENAME TO ceremonies;

CREATE INDEX ceremonies_expiry ON ceremonies (expires_at);

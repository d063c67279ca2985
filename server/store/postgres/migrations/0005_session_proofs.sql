-- 0005: a session row names what proved it (the SQLite store's 0005).
--
-- A login wrote its session (the heap, the token_hash key, sessions_expiry,
-- sessions_id, sessions_identity) and each of its two proofs into
-- session_authenticators (the heap, its key and its authenticator index).
-- Now the proving authenticators are columns of the session (proof_1, and
-- proof_2 for the second factor, '' when there is none; a login proves
-- with one factor or two, store.Session), in the order they were checked.
-- The session is found by its token hash; the query checks that its
-- identity and both proofs are active. A change that takes an
-- authenticator out of the active state, or deletes it, deletes its
-- sessions in the same transaction, found through the identity's sessions
-- (sessions_identity), as session_authenticators' cascade and its index
-- did. A session's ID is unique among its identity's sessions (the owner
-- names it in EndSession): sessions_identity (identity_id, id) is unique
-- and serves every lookup by identity, and sessions_id goes.
--
-- The sessions keep their proofs as the session's via names them (the
-- proofs in the order they were checked), if session_authenticators links
-- exactly those: there are one or two of them (a session proven with
-- more, which no login opens, ends here, as one whose rows disagree).

ALTER TABLE sessions ADD COLUMN proof_1 TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN proof_2 TEXT NOT NULL DEFAULT '';
UPDATE sessions SET proof_1 = split_part(via, '+', 1), proof_2 = split_part(via, '+', 2);
DELETE FROM sessions s
WHERE s.id = '' OR s.proof_1 = '' OR s.proof_2 = s.proof_1 OR split_part(s.via, '+', 3) <> ''
	OR (SELECT COUNT(*) FROM session_authenticators sa WHERE sa.token_hash = s.token_hash)
		<> (CASE s.proof_2 WHEN '' THEN 1 ELSE 2 END)
	OR (SELECT COUNT(*) FROM session_authenticators sa
		WHERE sa.token_hash = s.token_hash AND sa.authenticator_id IN (s.proof_1, s.proof_2))
		<> (CASE s.proof_2 WHEN '' THEN 1 ELSE 2 END);
ALTER TABLE sessions ALTER COLUMN proof_1 DROP DEFAULT;
ALTER TABLE sessions ADD CHECK (id <> '' AND proof_1 <> '' AND proof_2 <> proof_1);
ALTER TABLE sessions DROP COLUMN via;

DROP TABLE session_authenticators;
DROP INDEX sessions_id;
DROP INDEX sessions_identity;
CREATE UNIQUE INDEX sessions_identity ON sessions (identity_id, id);

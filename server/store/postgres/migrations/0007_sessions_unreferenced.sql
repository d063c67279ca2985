-- 0007: a session's identity is checked by the store, not by a foreign key.
--
-- Every transaction that inserts a session (a login's commit, PutSession)
-- first reads the session's identity with a share lock and refuses one
-- that is not there or not active (sqlcore's checkIdentity), and holds the
-- lock until it commits; identities are never deleted. The foreign key
-- repeated that check with a statement of its own in every login (the
-- referential integrity trigger's SELECT ... FOR KEY SHARE of the same
-- row), for nothing.
ALTER TABLE sessions DROP CONSTRAINT sessions_identity_id_fkey;

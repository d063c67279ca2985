-- 0007: the mark of a spent challenge is keyed by its expiry first.
--
-- A spent mark (a ceremonies row whose key begins with "spent:") was keyed
-- by the challenge it spends, 32 random bytes: every mark a commit wrote
-- landed on a leaf page of its own in the B-tree of ceremonies, one more
-- page in the WAL per login, enroll and re-add. The server now keys it by
-- the ceremony's expiry, then the challenge ("spent:", the expiry's Unix
-- milliseconds as 11 zero-padded hex digits, the challenge in base64url;
-- service.spentKey): the marks a commit writes are neighbours, as they
-- are in ceremonies_expiry. Both parts come from the sealed token, so a
-- token still names one mark, and its replay finds it.
--
-- The marks of the old form are rewritten into the new one, with the
-- same formula (expires_at is in Unix nanoseconds), so that a token
-- spent before the upgrade stays spent until it expires. A mark of the
-- old form is "spent:" and 43 characters (a 32-byte challenge).
UPDATE ceremonies
	SET ckey = 'spent:' || printf('%011x', max(expires_at, 0) / 1000000) || substr(ckey, 7)
	WHERE substr(ckey, 1, 6) = 'spent:' AND length(ckey) = 49;

-- 0008: the mark of a spent challenge is keyed by its expiry first, as
-- in the SQLite store's migration spent_marks_by_expiry (see there):
-- "spent:", the expiry's Unix milliseconds as 11 zero-padded hex digits,
-- the challenge in base64url (service.spentKey). The marks of the old form
-- ("spent:" and the 43 characters of a 32-byte challenge) are rewritten
-- with the same formula, so that a token spent before the upgrade stays
-- spent. Servers of the old version write and look for the old form, so
-- they must all stop before the first new one migrates (README: replicas
-- of different versions never serve one database at once).
UPDATE ceremonies
	SET ckey = 'spent:' || lpad(to_hex(greatest(expires_at, 0) / 1000000), 11, '0') || substr(ckey, 7)
	WHERE substr(ckey, 1, 6) = 'spent:' AND length(ckey) = 49;

-- 0009: the OTP watermark of a code device lives in its authenticator's row.
--
-- A code login updates the code device's record and raises the highest
-- time step used (RFC 6238 §5.2) and the drift, which were columns of
-- code_elements: two rows in two tables at every login. Kept in the
-- authenticator's row, the watermark moves in the same UPDATE as the
-- record (... AND highest_step < $n), under the row lock that UPDATE
-- takes anyway. The watermarks are carried over.

ALTER TABLE authenticators
	ADD COLUMN highest_step BIGINT NOT NULL DEFAULT 0 CHECK (highest_step >= 0),
	ADD COLUMN drift        BIGINT NOT NULL DEFAULT 0;
UPDATE authenticators a SET highest_step = e.highest_step, drift = e.drift
	FROM code_elements e WHERE e.authenticator_id = a.id;
ALTER TABLE code_elements DROP COLUMN highest_step, DROP COLUMN drift;

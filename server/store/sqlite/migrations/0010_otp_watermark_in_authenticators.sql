-- 0010: the OTP watermark of a code device lives in its authenticator's row.
--
-- A code login updates the code device's record (its last use, its
-- failures, its version) and raises the highest time step used (RFC 6238
-- §5.2) and the drift, which were columns of code_elements: two B-trees,
-- two pages written at every login. Kept in the authenticator's row, the
-- watermark moves in the same UPDATE as the record (... AND highest_step
-- < ?), and a login writes one leaf page for both. The watermarks are
-- carried over; code_elements keeps the secret and the OTP parameters,
-- and is made anew without the two columns (SQLite drops no column that
-- a CHECK names), as 0008 made it.

ALTER TABLE authenticators ADD COLUMN highest_step INTEGER NOT NULL DEFAULT 0 CHECK (highest_step >= 0);
ALTER TABLE authenticators ADD COLUMN drift INTEGER NOT NULL DEFAULT 0;
UPDATE authenticators SET
	highest_step = (SELECT e.highest_step FROM code_elements e WHERE e.authenticator_id = authenticators.id),
	drift = (SELECT e.drift FROM code_elements e WHERE e.authenticator_id = authenticators.id)
WHERE id IN (SELECT authenticator_id FROM code_elements);

CREATE TABLE code_elements_new (
	authenticator_id TEXT    NOT NULL PRIMARY KEY REFERENCES authenticators (id) ON DELETE CASCADE,
	secret           BLOB,
	key_id           TEXT,
	digits           INTEGER NOT NULL DEFAULT 0,
	period_s         INTEGER NOT NULL DEFAULT 0,
	algorithm        INTEGER NOT NULL DEFAULT 0,
	wiped_at         INTEGER
) STRICT, WITHOUT ROWID;
INSERT INTO code_elements_new (authenticator_id, secret, key_id, digits, period_s, algorithm, wiped_at)
	SELECT authenticator_id, secret, key_id, digits, period_s, algorithm, wiped_at FROM code_elements;
DROP TABLE code_elements;
ALTER TABLE code_elements_new RENAME TO code_elements;

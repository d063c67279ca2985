-- 0004: an attempt reserved in one statement.
--
-- A reservation locks its subject's row (FOR UPDATE: the authenticator, or
-- the import of a code device serial), then inserts the attempt while the
-- subject takes attempts and its failures plus the attempts in flight stay
-- under the limit. It took two round trips (BEGIN with the lock and the
-- insert, then COMMIT); reserve_attempt does the same work in one call, run
-- in autocommit. Each statement of a VOLATILE function takes a snapshot of
-- its own, so the insert, which runs after the lock was granted, sees every
-- reservation and failure committed before: reservations for one subject on
-- any number of replicas never interleave, as before.
--
-- The reservation need not wait for the disk (the check it reserves dies
-- with the machine, and the attempts table is UNLOGGED), but the row lock
-- writes to the log: the function makes the commit of its own transaction
-- asynchronous, as SET LOCAL synchronous_commit = off did.
--
-- p_serial = '' reserves against authenticator p_aid, which must be active;
-- otherwise against the import of serial p_serial. It returns whether the
-- attempt was reserved.
CREATE FUNCTION reserve_attempt(p_id TEXT, p_aid TEXT, p_serial TEXT, p_expires BIGINT, p_now BIGINT, p_limit BIGINT)
RETURNS BOOLEAN LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	IF p_serial = '' THEN
		PERFORM 1 FROM authenticators WHERE id = p_aid FOR UPDATE;
		INSERT INTO attempts (id, authenticator_id, serial, expires_at)
		SELECT p_id, p_aid, '', p_expires FROM authenticators s
		WHERE s.id = p_aid AND s.state = 'active' AND s.failures + (SELECT COUNT(*) FROM attempts
			WHERE authenticator_id <> '' AND authenticator_id = p_aid AND expires_at > p_now) < p_limit;
	ELSE
		PERFORM 1 FROM imports WHERE serial = p_serial FOR UPDATE;
		INSERT INTO attempts (id, authenticator_id, serial, expires_at)
		SELECT p_id, '', p_serial, p_expires FROM imports s
		WHERE s.serial = p_serial AND s.failures + (SELECT COUNT(*) FROM attempts
			WHERE serial <> '' AND serial = p_serial AND expires_at > p_now) < p_limit;
	END IF;
	RETURN FOUND;
END
$$;

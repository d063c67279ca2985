-- 0008: the authenticators are keyed by their identity first.
--
-- Since 0006 an authenticator's row is stored in the B-tree of its ID,
-- and an ID begins with its kind and then the time it was made
-- (service.newID): the password and the second factor of one person lie
-- on two leaf pages far apart, and a two-factor login, which updates
-- both records, wrote both pages to the WAL at every commit. Keyed by
-- (identity_id, id), an identity's authenticators are neighbours, and
-- the login writes one leaf page for both. The statements of a login
-- name the identity, so they find the row by that key alone; an
-- authenticator found by its ID alone (a block, a session's proofs by
-- older statements) goes through the unique index authenticators_id.
-- The index authenticators_identity (identity_id, created_at, id) served
-- the listing of an identity's authenticators, which the key now serves:
-- it is dropped, one B-tree less to write at every enroll.
--
-- The element tables refer to authenticators (id), which the unique index
-- keeps a key. As in 0006 the old table is renamed first (their
-- references follow it), the element tables are made anew referring to
-- the new one, and the old tables are dropped children first, so that no
-- drop deletes a row through a foreign key.

ALTER TABLE authenticators RENAME TO authenticators_old;
CREATE TABLE authenticators (
	id             TEXT    NOT NULL,
	identity_id    TEXT    NOT NULL REFERENCES identities (id),
	kind           TEXT    NOT NULL,
	state          TEXT    NOT NULL,
	serial         TEXT    NOT NULL DEFAULT '',
	credential_id  TEXT    NOT NULL DEFAULT '',
	label          TEXT    NOT NULL DEFAULT '',
	failures       INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
	suspensions    INTEGER NOT NULL DEFAULT 0 CHECK (suspensions >= 0),
	created_at     INTEGER,
	activated_at   INTEGER,
	last_used_at   INTEGER,
	suspended_at   INTEGER,
	suspend_reason TEXT    NOT NULL DEFAULT '',
	blocked_at     INTEGER,
	block_reason   TEXT    NOT NULL DEFAULT '',
	version        INTEGER NOT NULL CHECK (version > 0),
	PRIMARY KEY (identity_id, id)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX authenticators_id ON authenticators (id);
INSERT INTO authenticators (id, identity_id, kind, state, serial, credential_id, label, failures, suspensions,
	created_at, activated_at, last_used_at, suspended_at, suspend_reason, blocked_at, block_reason, version)
	SELECT id, identity_id, kind, state, serial, credential_id, label, failures, suspensions,
	created_at, activated_at, last_used_at, suspended_at, suspend_reason, blocked_at, block_reason, version
	FROM authenticators_old ORDER BY identity_id, id;

CREATE TABLE chip_elements_new (
	authenticator_id   TEXT    NOT NULL PRIMARY KEY REFERENCES authenticators (id) ON DELETE CASCADE,
	public_key         BLOB,
	aaguid             BLOB,
	sign_count         INTEGER NOT NULL DEFAULT 0 CHECK (sign_count BETWEEN 0 AND 4294967295),
	attestation_format TEXT    NOT NULL DEFAULT '',
	backup_eligible    INTEGER NOT NULL DEFAULT 0,
	backup_state       INTEGER NOT NULL DEFAULT 0,
	wiped_at           INTEGER
) STRICT, WITHOUT ROWID;
INSERT INTO chip_elements_new (authenticator_id, public_key, aaguid, sign_count, attestation_format, backup_eligible, backup_state, wiped_at)
	SELECT authenticator_id, public_key, aaguid, sign_count, attestation_format, backup_eligible, backup_state, wiped_at FROM chip_elements;
DROP TABLE chip_elements;
ALTER TABLE chip_elements_new RENAME TO chip_elements;

CREATE TABLE code_elements_new (
	authenticator_id TEXT    NOT NULL PRIMARY KEY REFERENCES authenticators (id) ON DELETE CASCADE,
	secret           BLOB,
	key_id           TEXT,
	digits           INTEGER NOT NULL DEFAULT 0,
	period_s         INTEGER NOT NULL DEFAULT 0,
	algorithm        INTEGER NOT NULL DEFAULT 0,
	drift            INTEGER NOT NULL DEFAULT 0,
	highest_step     INTEGER NOT NULL DEFAULT 0 CHECK (highest_step >= 0),
	wiped_at         INTEGER
) STRICT, WITHOUT ROWID;
INSERT INTO code_elements_new (authenticator_id, secret, key_id, digits, period_s, algorithm, drift, highest_step, wiped_at)
	SELECT authenticator_id, secret, key_id, digits, period_s, algorithm, drift, highest_step, wiped_at FROM code_elements;
DROP TABLE code_elements;
ALTER TABLE code_elements_new RENAME TO code_elements;

CREATE TABLE app_elements_new (
	authenticator_id TEXT NOT NULL PRIMARY KEY REFERENCES authenticators (id) ON DELETE CASCADE,
	public_key       BLOB,
	pin_verifier     TEXT,
	wiped_at         INTEGER
) STRICT, WITHOUT ROWID;
INSERT INTO app_elements_new (authenticator_id, public_key, pin_verifier, wiped_at)
	SELECT authenticator_id, public_key, pin_verifier, wiped_at FROM app_elements;
DROP TABLE app_elements;
ALTER TABLE app_elements_new RENAME TO app_elements;

CREATE TABLE password_elements_new (
	authenticator_id TEXT NOT NULL PRIMARY KEY REFERENCES authenticators (id) ON DELETE CASCADE,
	verifier         TEXT,
	wiped_at         INTEGER
) STRICT, WITHOUT ROWID;
INSERT INTO password_elements_new (authenticator_id, verifier, wiped_at)
	SELECT authenticator_id, verifier, wiped_at FROM password_elements;
DROP TABLE password_elements;
ALTER TABLE password_elements_new RENAME TO password_elements;

DROP TABLE authenticators_old;
CREATE INDEX authenticators_serial ON authenticators (serial) WHERE serial <> '';
-- A serial is in use by at most one authenticator that is neither blocked
-- nor pending, per quota (code displays and audio code readers share one).
CREATE UNIQUE INDEX authenticators_serial_in_use ON authenticators (
	serial,
	(CASE kind WHEN 'audio-code-reader' THEN 'code-display' ELSE kind END)
) WHERE serial <> '' AND state NOT IN ('blocked', 'pending');

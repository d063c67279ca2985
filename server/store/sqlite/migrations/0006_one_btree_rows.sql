-- 0006: the authenticators, their security elements, the credential IDs
-- and the tombstones are kept in one B-tree each, keyed by what finds
-- them, and a credential ID is found through credential_ids.
--
-- Each of these tables has a TEXT primary key and was a rowid table: a row
-- went into the table's B-tree (by rowid) and into a second B-tree for its
-- key. With the unique index of the authenticators' credential IDs,
-- enrolling a chip wrote its record, its element and its credential ID
-- into seven B-trees (the identity index besides), and blocking it its
-- tombstone into three. Every B-tree written at a random key is one more
-- page in the WAL at every commit, and every lookup by ID read two. As
-- WITHOUT ROWID tables the row is stored in the B-tree of its key (as
-- sessions and ceremonies since 0005). Nothing reads their rowids. The
-- rows, their indexes and their triggers are kept as they are.
--
-- The element tables refer to authenticators: the old authenticators table
-- is renamed first (their references follow it), the element tables are
-- made anew referring to the new one, and the old tables are dropped
-- children first, so that no drop deletes a row through a foreign key.

ALTER TABLE authenticators RENAME TO authenticators_old;
CREATE TABLE authenticators (
	id             TEXT    NOT NULL PRIMARY KEY,
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
	version        INTEGER NOT NULL CHECK (version > 0)
) STRICT, WITHOUT ROWID;
INSERT INTO authenticators (id, identity_id, kind, state, serial, credential_id, label, failures, suspensions,
	created_at, activated_at, last_used_at, suspended_at, suspend_reason, blocked_at, block_reason, version)
	SELECT id, identity_id, kind, state, serial, credential_id, label, failures, suspensions,
	created_at, activated_at, last_used_at, suspended_at, suspend_reason, blocked_at, block_reason, version
	FROM authenticators_old;

CREATE TABLE credential_ids_new (
	credential_id    TEXT    NOT NULL PRIMARY KEY,
	authenticator_id TEXT    NOT NULL,
	registered_at    INTEGER
) STRICT, WITHOUT ROWID;
INSERT INTO credential_ids_new (credential_id, authenticator_id, registered_at)
	SELECT credential_id, authenticator_id, registered_at FROM credential_ids;
DROP TABLE credential_ids;
ALTER TABLE credential_ids_new RENAME TO credential_ids;
CREATE TRIGGER credential_ids_keep_update BEFORE UPDATE ON credential_ids
BEGIN SELECT RAISE(ABORT, 'credential IDs are kept forever'); END;
CREATE TRIGGER credential_ids_keep_delete BEFORE DELETE ON credential_ids
BEGIN SELECT RAISE(ABORT, 'credential IDs are kept forever'); END;

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
CREATE INDEX authenticators_identity ON authenticators (identity_id, created_at, id);
CREATE INDEX authenticators_serial ON authenticators (serial) WHERE serial <> '';
-- A serial is in use by at most one authenticator that is neither blocked
-- nor pending, per quota (code displays and audio code readers share one).
CREATE UNIQUE INDEX authenticators_serial_in_use ON authenticators (
	serial,
	(CASE kind WHEN 'audio-code-reader' THEN 'code-display' ELSE kind END)
) WHERE serial <> '' AND state NOT IN ('blocked', 'pending');

CREATE TABLE tombstones_new (
	authenticator_id TEXT    NOT NULL PRIMARY KEY,
	identity_id      TEXT    NOT NULL,
	kind             TEXT    NOT NULL,
	serial           TEXT    NOT NULL DEFAULT '',
	credential_id    TEXT    NOT NULL DEFAULT '',
	reason           TEXT    NOT NULL DEFAULT '',
	blocked_at       INTEGER,
	by_kind          TEXT    NOT NULL DEFAULT '',
	by_id            TEXT    NOT NULL DEFAULT '',
	by_via           TEXT    NOT NULL DEFAULT ''
) STRICT, WITHOUT ROWID;
INSERT INTO tombstones_new (authenticator_id, identity_id, kind, serial, credential_id, reason, blocked_at, by_kind, by_id, by_via)
	SELECT authenticator_id, identity_id, kind, serial, credential_id, reason, blocked_at, by_kind, by_id, by_via FROM tombstones;
DROP TABLE tombstones;
ALTER TABLE tombstones_new RENAME TO tombstones;
CREATE INDEX tombstones_serial ON tombstones (serial) WHERE serial <> '';
CREATE INDEX tombstones_credential ON tombstones (credential_id) WHERE credential_id <> '';
CREATE TRIGGER tombstones_keep_update BEFORE UPDATE ON tombstones
BEGIN SELECT RAISE(ABORT, 'tombstones are kept forever'); END;
CREATE TRIGGER tombstones_keep_delete BEFORE DELETE ON tombstones
BEGIN SELECT RAISE(ABORT, 'tombstones are kept forever'); END;

-- A credential ID is found through credential_ids (its key), which holds
-- every credential ID ever registered with the authenticator that
-- registered it and keeps them unique forever: the unique index of the
-- authenticators' credential IDs (authenticators_credential, dropped with
-- the old table), one more B-tree written at every enroll, is read by no
-- statement and enforces nothing credential_ids does not.

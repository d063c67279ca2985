-- 0001: the first schema of the authbench store.
--
-- Times are INTEGER Unix nanoseconds in UTC; NULL means "not set" (the zero
-- time.Time). Booleans are 0/1. Empty text means "none". STRICT tables make
-- SQLite refuse values of the wrong type.

CREATE TABLE identities (
	id              TEXT    NOT NULL PRIMARY KEY,
	state           TEXT    NOT NULL,
	blocked_reason  TEXT    NOT NULL DEFAULT '',
	blocked_at      INTEGER,
	blocked_by_kind TEXT    NOT NULL DEFAULT '',
	blocked_by_id   TEXT    NOT NULL DEFAULT '',
	blocked_by_via  TEXT    NOT NULL DEFAULT '',
	created_at      INTEGER,
	version         INTEGER NOT NULL CHECK (version > 0)
) STRICT;

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
) STRICT;

CREATE INDEX authenticators_identity ON authenticators (identity_id, created_at, id);
CREATE INDEX authenticators_serial ON authenticators (serial) WHERE serial <> '';
CREATE UNIQUE INDEX authenticators_credential ON authenticators (credential_id) WHERE credential_id <> '';
-- A serial is in use by at most one authenticator that is not blocked, per
-- quota (code displays and audio code readers share one).
CREATE UNIQUE INDEX authenticators_serial_in_use ON authenticators (
	serial,
	(CASE kind WHEN 'audio-code-reader' THEN 'code-display' ELSE kind END)
) WHERE serial <> '' AND state <> 'blocked';

-- Every credential ID ever registered (chip credentials, app keys). Rows are
-- never deleted, so a credential ID is unique forever, also after its
-- authenticator was blocked or cancelled.
CREATE TABLE credential_ids (
	credential_id    TEXT    NOT NULL PRIMARY KEY,
	authenticator_id TEXT    NOT NULL,
	registered_at    INTEGER
) STRICT;

CREATE TRIGGER credential_ids_keep_update BEFORE UPDATE ON credential_ids
BEGIN SELECT RAISE(ABORT, 'credential IDs are kept forever'); END;
CREATE TRIGGER credential_ids_keep_delete BEFORE DELETE ON credential_ids
BEGIN SELECT RAISE(ABORT, 'credential IDs are kept forever'); END;

-- Security elements, one table per kind. The key material columns are
-- nulled by a wipe; wiped_at says when.
CREATE TABLE chip_elements (
	authenticator_id   TEXT    NOT NULL PRIMARY KEY REFERENCES authenticators (id) ON DELETE CASCADE,
	public_key         BLOB,
	aaguid             BLOB,
	sign_count         INTEGER NOT NULL DEFAULT 0 CHECK (sign_count BETWEEN 0 AND 4294967295),
	attestation_format TEXT    NOT NULL DEFAULT '',
	backup_eligible    INTEGER NOT NULL DEFAULT 0,
	backup_state       INTEGER NOT NULL DEFAULT 0,
	wiped_at           INTEGER
) STRICT;

CREATE TABLE code_elements (
	authenticator_id TEXT    NOT NULL PRIMARY KEY REFERENCES authenticators (id) ON DELETE CASCADE,
	secret           BLOB,
	key_id           TEXT,
	digits           INTEGER NOT NULL DEFAULT 0,
	period_s         INTEGER NOT NULL DEFAULT 0,
	algorithm        INTEGER NOT NULL DEFAULT 0,
	drift            INTEGER NOT NULL DEFAULT 0,
	highest_step     INTEGER NOT NULL DEFAULT 0 CHECK (highest_step >= 0),
	wiped_at         INTEGER
) STRICT;

CREATE TABLE app_elements (
	authenticator_id TEXT NOT NULL PRIMARY KEY REFERENCES authenticators (id) ON DELETE CASCADE,
	public_key       BLOB,
	pin_verifier     TEXT,
	wiped_at         INTEGER
) STRICT;

CREATE TABLE password_elements (
	authenticator_id TEXT NOT NULL PRIMARY KEY REFERENCES authenticators (id) ON DELETE CASCADE,
	verifier         TEXT,
	wiped_at         INTEGER
) STRICT;

-- What remains of permanently blocked authenticators; kept forever.
CREATE TABLE tombstones (
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
) STRICT;

CREATE INDEX tombstones_serial ON tombstones (serial) WHERE serial <> '';
CREATE INDEX tombstones_credential ON tombstones (credential_id) WHERE credential_id <> '';
CREATE TRIGGER tombstones_keep_update BEFORE UPDATE ON tombstones
BEGIN SELECT RAISE(ABORT, 'tombstones are kept forever'); END;
CREATE TRIGGER tombstones_keep_delete BEFORE DELETE ON tombstones
BEGIN SELECT RAISE(ABORT, 'tombstones are kept forever'); END;

-- Code-device secrets imported from PSKC, waiting for their device to be added.
CREATE TABLE imports (
	serial      TEXT    NOT NULL PRIMARY KEY,
	secret      BLOB    NOT NULL,
	key_id      TEXT    NOT NULL,
	digits      INTEGER NOT NULL DEFAULT 0,
	period_s    INTEGER NOT NULL DEFAULT 0,
	algorithm   INTEGER NOT NULL DEFAULT 0,
	imported_at INTEGER
) STRICT;

CREATE TABLE ceremonies (
	ckey        TEXT    NOT NULL PRIMARY KEY,
	identity_id TEXT    NOT NULL DEFAULT '',
	data        BLOB,
	expires_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX ceremonies_expiry ON ceremonies (expires_at);

CREATE TABLE sessions (
	token_hash  BLOB    NOT NULL PRIMARY KEY,
	identity_id TEXT    NOT NULL REFERENCES identities (id),
	via         TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER,
	expires_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_expiry ON sessions (expires_at);

-- The hash-chained audit log. seq is the rowid: unique, so two appends that
-- read the same head cannot both insert; the log is append-only.
CREATE TABLE audit (
	seq              INTEGER NOT NULL PRIMARY KEY CHECK (seq > 0),
	at               INTEGER,
	event_type       TEXT    NOT NULL,
	identity_id      TEXT    NOT NULL DEFAULT '',
	authenticator_id TEXT    NOT NULL DEFAULT '',
	prev_hash        BLOB    NOT NULL,
	hash             BLOB    NOT NULL,
	body             BLOB    NOT NULL
) STRICT;

CREATE INDEX audit_identity ON audit (identity_id, seq);
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

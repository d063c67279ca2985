-- 0001: the first PostgreSQL schema of the authbench store, the tables of
-- the SQLite store (its migrations 0001 and 0002) in PostgreSQL types.
--
-- Times are BIGINT Unix nanoseconds in UTC; NULL means "not set" (the zero
-- time.Time). Empty text means "none". Every object is created in the first
-- schema of the search_path, which Open sets (Options.Schema).

CREATE TABLE identities (
	id                     TEXT    NOT NULL PRIMARY KEY,
	state                  TEXT    NOT NULL,
	blocked_reason         TEXT    NOT NULL DEFAULT '',
	blocked_at             BIGINT,
	blocked_by_kind        TEXT    NOT NULL DEFAULT '',
	blocked_by_id          TEXT    NOT NULL DEFAULT '',
	blocked_by_via         TEXT    NOT NULL DEFAULT '',
	created_at             BIGINT,
	version                BIGINT  NOT NULL CHECK (version > 0),
	-- How many authenticators were ever created for the identity: the
	-- version of its authenticator set that CreateAuthenticatorAt checks.
	authenticators_version BIGINT  NOT NULL DEFAULT 0 CHECK (authenticators_version >= 0)
);

CREATE TABLE authenticators (
	id             TEXT    NOT NULL PRIMARY KEY,
	identity_id    TEXT    NOT NULL REFERENCES identities (id),
	kind           TEXT    NOT NULL,
	state          TEXT    NOT NULL,
	serial         TEXT    NOT NULL DEFAULT '',
	credential_id  TEXT    NOT NULL DEFAULT '',
	label          TEXT    NOT NULL DEFAULT '',
	failures       BIGINT  NOT NULL DEFAULT 0 CHECK (failures >= 0),
	suspensions    BIGINT  NOT NULL DEFAULT 0 CHECK (suspensions >= 0),
	created_at     BIGINT,
	activated_at   BIGINT,
	last_used_at   BIGINT,
	suspended_at   BIGINT,
	suspend_reason TEXT    NOT NULL DEFAULT '',
	blocked_at     BIGINT,
	block_reason   TEXT    NOT NULL DEFAULT '',
	version        BIGINT  NOT NULL CHECK (version > 0)
);

CREATE INDEX authenticators_identity ON authenticators (identity_id, created_at, id);
CREATE INDEX authenticators_serial ON authenticators (serial) WHERE serial <> '';
CREATE UNIQUE INDEX authenticators_credential ON authenticators (credential_id) WHERE credential_id <> '';
-- A serial is in use by at most one authenticator that is not blocked, per
-- quota (code displays and audio code readers share one).
CREATE UNIQUE INDEX authenticators_serial_in_use ON authenticators (
	serial,
	(CASE kind WHEN 'audio-code-reader' THEN 'code-display' ELSE kind END)
) WHERE serial <> '' AND state <> 'blocked';

-- keep_forever refuses UPDATE, DELETE and TRUNCATE on the append-only
-- tables; TG_ARGV[0] says why.
CREATE FUNCTION keep_forever() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'raise_exception';
END
$$;

-- Every credential ID ever registered (chip credentials, app keys). Rows are
-- never deleted, so a credential ID is unique forever, also after its
-- authenticator was blocked or cancelled.
CREATE TABLE credential_ids (
	credential_id    TEXT    NOT NULL PRIMARY KEY,
	authenticator_id TEXT    NOT NULL,
	registered_at    BIGINT
);

CREATE TRIGGER credential_ids_keep BEFORE UPDATE OR DELETE ON credential_ids
	FOR EACH ROW EXECUTE FUNCTION keep_forever('credential IDs are kept forever');
CREATE TRIGGER credential_ids_keep_truncate BEFORE TRUNCATE ON credential_ids
	FOR EACH STATEMENT EXECUTE FUNCTION keep_forever('credential IDs are kept forever');

-- Security elements, one table per kind. The key material columns are
-- nulled by a wipe; wiped_at says when.
CREATE TABLE chip_elements (
	authenticator_id   TEXT    NOT NULL PRIMARY KEY REFERENCES authenticators (id) ON DELETE CASCADE,
	public_key         BYTEA,
	aaguid             BYTEA,
	sign_count         BIGINT  NOT NULL DEFAULT 0 CHECK (sign_count BETWEEN 0 AND 4294967295),
	attestation_format TEXT    NOT NULL DEFAULT '',
	backup_eligible    BOOLEAN NOT NULL DEFAULT FALSE,
	backup_state       BOOLEAN NOT NULL DEFAULT FALSE,
	wiped_at           BIGINT
);

CREATE TABLE code_elements (
	authenticator_id TEXT    NOT NULL PRIMARY KEY REFERENCES authenticators (id) ON DELETE CASCADE,
	secret           BYTEA,
	key_id           TEXT,
	digits           BIGINT  NOT NULL DEFAULT 0,
	period_s         BIGINT  NOT NULL DEFAULT 0,
	algorithm        BIGINT  NOT NULL DEFAULT 0,
	drift            BIGINT  NOT NULL DEFAULT 0,
	highest_step     BIGINT  NOT NULL DEFAULT 0 CHECK (highest_step >= 0),
	wiped_at         BIGINT
);

CREATE TABLE app_elements (
	authenticator_id TEXT NOT NULL PRIMARY KEY REFERENCES authenticators (id) ON DELETE CASCADE,
	public_key       BYTEA,
	pin_verifier     TEXT,
	wiped_at         BIGINT
);

CREATE TABLE password_elements (
	authenticator_id TEXT NOT NULL PRIMARY KEY REFERENCES authenticators (id) ON DELETE CASCADE,
	verifier         TEXT,
	wiped_at         BIGINT
);

-- What remains of permanently blocked authenticators; kept forever.
CREATE TABLE tombstones (
	authenticator_id TEXT    NOT NULL PRIMARY KEY,
	identity_id      TEXT    NOT NULL,
	kind             TEXT    NOT NULL,
	serial           TEXT    NOT NULL DEFAULT '',
	credential_id    TEXT    NOT NULL DEFAULT '',
	reason           TEXT    NOT NULL DEFAULT '',
	blocked_at       BIGINT,
	by_kind          TEXT    NOT NULL DEFAULT '',
	by_id            TEXT    NOT NULL DEFAULT '',
	by_via           TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX tombstones_serial ON tombstones (serial) WHERE serial <> '';
CREATE INDEX tombstones_credential ON tombstones (credential_id) WHERE credential_id <> '';
CREATE TRIGGER tombstones_keep BEFORE UPDATE OR DELETE ON tombstones
	FOR EACH ROW EXECUTE FUNCTION keep_forever('tombstones are kept forever');
CREATE TRIGGER tombstones_keep_truncate BEFORE TRUNCATE ON tombstones
	FOR EACH STATEMENT EXECUTE FUNCTION keep_forever('tombstones are kept forever');

-- Code-device secrets imported from PSKC, waiting for their device to be added.
CREATE TABLE imports (
	serial      TEXT    NOT NULL PRIMARY KEY,
	secret      BYTEA   NOT NULL,
	key_id      TEXT    NOT NULL,
	digits      BIGINT  NOT NULL DEFAULT 0,
	period_s    BIGINT  NOT NULL DEFAULT 0,
	algorithm   BIGINT  NOT NULL DEFAULT 0,
	imported_at BIGINT
);

CREATE TABLE ceremonies (
	ckey        TEXT    NOT NULL PRIMARY KEY,
	identity_id TEXT    NOT NULL DEFAULT '',
	data        BYTEA,
	expires_at  BIGINT  NOT NULL
);

CREATE INDEX ceremonies_expiry ON ceremonies (expires_at);

CREATE TABLE sessions (
	token_hash  BYTEA   NOT NULL PRIMARY KEY,
	identity_id TEXT    NOT NULL REFERENCES identities (id),
	via         TEXT    NOT NULL DEFAULT '',
	created_at  BIGINT,
	expires_at  BIGINT  NOT NULL
);

CREATE INDEX sessions_expiry ON sessions (expires_at);

-- The hash-chained audit log. seq is the primary key, so two appends that
-- read the same head cannot both insert; the log is append-only.
CREATE TABLE audit (
	seq              BIGINT  NOT NULL PRIMARY KEY CHECK (seq > 0),
	at               BIGINT,
	event_type       TEXT    NOT NULL,
	identity_id      TEXT    NOT NULL DEFAULT '',
	authenticator_id TEXT    NOT NULL DEFAULT '',
	prev_hash        BYTEA   NOT NULL,
	hash             BYTEA   NOT NULL,
	body             BYTEA   NOT NULL
);

CREATE INDEX audit_identity ON audit (identity_id, seq);
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
	FOR EACH ROW EXECUTE FUNCTION keep_forever('the audit log is append-only');
CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON audit
	FOR EACH STATEMENT EXECUTE FUNCTION keep_forever('the audit log is append-only');

-- The lock of the chain's head: an append locks this one row (SELECT ...
-- FOR UPDATE) before it reads the last record, so appends from every
-- replica are serialised and each links to the true head.
CREATE TABLE audit_head (
	id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1)
);
INSERT INTO audit_head (id) VALUES (1);
CREATE TRIGGER audit_head_keep BEFORE DELETE ON audit_head
	FOR EACH ROW EXECUTE FUNCTION keep_forever('the audit head row is kept forever');

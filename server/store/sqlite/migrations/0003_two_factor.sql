-- 0003: two-factor sessions that end with what proved them, attempts
-- reserved before they are checked, and code devices that prove possession
-- before they take their imported secret.

-- Sessions name the authenticators that proved them (session_authenticators)
-- and their level. The sessions of earlier versions were proven with one
-- factor; they end here.
DELETE FROM sessions;
ALTER TABLE sessions ADD COLUMN id TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN level TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX sessions_id ON sessions (id) WHERE id <> '';
CREATE INDEX sessions_identity ON sessions (identity_id, created_at);

CREATE TABLE session_authenticators (
	token_hash       BLOB NOT NULL REFERENCES sessions (token_hash) ON DELETE CASCADE,
	authenticator_id TEXT NOT NULL REFERENCES authenticators (id) ON DELETE CASCADE,
	PRIMARY KEY (token_hash, authenticator_id)
) STRICT;

CREATE INDEX session_authenticators_authenticator ON session_authenticators (authenticator_id);

-- Attempts in flight: reserved before a secret is checked, ended with the
-- outcome, lapsing at expires_at when the checker died. The subject is an
-- authenticator or the imported secret of a code device serial.
CREATE TABLE attempts (
	id               TEXT    NOT NULL PRIMARY KEY,
	authenticator_id TEXT    NOT NULL DEFAULT '',
	serial           TEXT    NOT NULL DEFAULT '',
	expires_at       INTEGER NOT NULL,
	CHECK ((authenticator_id = '') <> (serial = ''))
) STRICT;

CREATE INDEX attempts_authenticator ON attempts (authenticator_id, expires_at) WHERE authenticator_id <> '';
CREATE INDEX attempts_serial ON attempts (serial, expires_at) WHERE serial <> '';
CREATE INDEX attempts_expiry ON attempts (expires_at);

-- Wrong activation codes sent for a serial, by anybody.
ALTER TABLE imports ADD COLUMN failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0);

-- A pending code device holds no secret: several identities may have added
-- one serial, and the first to activate it (with a right code) takes it.
DROP INDEX authenticators_serial_in_use;
CREATE UNIQUE INDEX authenticators_serial_in_use ON authenticators (
	serial,
	(CASE kind WHEN 'audio-code-reader' THEN 'code-display' ELSE kind END)
) WHERE serial <> '' AND state NOT IN ('blocked', 'pending');

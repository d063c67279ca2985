package sqlcore

import (
	"fmt"
	"strings"
	"sync"

	"github.com/authbench/authbench/server/store/internal/columns"
)

// Column lists, in the order of the columns package's Args and Row types.
const (
	identityCols = `id, state, blocked_reason, blocked_at, blocked_by_kind, blocked_by_id, blocked_by_via, created_at, version`
	authCols     = `id, identity_id, kind, state, serial, credential_id, label, failures, suspensions,
	created_at, activated_at, last_used_at, suspended_at, suspend_reason, blocked_at, block_reason, version`
	auditCols  = `seq, at, event_type, identity_id, authenticator_id, prev_hash, hash, body`
	tombCols   = `authenticator_id, identity_id, kind, serial, credential_id, reason, blocked_at, by_kind, by_id, by_via`
	importCols = `serial, secret, key_id, digits, period_s, algorithm, imported_at, failures`
	// The element columns, in the order of element.go's row types.
	chipCols     = `public_key, aaguid, sign_count, attestation_format, backup_eligible, backup_state, wiped_at`
	codeCols     = `secret, key_id, digits, period_s, algorithm, wiped_at`
	appCols      = `public_key, pin_verifier, wiped_at`
	passwordCols = `verifier, wiped_at`
	// codeElementCols are what a code device's element reads, in the
	// order of element.go's codeRow: code_elements e and the OTP
	// watermark of the authenticator a (migrations: SQLite 0010,
	// PostgreSQL 0009).
	codeElementCols = `e.secret, e.key_id, e.digits, e.period_s, e.algorithm, a.drift, a.highest_step, e.wiped_at`
	sessionCols     = `s.token_hash, s.id, s.identity_id, s.level, s.proof_1, s.proof_2, s.created_at, s.expires_at`
)

// outerAuthCols are authCols qualified by "a." for the outer side of a
// LEFT JOIN: NULL (no authenticator) reads as ” or 0 where the column is
// never NULL, so a row without an authenticator has the ID ”.
var outerAuthCols = func() string {
	nullable := map[string]bool{"created_at": true, "activated_at": true, "last_used_at": true, "suspended_at": true, "blocked_at": true}
	numeric := map[string]bool{"failures": true, "suspensions": true, "version": true}
	parts := strings.Split(authCols, ",")
	for i, c := range parts {
		c = strings.TrimSpace(c)
		switch {
		case nullable[c]:
			parts[i] = "a." + c
		case numeric[c]:
			parts[i] = "COALESCE(a." + c + ", 0)"
		default:
			parts[i] = "COALESCE(a." + c + ", '')"
		}
	}
	return strings.Join(parts, ", ")
}()

// prefixed returns the column list cols with each column qualified by
// prefix ("a.").
func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// validSession is the condition a usable session s meets at the
// parameter (now): not expired, its identity active, and every
// authenticator that proved it (proof_1, and proof_2 unless empty)
// there, of the session's identity, and active. Each is read by its
// primary key (an authenticator's: its identity, then its ID; key is the
// dialect's ByKey). The authenticators' states are scalar subqueries,
// which SQLite does not turn into joins (an EXISTS it may, and then
// reads the index of the IDs despite the hint).
func validSession(key string) string {
	auth := func(proof string) string {
		return `(SELECT a.state FROM authenticators a` + key + ` WHERE a.identity_id = s.identity_id AND a.id = s.` + proof + `) = 'active'`
	}
	return `s.expires_at > ?
	AND EXISTS (SELECT 1 FROM identities i WHERE i.id = s.identity_id AND i.state = 'active')
	AND ` + auth("proof_1") + `
	AND (s.proof_2 = '' OR ` + auth("proof_2") + `)`
}

// queries are the core's statements in one dialect.
type queries struct {
	all []*Stmt

	// identities
	identityInsert, identityByID, identityUpdate, identityVersion, identitySessionsEnd *Stmt
	// authenticators
	setVersionBump, setVersion, serialRevoked, credentialInsert, authInsert, importConsume *Stmt
	credentialKeep                                                                         *Stmt
	lockSerial                                                                             *Stmt // nil when the dialect needs none
	authByID, authsOfIdentity, authsFind, authUpdate, authDelete, authVersion              *Stmt
	authUpdateSameState, authUpdateOTP, authUpdateSameStateOTP, authGuard                  *Stmt
	authWithIdentity, identitySet, identitySetPw                                           *Stmt
	// elements
	chipInsert, codeInsert, appInsert, passwordInsert         *Stmt
	chipWipe, codeWipe, appWipe, passwordWipe                 *Stmt
	authKind, chipByAuth, codeByAuth, appByAuth, pwByAuth     *Stmt
	authWithChip, authWithCode, authWithApp, authWithPassword *Stmt
	otpAdvance, otpSet, codeLive, signAdvance, chipLive       *Stmt
	secretUpdate                                              *Stmt
	pwVerifierUpdate, appVerifierUpdate, verifierLive         *Stmt
	// tombstones, imports, ceremonies
	tombInsert, tombsFind                                               *Stmt
	importInsert, importReplace, importBySerial, importTake, importFail *Stmt
	importTakeExact                                                     *Stmt
	ceremonyInsert, ceremonyTake, ceremoniesSweep                       *Stmt
	// sessions
	sessionInsert, sessionInsertActive, proofIdentity, proofAuth  *Stmt
	sessionsEndOf, sessionByToken, sessionsOfIdentity, sessionEnd *Stmt
	sessionDelete, sessionsSweep                                  *Stmt
	// attempts
	attemptAuth, attemptImport, attemptsInFlight, attemptInsertAuth, attemptInsertImport, attemptDelete, attemptsSweep, attemptReserve *Stmt
	// audit
	auditHead, auditHeadMove, auditList, auditFirst, auditAfter, auditHeads *Stmt
	auditInsert                                                             []*Stmt // of 1, 2, ... maxAuditRows records
	checkpointInsert, checkpointsFrom, checkpointLast                       *Stmt
	// sealed values
	sealedCodeKeys, sealedCodeSample, sealedImportKeys, sealedImportSample *Stmt
	// the mirror's loads (mirror.go): an identity's records
	mirrorIdentity, mirrorAuths *Stmt
	mirrorElements              []mirrorElements
}

// mirrorElements reads the elements of an identity's authenticators from
// one table.
type mirrorElements struct {
	table string
	q     *Stmt
}

// queries returns the statements of d, made once.
func (d *Dialect) queries() *queries {
	d.once.Do(func() { d.q = newQueries(d) })
	return d.q
}

// dialectOnce is embedded in Dialect to make its statements once.
type dialectOnce struct {
	once sync.Once
	q    *queries
}

func newQueries(d *Dialect) *queries {
	s := &set{d: d}
	const hot, cold = true, false
	q := &queries{}

	q.identityInsert = s.stmt("identity-insert", hot, `INSERT INTO identities (`+identityCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	q.identityByID = s.stmt("identity-by-id", hot, `SELECT `+identityCols+` FROM identities WHERE id = ?`)
	q.identityUpdate = s.stmt("identity-update", hot, `UPDATE identities SET state = ?, blocked_reason = ?, blocked_at = ?,
	blocked_by_kind = ?, blocked_by_id = ?, blocked_by_via = ?, version = ?
WHERE id = ? AND version = ?`)
	q.identityVersion = s.stmt("identity-version", hot, `SELECT version FROM identities WHERE id = ?`)
	q.identitySessionsEnd = s.stmt("identity-sessions-end", hot, `DELETE FROM sessions WHERE identity_id = ?`)

	q.setVersionBump = s.stmt("set-version-bump", hot, `UPDATE identities SET authenticators_version = authenticators_version + 1
WHERE id = ? AND (CAST(? AS BIGINT) < 0 OR authenticators_version = ?)`)
	q.setVersion = s.stmt("set-version", hot, `SELECT authenticators_version FROM identities WHERE id = ?`)
	q.serialRevoked = s.stmt("serial-revoked", hot, `SELECT COUNT(*) FROM tombstones
WHERE serial <> '' AND serial = ? AND kind IN ('code-display', 'audio-code-reader')`)
	q.credentialKeep = s.stmt("credential-keep", cold, `INSERT INTO credential_ids (credential_id, authenticator_id, registered_at) VALUES (?, ?, NULL)
ON CONFLICT (credential_id) DO NOTHING`)
	q.credentialInsert = s.stmt("credential-insert", hot, `INSERT INTO credential_ids (credential_id, authenticator_id, registered_at) VALUES (?, ?, ?)`)
	q.authInsert = s.stmt("authenticator-insert", hot, `INSERT INTO authenticators (`+authCols+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	q.importConsume = s.stmt("import-consume", hot, `DELETE FROM imports WHERE serial = ?`)
	if d.LockSerial != "" {
		q.lockSerial = s.stmt("lock-serial", cold, d.LockSerial)
	}
	q.authByID = s.stmt("authenticator-by-id", hot, `SELECT `+authCols+` FROM authenticators WHERE id = ?`)
	q.authWithIdentity = s.stmt("authenticator-with-identity", hot, `SELECT `+prefixed("i.", identityCols)+`, `+prefixed("a.", authCols)+`
FROM authenticators a JOIN identities i ON i.id = a.identity_id WHERE a.id = ?`)
	q.identitySet = s.stmt("identity-set", hot, `SELECT `+prefixed("i.", identityCols)+`, i.authenticators_version, `+outerAuthCols+`
FROM identities i LEFT JOIN authenticators a ON a.identity_id = i.id WHERE i.id = ? ORDER BY a.created_at, a.id`)
	// The set with the element of each password: the elements' key says
	// whether the authenticator has one ('' when not).
	q.identitySetPw = s.stmt("identity-set-with-passwords", hot, `SELECT `+prefixed("i.", identityCols)+`, i.authenticators_version, `+outerAuthCols+`,
COALESCE(e.authenticator_id, ''), `+prefixed("e.", passwordCols)+`
FROM identities i LEFT JOIN authenticators a ON a.identity_id = i.id LEFT JOIN password_elements e ON e.authenticator_id = a.id
WHERE i.id = ? ORDER BY a.created_at, a.id`)
	q.authsOfIdentity = s.stmt("authenticators-of-identity", hot, `SELECT `+authCols+` FROM authenticators WHERE identity_id = ? ORDER BY created_at, id`)
	// A credential ID is found in credential_ids, which holds every one
	// ever registered with the authenticator that registered it (an
	// authenticator's credential ID is registered in the transaction
	// that inserts it, or the insert fails): authenticators need no index
	// of their credential IDs of their own.
	q.authsFind = s.stmt("authenticators-find", hot, `SELECT `+authCols+` FROM authenticators
WHERE (serial <> '' AND serial = ?) OR id = (SELECT authenticator_id FROM credential_ids WHERE credential_id = ?)
ORDER BY created_at, id`)
	// An update or delete names the identity, the first column of the
	// key (SQLite: identity_id, id), and an update sets no indexed column
	// but state, which is in the predicate of authenticators_serial_in_use:
	// SQLite leaves an entry whose key and predicate stay as they are (a
	// login's), so a login writes the leaf page of the identity's
	// authenticators and no index page (TestCodeLoginBTrees). To find
	// that out it still searches the index twice for every row with a
	// serial: for a conflicting entry, and for the row's own entry, which
	// it compares with the new one. authUpdateSameState sets every
	// column but state and requires the state to be the new one already:
	// it names no column of the index, and SQLite's program for it opens
	// no cursor on the index (TestUpdateSameStateProgram).
	//
	// The *OTP statements also raise a code device's OTP watermark
	// (highest_step, drift: RFC 6238 §5.2) from below the step, in the
	// same row: a code login writes one row for its code device.
	authUpdateSQL := func(state, otp bool) string {
		q := `UPDATE authenticators` + d.ByKey + ` SET `
		if state {
			q += `state = ?, `
		}
		q += `label = ?, failures = ?, suspensions = ?,
	activated_at = ?, last_used_at = ?, suspended_at = ?, suspend_reason = ?, blocked_at = ?, block_reason = ?, version = ?`
		if otp {
			q += `, highest_step = ?, drift = ?`
		}
		q += `
WHERE id = ? AND version = ? AND identity_id = ? AND kind = ? AND serial = ? AND credential_id = ?`
		if otp {
			q += ` AND highest_step < ?`
		}
		if !state {
			q += ` AND state = ?`
		}
		return q
	}
	q.authUpdate = s.stmt("authenticator-update", hot, authUpdateSQL(true, false))
	q.authUpdateSameState = s.stmt("authenticator-update-same-state", hot, authUpdateSQL(false, false))
	q.authUpdateOTP = s.stmt("authenticator-update-otp", hot, authUpdateSQL(true, true))
	q.authUpdateSameStateOTP = s.stmt("authenticator-update-same-state-otp", hot, authUpdateSQL(false, true))
	q.authGuard = s.stmt("authenticator-guard", hot, `SELECT version, highest_step FROM authenticators WHERE id = ?`)
	q.authDelete = s.stmt("authenticator-delete", hot, `DELETE FROM authenticators`+d.ByKey+`
WHERE id = ? AND version = ? AND identity_id = ? AND kind = ? AND serial = ? AND credential_id = ?`)
	q.authVersion = s.stmt("authenticator-version", hot, `SELECT version FROM authenticators WHERE id = ?`)

	q.chipInsert = s.stmt("chip-insert", hot, `INSERT INTO chip_elements
(authenticator_id, public_key, aaguid, sign_count, attestation_format, backup_eligible, backup_state) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	q.codeInsert = s.stmt("code-insert", hot, `INSERT INTO code_elements
(authenticator_id, secret, key_id, digits, period_s, algorithm) VALUES (?, ?, ?, ?, ?, ?)`)
	q.otpSet = s.stmt("otp-set", hot, `UPDATE authenticators SET highest_step = ?, drift = ? WHERE id = ?`)
	q.appInsert = s.stmt("app-insert", hot, `INSERT INTO app_elements (authenticator_id, public_key, pin_verifier) VALUES (?, ?, ?)`)
	q.passwordInsert = s.stmt("password-insert", hot, `INSERT INTO password_elements (authenticator_id, verifier) VALUES (?, ?)`)
	q.chipWipe = s.stmt("chip-wipe", hot, `UPDATE chip_elements SET public_key = NULL, wiped_at = COALESCE(wiped_at, ?) WHERE authenticator_id = ?`)
	q.codeWipe = s.stmt("code-wipe", hot, `UPDATE code_elements SET secret = NULL, key_id = NULL, wiped_at = COALESCE(wiped_at, ?) WHERE authenticator_id = ?`)
	q.appWipe = s.stmt("app-wipe", hot, `UPDATE app_elements SET public_key = NULL, pin_verifier = NULL, wiped_at = COALESCE(wiped_at, ?) WHERE authenticator_id = ?`)
	q.passwordWipe = s.stmt("password-wipe", hot, `UPDATE password_elements SET verifier = NULL, wiped_at = COALESCE(wiped_at, ?) WHERE authenticator_id = ?`)
	q.authKind = s.stmt("authenticator-kind", hot, `SELECT kind FROM authenticators WHERE id = ?`)
	q.chipByAuth = s.stmt("chip-element", hot, `SELECT `+chipCols+` FROM chip_elements WHERE authenticator_id = ?`)
	q.codeByAuth = s.stmt("code-element", hot, `SELECT `+codeElementCols+`
FROM code_elements e JOIN authenticators a ON a.id = e.authenticator_id WHERE e.authenticator_id = ?`)
	q.appByAuth = s.stmt("app-element", hot, `SELECT `+appCols+` FROM app_elements WHERE authenticator_id = ?`)
	q.pwByAuth = s.stmt("password-element", hot, `SELECT `+passwordCols+` FROM password_elements WHERE authenticator_id = ?`)
	withElement := func(name, cols, table string) *Stmt {
		if table == "code_elements" {
			cols = codeElementCols
		} else {
			cols = prefixed("e.", cols)
		}
		return s.stmt(name, hot, `SELECT `+prefixed("i.", identityCols)+`, `+prefixed("a.", authCols)+`, `+cols+`
FROM authenticators a JOIN identities i ON i.id = a.identity_id JOIN `+table+` e ON e.authenticator_id = a.id
WHERE a.id = ? AND a.kind = ?`)
	}
	q.authWithChip = withElement("authenticator-with-chip", chipCols, "chip_elements")
	q.authWithCode = withElement("authenticator-with-code", codeCols, "code_elements")
	q.authWithApp = withElement("authenticator-with-app", appCols, "app_elements")
	q.authWithPassword = withElement("authenticator-with-password", passwordCols, "password_elements")
	q.otpAdvance = s.stmt("otp-advance", hot, `UPDATE authenticators SET highest_step = ?, drift = ?
WHERE id = ? AND highest_step < ? AND id IN (SELECT authenticator_id FROM code_elements WHERE authenticator_id = ? AND wiped_at IS NULL)`)
	q.codeLive = s.stmt("code-live", hot, `SELECT wiped_at FROM code_elements WHERE authenticator_id = ?`)
	q.signAdvance = s.stmt("sign-advance", hot, `UPDATE chip_elements SET sign_count = ?
WHERE authenticator_id = (SELECT authenticator_id FROM credential_ids WHERE credential_id = ?)
	AND wiped_at IS NULL AND (sign_count < ? OR (sign_count = 0 AND CAST(? AS BIGINT) = 0))`)
	q.chipLive = s.stmt("chip-live", hot, `SELECT wiped_at FROM chip_elements
WHERE authenticator_id = (SELECT authenticator_id FROM credential_ids WHERE credential_id = ?)`)
	q.secretUpdate = s.stmt("secret-update", cold, `UPDATE code_elements SET secret = ?, key_id = ?
WHERE authenticator_id = ? AND wiped_at IS NULL AND key_id = ? AND secret = ?`)
	q.pwVerifierUpdate = s.stmt("password-verifier-update", cold, `UPDATE password_elements SET verifier = ?
WHERE authenticator_id = ? AND wiped_at IS NULL AND verifier = ?`)
	q.appVerifierUpdate = s.stmt("app-verifier-update", cold, `UPDATE app_elements SET pin_verifier = ?
WHERE authenticator_id = ? AND wiped_at IS NULL AND pin_verifier = ?`)
	q.verifierLive = s.stmt("verifier-live", cold, `SELECT
	(SELECT COUNT(*) FROM password_elements WHERE authenticator_id = ? AND wiped_at IS NULL) +
	(SELECT COUNT(*) FROM app_elements WHERE authenticator_id = ? AND wiped_at IS NULL)`)

	q.tombInsert = s.stmt("tombstone-insert", hot, `INSERT INTO tombstones (`+tombCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	q.tombsFind = s.stmt("tombstones-find", hot, `SELECT `+tombCols+` FROM tombstones
WHERE (serial <> '' AND serial = ?) OR (credential_id <> '' AND credential_id = ?)
ORDER BY blocked_at, authenticator_id`)
	q.importInsert = s.stmt("import-insert", cold, `INSERT INTO imports (serial, secret, key_id, digits, period_s, algorithm, imported_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`)
	q.importReplace = s.stmt("import-replace", cold, `INSERT INTO imports (serial, secret, key_id, digits, period_s, algorithm, imported_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (serial) DO UPDATE SET secret = excluded.secret, key_id = excluded.key_id, digits = excluded.digits,
	period_s = excluded.period_s, algorithm = excluded.algorithm, imported_at = excluded.imported_at, failures = 0`)
	q.importBySerial = s.stmt("import-by-serial", hot, `SELECT `+importCols+` FROM imports WHERE serial = ?`)
	q.importTake = s.stmt("import-take", hot, `DELETE FROM imports WHERE serial = ? RETURNING `+importCols)
	q.importFail = s.stmt("import-fail", hot, `UPDATE imports SET failures = failures + 1 WHERE serial = ? RETURNING failures`)
	q.importTakeExact = s.stmt("import-take-exact", hot, `DELETE FROM imports WHERE serial = ? AND key_id = ? AND secret = ?`)
	q.ceremonyInsert = s.stmt("ceremony-insert", hot, `INSERT INTO ceremonies (ckey, identity_id, data, expires_at) VALUES (?, ?, ?, ?)`)
	q.ceremonyTake = s.stmt("ceremony-take", hot, `DELETE FROM ceremonies WHERE ckey = ? RETURNING identity_id, data, expires_at`)
	q.ceremoniesSweep = s.stmt("ceremonies-sweep", cold, `DELETE FROM ceremonies WHERE expires_at <= ?`)

	q.sessionInsert = s.stmt("session-insert", hot, `INSERT INTO sessions (token_hash, id, identity_id, level, proof_1, proof_2, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	q.sessionInsertActive = s.stmt("session-insert-active", hot, `INSERT INTO sessions (token_hash, id, identity_id, level, proof_1, proof_2, created_at, expires_at)
SELECT ?, ?, id, ?, ?, ?, ?, ? FROM identities WHERE id = ? AND state = 'active'`)
	q.proofIdentity = s.stmt("proof-identity", hot, `SELECT state FROM identities WHERE id = ?`+d.ForShare)
	q.proofAuth = s.stmt("proof-authenticator", hot, `SELECT identity_id, state FROM authenticators WHERE id = ?`+d.ForShare)
	q.sessionsEndOf = s.stmt("sessions-end-of", hot, `DELETE FROM sessions
WHERE identity_id = ? AND (proof_1 = ? OR proof_2 = ?)`)
	q.sessionByToken = s.stmt("session-by-token", hot, `SELECT `+sessionCols+` FROM sessions s
WHERE s.token_hash = ? AND `+validSession(d.ByKey))
	q.sessionsOfIdentity = s.stmt("sessions-of-identity", hot, `SELECT `+sessionCols+` FROM sessions s
WHERE s.identity_id = ? AND `+validSession(d.ByKey)+` ORDER BY s.created_at, s.id`)
	q.sessionEnd = s.stmt("session-end", hot, `DELETE FROM sessions WHERE identity_id = ? AND id = ?`)
	q.sessionDelete = s.stmt("session-delete", hot, `DELETE FROM sessions WHERE token_hash = ?`)
	q.sessionsSweep = s.stmt("sessions-sweep", cold, `DELETE FROM sessions WHERE expires_at <= ?`)

	q.attemptAuth = s.stmt("attempt-authenticator", hot, `SELECT state, failures FROM authenticators WHERE id = ?`+d.ForUpdate)
	q.attemptImport = s.stmt("attempt-import", hot, `SELECT failures FROM imports WHERE serial = ?`+d.ForUpdate)
	q.attemptsInFlight = s.stmt("attempts-in-flight", hot, `SELECT COUNT(*) FROM attempts
WHERE ((authenticator_id <> '' AND authenticator_id = ?) OR (serial <> '' AND serial = ?)) AND expires_at > ?`)
	// attemptInsertAuth and attemptInsertImport insert an attempt while
	// its subject takes attempts and its failures plus the attempts in
	// flight against it stay under the last parameter: they read the
	// subject and count the attempts themselves, so that they need no
	// answer from the statement that locked the subject before them.
	inFlight := `(SELECT COUNT(*) FROM attempts
	WHERE ((authenticator_id <> '' AND authenticator_id = ?) OR (serial <> '' AND serial = ?)) AND expires_at > ?) < ?`
	q.attemptInsertAuth = s.stmt("attempt-insert-authenticator", hot, `INSERT INTO attempts (id, authenticator_id, serial, expires_at)
SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT) FROM authenticators s
WHERE s.id = ? AND s.state = ? AND s.failures + `+inFlight)
	q.attemptInsertImport = s.stmt("attempt-insert-import", hot, `INSERT INTO attempts (id, authenticator_id, serial, expires_at)
SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT) FROM imports s
WHERE s.serial = ? AND s.failures + `+inFlight)
	q.attemptDelete = s.stmt("attempt-delete", hot, `DELETE FROM attempts WHERE id = ?`)
	q.attemptsSweep = s.stmt("attempts-sweep", cold, `DELETE FROM attempts WHERE expires_at <= ?`)
	if d.Reserve != "" {
		q.attemptReserve = s.stmt("attempt-reserve", hot, d.Reserve)
	}

	q.auditHead = s.stmt("audit-head", hot, d.LockHead)
	for k := 1; k <= maxAuditRows; k++ {
		name := "audit-insert"
		if k > 1 {
			name = fmt.Sprintf("audit-insert-%d", k)
		}
		values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?), ", k), ", ")
		st := s.stmt(name, hot, `INSERT INTO audit (`+auditCols+`) VALUES `+values)
		st.AuditAppend = true
		q.auditInsert = append(q.auditInsert, st)
	}
	if !d.HeadsInLog {
		q.auditHeadMove = s.stmt("audit-head-move", hot, `INSERT INTO audit_heads (identity_id, seq, hash) VALUES (?, ?, ?)
ON CONFLICT (identity_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`)
	}
	q.auditList = s.stmt("audit-list", hot, `SELECT `+auditCols+` FROM audit WHERE identity_id = ? AND seq > ? ORDER BY seq LIMIT ?`)
	q.auditFirst = s.stmt("audit-first", cold, `SELECT `+auditCols+` FROM audit ORDER BY identity_id, seq LIMIT ?`)
	q.auditAfter = s.stmt("audit-after", cold, `SELECT `+auditCols+` FROM audit WHERE (identity_id, seq) > (?, ?)
ORDER BY identity_id, seq LIMIT ?`)
	if d.HeadsInLog {
		// The chains are found one after the other, each the least
		// identity ID above the last (a seek in the log's key, not a
		// read of every record), and the head of each is its record
		// of the highest seq: the heads cost a read per chain, as
		// the rows of audit_heads do.
		q.auditHeads = s.stmt("audit-heads", cold, `WITH RECURSIVE chains (id) AS (
	SELECT (SELECT MIN(identity_id) FROM audit)
	UNION ALL
	SELECT (SELECT MIN(identity_id) FROM audit WHERE identity_id > c.id) FROM chains c WHERE c.id IS NOT NULL
)
SELECT a.identity_id, a.seq, a.hash FROM chains c JOIN audit a ON a.identity_id = c.id
	AND a.seq = (SELECT MAX(seq) FROM audit WHERE identity_id = c.id)
ORDER BY a.identity_id`)
	} else {
		q.auditHeads = s.stmt("audit-heads", cold, `SELECT identity_id, seq, hash FROM audit_heads WHERE seq > 0 ORDER BY identity_id`)
	}
	q.checkpointInsert = s.stmt("checkpoint-insert", cold, `INSERT INTO audit_checkpoints (`+columns.CheckpointCols+`) VALUES (?, ?, ?, ?, ?)`)
	q.checkpointsFrom = s.stmt("checkpoints-from", cold, `SELECT `+columns.CheckpointCols+` FROM audit_checkpoints WHERE seq >= ? ORDER BY seq LIMIT ?`)
	q.checkpointLast = s.stmt("checkpoint-last", hot, `SELECT `+columns.CheckpointCols+` FROM audit_checkpoints
WHERE seq = (SELECT MAX(seq) FROM audit_checkpoints)`)

	q.sealedCodeKeys = s.stmt("sealed-code-keys", cold, `SELECT key_id, COUNT(*), MIN(authenticator_id) FROM code_elements
WHERE secret IS NOT NULL AND key_id IS NOT NULL GROUP BY key_id ORDER BY key_id`)
	q.sealedCodeSample = s.stmt("sealed-code-sample", cold, `SELECT secret FROM code_elements WHERE authenticator_id = ?`)
	q.sealedImportKeys = s.stmt("sealed-import-keys", cold, `SELECT key_id, COUNT(*), MIN(serial) FROM imports
WHERE secret IS NOT NULL AND key_id IS NOT NULL GROUP BY key_id ORDER BY key_id`)
	q.sealedImportSample = s.stmt("sealed-import-sample", cold, `SELECT secret FROM imports WHERE serial = ?`)

	q.mirrorIdentity = s.stmt("mirror-identity", hot, `SELECT `+mirrorCols["identities"]+` FROM identities WHERE id = ?`)
	q.mirrorAuths = s.stmt("mirror-authenticators", hot, `SELECT `+mirrorCols["authenticators"]+` FROM authenticators WHERE identity_id = ?`)
	for _, t := range []string{"chip_elements", "code_elements", "app_elements", "password_elements"} {
		q.mirrorElements = append(q.mirrorElements, mirrorElements{t, s.stmt("mirror-"+strings.TrimSuffix(t, "_elements"), hot,
			`SELECT `+prefixed("e.", mirrorCols[t])+` FROM authenticators a JOIN `+t+` e ON e.authenticator_id = a.id WHERE a.identity_id = ?`)})
	}

	q.all = s.all
	return q
}

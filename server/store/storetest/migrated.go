package storetest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/audit"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// LegacyLog returns the audit log as a database from before per-identity
// chains holds it: one chain of Version1 records for every identity
// (here alice, bob and events of no identity, interleaved), Seq 1, 2, 3,
// ... across them, each linked to the record before whoever it was about.
// A store test writes these rows into a database at the schema version
// before the migration to per-identity chains, opens the store on it, and
// runs CheckMigrated.
func LegacyLog() []store.AuditRecord {
	var out []store.AuditRecord
	var prev audit.Hash
	for i := range 10 {
		id := []string{"alice", "bob", "alice", ""}[i%4]
		e := event(id, i, T0.Add(time.Duration(i)*time.Second))
		r := audit.Next(nil, e, uint64(i+1))
		r.Version, r.PrevHash = audit.Version1, prev
		r.Hash = r.ComputeHash()
		prev = r.Hash
		body, _ := r.MarshalBinary()
		out = append(out, store.AuditRecord{Seq: r.Seq, At: e.At, Type: e.Type, IdentityID: id, AuthenticatorID: e.AuthenticatorID,
			PrevHash: r.PrevHash[:], Hash: r.Hash[:], Body: body})
	}
	return out
}

// CheckMigrated checks a store whose database held LegacyLog before the
// migration to per-identity chains: the old records still verify, as
// their single chain and as the start of each identity's chain; new
// records of an identity follow its last old one; checkpoints seal both;
// and a legacy record deleted afterwards is found. tp tampers with the
// store's database. It closes nothing.
func CheckMigrated(t *testing.T, s store.Store, tp Tamperer) {
	f := &fixture{t: t, ctx: context.Background(), s: s, now: T0.Add(time.Hour)}
	legacy := LegacyLog()
	keys := testKeys(f)
	rep := f.verify(keys)
	f.wantIntact(rep, "the migrated log")
	if rep.Records != len(legacy) || rep.Legacy != len(legacy) || rep.Chains != 3 || rep.Unsealed != len(legacy) || rep.Checkpoints != 0 {
		t.Errorf("VerifyLog of the migrated log = %+v", rep)
	}
	heads, err := s.AuditHeads(f.ctx)
	f.ok(err, "AuditHeads")
	if want := fmt.Sprint([]uint64{8, 9, 10}); fmt.Sprint(headSeqs(heads)) != want {
		t.Errorf("migrated heads %v, want seqs %s (the last record of \"\", alice, bob)", heads, want)
	}
	// The chains go on after the old records.
	f.ok(s.AppendAudit(f.ctx, event("alice", 20, f.now), event("bob", 21, f.now), event("carol", 22, f.now)), "AppendAudit")
	alice := f.chain("alice")
	if got := fmt.Sprint(seqs(alice)); got != "[1 3 5 7 9 10]" {
		t.Errorf("alice's chain %s, want her old records 1, 3, 5, 7, 9 and then 10", got)
	}
	if got := fmt.Sprint(seqs(f.chain("carol"))); got != "[1]" {
		t.Errorf("carol's new chain %s", got)
	}
	seal := &audit.Sealer{Log: s, Keys: keys, Now: func() time.Time { return f.now }}
	cp, err := seal.Seal(f.ctx, 0)
	f.ok(err, "Seal")
	if cp == nil || cp.Chains != 4 {
		t.Fatalf("Seal = %+v", cp)
	}
	rep = f.verify(keys)
	f.wantIntact(rep, "the migrated log, continued and sealed")
	if rep.Legacy != len(legacy) || rep.Records != len(legacy)+3 || rep.Unsealed != 0 {
		t.Errorf("VerifyLog = %+v", rep)
	}
	// An old record of bob deleted: bob's own chain does not link its old
	// records (they linked to whoever came before), but the single chain
	// they were breaks there.
	f.ok(tp.DeleteAudit(f.ctx, "bob", 6, 6), "delete bob's old record 6")
	f.wantProblems(f.verify(keys), wantProblem{audit.BreakSeq.Problem(), "alice", 7,
		[]string{"chain of version 1 records", "record 7", "follows record 5: record 6 missing"}})
}

func headSeqs(hs []store.AuditHead) []uint64 {
	var out []uint64
	for _, h := range hs {
		out = append(out, h.Seq)
	}
	return out
}

// The sessions of a database from before the migration that folded the
// proofs of a session into its row (session_proofs): a session's
// authenticators were rows of session_authenticators, and its via named
// them in the order they were checked.

// legacySession is a session row of the schema before session_proofs,
// with its links in session_authenticators.
type legacySession struct {
	id, via string
	links   []string
}

// legacySessions: two that a login opened (with two factors, and with the
// app), and two whose rows a login never wrote, which the migration ends:
// one whose via and links disagree, and one proven with three.
var legacySessions = []legacySession{
	{"ses-code", "pw-1+kv-1", []string{"pw-1", "kv-1"}},
	{"ses-app", "app-1", []string{"app-1"}},
	{"ses-odd", "pw-1+kv-1", []string{"pw-1"}},
	{"ses-three", "pw-1+kv-1+app-1", []string{"pw-1", "kv-1", "app-1"}},
}

// legacyToken is the token hash of legacy session sid.
func legacyToken(sid string) []byte { return bytes.Repeat([]byte(sid), 1+32/len(sid))[:32] }

// WriteLegacySessions writes into db, at the schema version before
// session_proofs, an active identity "id-1" with the active authenticators
// pw-1 (a password), kv-1 (a code display) and app-1 (an app) and the
// sessions of legacySessions, created at T0 and expiring an hour later.
// Numbered says placeholders are $1, $2, ... rather than ?.
func WriteLegacySessions(ctx context.Context, db *sql.DB, numbered bool) error {
	tp := &SQLTamperer{DB: db, Numbered: numbered}
	t0 := T0.UnixNano()
	if err := tp.exec(ctx, `INSERT INTO identities (id, state, created_at, version) VALUES ('id-1', 'active', ?, 1)`, t0); err != nil {
		return err
	}
	for _, a := range [][2]string{{"pw-1", string(device.KindPassword)}, {"kv-1", string(device.KindCodeDisplay)}, {"app-1", string(device.KindApp)}} {
		if err := tp.exec(ctx, `INSERT INTO authenticators (id, identity_id, kind, state, created_at, activated_at, version)
			VALUES (?, 'id-1', ?, 'active', ?, ?, 2)`, a[0], a[1], t0, t0); err != nil {
			return err
		}
	}
	for _, se := range legacySessions {
		tok := legacyToken(se.id)
		if err := tp.exec(ctx, `INSERT INTO sessions (token_hash, id, identity_id, level, via, created_at, expires_at)
			VALUES (?, ?, 'id-1', ?, ?, ?, ?)`, tok, se.id, store.LevelTwoFactor, se.via, t0, T0.Add(time.Hour).UnixNano()); err != nil {
			return err
		}
		for _, aid := range se.links {
			if err := tp.exec(ctx, `INSERT INTO session_authenticators (token_hash, authenticator_id) VALUES (?, ?)`, tok, aid); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckMigratedSessions checks a store whose database held the rows of
// WriteLegacySessions before session_proofs: the sessions a login opened
// still work, with their proofs in order, and still end with their
// authenticators; the others are gone.
func CheckMigratedSessions(t *testing.T, s store.Store) {
	f := &fixture{t: t, ctx: context.Background(), s: s, now: T0.Add(time.Minute)}
	code, app := legacyToken("ses-code"), legacyToken("ses-app")
	se, err := s.Session(f.ctx, code, f.now)
	f.ok(err, "Session(ses-code) after the migration")
	if se.ID != "ses-code" || se.IdentityID != "id-1" || se.Level != store.LevelTwoFactor || !slices.Equal(se.Authenticators, []string{"pw-1", "kv-1"}) ||
		!se.CreatedAt.Equal(T0) || !se.ExpiresAt.Equal(T0.Add(time.Hour)) {
		t.Errorf("Session(ses-code) = %+v", se)
	}
	list, err := s.ListSessions(f.ctx, "id-1", f.now)
	f.ok(err, "ListSessions")
	var ids []string
	for _, l := range list {
		ids = append(ids, l.ID+"="+strings.Join(l.Authenticators, "+"))
	}
	if want := []string{"ses-app=app-1", "ses-code=pw-1+kv-1"}; !slices.Equal(ids, want) {
		t.Errorf("ListSessions after the migration = %v, want %v", ids, want)
	}
	for _, sid := range []string{"ses-odd", "ses-three"} {
		f.wantErr(s.EndSession(f.ctx, "id-1", sid), store.ErrNotFound, "EndSession(%s), a session whose rows no login wrote, after the migration", sid)
	}
	// They end with what proved them, in the transaction that suspends it.
	id, err := s.Identity(f.ctx, "id-1")
	f.ok(err, "Identity")
	kv, err := s.Authenticator(f.ctx, "kv-1")
	f.ok(err, "Authenticator(kv-1)")
	f.apply(f.p.Suspend(kv, domain.Support("op-1"), domain.ReasonMisuse, f.now))
	if f.live(code) || !f.live(app) {
		t.Errorf("after kv-1 was suspended: ses-code %v, ses-app %v; want false, true", f.live(code), f.live(app))
	}
	f.wantErr(s.EndSession(f.ctx, "id-1", "ses-code"), store.ErrNotFound, "EndSession(ses-code) after its proof was suspended")
	// New sessions are written beside them, and end likewise.
	pw, err := s.Authenticator(f.ctx, "pw-1")
	f.ok(err, "Authenticator(pw-1)")
	fresh := f.session("id-1", "ses-new", "pw-1", "app-1")
	f.apply(f.p.Block(pw, domain.Owner("id-1", "app-1"), domain.ReasonCompromised, f.now))
	if f.live(fresh) || !f.live(app) {
		t.Errorf("after pw-1 was blocked: ses-new %v, ses-app %v; want false, true", f.live(fresh), f.live(app))
	}
	blocked, err := f.p.BlockIdentity(id, domain.Support("op-1"), domain.ReasonMisuse, f.now)
	f.ok(err, "BlockIdentity")
	f.ok(s.UpdateIdentity(f.ctx, blocked), "UpdateIdentity")
	if f.live(app) {
		t.Error("ses-app outlived the block of its identity")
	}
}

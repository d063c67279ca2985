package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/authbench/authbench/server/audit"
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

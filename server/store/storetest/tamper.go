package storetest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/server/audit"
	"github.com/authbench/authbench/server/store"
)

// Tamperer changes an audit log behind its store's back, as someone with
// write access to the database can. Each store's tests implement it (with
// SQLTamperer) so that RunTamper can check that audit.VerifyLog notices.
type Tamperer interface {
	// DeleteAudit deletes the records of the chain of identityID with Seq
	// from from to to.
	DeleteAudit(ctx context.Context, identityID string, from, to uint64) error
	// ReplaceAudit overwrites every column of the stored record
	// (r.IdentityID, r.Seq) with r's.
	ReplaceAudit(ctx context.Context, r store.AuditRecord) error
	// SetAuditHead makes h the head of its chain; Seq 0 removes the head.
	SetAuditHead(ctx context.Context, h store.AuditHead) error
}

// SQLTamperer is a Tamperer on the database of a SQL store, opened
// separately through database/sql. Unlock are the statements that drop
// the triggers keeping the audit log append-only (they differ between
// databases); Numbered says placeholders are $1, $2, ... rather than ?.
// HeadsInLog says the store takes the head of a chain from its last record
// (SQLite) rather than from a row of audit_heads (PostgreSQL): deleting or
// rewriting records moved it already.
type SQLTamperer struct {
	DB         *sql.DB
	Unlock     []string
	Numbered   bool
	HeadsInLog bool
}

func (t *SQLTamperer) exec(ctx context.Context, query string, args ...any) error {
	for _, q := range t.Unlock {
		if _, err := t.DB.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("storetest: tamper: %s: %w", q, err)
		}
	}
	if t.Numbered {
		for i := 1; strings.Contains(query, "?"); i++ {
			query = strings.Replace(query, "?", fmt.Sprint("$", i), 1)
		}
	}
	if _, err := t.DB.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("storetest: tamper: %s: %w", query, err)
	}
	return nil
}

// DeleteAudit implements Tamperer.
func (t *SQLTamperer) DeleteAudit(ctx context.Context, identityID string, from, to uint64) error {
	return t.exec(ctx, `DELETE FROM audit WHERE identity_id = ? AND seq BETWEEN ? AND ?`, identityID, int64(from), int64(min(to, 1<<63-1)))
}

// ReplaceAudit implements Tamperer.
func (t *SQLTamperer) ReplaceAudit(ctx context.Context, r store.AuditRecord) error {
	return t.exec(ctx, `UPDATE audit SET at = ?, event_type = ?, authenticator_id = ?, prev_hash = ?, hash = ?, body = ?
		WHERE identity_id = ? AND seq = ?`, r.At.UnixNano(), string(r.Type), r.AuthenticatorID, r.PrevHash, r.Hash, r.Body,
		r.IdentityID, int64(r.Seq))
}

// SetAuditHead implements Tamperer. Where the heads are the chains' last
// records (HeadsInLog) there is nothing to set: it checks that the chain
// now ends at h (no record left for Seq 0), as the attack left it.
func (t *SQLTamperer) SetAuditHead(ctx context.Context, h store.AuditHead) error {
	if t.HeadsInLog {
		var seq int64
		var hash []byte
		err := t.DB.QueryRowContext(ctx, `SELECT seq, hash FROM audit WHERE identity_id = ? ORDER BY seq DESC LIMIT 1`, h.IdentityID).Scan(&seq, &hash)
		if errors.Is(err, sql.ErrNoRows) {
			seq, err = 0, nil
		}
		switch {
		case err != nil:
			return fmt.Errorf("storetest: tamper: the last record of %q: %w", h.IdentityID, err)
		case uint64(seq) != h.Seq || h.Seq != 0 && !bytes.Equal(hash, h.Hash):
			return fmt.Errorf("storetest: tamper: the chain of %q ends at record %d, not at the head %d it was to be left at", h.IdentityID, seq, h.Seq)
		}
		return nil
	}
	if h.Seq == 0 {
		return t.exec(ctx, `DELETE FROM audit_heads WHERE identity_id = ?`, h.IdentityID)
	}
	return t.exec(ctx, `UPDATE audit_heads SET seq = ?, hash = ? WHERE identity_id = ?`, int64(h.Seq), h.Hash, h.IdentityID)
}

// RunTamper runs the attacks on the audit log that audit.VerifyLog must
// find once a checkpoint sealed the records (DESIGN §5): deleting the
// newest records of a chain, altering a record and recomputing the hashes
// after it, altering one without, deleting a whole chain; and a valid
// history, which must pass. newStore returns a new, empty store whose
// Chainer is Chain, and a Tamperer on its database; RunTamper closes the
// store.
func RunTamper(t *testing.T, newStore func(t *testing.T) (store.Store, Tamperer)) {
	tests := []struct {
		name string
		fn   func(f *fixture, tp Tamperer)
	}{
		{"Valid", tamperNothing},
		{"LastThreeDeleted", tamperTruncate},
		{"LastThreeDeletedAndAppended", tamperTruncateAppend},
		{"EditedAndRechained", tamperRechain},
		{"Edited", tamperEdit},
		{"ChainDeleted", tamperChainGone},
		{"Window", tamperWindow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, tp := newStore(t)
			f := &fixture{t: t, ctx: t.Context(), s: s, now: T0}
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(f, tp)
		})
	}
}

// history appends the audit history the attacks start from and seals it
// after each round: three rounds of four events for each of alice, bob
// and carol and one event of no identity, so that checkpoint r (1, 2, 3)
// seals each identity's chain at record 4r.
func (f *fixture) history() *audit.Sealer {
	f.t.Helper()
	keys := testKeys(f)
	seal := &audit.Sealer{Log: f.s, Keys: keys, Now: func() time.Time { return f.now }}
	n := 0
	for round := range 3 {
		for range 4 {
			for _, id := range []string{"alice", "bob", "carol"} {
				f.ok(f.s.AppendAudit(f.ctx, event(id, n, f.now)), "AppendAudit")
				n++
				f.now = f.now.Add(time.Second)
			}
		}
		f.ok(f.s.AppendAudit(f.ctx, event("", n, f.now)), "AppendAudit")
		n++
		cp, err := seal.Seal(f.ctx, 0)
		f.ok(err, "Seal")
		if cp == nil || cp.Seq != uint64(round+1) {
			f.t.Fatalf("Seal of round %d = %+v", round, cp)
		}
	}
	return seal
}

// chain returns the records of identityID's chain.
func (f *fixture) chain(identityID string) []store.AuditRecord {
	f.t.Helper()
	recs, err := f.s.ListAudit(f.ctx, identityID, 0, 1000)
	f.ok(err, "ListAudit")
	return recs
}

// wantProblems checks that VerifyLog reports exactly problems of these
// kinds, on identity's chain at these seqs, with messages holding the
// given parts.
func (f *fixture) wantProblems(rep *audit.Report, want ...wantProblem) {
	f.t.Helper()
	for _, p := range rep.Problems {
		f.t.Logf("problem: %s", p.Message)
	}
	if len(rep.Problems) != len(want) {
		f.t.Fatalf("VerifyLog found %d problems, want %d", len(rep.Problems), len(want))
	}
	for i, w := range want {
		p := rep.Problems[i]
		if p.Kind != w.kind || p.Chain != w.chain || p.Seq != w.seq {
			f.t.Errorf("problem %d: %s on chain %q at %d, want %s on %q at %d", i, p.Kind, p.Chain, p.Seq, w.kind, w.chain, w.seq)
		}
		for _, part := range w.says {
			if !strings.Contains(p.Message, part) {
				f.t.Errorf("problem %d: %q does not say %q", i, p.Message, part)
			}
		}
	}
}

// end is the highest seq: DeleteAudit(..., from, end) cuts a chain from
// from on.
const end = 1<<63 - 1

type wantProblem struct {
	kind  audit.ProblemKind
	chain string
	seq   uint64
	says  []string
}

func tamperNothing(f *fixture, _ Tamperer) {
	f.history()
	rep := f.verify(testKeys(f))
	f.wantIntact(rep, "the history")
	if rep.Records != 39 || rep.Chains != 4 || rep.Checkpoints != 3 || rep.Unsealed != 0 {
		f.t.Errorf("VerifyLog = %+v, want 39 records in 4 chains, 3 checkpoints, none unsealed", rep)
	}
}

// tamperTruncate deletes bob's last three records and sets his head back,
// so that the store's own view is consistent again.
func tamperTruncate(f *fixture, tp Tamperer) {
	f.history()
	bob := f.chain("bob")
	f.ok(tp.DeleteAudit(f.ctx, "bob", 10, end), "delete records 10 to 12 of bob")
	f.ok(tp.SetAuditHead(f.ctx, store.AuditHead{IdentityID: "bob", Seq: 9, Hash: bob[8].Hash}), "set the head of bob")
	f.wantProblems(f.verify(testKeys(f)), wantProblem{audit.ProblemTruncated, "bob", 12,
		[]string{`identity "bob"`, "ends at record 9", "checkpoint 3 sealed record 12", "records 10 to 12 were deleted"}})
}

// tamperTruncateAppend deletes bob's last three records and leaves the
// head: the server's next append for bob links to the deleted record.
func tamperTruncateAppend(f *fixture, tp Tamperer) {
	f.history()
	f.ok(tp.DeleteAudit(f.ctx, "bob", 10, end), "delete records 10 to 12 of bob")
	f.ok(f.s.AppendAudit(f.ctx, event("bob", 99, f.now)), "AppendAudit")
	f.wantProblems(f.verify(testKeys(f)), wantProblem{audit.BreakSeq.Problem(), "bob", 13,
		[]string{`identity "bob"`, "record 13", "follows record 9", "records 10 to 12 missing"}})
}

// rechain alters record seq of a chain with edit and recomputes the hash
// of every record from it on, as an attacker who knows the canonical form
// does, then moves the head to the new last hash.
func (f *fixture) rechain(tp Tamperer, recs []store.AuditRecord, seq uint64, edit func(*audit.Record)) {
	f.t.Helper()
	var prev audit.Hash
	for i, r := range recs {
		rec, err := audit.FromStore(&r)
		f.ok(err, "record %d", r.Seq)
		if r.Seq < seq {
			prev = rec.Hash
			continue
		}
		if r.Seq == seq {
			edit(rec)
		}
		rec.PrevHash = prev
		rec.Hash = rec.ComputeHash()
		prev = rec.Hash
		body, _ := rec.MarshalBinary()
		r.PrevHash, r.Hash, r.Body = rec.PrevHash[:], rec.Hash[:], body
		f.ok(tp.ReplaceAudit(f.ctx, r), "replace record %d", r.Seq)
		recs[i] = r
	}
	last := recs[len(recs)-1]
	f.ok(tp.SetAuditHead(f.ctx, store.AuditHead{IdentityID: last.IdentityID, Seq: last.Seq, Hash: last.Hash}), "set the head")
}

// tamperRechain alters bob's record 6 and recomputes the hashes of 6 to
// 12: every chain still holds by itself; checkpoint 2 sealed record 8 with
// its old hash.
func tamperRechain(f *fixture, tp Tamperer) {
	f.history()
	bob := f.chain("bob")
	f.rechain(tp, bob, 6, func(r *audit.Record) { r.Reason = "nothing happened here" })
	if err := VerifyChain(f.chain("bob")); err != nil {
		f.t.Fatalf("the re-chained chain does not hold by itself: %v", err)
	}
	f.wantProblems(f.verify(testKeys(f)), wantProblem{audit.ProblemRewritten, "bob", 8,
		[]string{`identity "bob"`, "record 8", "checkpoint 2", "records 5 to 8", "record 4 still matches checkpoint 1"}})
}

// tamperEdit alters bob's record 6 without recomputing anything.
func tamperEdit(f *fixture, tp Tamperer) {
	f.history()
	r := f.chain("bob")[5]
	rec, err := audit.FromStore(&r)
	f.ok(err, "record 6")
	rec.Actor.ID = "someone else"
	r.Body, _ = rec.MarshalBinary()
	f.ok(tp.ReplaceAudit(f.ctx, r), "replace record 6")
	f.wantProblems(f.verify(testKeys(f)), wantProblem{audit.BreakHash.Problem(), "bob", 6,
		[]string{`identity "bob"`, "record 6", "hash mismatch"}})
}

// tamperChainGone deletes carol's whole chain and her head.
func tamperChainGone(f *fixture, tp Tamperer) {
	f.history()
	f.ok(tp.DeleteAudit(f.ctx, "carol", 1, end), "delete carol's chain")
	f.ok(tp.SetAuditHead(f.ctx, store.AuditHead{IdentityID: "carol"}), "delete carol's head")
	f.wantProblems(f.verify(testKeys(f)), wantProblem{audit.ProblemChainGone, "carol", 12,
		[]string{`identity "carol"`, "no record is left", "checkpoint 3 sealed its record 12"}})
}

// tamperWindow: records appended after the newest checkpoint can be cut
// without notice (the documented window); once the next checkpoint seals
// them, they cannot.
func tamperWindow(f *fixture, tp Tamperer) {
	seal := f.history()
	f.ok(f.s.AppendAudit(f.ctx, event("bob", 50, f.now), event("bob", 51, f.now)), "AppendAudit")
	bob := f.chain("bob")
	rep := f.verify(testKeys(f))
	f.wantIntact(rep, "two unsealed records")
	if rep.Unsealed != 2 {
		f.t.Errorf("Unsealed = %d, want 2", rep.Unsealed)
	}
	f.ok(tp.DeleteAudit(f.ctx, "bob", 14, end), "delete record 14 of bob")
	f.ok(tp.SetAuditHead(f.ctx, store.AuditHead{IdentityID: "bob", Seq: 13, Hash: bob[12].Hash}), "set the head of bob")
	f.wantIntact(f.verify(testKeys(f)), "a record cut in the window")
	f.ok(f.s.AppendAudit(f.ctx, event("bob", 52, f.now)), "AppendAudit")
	cp, err := seal.Seal(f.ctx, 0)
	f.ok(err, "Seal")
	if cp == nil || cp.Seq != 4 {
		f.t.Fatalf("Seal = %+v", cp)
	}
	f.ok(tp.DeleteAudit(f.ctx, "bob", 14, end), "delete record 14 of bob again")
	f.ok(tp.SetAuditHead(f.ctx, store.AuditHead{IdentityID: "bob", Seq: 13, Hash: bob[12].Hash}), "set the head of bob")
	f.wantProblems(f.verify(testKeys(f)), wantProblem{audit.ProblemTruncated, "bob", 14,
		[]string{"checkpoint 4 sealed record 14"}})
}

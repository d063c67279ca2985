package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/authbench/authbench/server/audit"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store"
)

func event(identityID string, i int, at time.Time) domain.Event {
	return domain.Event{Type: domain.EventLoginFailed, IdentityID: identityID, AuthenticatorID: fmt.Sprint("a-", i),
		Actor: sys, Details: map[string]string{"n": fmt.Sprint(i)}, At: at}
}

// chains groups records by identity, keeping their order.
func chains(recs []store.AuditRecord) map[string][]store.AuditRecord {
	out := map[string][]store.AuditRecord{}
	for _, r := range recs {
		out[r.IdentityID] = append(out[r.IdentityID], r)
	}
	return out
}

func seqs(recs []store.AuditRecord) []uint64 {
	var out []uint64
	for _, r := range recs {
		out = append(out, r.Seq)
	}
	return out
}

func testAuditAppendList(f *fixture) {
	heads, err := f.s.AuditHeads(f.ctx)
	f.ok(err, "AuditHeads of an empty log")
	if len(heads) != 0 {
		f.t.Errorf("AuditHeads of an empty log: %+v", heads)
	}
	f.ok(f.s.AppendAudit(f.ctx), "AppendAudit()")
	var all []domain.Event
	for i := range 25 {
		id := "id-a"
		switch {
		case i%3 == 0:
			id = "id-b"
		case i%7 == 0:
			id = "" // an event of no identity: a chain of its own
		}
		all = append(all, event(id, i, f.now.Add(time.Duration(i)*time.Millisecond)))
	}
	f.ok(f.s.AppendAudit(f.ctx, all[:10]...), "AppendAudit")
	for _, e := range all[10:] {
		f.ok(f.s.AppendAudit(f.ctx, e), "AppendAudit")
	}
	recs := f.audit() // each chain from 1, linked
	if len(recs) != len(all) {
		f.t.Fatalf("%d records, want %d", len(recs), len(all))
	}
	// Chain by chain in byte order of the identity, each in the order
	// the events were appended.
	if ids := slices.CompactFunc(slices.Clone(recs), func(a, b store.AuditRecord) bool { return a.IdentityID == b.IdentityID }); len(ids) != 3 ||
		ids[0].IdentityID != "" || ids[1].IdentityID != "id-a" || ids[2].IdentityID != "id-b" {
		f.t.Errorf("AuditRecords does not yield the chains \"\", id-a, id-b in that order")
	}
	byChain := chains(recs)
	for id, rs := range byChain {
		var want []domain.Event
		for _, e := range all {
			if e.IdentityID == id {
				want = append(want, e)
			}
		}
		if len(rs) != len(want) {
			f.t.Fatalf("chain of %q has %d records, want %d", id, len(rs), len(want))
		}
		for i, r := range rs {
			if e := want[i]; r.Type != e.Type || r.AuthenticatorID != e.AuthenticatorID || !r.At.Equal(e.At) {
				f.t.Errorf("chain of %q, record %d = %+v, want event %+v", id, r.Seq, r, e)
			}
		}
	}
	heads, err = f.s.AuditHeads(f.ctx)
	f.ok(err, "AuditHeads")
	var want []store.AuditHead
	for _, id := range []string{"", "id-a", "id-b"} {
		last := byChain[id][len(byChain[id])-1]
		want = append(want, store.AuditHead{IdentityID: id, Seq: last.Seq, Hash: last.Hash})
	}
	if !reflect.DeepEqual(heads, want) {
		f.t.Errorf("AuditHeads = %+v, want %+v", heads, want)
	}
	// Stopping early.
	n := 0
	for range f.s.AuditRecords(f.ctx) {
		n++
		if n == 3 {
			break
		}
	}
	// Paging through one identity's chain.
	var pages [][]uint64
	after := uint64(0)
	for {
		page, err := f.s.ListAudit(f.ctx, "id-b", after, 4)
		f.ok(err, "ListAudit")
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if r.IdentityID != "id-b" {
				f.t.Errorf("ListAudit(id-b) returned a record of %q", r.IdentityID)
			}
		}
		pages = append(pages, seqs(page))
		after = page[len(page)-1].Seq
	}
	if want := [][]uint64{{1, 2, 3, 4}, {5, 6, 7, 8}, {9}}; !reflect.DeepEqual(pages, want) {
		f.t.Errorf("ListAudit pages %v, want %v", pages, want)
	}
	page, err := f.s.ListAudit(f.ctx, "id-a", 0, 0)
	f.ok(err, "ListAudit(limit 0)")
	if len(page) != len(byChain["id-a"]) {
		f.t.Errorf("ListAudit(id-a, limit 0) returned %d, want all %d", len(page), len(byChain["id-a"]))
	}
	page, err = f.s.ListAudit(f.ctx, "id-none", 0, 10)
	f.ok(err, "ListAudit of an identity without records")
	if len(page) != 0 {
		f.t.Errorf("ListAudit of an identity without records: %d", len(page))
	}
}

func testAuditConcurrent(f *fixture) {
	// 64 goroutines append 1 to 3 events at once: 48 each to an identity
	// of its own, 16 to one shared identity, some of them to both. Every
	// chain must stay gap-free and linked, and each append's events of
	// one chain consecutive in it.
	const goroutines = 64
	want := map[string]int{}
	batches := make([][]domain.Event, goroutines)
	for g := range goroutines {
		own := fmt.Sprint("id-", g)
		for j := range 1 + g%3 {
			id := own
			if g%4 == 0 && (g%8 == 0 || j == 0) {
				id = "shared"
			}
			e := event(id, j, f.now)
			e.Details["g"] = fmt.Sprint(g)
			batches[g] = append(batches[g], e)
			want[id]++
		}
	}
	errs := race(goroutines, func(g int) error { return f.s.AppendAudit(f.ctx, batches[g]...) })
	for g, err := range errs {
		if err != nil {
			f.t.Errorf("goroutine %d: AppendAudit: %v", g, err)
		}
	}
	byChain := chains(f.audit()) // checks seq 1..n and the links of every chain
	for id, n := range want {
		if len(byChain[id]) != n {
			f.t.Errorf("chain of %q has %d records, want %d", id, len(byChain[id]), n)
		}
	}
	if len(byChain) != len(want) {
		f.t.Errorf("%d chains, want %d", len(byChain), len(want))
	}
	// The events of one append to "shared" are consecutive.
	rs := byChain["shared"]
	for i := 0; i < len(rs); {
		run := 1
		gi := goroutineOf(f, rs[i])
		for i+run < len(rs) && goroutineOf(f, rs[i+run]) == gi {
			run++
		}
		n := 0
		for _, e := range batches[gi] {
			if e.IdentityID == "shared" {
				n++
			}
		}
		if run != n {
			f.t.Errorf("the %d events goroutine %d appended to the shared chain are not consecutive (a run of %d)", n, gi, run)
		}
		i += run
	}
}

// goroutineOf returns the goroutine that appended r (its "g" detail).
func goroutineOf(f *fixture, r store.AuditRecord) int {
	f.t.Helper()
	rec, err := audit.FromStore(&r)
	f.ok(err, "record %d", r.Seq)
	var g int
	fmt.Sscan(rec.Details["g"], &g)
	return g
}

func testAuditFailedAppend(f *fixture) {
	f.ok(f.s.AppendAudit(f.ctx, event("id-1", 0, f.now)), "AppendAudit")
	bad := event("id-1", 1, f.now)
	bad.Reason = FailReason
	err := f.s.AppendAudit(f.ctx, event("id-1", 2, f.now), event("id-2", 2, f.now), bad, event("id-3", 3, f.now))
	if !errors.Is(err, ErrInjected) {
		f.t.Errorf("AppendAudit with a failing event: %v, want %v", err, ErrInjected)
	}
	if n := f.auditLen(); n != 1 {
		f.t.Errorf("a failed append left records: %d, want 1", n)
	}
	heads, err := f.s.AuditHeads(f.ctx)
	f.ok(err, "AuditHeads")
	if len(heads) != 1 || heads[0].IdentityID != "id-1" || heads[0].Seq != 1 {
		f.t.Errorf("a failed append moved the heads: %+v", heads)
	}
	// A failed identity creation is not audited either.
	c, _ := domain.NewIdentity("id-9", sys, f.now)
	c.Events[0].Reason = FailReason
	if err := f.s.CreateIdentity(f.ctx, c); !errors.Is(err, ErrInjected) {
		f.t.Errorf("CreateIdentity with a failing event: %v", err)
	}
	if _, err := f.s.Identity(f.ctx, "id-9"); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("an identity whose audit failed was stored: %v", err)
	}
	// The chain goes on from its head.
	f.ok(f.s.AppendAudit(f.ctx, event("id-1", 4, f.now)), "AppendAudit after the failure")
	if recs := f.audit(); len(recs) != 2 || recs[1].Seq != 2 {
		f.t.Errorf("after the failure: %v", seqs(recs))
	}
}

func testAuditCheckpoints(f *fixture) {
	last, err := f.s.LastAuditCheckpoint(f.ctx)
	f.ok(err, "LastAuditCheckpoint of none")
	if last.Seq != 0 {
		f.t.Errorf("LastAuditCheckpoint of none: %+v", last)
	}
	var put []store.AuditCheckpoint
	for i := range 20 {
		c := store.AuditCheckpoint{Seq: uint64(i + 1), At: f.now.Add(time.Duration(i) * time.Minute), KeyID: "k1",
			Body: bytes.Repeat([]byte{byte(i)}, 100+i), MAC: []byte(fmt.Sprint("mac-", i))}
		f.ok(f.s.PutAuditCheckpoint(f.ctx, c), "PutAuditCheckpoint %d", c.Seq)
		put = append(put, c)
	}
	dup := put[4]
	dup.Body = []byte("another")
	f.wantErr(f.s.PutAuditCheckpoint(f.ctx, dup), store.ErrDuplicate, "PutAuditCheckpoint of a taken seq")
	for _, bad := range []store.AuditCheckpoint{{Body: []byte{1}, MAC: []byte{1}}, {Seq: 30, MAC: []byte{1}}, {Seq: 30, Body: []byte{1}}, {Seq: 1 << 63, Body: []byte{1}, MAC: []byte{1}}} {
		f.wantErr(f.s.PutAuditCheckpoint(f.ctx, bad), store.ErrInvalid, "PutAuditCheckpoint(%d, %d bytes, %d bytes of MAC)", bad.Seq, len(bad.Body), len(bad.MAC))
	}
	var got []store.AuditCheckpoint
	for c, err := range f.s.AuditCheckpoints(f.ctx, 3) {
		f.ok(err, "AuditCheckpoints(3)")
		got = append(got, c)
	}
	if len(got) != 18 {
		f.t.Fatalf("AuditCheckpoints(3) yielded %d, want 18", len(got))
	}
	for i, c := range got {
		w := put[i+2]
		if c.Seq != w.Seq || !c.At.Equal(w.At) || c.KeyID != w.KeyID || !bytes.Equal(c.Body, w.Body) || !bytes.Equal(c.MAC, w.MAC) {
			f.t.Errorf("checkpoint %d = %+v, want %+v", w.Seq, c, w)
		}
	}
	last, err = f.s.LastAuditCheckpoint(f.ctx)
	f.ok(err, "LastAuditCheckpoint")
	if last.Seq != 20 || !bytes.Equal(last.Body, put[19].Body) {
		f.t.Errorf("LastAuditCheckpoint = %d, want 20", last.Seq)
	}
	n := 0
	for range f.s.AuditCheckpoints(f.ctx, 1) {
		if n++; n == 2 {
			break
		}
	}
}

// testKeys is the keyring the suite MACs checkpoints with.
func testKeys(f *fixture) *secrets.Keyring {
	f.t.Helper()
	k, err := secrets.NewKeyring("k1", bytes.Repeat([]byte{0x5c}, secrets.KeySize))
	f.ok(err, "NewKeyring")
	return k
}

// verify runs audit.VerifyLog and returns its report.
func (f *fixture) verify(keys audit.Keyring) *audit.Report {
	f.t.Helper()
	rep, err := audit.VerifyLog(f.ctx, f.s, keys)
	f.ok(err, "VerifyLog")
	return rep
}

func (f *fixture) wantIntact(rep *audit.Report, what string) {
	f.t.Helper()
	if !rep.OK() {
		f.t.Errorf("%s: VerifyLog found problems in a valid history:", what)
		for _, p := range rep.Problems {
			f.t.Errorf("  %s", p.Message)
		}
	}
}

// testAuditSeal: the server's Sealer on the store: checkpoints list the
// chains that moved, a valid history verifies, and what was appended
// after the newest checkpoint is counted as unsealed.
func testAuditSeal(f *fixture) {
	keys := testKeys(f)
	seal := &audit.Sealer{Log: f.s, Keys: keys, Now: func() time.Time { return f.now }}
	cp, err := seal.Seal(f.ctx, 0)
	f.ok(err, "Seal of an empty log")
	if cp == nil || cp.Seq != 1 || !cp.Full || cp.Chains != 0 {
		f.t.Fatalf("Seal of an empty log = %+v, want a full checkpoint 1 of no chain", cp)
	}
	f.wantIntact(f.verify(keys), "empty log")
	for i := range 9 {
		f.ok(f.s.AppendAudit(f.ctx, event([]string{"alice", "bob", "carol"}[i%3], i, f.now)), "AppendAudit")
	}
	cp, err = seal.Seal(f.ctx, 0)
	f.ok(err, "Seal")
	if cp == nil || cp.Seq != 2 || cp.Full || cp.Chains != 3 || len(cp.Heads) != 3 {
		f.t.Fatalf("Seal = %+v, want checkpoint 2 listing 3 new chains", cp)
	}
	if cp, err := seal.Seal(f.ctx, 0); err != nil || cp != nil {
		f.t.Fatalf("Seal with nothing new = %+v, %v, want nil", cp, err)
	}
	f.ok(f.s.AppendAudit(f.ctx, event("bob", 10, f.now), event("", 11, f.now)), "AppendAudit")
	cp, err = seal.Seal(f.ctx, time.Hour)
	f.ok(err, "Seal with a minimum age")
	if cp != nil {
		f.t.Fatalf("Seal(an hour) right after a checkpoint = %+v, want nil", cp)
	}
	f.now = f.now.Add(2 * time.Hour)
	cp, err = seal.Seal(f.ctx, time.Hour)
	f.ok(err, "Seal")
	if cp == nil || cp.Seq != 3 || cp.Chains != 4 || len(cp.Heads) != 2 || cp.Heads[0].Chain != "" || cp.Heads[1].Chain != "bob" || cp.Heads[1].Seq != 4 {
		f.t.Fatalf("Seal = %+v, want checkpoint 3 listing the chains of no identity and of bob", cp)
	}
	rep := f.verify(keys)
	f.wantIntact(rep, "sealed log")
	if rep.Records != 11 || rep.Chains != 4 || rep.Checkpoints != 3 || rep.Unsealed != 0 || rep.Newest == nil || rep.Newest.Seq != 3 {
		f.t.Errorf("VerifyLog = %+v", rep)
	}
	// Another server process (or replica) starts: its first checkpoint
	// lists every chain, and follows the others'.
	f.ok(f.s.AppendAudit(f.ctx, event("dave", 12, f.now), event("alice", 13, f.now)), "AppendAudit")
	other := &audit.Sealer{Log: f.s, Keys: keys, Now: func() time.Time { return f.now }}
	cp, err = other.Seal(f.ctx, 0)
	f.ok(err, "Seal of a new Sealer")
	if cp == nil || cp.Seq != 4 || !cp.Full || len(cp.Heads) != 5 {
		f.t.Fatalf("Seal of a new Sealer = %+v, want a full checkpoint 4 of 5 chains", cp)
	}
	f.ok(f.s.AppendAudit(f.ctx, event("carol", 14, f.now)), "AppendAudit")
	cp, err = seal.Seal(f.ctx, 0) // catches up with checkpoint 4
	f.ok(err, "Seal after another's")
	if cp == nil || cp.Seq != 5 || cp.Full || len(cp.Heads) != 1 || cp.Heads[0].Chain != "carol" {
		f.t.Fatalf("Seal after another's = %+v, want checkpoint 5 listing carol", cp)
	}
	// A third starts when nothing moved: it writes nothing, and then
	// lists only what moves.
	third := &audit.Sealer{Log: f.s, Keys: keys, Now: func() time.Time { return f.now }}
	if cp, err := third.Seal(f.ctx, 0); err != nil || cp != nil {
		f.t.Fatalf("Seal of a new Sealer with nothing new = %+v, %v, want nil", cp, err)
	}
	f.ok(f.s.AppendAudit(f.ctx, event("dave", 15, f.now)), "AppendAudit")
	cp, err = third.Seal(f.ctx, 0)
	f.ok(err, "Seal")
	if cp == nil || cp.Seq != 6 || cp.Full || len(cp.Heads) != 1 || cp.Heads[0].Chain != "dave" {
		f.t.Fatalf("Seal = %+v, want checkpoint 6 listing dave", cp)
	}
	f.ok(f.s.AppendAudit(f.ctx, event("alice", 16, f.now), event("erin", 17, f.now)), "AppendAudit")
	rep = f.verify(keys)
	f.wantIntact(rep, "log with records after the newest checkpoint")
	if rep.Unsealed != 2 || rep.Newest.Seq != 6 {
		f.t.Errorf("VerifyLog: %d unsealed after checkpoint %d, want 2 after 6", rep.Unsealed, rep.Newest.Seq)
	}
	// Without the right key, every checkpoint is suspect.
	wrong, _ := secrets.NewKeyring("k1", bytes.Repeat([]byte{0x36}, secrets.KeySize))
	if rep := f.verify(wrong); rep.OK() || rep.Problems[0].Kind != audit.ProblemCheckpointMAC {
		f.t.Errorf("VerifyLog with another key: %+v", rep.Problems)
	}
}

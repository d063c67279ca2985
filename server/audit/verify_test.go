package audit_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"iter"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/server/audit"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/sqlite"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newKeys(t *testing.T, seed byte) *secrets.Keyring {
	t.Helper()
	k, err := secrets.NewKeyring("k1", bytes.Repeat([]byte{seed}, secrets.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ev(id string, i int) domain.Event {
	return domain.Event{Type: domain.EventLoginFailed, IdentityID: id, AuthenticatorID: "pw-1", Actor: domain.System("test"),
		Details: map[string]string{"n": fmt.Sprint(i)}, At: t0.Add(time.Duration(i) * time.Second)}
}

// sealedStore returns an in-memory store with three checkpoints: after
// each, alice and bob have 2 more records.
func sealedStore(t *testing.T, keys *secrets.Keyring) (*sqlite.Store, *audit.Sealer) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, "", sqlite.Options{Chain: audit.Chain{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	seal := &audit.Sealer{Log: s, Keys: keys, Now: func() time.Time { return t0 }}
	for round := range 3 {
		for i := range 2 {
			if err := s.AppendAudit(ctx, ev("alice", round*2+i), ev("bob", round*2+i)); err != nil {
				t.Fatal(err)
			}
		}
		if cp, err := seal.Seal(ctx, 0); err != nil || cp == nil {
			t.Fatalf("Seal = %v, %v", cp, err)
		}
	}
	return s, seal
}

// alteredLog is a store whose checkpoints are read through edit, and
// whose records skip those drop says.
type alteredLog struct {
	audit.Log
	edit func([]store.AuditCheckpoint) []store.AuditCheckpoint
	drop func(store.AuditRecord) bool
}

func (a alteredLog) AuditRecords(ctx context.Context) iter.Seq2[store.AuditRecord, error] {
	return func(yield func(store.AuditRecord, error) bool) {
		for r, err := range a.Log.AuditRecords(ctx) {
			if err == nil && a.drop != nil && a.drop(r) {
				continue
			}
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}

func (a alteredLog) AuditCheckpoints(ctx context.Context, from uint64) iter.Seq2[store.AuditCheckpoint, error] {
	var cs []store.AuditCheckpoint
	for c, err := range a.Log.AuditCheckpoints(ctx, from) {
		if err != nil {
			return func(yield func(store.AuditCheckpoint, error) bool) { yield(c, err) }
		}
		cs = append(cs, c)
	}
	cs = a.edit(cs)
	return func(yield func(store.AuditCheckpoint, error) bool) {
		for _, c := range cs {
			if !yield(c, nil) {
				return
			}
		}
	}
}

// remac returns c with its body changed by f and MACed again under keys,
// as someone holding the master key (or a broken server) would write it.
func remac(t *testing.T, keys *secrets.Keyring, c store.AuditCheckpoint, f func(*audit.Checkpoint)) store.AuditCheckpoint {
	t.Helper()
	cp, err := audit.ParseCheckpoint(c.Body)
	if err != nil {
		t.Fatal(err)
	}
	f(cp)
	c.Body, _ = cp.MarshalBinary()
	if c.MAC, err = keys.MAC(cp.KeyID, audit.MACPurpose, c.Body); err != nil {
		t.Fatal(err)
	}
	c.KeyID, c.At = cp.KeyID, cp.Time
	return c
}

// TestVerifyCheckpoints: what VerifyLog says about checkpoints that were
// forged, removed, replaced or MACed under a key it does not have.
func TestVerifyCheckpoints(t *testing.T) {
	keys := newKeys(t, 1)
	s, _ := sealedStore(t, keys)
	ctx := context.Background()
	rep, err := audit.VerifyLog(ctx, s, keys)
	if err != nil || !rep.OK() || rep.Checkpoints != 3 || rep.Records != 12 || rep.Chains != 2 || rep.Unsealed != 0 {
		t.Fatalf("VerifyLog of the untouched log = %+v, %v", rep, err)
	}
	for _, tc := range []struct {
		name string
		keys *secrets.Keyring
		edit func([]store.AuditCheckpoint) []store.AuditCheckpoint
		kind audit.ProblemKind
		says string
	}{
		{"forged heads", keys, func(cs []store.AuditCheckpoint) []store.AuditCheckpoint {
			cp, _ := audit.ParseCheckpoint(cs[2].Body)
			cp.Heads[0].Seq-- // the MAC is not made again: no key
			cs[2].Body, _ = cp.MarshalBinary()
			return cs
		}, audit.ProblemCheckpointMAC, "checkpoint 3: the MAC does not match (master key k1): forged or altered"},
		{"middle removed", keys, func(cs []store.AuditCheckpoint) []store.AuditCheckpoint { return append(cs[:1], cs[2]) },
			audit.ProblemCheckpointMissing, "checkpoint 3: checkpoint 2 is missing"},
		{"first removed", keys, func(cs []store.AuditCheckpoint) []store.AuditCheckpoint { return cs[1:] },
			audit.ProblemCheckpointMissing, "checkpoint 2: checkpoint 1 is missing"},
		{"replaced", keys, func(cs []store.AuditCheckpoint) []store.AuditCheckpoint {
			cs[1] = remac(t, keys, cs[1], func(c *audit.Checkpoint) { c.Time = c.Time.Add(time.Second) })
			return cs
		}, audit.ProblemCheckpointLink, "checkpoint 3: does not follow checkpoint 2"},
		{"first not genesis", keys, func(cs []store.AuditCheckpoint) []store.AuditCheckpoint {
			cs[0] = remac(t, keys, cs[0], func(c *audit.Checkpoint) { c.Prev[0] = 1 })
			return cs
		}, audit.ProblemCheckpointLink, "checkpoint 1: prev is not the genesis value"},
		{"sealing less than before", keys, func(cs []store.AuditCheckpoint) []store.AuditCheckpoint {
			cs[2] = remac(t, keys, cs[2], func(c *audit.Checkpoint) {
				c.Heads[0].Seq = 3 // alice: 6 -> 3, below checkpoint 2's 4
			})
			return cs
		}, audit.ProblemCheckpointRegress, "sealed at record 3, below record 4 sealed earlier"},
		{"root", keys, func(cs []store.AuditCheckpoint) []store.AuditCheckpoint {
			cs[2] = remac(t, keys, cs[2], func(c *audit.Checkpoint) { c.Root[0] ^= 1 })
			return cs
		}, audit.ProblemCheckpointRoot, "checkpoint 3: the 2 chain heads replayed up to it do not hash to its root"},
		{"other key", newKeys(t, 2), nil, audit.ProblemCheckpointMAC, "the MAC does not match"},
		{"unknown key", func() *secrets.Keyring {
			k, _ := secrets.NewKeyring("k2", bytes.Repeat([]byte{1}, secrets.KeySize))
			return k
		}(), nil, audit.ProblemCheckpointMAC, `its MAC key (master key k1) is not in the keyring`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log audit.Log = s
			if tc.edit != nil {
				log = alteredLog{Log: s, edit: tc.edit}
			}
			rep, err := audit.VerifyLog(ctx, log, tc.keys)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatal("VerifyLog found nothing")
			}
			p := rep.Problems[0]
			if p.Kind != tc.kind || !strings.Contains(p.Message, tc.says) {
				for _, p := range rep.Problems {
					t.Logf("problem: %s %s", p.Kind, p.Message)
				}
				t.Fatalf("first problem %s %q, want %s saying %q", p.Kind, p.Message, tc.kind, tc.says)
			}
		})
	}
}

// TestVerifyCutBehindForgery: bob's newest records are cut and the
// checkpoint before the one that sealed them is forged: the last
// checkpoint's own MAC still holds, so what it sealed still counts.
func TestVerifyCutBehindForgery(t *testing.T) {
	keys := newKeys(t, 1)
	s, _ := sealedStore(t, keys)
	log := alteredLog{Log: s,
		edit: func(cs []store.AuditCheckpoint) []store.AuditCheckpoint {
			cp, _ := audit.ParseCheckpoint(cs[1].Body)
			cp.Heads = cp.Heads[:1]
			cs[1].Body, _ = cp.MarshalBinary()
			return cs
		},
		drop: func(r store.AuditRecord) bool { return r.IdentityID == "bob" && r.Seq > 4 },
	}
	rep, err := audit.VerifyLog(context.Background(), log, keys)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []audit.ProblemKind
	for _, p := range rep.Problems {
		t.Logf("problem: %s", p.Message)
		kinds = append(kinds, p.Kind)
	}
	want := []audit.ProblemKind{audit.ProblemCheckpointMAC, audit.ProblemCheckpointLink, audit.ProblemTruncated}
	if !slices.Equal(kinds, want) {
		t.Fatalf("problems %v, want %v", kinds, want)
	}
	if p := rep.Problems[2]; p.Chain != "bob" || p.Seq != 6 || p.Checkpoint != 3 {
		t.Fatalf("truncation reported as %+v", p)
	}
}

// recorder is an slog handler that keeps the messages of error records.
type recorder struct {
	slog.Handler
	errs *[]string
}

func (r recorder) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelError {
		*r.errs = append(*r.errs, rec.Message)
	}
	return nil
}

func (r recorder) Enabled(context.Context, slog.Level) bool { return true }

// TestSealerNotices: a chain cut between two checkpoints is logged by the
// server and sealed where it was, so verify reports it; checkpoints the
// server wrote that vanish leave a gap after its next one.
func TestSealerNotices(t *testing.T) {
	keys := newKeys(t, 1)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{Chain: audit.Chain{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := raw.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var errs []string
	seal := &audit.Sealer{Log: s, Keys: keys, Logger: slog.New(recorder{slog.DiscardHandler, &errs})}
	for i := range 4 {
		if err := s.AppendAudit(ctx, ev("alice", i), ev("bob", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := seal.Seal(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// Bob's records 3 and 4 are cut, which moves his head back (the
	// SQLite store takes it from his last record).
	bob, err := s.ListAudit(ctx, "bob", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	exec(`DROP TRIGGER audit_append_only_delete`)
	exec(`DELETE FROM audit WHERE identity_id = 'bob' AND seq > 2`)
	heads, err := s.AuditHeads(ctx)
	if err != nil || !slices.ContainsFunc(heads, func(h store.AuditHead) bool {
		return h.IdentityID == "bob" && h.Seq == 2 && bytes.Equal(h.Hash, bob[1].Hash)
	}) {
		t.Fatalf("AuditHeads after bob's records 3 and 4 were cut = %+v, %v; want bob's at record 2", heads, err)
	}
	if err := s.AppendAudit(ctx, ev("alice", 9)); err != nil {
		t.Fatal(err)
	}
	cp, err := seal.Seal(ctx, 0)
	if err != nil || cp == nil {
		t.Fatalf("Seal = %v, %v", cp, err)
	}
	if len(errs) != 1 || !strings.Contains(errs[0], "went back") {
		t.Fatalf("logged errors %q", errs)
	}
	if len(cp.Heads) != 1 || cp.Heads[0].Chain != "alice" {
		t.Fatalf("checkpoint 2 lists %+v, want alice only (bob stays sealed at 4)", cp.Heads)
	}
	rep, err := audit.VerifyLog(ctx, s, keys)
	if err != nil || len(rep.Problems) != 1 || rep.Problems[0].Kind != audit.ProblemTruncated || rep.Problems[0].Chain != "bob" {
		t.Fatalf("VerifyLog = %+v, %v", rep, err)
	}

	// Checkpoint 2 vanishes: the server numbers its next one 3.
	exec(`DROP TRIGGER audit_checkpoints_keep_delete`)
	exec(`DELETE FROM audit_checkpoints WHERE seq = 2`)
	if err := s.AppendAudit(ctx, ev("alice", 10)); err != nil {
		t.Fatal(err)
	}
	errs = nil
	cp, err = seal.Seal(ctx, 0)
	if err != nil || cp == nil || cp.Seq != 3 {
		t.Fatalf("Seal = %+v, %v, want checkpoint 3", cp, err)
	}
	if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, "checkpoints are missing") }) {
		t.Fatalf("logged errors %q", errs)
	}
	rep, err = audit.VerifyLog(ctx, s, keys)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []audit.ProblemKind
	for _, p := range rep.Problems {
		kinds = append(kinds, p.Kind)
	}
	if !slices.Contains(kinds, audit.ProblemCheckpointMissing) {
		t.Fatalf("VerifyLog after a checkpoint vanished: %+v", rep.Problems)
	}
}

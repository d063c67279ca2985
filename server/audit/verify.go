package audit

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/authbench/authbench/server/secrets"
)

// ProblemKind says what VerifyLog found wrong. The BreakKinds are problem
// kinds too: a chain that does not hold by itself.
type ProblemKind string

// The problems VerifyLog finds besides the breaks of a chain.
const (
	// ProblemMalformed: a stored record does not parse, or its columns
	// differ from its body.
	ProblemMalformed ProblemKind = "malformed"
	// ProblemTruncated: a chain ends before the record a checkpoint
	// sealed: its newest records were deleted.
	ProblemTruncated ProblemKind = "truncated"
	// ProblemRewritten: a record is not the one a checkpoint sealed: the
	// chain was altered and its later hashes recomputed.
	ProblemRewritten ProblemKind = "rewritten"
	// ProblemChainGone: a checkpoint sealed a chain of which no record is
	// left.
	ProblemChainGone ProblemKind = "chain_gone"
	// ProblemCheckpointMalformed: a stored checkpoint does not parse, or
	// its columns differ from its body.
	ProblemCheckpointMalformed ProblemKind = "checkpoint_malformed"
	// ProblemCheckpointMissing: checkpoint numbers are missing, repeated
	// or out of order.
	ProblemCheckpointMissing ProblemKind = "checkpoint_missing"
	// ProblemCheckpointLink: a checkpoint's Prev is not the hash of the
	// checkpoint before it: that one was altered or replaced.
	ProblemCheckpointLink ProblemKind = "checkpoint_link"
	// ProblemCheckpointMAC: a checkpoint's MAC does not match, or its key
	// is not in the keyring: it was forged or altered, or the key file is
	// not the server's.
	ProblemCheckpointMAC ProblemKind = "checkpoint_mac"
	// ProblemCheckpointRegress: a checkpoint seals a chain below (or at the
	// same seq with another hash than) an earlier checkpoint did, or omits
	// it: records were deleted or rewritten before it was written.
	ProblemCheckpointRegress ProblemKind = "checkpoint_regress"
	// ProblemCheckpointRoot: the heads replayed up to a checkpoint do not
	// hash to its Root.
	ProblemCheckpointRoot ProblemKind = "checkpoint_root"
)

// Problem is one thing VerifyLog found wrong.
type Problem struct {
	Kind ProblemKind `json:"kind"`
	// Chain and Seq name the record concerned: record Seq of the chain of
	// identity Chain ("" for events of no identity); with Legacy, record
	// Seq of the single chain of Version1 records. Seq is 0 when the
	// problem is a checkpoint's alone.
	Chain  string `json:"identity_id"`
	Legacy bool   `json:"legacy,omitempty"`
	Seq    uint64 `json:"seq"`
	// Checkpoint is the checkpoint concerned, 0 for none.
	Checkpoint uint64 `json:"checkpoint,omitempty"`
	// Message says what and where, for a person.
	Message string `json:"problem"`
}

// CheckpointInfo describes a checkpoint without its heads.
type CheckpointInfo struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	KeyID  string    `json:"key_id"`
	Chains uint64    `json:"chains"`
	Hash   Hash      `json:"hash"`
}

// MaxProblems bounds the problems a Report lists.
const MaxProblems = 100

// Report is the result of VerifyLog.
type Report struct {
	Records     int // records read
	Chains      int // chains read
	Legacy      int // Version1 records among them
	Checkpoints int // checkpoints read
	// Newest is the newest checkpoint, nil when there is none.
	Newest *CheckpointInfo
	// Unsealed counts the records after the newest checkpoint that seals
	// their chain (all of a chain no checkpoint seals yet): the window in
	// which records can be deleted or rewritten without VerifyLog noticing.
	Unsealed int
	// Problems are what is wrong, in the order found, at most MaxProblems;
	// More counts those left out.
	Problems []Problem
	More     int
}

// OK reports whether nothing was found wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// VerifyLog checks the whole audit log of a store: every chain from its
// genesis (Checker), the single chain of Version1 records that came before
// per-identity chains (LegacyChecker), and the checkpoints: numbered from
// 1 without gaps, each linked to the one before and MACed under a key of
// keys, none sealing less than an earlier one. Then every record a
// checkpoint sealed must still be there, with the hash it had: so deleting
// the newest records of a chain, or altering a record and recomputing the
// hashes after it, shows up as soon as a checkpoint sealed them. What was
// appended after the newest checkpoint is only as safe as its chain
// (Report.Unsealed).
//
// It returns an error only when the log cannot be read.
func VerifyLog(ctx context.Context, log Log, keys Keyring) (*Report, error) {
	v := &verifier{rep: &Report{}, keys: keys, cur: map[string]Head{}, sealed: map[string][]sealed{}}
	if err := v.checkpoints(ctx, log); err != nil {
		return nil, err
	}
	if err := v.records(ctx, log); err != nil {
		return nil, err
	}
	v.legacyChain()
	return v.rep, nil
}

// sealed is a chain head as checkpoint cp sealed it.
type sealed struct {
	cp   uint64
	seq  uint64
	hash Hash
}

type verifier struct {
	rep  *Report
	keys Keyring
	// cur is the heads replayed up to the checkpoint read last; sealed
	// the heads each checkpoint sealed, per chain, in checkpoint order;
	// unsure is set while cur misses a checkpoint that could not be
	// trusted (no root is checked until the next full one).
	cur    map[string]Head
	sealed map[string][]sealed
	unsure bool
	legacy []Record
}

func (v *verifier) problem(p Problem) {
	if len(v.rep.Problems) >= MaxProblems {
		v.rep.More++
		return
	}
	v.rep.Problems = append(v.rep.Problems, p)
}

func (v *verifier) checkpoints(ctx context.Context, log Log) error {
	expect, prev := uint64(1), Hash{}
	var last *Checkpoint
	for c, err := range log.AuditCheckpoints(ctx, 1) {
		if err != nil {
			return fmt.Errorf("audit: reading checkpoint %d: %w", expect, err)
		}
		v.rep.Checkpoints++
		hash := Hash(sha256.Sum256(c.Body))
		bad := func(kind ProblemKind, format string, args ...any) {
			v.problem(Problem{Kind: kind, Checkpoint: c.Seq, Message: fmt.Sprintf("checkpoint %d: ", c.Seq) + fmt.Sprintf(format, args...)})
		}
		switch {
		case c.Seq > expect && expect == c.Seq-1:
			bad(ProblemCheckpointMissing, "checkpoint %d is missing", expect)
		case c.Seq > expect:
			bad(ProblemCheckpointMissing, "checkpoints %d to %d are missing", expect, c.Seq-1)
		case c.Seq < expect:
			bad(ProblemCheckpointMissing, "repeated or out of order after checkpoint %d", expect-1)
		}
		cp, err := ParseCheckpoint(c.Body)
		switch {
		case err != nil:
			bad(ProblemCheckpointMalformed, "%v", err)
		case cp.Seq != c.Seq || cp.KeyID != c.KeyID || !cp.Time.Equal(c.At.Truncate(time.Microsecond)):
			bad(ProblemCheckpointMalformed, "the stored seq, key ID or time differ from the body's (seq %d, key %s)", cp.Seq, cp.KeyID)
		}
		if err != nil {
			v.unsure = true
			expect, prev = c.Seq+1, hash
			continue
		}
		if c.Seq != expect {
			v.unsure = true // the replayed heads miss what the missing ones sealed
		}
		if cp.Seq == expect && cp.Prev != prev {
			v.unsure = true
			if cp.Seq == 1 {
				bad(ProblemCheckpointLink, "prev is not the genesis value: checkpoints before it were removed")
			} else {
				bad(ProblemCheckpointLink, "does not follow checkpoint %d: that one was altered or replaced (or this one forged)", cp.Seq-1)
			}
		}
		// A checkpoint whose MAC checks was written by the server, whatever
		// happened to the ones around it: what it sealed counts.
		if err := v.keys.CheckMAC(cp.KeyID, MACPurpose, c.Body, c.MAC); err != nil {
			v.unsure = true
			if errors.Is(err, secrets.ErrUnknownKey) {
				bad(ProblemCheckpointMAC, "its MAC key (master key %s) is not in the keyring: %v", cp.KeyID, err)
			} else {
				bad(ProblemCheckpointMAC, "the MAC does not match (master key %s): forged or altered", cp.KeyID)
			}
		} else {
			v.apply(cp)
		}
		expect, prev = max(expect, c.Seq+1), hash
		last = cp
		v.rep.Newest = &CheckpointInfo{Seq: cp.Seq, Time: cp.Time, KeyID: cp.KeyID, Chains: cp.Chains, Hash: hash}
	}
	if last != nil && !last.Full {
		v.checkRoot(last)
	}
	for c := range v.sealed {
		slices.SortStableFunc(v.sealed[c], func(a, b sealed) int { return cmp.Compare(a.seq, b.seq) })
	}
	return nil
}

// apply replays a trusted checkpoint onto v.cur and records what it
// sealed, reporting a chain sealed below an earlier checkpoint.
func (v *verifier) apply(cp *Checkpoint) {
	regress := func(c string, seq uint64, format string, args ...any) {
		v.problem(Problem{Kind: ProblemCheckpointRegress, Chain: c, Seq: seq, Checkpoint: cp.Seq,
			Message: fmt.Sprintf("checkpoint %d, chain of %s: ", cp.Seq, ChainName(c)) + fmt.Sprintf(format, args...)})
	}
	if cp.Full {
		listed := make(map[string]bool, len(cp.Heads))
		for _, h := range cp.Heads {
			listed[h.Chain] = true
		}
		for c, old := range v.cur {
			if !listed[c] {
				regress(c, old.Seq, "not listed, though an earlier checkpoint sealed its record %d: the chain was deleted before this checkpoint", old.Seq)
			}
		}
	}
	for _, h := range cp.Heads {
		old, ok := v.cur[h.Chain]
		switch {
		case ok && h.Seq < old.Seq:
			regress(h.Chain, h.Seq, "sealed at record %d, below record %d sealed earlier: records were deleted before this checkpoint", h.Seq, old.Seq)
			continue // keep the higher seal: the records must still be there
		case ok && h.Seq == old.Seq && h.Hash != old.Hash:
			regress(h.Chain, h.Seq, "record %d sealed with another hash than earlier: the chain was rewritten before this checkpoint", h.Seq)
		case ok && h == old:
			continue
		}
		v.cur[h.Chain] = h
		v.sealed[h.Chain] = append(v.sealed[h.Chain], sealed{cp: cp.Seq, seq: h.Seq, hash: h.Hash})
	}
	if cp.Full {
		v.unsure = false
		v.checkRoot(cp)
	}
}

// checkRoot checks that the replayed heads hash to cp's root.
func (v *verifier) checkRoot(cp *Checkpoint) {
	if v.unsure {
		return
	}
	all := make([]Head, 0, len(v.cur))
	for _, h := range v.cur {
		all = append(all, h)
	}
	slices.SortFunc(all, func(a, b Head) int { return cmp.Compare(a.Chain, b.Chain) })
	if uint64(len(all)) != cp.Chains || MerkleRoot(all) != cp.Root {
		v.problem(Problem{Kind: ProblemCheckpointRoot, Checkpoint: cp.Seq, Message: fmt.Sprintf(
			"checkpoint %d: the %d chain heads replayed up to it do not hash to its root (%d chains)", cp.Seq, len(all), cp.Chains)})
	}
}

// chainState follows one chain through the records.
type chainState struct {
	id      string
	c       *Checker
	seals   []sealed
	next    int    // the first seal not yet met
	good    sealed // the last seal met that matched
	last    uint64 // the Seq of the last record
	rewrote bool   // a rewrite was reported
}

func (v *verifier) records(ctx context.Context, log Log) error {
	var ch *chainState
	seen := map[string]bool{}
	for r, err := range log.AuditRecords(ctx) {
		if err != nil {
			return fmt.Errorf("audit: reading record %d: %w", v.rep.Records, err)
		}
		v.rep.Records++
		if ch == nil || r.IdentityID != ch.id {
			v.finish(ch)
			if seen[r.IdentityID] {
				v.problem(Problem{Kind: BreakChain.Problem(), Chain: r.IdentityID, Seq: r.Seq,
					Message: fmt.Sprintf("chain of %s: its records do not come together in the store's order", ChainName(r.IdentityID))})
			}
			seen[r.IdentityID] = true
			v.rep.Chains++
			ch = &chainState{id: r.IdentityID, c: NewChecker(r.IdentityID), seals: v.sealed[r.IdentityID]}
			delete(v.sealed, r.IdentityID)
		}
		rec, err := FromStore(&r)
		if err != nil {
			v.problem(Problem{Kind: ProblemMalformed, Chain: r.IdentityID, Seq: r.Seq,
				Message: fmt.Sprintf("chain of %s, record %d: %v", ChainName(r.IdentityID), r.Seq, err)})
			if rec, err = ParseRecord(r.Body); err != nil {
				continue
			}
		}
		if rec.version() == Version1 {
			v.rep.Legacy++
			v.legacy = append(v.legacy, *rec)
		}
		if b := ch.c.Check(*rec); b != nil {
			v.problem(Problem{Kind: b.Kind.Problem(), Chain: ch.id, Seq: b.Seq, Message: b.Describe()})
		}
		v.meetSeals(ch, rec)
		ch.last = rec.Seq
	}
	v.finish(ch)
	for c, seals := range v.sealed {
		s := seals[len(seals)-1]
		v.problem(Problem{Kind: ProblemChainGone, Chain: c, Seq: s.seq, Checkpoint: s.cp, Message: fmt.Sprintf(
			"chain of %s: no record is left, but checkpoint %d sealed its record %d: the chain was deleted", ChainName(c), s.cp, s.seq)})
	}
	return nil
}

// Problem returns k as a ProblemKind.
func (k BreakKind) Problem() ProblemKind { return ProblemKind(k) }

// meetSeals compares rec with the seals of its chain at its seq.
func (v *verifier) meetSeals(ch *chainState, rec *Record) {
	for ch.next < len(ch.seals) && ch.seals[ch.next].seq <= rec.Seq {
		s := ch.seals[ch.next]
		ch.next++
		if s.seq != rec.Seq {
			continue // that record is missing: the Checker reports the gap
		}
		if s.hash == rec.Hash {
			ch.good = s
			continue
		}
		if ch.rewrote {
			continue
		}
		ch.rewrote = true
		from := "at or before it"
		if ch.good.cp != 0 {
			from = fmt.Sprintf("in records %d to %d (record %d still matches checkpoint %d)", ch.good.seq+1, s.seq, ch.good.seq, ch.good.cp)
		}
		v.problem(Problem{Kind: ProblemRewritten, Chain: ch.id, Seq: s.seq, Checkpoint: s.cp, Message: fmt.Sprintf(
			"chain of %s, record %d: not the record checkpoint %d sealed: the chain was altered and re-chained %s",
			ChainName(ch.id), s.seq, s.cp, from)})
	}
	if n := len(ch.seals); n == 0 || rec.Seq > ch.seals[n-1].seq {
		v.rep.Unsealed++
	}
}

// finish reports the seals beyond the last record of ch.
func (v *verifier) finish(ch *chainState) {
	if ch == nil || ch.next >= len(ch.seals) {
		return
	}
	s := ch.seals[len(ch.seals)-1]
	gone := fmt.Sprintf("records %d to %d were deleted", ch.last+1, s.seq)
	if s.seq == ch.last+1 {
		gone = fmt.Sprintf("record %d was deleted", s.seq)
	}
	v.problem(Problem{Kind: ProblemTruncated, Chain: ch.id, Seq: s.seq, Checkpoint: s.cp, Message: fmt.Sprintf(
		"chain of %s: ends at record %d, but checkpoint %d sealed record %d: %s",
		ChainName(ch.id), ch.last, s.cp, s.seq, gone)})
}

// legacyChain checks the Version1 records as the one chain they were.
func (v *verifier) legacyChain() {
	slices.SortFunc(v.legacy, func(a, b Record) int { return cmp.Compare(a.Seq, b.Seq) })
	c := LegacyChecker()
	for _, r := range v.legacy {
		// A record's own hash was checked with its identity's chain.
		if b := c.Check(r); b != nil && b.Kind != BreakHash {
			v.problem(Problem{Kind: b.Kind.Problem(), Chain: r.IdentityID, Legacy: true, Seq: r.Seq, Message: b.Describe()})
		}
	}
	v.legacy = nil
}

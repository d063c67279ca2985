package audit

import (
	"errors"
	"fmt"
	"iter"
	"strconv"
)

// ErrBroken: the chain is broken; a *Break says where and how.
var ErrBroken = errors.New("audit chain broken")

var _ error = (*Break)(nil)

// BreakKind says how a chain is broken.
type BreakKind string

// The kinds of break, in the order a Checker looks for them.
const (
	// BreakChain: the record belongs to another chain (another identity),
	// or it is a Version1 record after Version2 records of the chain.
	BreakChain BreakKind = "chain"
	// BreakSeq: the record's Seq is not one more than the previous
	// record's: records are missing, repeated or out of order (or a chain
	// does not start at 1).
	BreakSeq BreakKind = "seq"
	// BreakGenesis: the first record's PrevHash is not the genesis value
	// (or, after Resume, not the hash resumed from): records before it are
	// missing.
	BreakGenesis BreakKind = "genesis"
	// BreakPrevHash: the record's PrevHash is not the previous record's
	// Hash: a record was removed, inserted or rehashed before it.
	BreakPrevHash BreakKind = "prev_hash"
	// BreakHash: the record's Hash does not match its contents: the record
	// was altered after it was written.
	BreakHash BreakKind = "hash"
)

// Break is the first place where a chain does not hold. It unwraps to
// ErrBroken.
type Break struct {
	Kind BreakKind
	// Chain is the identity whose chain was checked ("" for the chain of
	// events of no identity); Legacy is set instead when the checker
	// checked the single chain of Version1 records (LegacyChecker).
	Chain   string
	Legacy  bool
	Index   int    // position of the record in what was checked, from 0
	Seq     uint64 // the record's Seq
	PrevSeq uint64 // the previous record's Seq (or the resumed one); 0 at genesis
	// Genesis is set when the record is the first one checked from
	// genesis (no previous record).
	Genesis bool
}

// ChainName names the chain of identity id in messages: `identity "id-1"`,
// or "events of no identity" for "".
func ChainName(id string) string {
	if id == "" {
		return "events of no identity"
	}
	return "identity " + strconv.Quote(id)
}

// Error says what is wrong with which record of which chain, for example
// `audit: chain of identity "id-1", record 17: prev_hash does not match
// the hash of record 16`.
func (b *Break) Error() string { return "audit: " + b.Describe() }

// Describe is Error without the package's prefix, for a report.
func (b *Break) Describe() string {
	where := "chain of " + ChainName(b.Chain)
	if b.Legacy {
		where = "chain of version 1 records"
	}
	at := fmt.Sprintf("%s, record %d: ", where, b.Seq)
	switch b.Kind {
	case BreakChain:
		return at + "does not belong here (another identity's record, or a version 1 record after version 2 ones)"
	case BreakSeq:
		switch {
		case b.Seq == 0:
			return at + "seq 0 is no place in a chain"
		case b.Genesis:
			return at + "the chain starts here, not at record 1: records before it missing"
		case b.Seq == b.PrevSeq+2:
			return at + fmt.Sprintf("follows record %d: record %d missing", b.PrevSeq, b.PrevSeq+1)
		case b.Seq > b.PrevSeq:
			return at + fmt.Sprintf("follows record %d: records %d to %d missing", b.PrevSeq, b.PrevSeq+1, b.Seq-1)
		}
		return at + fmt.Sprintf("follows record %d: records out of order or repeated", b.PrevSeq)
	case BreakGenesis:
		if b.Genesis {
			return at + "prev_hash is not the genesis value (records before it missing?)"
		}
		return at + fmt.Sprintf("prev_hash does not match the hash of record %d resumed from", b.PrevSeq)
	case BreakPrevHash:
		return at + fmt.Sprintf("prev_hash does not match the hash of record %d", b.PrevSeq)
	case BreakHash:
		return at + "hash mismatch: contents altered"
	}
	return at + ErrBroken.Error()
}

// Unwrap returns ErrBroken.
func (b *Break) Unwrap() error { return ErrBroken }

// Checker checks one chain a record at a time, in order. The zero Checker
// expects the first record of an identity's chain: Seq 1 and PrevHash the
// genesis value, then each record of the same identity following the one
// before.
//
// A chain that existed before per-identity chains starts with the
// identity's Version1 records: the Checker checks their hashes and that
// their Seqs increase (their links run through other identities' records:
// LegacyChecker checks those), and then the first Version2 record must
// follow the last Version1 record (Seq + 1, PrevHash its Hash).
type Checker struct {
	legacy  bool // LegacyChecker
	named   bool // NewChecker: chain is set
	chain   string
	started bool // a previous record (or a resume point) is known
	resumed bool // and it came from Resume
	sawV2   bool
	n       int
	seq     uint64
	hash    Hash
}

// NewChecker returns a Checker for the chain of identity chain ("" for
// events of no identity): a record of another identity breaks it
// (BreakChain). The zero Checker takes the identity of the first record.
func NewChecker(chain string) *Checker { return &Checker{chain: chain, named: true} }

// LegacyChecker returns a Checker for the single chain the log kept before
// per-identity chains: Version1 records of every identity, in Seq order,
// Seq from 1 without gaps, each PrevHash the Hash of the record before.
func LegacyChecker() *Checker { return &Checker{legacy: true} }

// Resume returns a Checker that expects the record after the one with
// sequence number seq and hash hash in the chain of identity chain, such
// as a published head.
func Resume(chain string, seq uint64, hash Hash) *Checker {
	return &Checker{chain: chain, named: true, started: true, resumed: true, sawV2: true, seq: seq, hash: hash}
}

// Check checks r against the record before it and against its own hash,
// and returns the first problem found (in the order of the BreakKind
// constants), or nil. Either way r becomes the previous record for the
// next call, so a caller that goes on after a break sees each later
// problem once.
func (c *Checker) Check(r Record) *Break {
	if !c.started && !c.legacy && !c.named {
		c.chain = r.IdentityID
	}
	b := &Break{Kind: c.kind(&r), Chain: c.chain, Legacy: c.legacy, Index: c.n, Seq: r.Seq, PrevSeq: c.seq, Genesis: !c.started}
	if b.Kind == "" {
		b = nil
	}
	c.started, c.n, c.seq, c.hash = true, c.n+1, r.Seq, r.Hash
	if r.version() != Version1 {
		c.sawV2 = true
	}
	return b
}

// kind returns the first problem of r after the record before it, or "".
func (c *Checker) kind(r *Record) BreakKind {
	v1 := r.version() == Version1
	linked := c.legacy || !v1 // v1 records link across identities
	switch {
	case !c.legacy && (r.IdentityID != c.chain || v1 && c.sawV2):
		return BreakChain
	case c.started && linked && r.Seq != c.seq+1,
		c.started && !linked && r.Seq <= c.seq,
		!c.started && !c.legacy && !v1 && r.Seq != 1,
		c.legacy && !c.started && r.Seq != 1:
		return BreakSeq
	case !c.started && linked && !r.PrevHash.IsZero(),
		c.resumed && c.n == 0 && r.PrevHash != c.hash:
		return BreakGenesis
	case c.started && linked && r.PrevHash != c.hash:
		return BreakPrevHash
	case r.ComputeHash() != r.Hash:
		return BreakHash
	}
	return ""
}

// Count returns how many records were checked.
func (c *Checker) Count() int { return c.n }

// Head returns the sequence number and hash of the last record checked
// (or of the resume point); ok is false when there is none.
func (c *Checker) Head() (seq uint64, hash Hash, ok bool) {
	return c.seq, c.hash, c.started
}

// Verify checks one whole chain from genesis, in order, and returns the
// first break (nil when the chain holds). It stops at the first break or
// at the first error of records, which it returns wrapped.
func Verify(records iter.Seq2[Record, error]) (*Break, error) {
	var c Checker
	for r, err := range records {
		if err != nil {
			return nil, fmt.Errorf("audit: reading record %d: %w", c.Count(), err)
		}
		if b := c.Check(r); b != nil {
			return b, nil
		}
	}
	return nil, nil
}

// VerifySlice is Verify over records.
func VerifySlice(records []Record) *Break {
	b, _ := Verify(func(yield func(Record, error) bool) {
		for _, r := range records {
			if !yield(r, nil) {
				return
			}
		}
	})
	return b
}

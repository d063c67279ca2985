package audit

import (
	"errors"
	"fmt"
	"iter"
)

// ErrBroken: the chain is broken; a *Break says where and how.
var ErrBroken = errors.New("audit chain broken")

var _ error = (*Break)(nil)

// BreakKind says how a chain is broken.
type BreakKind string

// The kinds of break, in the order a Checker looks for them.
const (
	// BreakSeq: the record's Seq is not one more than the previous
	// record's: records are missing, repeated or out of order.
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
	Kind    BreakKind
	Index   int    // position of the record in what was checked, from 0
	Seq     uint64 // the record's Seq
	PrevSeq uint64 // the previous record's Seq (or the resumed one); 0 at genesis
	// Genesis is set when the record is the first one checked from
	// genesis (no previous record).
	Genesis bool
}

// Error says what is wrong with which record, for example "audit: record
// 17: prev_hash does not match the hash of record 16".
func (b *Break) Error() string {
	switch b.Kind {
	case BreakSeq:
		if b.Seq > b.PrevSeq {
			return fmt.Sprintf("audit: seq gap after %d: the next record is %d (records missing)", b.PrevSeq, b.Seq)
		}
		return fmt.Sprintf("audit: record %d follows record %d: records out of order or repeated", b.Seq, b.PrevSeq)
	case BreakGenesis:
		if b.Genesis {
			return fmt.Sprintf("audit: record %d: prev_hash is not the genesis value (records before it missing?)", b.Seq)
		}
		return fmt.Sprintf("audit: record %d: prev_hash does not match the hash of record %d resumed from", b.Seq, b.PrevSeq)
	case BreakPrevHash:
		return fmt.Sprintf("audit: record %d: prev_hash does not match the hash of record %d", b.Seq, b.PrevSeq)
	case BreakHash:
		return fmt.Sprintf("audit: record %d: hash mismatch: contents altered", b.Seq)
	}
	return fmt.Sprintf("audit: record %d: %s", b.Seq, ErrBroken)
}

// Unwrap returns ErrBroken.
func (b *Break) Unwrap() error { return ErrBroken }

// Checker checks a chain one record at a time, in order. The zero Checker
// expects the first record of a chain (PrevHash = genesis); Resume returns
// one that continues after a known record.
type Checker struct {
	started bool // a previous record (or a resume point) is known
	resumed bool // and it came from Resume
	n       int
	seq     uint64
	hash    Hash
}

// Resume returns a Checker that expects the record after the one with
// sequence number seq and hash hash, such as a published head.
func Resume(seq uint64, hash Hash) *Checker {
	return &Checker{started: true, resumed: true, seq: seq, hash: hash}
}

// Check checks r against the record before it and against its own hash,
// and returns the first problem found (in the order of the BreakKind
// constants), or nil. Either way r becomes the previous record for the
// next call, so a caller that goes on after a break sees each later
// problem once.
func (c *Checker) Check(r Record) *Break {
	b := &Break{Index: c.n, Seq: r.Seq, PrevSeq: c.seq, Genesis: !c.started}
	switch {
	case c.started && r.Seq != c.seq+1:
		b.Kind = BreakSeq
	case !c.started && !r.PrevHash.IsZero(), c.resumed && c.n == 0 && r.PrevHash != c.hash:
		b.Kind = BreakGenesis
	case c.started && r.PrevHash != c.hash:
		b.Kind = BreakPrevHash
	case r.ComputeHash() != r.Hash:
		b.Kind = BreakHash
	default:
		b = nil
	}
	c.started, c.n, c.seq, c.hash = true, c.n+1, r.Seq, r.Hash
	return b
}

// Count returns how many records were checked.
func (c *Checker) Count() int { return c.n }

// Head returns the sequence number and hash of the last record checked
// (or of the resume point); ok is false when there is none.
func (c *Checker) Head() (seq uint64, hash Hash, ok bool) {
	return c.seq, c.hash, c.started
}

// Verify checks a whole chain from genesis, in order, and returns the
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

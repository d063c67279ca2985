package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"time"
)

// MACPurpose is the purpose for which the checkpoint MAC key is derived
// from a master key (secrets.Keyring.MAC): the key serves checkpoints and
// nothing else.
const MACPurpose = "audit checkpoint"

// checkpointVersion is the first byte of a checkpoint's canonical form.
const checkpointVersion = 1

// maxKeyIDLen bounds the key ID of a checkpoint (secrets.MaxKeyIDLen).
const maxKeyIDLen = 64

// Head is the last record of one chain, as a checkpoint seals it.
type Head struct {
	Chain string `json:"chain"` // the identity ID; "" for events of no identity
	Seq   uint64 `json:"seq"`
	Hash  Hash   `json:"hash"`
}

// Checkpoint seals the heads of the audit chains at one moment (see the
// package doc, "Checkpoints"). Checkpoints are numbered from 1 without
// gaps, each carrying the hash of the one before, and each is MACed under
// a key derived from a master key (MACPurpose).
type Checkpoint struct {
	Seq  uint64    // 1, 2, 3, ...
	Time time.Time // when it was made, kept to the microsecond
	// Prev is the Hash of checkpoint Seq-1 (the genesis value, 32 zero
	// bytes, for checkpoint 1).
	Prev Hash
	// KeyID names the master key the MAC key was derived from.
	KeyID string
	// Full: Heads lists the head of every chain. Otherwise it lists only
	// the chains whose head moved since checkpoint Seq-1 (new chains
	// included); the others are where that checkpoint left them.
	Full bool
	// Chains is the number of chains after this checkpoint, and Root the
	// Merkle tree hash (MerkleRoot) of all their heads.
	Chains uint64
	Root   Hash
	// Heads are in strictly increasing byte order of Chain.
	Heads []Head
}

// MarshalBinary returns the canonical form of c, what its MAC and its Hash
// are computed over; it is also the stored form. All integers big-endian,
// strings as u32 length | bytes:
//
//	version u8 = 1
//	seq     u64
//	time    i64, Unix microseconds
//	prev    32 bytes
//	key_id  string
//	full    u8, 0 or 1
//	chains  u64
//	root    32 bytes
//	heads   u32 count | count × (chain string | seq u64 | hash 32 bytes)
//
// It never fails.
func (c *Checkpoint) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 128+len(c.Heads)*(4+8+32+16))
	b = append(b, checkpointVersion)
	b = binary.BigEndian.AppendUint64(b, c.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Time.UnixMicro()))
	b = append(b, c.Prev[:]...)
	b = appendString(b, c.KeyID)
	full := byte(0)
	if c.Full {
		full = 1
	}
	b = append(b, full)
	b = binary.BigEndian.AppendUint64(b, c.Chains)
	b = append(b, c.Root[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Heads)))
	for _, h := range c.Heads {
		b = appendString(b, h.Chain)
		b = binary.BigEndian.AppendUint64(b, h.Seq)
		b = append(b, h.Hash[:]...)
	}
	return b, nil
}

// Hash returns SHA-256 of c's canonical form: what checkpoint Seq+1
// carries as Prev.
func (c *Checkpoint) Hash() Hash {
	b, _ := c.MarshalBinary()
	return sha256.Sum256(b)
}

// ParseCheckpoint reads a checkpoint in its canonical form. It accepts
// exactly what MarshalBinary produces: version 1, a key ID of 1 to 64
// bytes, heads in strictly increasing chain order with Seq above 0, and
// for a full checkpoint as many heads as Chains. It does not check the MAC
// or the Root.
//
// It returns nil and an error wrapping ErrMalformed when b is not in that
// form.
func ParseCheckpoint(b []byte) (*Checkpoint, error) {
	bad := func(why string) (*Checkpoint, error) {
		return nil, fmt.Errorf("audit: %w: checkpoint: %s", ErrMalformed, why)
	}
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != checkpointVersion {
		return bad(fmt.Sprintf("unknown version %d", v))
	}
	var c Checkpoint
	c.Seq = d.uint64()
	c.Time = time.UnixMicro(int64(d.uint64())).UTC()
	copy(c.Prev[:], d.take(uint64(len(c.Prev))))
	c.KeyID = d.string()
	full := d.byte()
	c.Chains = d.uint64()
	copy(c.Root[:], d.take(uint64(len(c.Root))))
	n := d.uint32()
	switch {
	case d.err != nil:
		return bad(d.err.Error())
	case c.Seq == 0:
		return bad("seq 0")
	case c.KeyID == "" || len(c.KeyID) > maxKeyIDLen:
		return bad("a key ID has 1 to 64 bytes")
	case full > 1:
		return bad("full is 0 or 1")
	case uint64(n) > uint64(len(d.b))/(4+8+32):
		return bad("more heads than bytes")
	}
	c.Full = full == 1
	if n > 0 {
		c.Heads = make([]Head, n)
	}
	for i := range c.Heads {
		h := &c.Heads[i]
		h.Chain = d.string()
		h.Seq = d.uint64()
		copy(h.Hash[:], d.take(uint64(len(h.Hash))))
		switch {
		case d.err != nil:
			return bad(d.err.Error())
		case h.Seq == 0:
			return bad("a head at seq 0")
		case i > 0 && h.Chain <= c.Heads[i-1].Chain:
			return bad("heads out of order or repeated")
		}
	}
	switch {
	case len(d.b) != 0:
		return bad("bytes after the heads")
	case c.Full && c.Chains != uint64(len(c.Heads)):
		return bad(fmt.Sprintf("a full checkpoint of %d chains lists %d heads", c.Chains, len(c.Heads)))
	}
	return &c, nil
}

// MerkleRoot returns the Merkle tree hash of heads, which must be in
// strictly increasing byte order of Chain, as RFC 6962 §2.1 defines it
// over SHA-256: the hash of no leaves is SHA-256 of nothing, a leaf hashes
// as SHA-256(0x00 | leaf), and a node as SHA-256(0x01 | left | right),
// the left subtree holding the largest power of two of leaves smaller than
// their count. The leaf of a head is
//
//	chain string (u32 length | bytes) | seq u64 | hash 32 bytes
func MerkleRoot(heads []Head) Hash {
	if len(heads) == 0 {
		return sha256.Sum256(nil)
	}
	level := make([]Hash, len(heads))
	buf := make([]byte, 0, 128)
	for i, h := range heads {
		buf = append(buf[:0], 0x00)
		buf = appendString(buf, h.Chain)
		buf = binary.BigEndian.AppendUint64(buf, h.Seq)
		buf = append(buf, h.Hash[:]...)
		level[i] = sha256.Sum256(buf)
	}
	return merkle(level)
}

// merkle returns the tree hash over leaf hashes (RFC 6962 §2.1).
func merkle(leaves []Hash) Hash {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := 1 << (bits.Len(uint(len(leaves)-1)) - 1) // largest power of two < n
	l, r := merkle(leaves[:k]), merkle(leaves[k:])
	var b [1 + 2*sha256.Size]byte
	b[0] = 0x01
	copy(b[1:], l[:])
	copy(b[1+sha256.Size:], r[:])
	return sha256.Sum256(b[:])
}

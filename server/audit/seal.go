package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/authbench/authbench/server/store"
)

// Log is what Sealer and VerifyLog use of a store; store.Store has it.
type Log interface {
	store.AuditLog
	store.AuditCheckpoints
}

// Keyring makes and checks the MACs of checkpoints; *secrets.Keyring is
// one. MAC and CheckMAC derive a key for purpose (MACPurpose) from the
// master key id.
type Keyring interface {
	Current() string
	MAC(id, purpose string, msg []byte) ([]byte, error)
	CheckMAC(id, purpose string, msg, mac []byte) error
}

// Sealer writes the checkpoints of one server process (see the package
// doc, "Checkpoints"). It remembers the chain heads of the newest
// checkpoint it knows, so that a checkpoint lists only the chains that
// moved; the first checkpoint after the process starts lists all of them.
// It reads the heads from a snapshot and writes one row: appends never
// wait for it. It is safe for concurrent use.
type Sealer struct {
	// Log is the store (required); Keys the keyring whose current key
	// MACs the checkpoints (required).
	Log  Log
	Keys Keyring
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per checkpoint written, and an error line
	// for every sign of tampering the Sealer notices itself; nil discards.
	Logger *slog.Logger

	mu    sync.Mutex
	known bool // seq, hash and heads are the state after checkpoint seq
	seq   uint64
	hash  Hash
	heads map[string]Head
}

// ErrNoKey: the keyring has no current key to MAC a checkpoint with.
var ErrNoKey = errors.New("audit: no current master key to MAC checkpoints with")

// Seal writes the next checkpoint when a chain moved since the newest
// checkpoint, and returns it. It returns nil, nil when nothing moved, when
// another replica wrote a checkpoint less than minAge ago (0 seals
// regardless: at shutdown), or when another replica took the same number
// first.
//
// A chain whose head went back (records deleted) or changed at the same
// seq (records rewritten) since the newest checkpoint this Sealer knows is
// logged as an error and sealed where it was, so that VerifyLog reports it.
// When checkpoints this Sealer wrote are missing from the store, it logs
// that and goes on after its own newest, so that the gap stays visible.
//
// It returns ErrNoKey, or the error of the store or the keyring.
func (s *Sealer) Seal(ctx context.Context, minAge time.Duration) (*Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	keyID := s.Keys.Current()
	if keyID == "" {
		return nil, ErrNoKey
	}
	last, err := s.Log.LastAuditCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	lastHash := Hash(sha256.Sum256(last.Body))
	switch {
	case s.known && s.seq > last.Seq:
		log.ErrorContext(ctx, "audit: checkpoints are missing from the store: going on after the newest this server wrote, so that the gap shows",
			"written", s.seq, "newest_stored", last.Seq)
	case s.known && s.seq == last.Seq && s.hash != lastHash:
		log.ErrorContext(ctx, "audit: the stored checkpoint differs from the one this server wrote: going on after its own",
			"checkpoint", s.seq)
	case s.known && s.seq < last.Seq:
		if err := s.catchUp(ctx, last.Seq); err != nil {
			log.WarnContext(ctx, "audit: cannot follow the checkpoints of other replicas; the next checkpoint lists every chain", "err", err)
			s.known = false
		}
	}
	if minAge > 0 && last.Seq > 0 && (!s.known || s.seq <= last.Seq) && s.now().Sub(last.At) < minAge {
		return nil, nil
	}
	prevSeq, prevHash := last.Seq, lastHash
	if last.Seq == 0 {
		prevHash = Hash{}
	}
	if s.known {
		prevSeq, prevHash = s.seq, s.hash
	}

	stored, err := s.Log.AuditHeads(ctx)
	if err != nil {
		return nil, err
	}
	next := make(map[string]Head, len(stored))
	var moved []Head
	for _, sh := range stored {
		h := Head{Chain: sh.IdentityID, Seq: sh.Seq}
		if len(sh.Hash) != len(h.Hash) {
			return nil, fmt.Errorf("audit: the head of the chain of %s has a hash of %d bytes", ChainName(sh.IdentityID), len(sh.Hash))
		}
		copy(h.Hash[:], sh.Hash)
		old, ok := s.heads[h.Chain]
		switch {
		case !s.known || !ok || h.Seq > old.Seq:
			next[h.Chain] = h
			moved = append(moved, h)
		case h == old:
			next[h.Chain] = h
		default:
			log.ErrorContext(ctx, "audit: a chain went back since the last checkpoint (records deleted or rewritten); sealing it where it was",
				"chain", h.Chain, "sealed_seq", old.Seq, "now_seq", h.Seq, "checkpoint", s.seq)
			next[h.Chain] = old
		}
	}
	if s.known {
		for c, old := range s.heads {
			if _, ok := next[c]; !ok {
				log.ErrorContext(ctx, "audit: a chain vanished since the last checkpoint; sealing it where it was",
					"chain", c, "sealed_seq", old.Seq, "checkpoint", s.seq)
				next[c] = old
			}
		}
		if len(moved) == 0 {
			return nil, nil
		}
	}
	all := sortedHeads(next)
	root := MerkleRoot(all)
	if !s.known && last.Seq > 0 && s.sameAs(last, root, len(all)) {
		// Nothing moved since the newest checkpoint (another process's):
		// take its state instead of repeating it.
		s.known, s.seq, s.hash, s.heads = true, last.Seq, lastHash, next
		return nil, nil
	}
	cp := &Checkpoint{
		Seq:    prevSeq + 1,
		Time:   s.now().UTC().Truncate(time.Microsecond),
		Prev:   prevHash,
		KeyID:  keyID,
		Full:   !s.known,
		Chains: uint64(len(all)),
		Root:   root,
		Heads:  moved,
	}
	if cp.Full {
		cp.Heads = all
	}
	slices.SortFunc(cp.Heads, func(a, b Head) int { return strings.Compare(a.Chain, b.Chain) })
	body, _ := cp.MarshalBinary()
	mac, err := s.Keys.MAC(keyID, MACPurpose, body)
	if err != nil {
		return nil, err
	}
	err = s.Log.PutAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: cp.Seq, At: cp.Time, KeyID: keyID, Body: body, MAC: mac})
	if errors.Is(err, store.ErrDuplicate) {
		return nil, nil // another replica was first; the next Seal follows it
	}
	if err != nil {
		return nil, err
	}
	s.known, s.seq, s.hash, s.heads = true, cp.Seq, sha256.Sum256(body), next
	log.InfoContext(ctx, "audit checkpoint", "seq", cp.Seq, "hash", s.hash.String(), "chains", cp.Chains,
		"heads", len(cp.Heads), "full", cp.Full, "key_id", keyID)
	return cp, nil
}

// sameAs reports whether the stored checkpoint c, MACed under a key of
// the keyring, seals exactly the heads whose Merkle root is root.
func (s *Sealer) sameAs(c store.AuditCheckpoint, root Hash, chains int) bool {
	cp, err := ParseCheckpoint(c.Body)
	if err != nil || cp.KeyID != c.KeyID || s.Keys.CheckMAC(c.KeyID, MACPurpose, c.Body, c.MAC) != nil {
		return false
	}
	return cp.Root == root && cp.Chains == uint64(chains)
}

func (s *Sealer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// catchUp applies the checkpoints after s.seq up to to, written by other
// replicas, to the state. It returns an error when one is missing,
// unreadable, not linked or not MACed under a key of the keyring.
func (s *Sealer) catchUp(ctx context.Context, to uint64) error {
	heads := maps.Clone(s.heads)
	if heads == nil {
		heads = make(map[string]Head)
	}
	seq, hash := s.seq, s.hash
	for c, err := range s.Log.AuditCheckpoints(ctx, seq+1) {
		if err != nil {
			return err
		}
		if c.Seq > to {
			break
		}
		if c.Seq != seq+1 {
			return fmt.Errorf("audit: checkpoint %d follows %d", c.Seq, seq)
		}
		cp, err := ParseCheckpoint(c.Body)
		if err != nil {
			return err
		}
		if err := s.Keys.CheckMAC(c.KeyID, MACPurpose, c.Body, c.MAC); err != nil || cp.KeyID != c.KeyID {
			return fmt.Errorf("audit: checkpoint %d: MAC: %v", c.Seq, err)
		}
		if cp.Prev != hash {
			return fmt.Errorf("audit: checkpoint %d does not follow checkpoint %d", c.Seq, seq)
		}
		if cp.Full {
			heads = make(map[string]Head, len(cp.Heads))
		}
		for _, h := range cp.Heads {
			heads[h.Chain] = h
		}
		seq, hash = c.Seq, sha256.Sum256(c.Body)
	}
	if seq != to {
		return fmt.Errorf("audit: checkpoints end at %d, not %d", seq, to)
	}
	s.seq, s.hash, s.heads = seq, hash, heads
	return nil
}

// sortedHeads returns the heads of m in byte order of Chain.
func sortedHeads(m map[string]Head) []Head {
	out := make([]Head, 0, len(m))
	for _, h := range m {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b Head) int { return strings.Compare(a.Chain, b.Chain) })
	return out
}

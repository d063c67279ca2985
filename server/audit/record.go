package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/authbench/authbench/server/domain"
)

// Hash is a SHA-256 hash in the chain. It prints and encodes to JSON as 64
// lowercase hex digits.
type Hash [sha256.Size]byte

// String returns h in lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the genesis value, 32 zero bytes.
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText returns h in lowercase hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads 64 hex digits. It returns an error wrapping
// ErrMalformed for anything else and leaves h unchanged then.
func (h *Hash) UnmarshalText(b []byte) error {
	var out Hash
	if len(b) != 2*len(out) {
		return fmt.Errorf("audit: %w: a hash is %d hex digits, not %d", ErrMalformed, 2*len(out), len(b))
	}
	if _, err := hex.Decode(out[:], b); err != nil {
		return fmt.Errorf("audit: %w: a hash is hex digits", ErrMalformed)
	}
	*h = out
	return nil
}

// Record is one entry of the audit log: a domain.Event with its place in
// the chain of its identity.
type Record struct {
	// Version is the canonical form's first byte: Version2 for the records
	// Next makes, Version1 for records of the single chain that came
	// before per-identity chains (kept as they were by the migration).
	Version         uint8             `json:"version"`
	Seq             uint64            `json:"seq"`
	Time            time.Time         `json:"time"`
	Type            domain.EventType  `json:"type"`
	IdentityID      string            `json:"identity_id"`
	AuthenticatorID string            `json:"authenticator_id,omitempty"`
	Actor           domain.Actor      `json:"actor"`
	Reason          string            `json:"reason,omitempty"`
	Details         map[string]string `json:"details,omitempty"`
	PrevHash        Hash              `json:"prev_hash"`
	Hash            Hash              `json:"hash"`
}

// The versions of the canonical form. Both lay out the same fields; they
// differ in what Seq counts and what PrevHash links to.
const (
	// Version1: Seq numbers the records of one chain shared by every
	// identity (the log before per-identity chains), and PrevHash is the
	// hash of the record before, whoever it was about.
	Version1 uint8 = 1
	// Version2: Seq numbers the records of the chain of IdentityID, and
	// PrevHash is the hash of the previous record of that chain.
	Version2 uint8 = 2
)

// version returns r.Version, Version2 when it is not set.
func (r *Record) version() uint8 {
	if r.Version == 0 {
		return Version2
	}
	return r.Version
}

// Next returns the record for ev that follows prev in the chain of
// ev.IdentityID, with sequence number seq (prev.Seq+1; when prev is nil
// the chain starts and seq is 1), PrevHash = prev.Hash (the genesis value
// when prev is nil), and its Hash computed; its Version is Version2. The
// time is ev.At in UTC, truncated to the microsecond; Details go through
// RedactDetails; invalid UTF-8 and NUL bytes in strings become U+FFFD. ev
// is not changed.
func Next(prev *Record, ev domain.Event, seq uint64) Record {
	r := next(prev, &ev, seq)
	r.Hash = r.ComputeHash()
	return r
}

// next is Next without the hash.
func next(prev *Record, ev *domain.Event, seq uint64) Record {
	r := Record{
		Version:         Version2,
		Seq:             seq,
		Time:            ev.At.UTC().Truncate(time.Microsecond),
		Type:            domain.EventType(clean(string(ev.Type))),
		IdentityID:      clean(ev.IdentityID),
		AuthenticatorID: clean(ev.AuthenticatorID),
		Actor: domain.Actor{
			Kind: domain.ActorKind(clean(string(ev.Actor.Kind))),
			ID:   clean(ev.Actor.ID),
			Via:  clean(ev.Actor.Via),
		},
		Reason: clean(ev.Reason),
	}
	if len(ev.Details) > 0 {
		// RedactDetails, without its copy: its keys are ev's.
		r.Details = make(map[string]string, len(ev.Details))
		for k, v := range ev.Details {
			if SecretKey(k) {
				v = Redacted
			}
			r.Details[clean(k)] = clean(v)
		}
	}
	if prev != nil {
		r.PrevHash = prev.Hash
	}
	return r
}

// nextBody is Next with the stored form of its record (MarshalBinary),
// the canonical form encoded once for both.
func nextBody(prev *Record, ev *domain.Event, seq uint64) (Record, []byte) {
	r := next(prev, ev, seq)
	b := make([]byte, 0, 256)
	b = append(b, r.PrevHash[:]...)
	b = r.appendCanonical(b)
	r.Hash = sha256.Sum256(b)
	return r, append(b, r.Hash[:]...)
}

// clean replaces invalid UTF-8 and NUL bytes with U+FFFD.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// Event returns the domain event r records (with Details copied).
func (r *Record) Event() domain.Event {
	return domain.Event{
		Type:            r.Type,
		IdentityID:      r.IdentityID,
		AuthenticatorID: r.AuthenticatorID,
		Actor:           r.Actor,
		Reason:          r.Reason,
		Details:         maps.Clone(r.Details),
		At:              r.Time,
	}
}

// Canonical returns the canonical form of r: every field but PrevHash and
// Hash, as the package doc lays out.
func (r *Record) Canonical() []byte {
	return r.appendCanonical(nil)
}

func (r *Record) appendCanonical(b []byte) []byte {
	b = append(b, r.version())
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixMicro()))
	for _, s := range []string{string(r.Type), r.IdentityID, r.AuthenticatorID,
		string(r.Actor.Kind), r.Actor.ID, r.Actor.Via, r.Reason} {
		b = appendString(b, s)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Details)))
	var buf [8]string
	keys := buf[:0]
	for k := range r.Details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, r.Details[k])
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// ComputeHash returns SHA-256(r.PrevHash | r.Canonical()), what r.Hash
// should be.
func (r *Record) ComputeHash() Hash {
	b := make([]byte, 0, 256)
	b = append(b, r.PrevHash[:]...)
	return sha256.Sum256(r.appendCanonical(b))
}

// MarshalBinary returns the stored form of r: PrevHash | Canonical | Hash.
// It never fails.
func (r *Record) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, r.PrevHash[:]...)
	b = r.appendCanonical(b)
	return append(b, r.Hash[:]...), nil
}

// UnmarshalBinary sets r to the record ParseRecord reads from b. It returns
// the errors of ParseRecord and leaves r unchanged then.
func (r *Record) UnmarshalBinary(b []byte) error {
	rec, err := ParseRecord(b)
	if err != nil {
		return err
	}
	*r = *rec
	return nil
}

// ErrMalformed: stored bytes are not a record in the stored form.
var ErrMalformed = errors.New("malformed audit record")

// ParseRecord reads a record in the stored form (MarshalBinary). It
// accepts exactly what MarshalBinary produces: version 1 or 2, detail keys in
// strictly increasing order, nothing after the hash. It does not check the
// hash: Verify does, so that an altered record is reported as such.
//
// It returns nil and an error wrapping ErrMalformed when b is not in that
// form.
func ParseRecord(b []byte) (*Record, error) {
	bad := func(why string) (*Record, error) {
		return nil, fmt.Errorf("audit: %w: %s", ErrMalformed, why)
	}
	const fixed = 2*sha256.Size + 1 + 8 + 8 + 7*4 + 4
	if len(b) < fixed {
		return bad("too short")
	}
	var r Record
	copy(r.PrevHash[:], b)
	copy(r.Hash[:], b[len(b)-sha256.Size:])
	d := decoder{b: b[sha256.Size : len(b)-sha256.Size]}
	switch r.Version = d.byte(); r.Version {
	case Version1, Version2:
	default:
		return bad(fmt.Sprintf("unknown version %d", r.Version))
	}
	r.Seq = d.uint64()
	r.Time = time.UnixMicro(int64(d.uint64())).UTC()
	var str [7]string
	for i := range str {
		str[i] = d.string()
	}
	r.Type, r.IdentityID, r.AuthenticatorID = domain.EventType(str[0]), str[1], str[2]
	r.Actor = domain.Actor{Kind: domain.ActorKind(str[3]), ID: str[4], Via: str[5]}
	r.Reason = str[6]
	n := d.uint32()
	if d.err != nil {
		return bad(d.err.Error())
	}
	if uint64(n) > uint64(len(d.b))/8 {
		return bad("more details than bytes")
	}
	if n > 0 {
		r.Details = make(map[string]string, n)
		last := ""
		for i := range n {
			k, v := d.string(), d.string()
			if d.err != nil {
				return bad(d.err.Error())
			}
			if i > 0 && k <= last {
				return bad("detail keys out of order or repeated")
			}
			r.Details[k], last = v, k
		}
	}
	if d.err != nil {
		return bad(d.err.Error())
	}
	if len(d.b) != 0 {
		return bad("bytes after the details")
	}
	return &r, nil
}

// decoder reads the canonical form; after the first short read every
// method returns zero values and err is set.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errors.New("truncated")
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) byte() byte {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) uint32() uint32 {
	if p := d.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) uint64() uint64 {
	if p := d.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) string() string {
	n := d.uint32()
	return string(d.take(uint64(n)))
}

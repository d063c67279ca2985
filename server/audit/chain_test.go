package audit

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/authbench/authbench/server/domain"
)

// longChain returns a chain of n records from repeated scenario events.
func longChain(t testing.TB, n int) []Record {
	evs := scenario(t)
	var all []domain.Event
	for len(all) < n {
		for _, ev := range evs {
			ev.At = ev.At.Add(time.Duration(len(all)) * time.Second)
			all = append(all, ev)
		}
	}
	return chain(all[:n])
}

// clone returns a deep copy of rs.
func clone(rs []Record) []Record {
	out := slices.Clone(rs)
	for i := range out {
		out[i].Details = maps.Clone(out[i].Details)
	}
	return out
}

func TestTamper(t *testing.T) {
	base := longChain(t, 20)
	if b := VerifySlice(base); b != nil {
		t.Fatal(b)
	}
	// i is the index of record i+1 (Seq from 1): base[16] is record 17.
	tests := []struct {
		name   string
		tamper func(rs []Record) []Record
		kind   BreakKind
		msg    string
	}{
		{"time", func(rs []Record) []Record { rs[16].Time = rs[16].Time.Add(time.Microsecond); return rs },
			BreakHash, "audit: chain of identity \"id-1\", record 17: hash mismatch: contents altered"},
		{"time below a microsecond is not kept", func(rs []Record) []Record { rs[16].Time = rs[16].Time.Add(time.Nanosecond); return rs },
			"", ""},
		{"type", func(rs []Record) []Record { rs[16].Type = domain.EventLoginSucceeded; return rs },
			BreakHash, "audit: chain of identity \"id-1\", record 17: hash mismatch: contents altered"},
		{"identity", func(rs []Record) []Record { rs[16].IdentityID = "id-2"; return rs },
			BreakChain, "audit: chain of identity \"id-1\", record 17: does not belong here (another identity's record, or a version 1 record after version 2 ones)"},
		{"version", func(rs []Record) []Record { rs[16].Version = Version1; return rs },
			BreakChain, "audit: chain of identity \"id-1\", record 17: does not belong here (another identity's record, or a version 1 record after version 2 ones)"},
		{"authenticator", func(rs []Record) []Record { rs[16].AuthenticatorID = ""; return rs },
			BreakHash, "audit: chain of identity \"id-1\", record 17: hash mismatch: contents altered"},
		{"actor kind", func(rs []Record) []Record { rs[16].Actor.Kind = domain.ActorSupport; return rs },
			BreakHash, "audit: chain of identity \"id-1\", record 17: hash mismatch: contents altered"},
		{"actor via", func(rs []Record) []Record { rs[16].Actor.Via += "x"; return rs },
			BreakHash, "audit: chain of identity \"id-1\", record 17: hash mismatch: contents altered"},
		{"reason", func(rs []Record) []Record { rs[16].Reason = "self-service"; return rs },
			BreakHash, "audit: chain of identity \"id-1\", record 17: hash mismatch: contents altered"},
		{"detail value", func(rs []Record) []Record { rs[3].Details["kind"] = "chip"; return rs },
			BreakHash, "audit: chain of identity \"id-1\", record 4: hash mismatch: contents altered"},
		{"detail added", func(rs []Record) []Record { rs[3].Details["note"] = ""; return rs },
			BreakHash, "audit: chain of identity \"id-1\", record 4: hash mismatch: contents altered"},
		{"detail removed", func(rs []Record) []Record { delete(rs[3].Details, "kind"); return rs },
			BreakHash, "audit: chain of identity \"id-1\", record 4: hash mismatch: contents altered"},
		{"detail key renamed", func(rs []Record) []Record {
			rs[3].Details["kinds"] = rs[3].Details["kind"]
			delete(rs[3].Details, "kind")
			return rs
		}, BreakHash, "audit: chain of identity \"id-1\", record 4: hash mismatch: contents altered"},
		{"first record", func(rs []Record) []Record { rs[0].Reason = "x"; return rs },
			BreakHash, "audit: chain of identity \"id-1\", record 1: hash mismatch: contents altered"},
		{"last record", func(rs []Record) []Record { rs[19].Reason = "x"; return rs },
			BreakHash, "audit: chain of identity \"id-1\", record 20: hash mismatch: contents altered"},
		{"hash replaced", func(rs []Record) []Record { rs[16].Hash[0] ^= 1; return rs },
			BreakHash, "audit: chain of identity \"id-1\", record 17: hash mismatch: contents altered"},
		{"hashes swapped", func(rs []Record) []Record { rs[16].Hash, rs[17].Hash = rs[17].Hash, rs[16].Hash; return rs },
			BreakHash, "audit: chain of identity \"id-1\", record 17: hash mismatch: contents altered"},
		{"altered and rehashed", func(rs []Record) []Record {
			rs[16].Reason = "nothing to see"
			rs[16].Hash = rs[16].ComputeHash()
			return rs
		}, BreakPrevHash, "audit: chain of identity \"id-1\", record 18: prev_hash does not match the hash of record 17"},
		{"prev_hash replaced", func(rs []Record) []Record { rs[16].PrevHash[31] ^= 0x80; return rs },
			BreakPrevHash, "audit: chain of identity \"id-1\", record 17: prev_hash does not match the hash of record 16"},
		{"deleted", func(rs []Record) []Record { return slices.Delete(rs, 16, 17) },
			BreakSeq, "audit: chain of identity \"id-1\", record 18: follows record 16: record 17 missing"},
		{"deleted and renumbered", func(rs []Record) []Record {
			rs = slices.Delete(rs, 16, 17)
			for i := 16; i < len(rs); i++ {
				rs[i].Seq--
			}
			return rs
		}, BreakPrevHash, "audit: chain of identity \"id-1\", record 17: prev_hash does not match the hash of record 16"},
		{"deleted, renumbered and rehashed", func(rs []Record) []Record {
			rs = slices.Delete(rs, 16, 17)
			rs[16].Seq--
			rs[16].Hash = rs[16].ComputeHash()
			return rs
		}, BreakPrevHash, "audit: chain of identity \"id-1\", record 17: prev_hash does not match the hash of record 16"},
		{"first deleted", func(rs []Record) []Record { return rs[1:] },
			BreakSeq, "audit: chain of identity \"id-1\", record 2: the chain starts here, not at record 1: records before it missing"},
		{"first deleted and renumbered", func(rs []Record) []Record {
			rs = rs[1:]
			for i := range rs {
				rs[i].Seq--
			}
			return rs
		}, BreakGenesis, "audit: chain of identity \"id-1\", record 1: prev_hash is not the genesis value (records before it missing?)"},
		{"last deleted", func(rs []Record) []Record { return rs[:19] }, // needs an anchor: see TestResume
			"", ""},
		{"repeated", func(rs []Record) []Record { return slices.Insert(rs, 17, rs[16]) },
			BreakSeq, "audit: chain of identity \"id-1\", record 17: follows record 17: records out of order or repeated"},
		{"inserted", func(rs []Record) []Record {
			forged := Next(&rs[15], domain.Event{Type: domain.EventReactivated, IdentityID: "id-1"}, 17)
			rs = slices.Insert(rs, 16, forged)
			for i := 17; i < len(rs); i++ {
				rs[i].Seq++
			}
			return rs
		}, BreakPrevHash, "audit: chain of identity \"id-1\", record 18: prev_hash does not match the hash of record 17"},
		{"reordered", func(rs []Record) []Record { rs[16], rs[17] = rs[17], rs[16]; return rs },
			BreakSeq, "audit: chain of identity \"id-1\", record 18: follows record 16: record 17 missing"},
		{"reordered and renumbered", func(rs []Record) []Record {
			rs[16], rs[17] = rs[17], rs[16]
			rs[16].Seq, rs[17].Seq = 17, 18
			return rs
		}, BreakPrevHash, "audit: chain of identity \"id-1\", record 17: prev_hash does not match the hash of record 16"},
		{"seq changed", func(rs []Record) []Record { rs[16].Seq = 170; return rs },
			BreakSeq, "audit: chain of identity \"id-1\", record 170: follows record 16: records 17 to 169 missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := tt.tamper(clone(base))
			b := VerifySlice(rs)
			if tt.kind == "" {
				if b != nil {
					t.Fatalf("Verify = %v, want no break", b)
				}
				return
			}
			if b == nil {
				t.Fatal("Verify found no break")
			}
			if b.Kind != tt.kind || b.Error() != tt.msg || !errors.Is(b, ErrBroken) {
				t.Fatalf("Verify = %s %q\nwant %s %q", b.Kind, b, tt.kind, tt.msg)
			}
			if rs[b.Index].Seq != b.Seq {
				t.Fatalf("Break.Index %d is not record %d", b.Index, b.Seq)
			}
		})
	}
	if b := VerifySlice(base); b != nil {
		t.Fatalf("the tests changed the base chain: %v", b)
	}
}

// TestResume checks a chain from a published head, which also catches
// what no chain shows alone: records cut off at the end, or a chain
// rewritten from the start.
func TestResume(t *testing.T) {
	rs := longChain(t, 10)
	var c Checker
	for _, r := range rs[:6] {
		if b := c.Check(r); b != nil {
			t.Fatal(b)
		}
	}
	seq, head, ok := c.Head()
	if !ok || seq != 6 || head != rs[5].Hash || c.Count() != 6 {
		t.Fatalf("Head = %d %v %v", seq, head, ok)
	}

	r := Resume("id-1", seq, head)
	for _, rec := range rs[6:] {
		if b := r.Check(rec); b != nil {
			t.Fatal(b)
		}
	}
	if s, h, _ := r.Head(); s != 10 || h != rs[9].Hash {
		t.Fatalf("Head after resume = %d %v", s, h)
	}

	// The last records were cut off: the head no longer matches.
	var c2 Checker
	for _, rec := range rs[:9] {
		c2.Check(rec)
	}
	if _, h, _ := c2.Head(); h == rs[9].Hash {
		t.Fatal("a cut chain has the published head")
	}

	// A whole new chain does not continue from the published head.
	forged := chain([]domain.Event{{Type: domain.EventIdentityCreated, IdentityID: "id-1"}})
	forged[0].Seq = 7
	b := Resume("id-1", seq, head).Check(forged[0])
	if b == nil || b.Kind != BreakGenesis || b.Error() != "audit: chain of identity \"id-1\", record 7: prev_hash does not match the hash of record 6 resumed from" {
		t.Fatalf("Check = %v", b)
	}
	if b := Resume("id-1", seq, head).Check(rs[7]); b == nil || b.Kind != BreakSeq {
		t.Fatalf("Check = %v", b)
	}
}

// TestCheckerGoesOn reports each later break once when the caller
// continues after the first.
func TestCheckerGoesOn(t *testing.T) {
	rs := clone(longChain(t, 10))
	rs[2].Reason = "x"
	rs[7].Reason = "y"
	var c Checker
	var got []string
	for _, r := range rs {
		if b := c.Check(r); b != nil {
			got = append(got, b.Error())
		}
	}
	want := []string{
		"audit: chain of identity \"id-1\", record 3: hash mismatch: contents altered",
		"audit: chain of identity \"id-1\", record 8: hash mismatch: contents altered",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("breaks %q", got)
	}
}

func TestVerifyIterator(t *testing.T) {
	rs := longChain(t, 5)
	all := func(yield func(Record, error) bool) {
		for _, r := range rs {
			if !yield(r, nil) {
				return
			}
		}
	}
	if b, err := Verify(all); b != nil || err != nil {
		t.Fatalf("Verify = %v, %v", b, err)
	}
	if b, err := Verify(func(func(Record, error) bool) {}); b != nil || err != nil {
		t.Fatalf("Verify(empty) = %v, %v", b, err)
	}
	failing := errors.New("disk on fire")
	b, err := Verify(func(yield func(Record, error) bool) {
		if yield(rs[0], nil) {
			yield(Record{}, failing)
		}
	})
	if b != nil || !errors.Is(err, failing) || err.Error() != "audit: reading record 1: disk on fire" {
		t.Fatalf("Verify = %v, %v", b, err)
	}
	// Verify stops at the first break and does not read further.
	read := 0
	broken := clone(rs)
	broken[1].Reason = "x"
	b, _ = Verify(func(yield func(Record, error) bool) {
		for _, r := range broken {
			read++
			if !yield(r, nil) {
				return
			}
		}
	})
	if b == nil || b.Seq != 2 || read != 2 {
		t.Fatalf("Verify = %v after reading %d", b, read)
	}
}

func ExampleVerifySlice() {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var rs []Record
	var prev *Record
	for i, ev := range []domain.Event{
		{Type: domain.EventIdentityCreated, IdentityID: "id-1", Actor: domain.System("enrol"), At: at},
		{Type: domain.EventAdded, IdentityID: "id-1", AuthenticatorID: "a1", Actor: domain.Owner("id-1", "pw-1"), At: at},
		{Type: domain.EventActivated, IdentityID: "id-1", AuthenticatorID: "a1", Actor: domain.Owner("id-1", "pw-1"), At: at},
	} {
		rs = append(rs, Next(prev, ev, uint64(i+1)))
		prev = &rs[i]
	}
	fmt.Println(VerifySlice(rs))

	rs[1].Actor = domain.Support("op-7") // rewrite history
	fmt.Println(VerifySlice(rs))
	// Output:
	// <nil>
	// audit: chain of identity "id-1", record 2: hash mismatch: contents altered
}

package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/audit")

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// scenario returns the events of a real lifecycle from server/domain:
// three wrong PINs suspend an app, the owner reactivates it with the
// password, then blocks it for good.
func scenario(t testing.TB) []domain.Event {
	t.Helper()
	p := domain.DefaultPolicy()
	now := t0
	id := domain.Identity{ID: "id-1", State: domain.IdentityActive, Version: 1}
	pw := domain.Authenticator{ID: "pw-1", IdentityID: "id-1", Kind: device.KindPassword, State: domain.StateActive, Version: 1}
	owner := domain.Owner("id-1", "pw-1")
	var evs []domain.Event
	must := func(c domain.Change, err error) domain.Authenticator {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, c.Events...)
		now = now.Add(time.Minute)
		return c.Authenticator
	}
	app := must(p.Add(id, []domain.Authenticator{pw}, nil, domain.AddRequest{
		ID: "app-1", Kind: device.KindApp, Ref: domain.Ref{CredentialID: "appkey-1"},
	}, owner, now))
	app = must(p.Activate(id, app, owner, now))
	for range 3 {
		app = must(p.RecordFailure(app, domain.Failure{Cause: domain.CauseWrongPIN,
			Details: map[string]string{"pin": "314159", "attempt_code": "x"}}, now))
	}
	app = must(p.Reactivate(id, app, owner, []domain.Authenticator{pw}, now))
	must(p.Block(app, owner, domain.ReasonLost, now))
	if len(evs) < 6 {
		t.Fatalf("scenario gave %d events", len(evs))
	}
	return evs
}

// chain links evs into records with Seq from 1.
func chain(evs []domain.Event) []Record {
	var rs []Record
	var prev *Record
	for i, ev := range evs {
		rs = append(rs, Next(prev, ev, uint64(i+1)))
		prev = &rs[len(rs)-1]
	}
	return rs
}

// golden is a record with every field set, its canonical form laid out
// by hand.
var golden = Record{
	Seq:             7,
	Time:            time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC),
	Type:            domain.EventSuspended,
	IdentityID:      "id-1",
	AuthenticatorID: "app-1",
	Actor:           domain.Actor{Kind: domain.ActorSystem, ID: "login"},
	Reason:          "failures",
	Details:         map[string]string{"kind": "app", "failures": "3"},
}

func TestCanonicalLayout(t *testing.T) {
	r := golden
	want := mustHex(t, `02
		0000000000000007
		00062f46a99d1240
		00000017 61757468656e74696361746f722e73757370656e646564
		00000004 69642d31
		00000005 6170702d31
		00000006 73797374656d
		00000005 6c6f67696e
		00000000
		00000008 6661696c75726573
		00000002
		00000008 6661696c75726573 00000001 33
		00000004 6b696e64 00000003 617070`)
	if got := r.Canonical(); !bytes.Equal(got, want) {
		t.Fatalf("Canonical =\n%x\nwant\n%x", got, want)
	}
	// A record of the single chain from before per-identity chains
	// differs in the first byte only.
	v1 := r
	v1.Version = Version1
	if got := v1.Canonical(); got[0] != 1 || !bytes.Equal(got[1:], want[1:]) {
		t.Fatalf("Canonical of version 1 =\n%x", got)
	}
	if got := r.Time.UnixMicro(); got != 0x00062f46a99d1240 {
		t.Fatalf("time %x", got)
	}
	r.PrevHash = Hash(sha256.Sum256([]byte("previous")))
	if got, want := r.ComputeHash(), Hash(sha256.Sum256(append(r.PrevHash[:], want...))); got != want {
		t.Fatalf("ComputeHash = %v, want %v", got, want)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenEvents are fixed events, independent of server/domain's rules.
var goldenEvents = []domain.Event{
	{Type: domain.EventIdentityCreated, IdentityID: "id-1", Actor: domain.System("enrol"), At: t0},
	{Type: domain.EventAdded, IdentityID: "id-1", AuthenticatorID: "kv-1", Actor: domain.Owner("id-1", "pw-1"),
		Details: map[string]string{"kind": "code-display", "serial": "K123"}, At: t0.Add(time.Second)},
	{Type: domain.EventLoginFailed, IdentityID: "id-1", AuthenticatorID: "kv-1", Actor: domain.System("login"),
		Details: map[string]string{"kind": "code-display", "cause": "wrong-code", "code": "123456", "failures": "1", "suspensions": "0"},
		At:      t0.Add(2 * time.Second)},
	{Type: domain.EventReactivated, IdentityID: "id-1", AuthenticatorID: "kv-1", Actor: domain.Support("op-7"),
		Reason: "support", Details: map[string]string{"from": "suspended", "to": "active", "via": "phone ✓"}, At: t0.Add(time.Hour)},
	{Type: domain.EventBlocked, IdentityID: "id-1", AuthenticatorID: "kv-1", Actor: domain.Owner("id-1", "pw-1"),
		Reason: "lost", At: time.Date(1969, 12, 31, 23, 59, 59, 1000, time.UTC)},
}

// legacyChain links evs into Version1 records with Seq from 1, as the
// single chain before per-identity chains did.
func legacyChain(evs []domain.Event) []Record {
	var rs []Record
	var prev Hash
	for i, ev := range evs {
		r := Next(nil, ev, uint64(i+1))
		r.Version, r.PrevHash = Version1, prev
		r.Hash = r.ComputeHash()
		rs = append(rs, r)
		prev = r.Hash
	}
	return rs
}

// TestGolden pins the stored form of a chain: a change of the canonical
// form would make every stored chain fail. chain-N.hex are Version1
// records (what databases from before per-identity chains hold),
// identity-N.hex Version2 records. The files also seed FuzzParseRecord.
// Refresh with -update (only on purpose).
func TestGolden(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "audit", "records")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, set := range []struct {
		prefix string
		rs     []Record
	}{{"chain", legacyChain(goldenEvents)}, {"identity", chain(goldenEvents)}} {
		for _, r := range set.rs {
			checkGolden(t, filepath.Join(dir, fmt.Sprintf("%s-%d.hex", set.prefix, r.Seq)), &r)
		}
	}
}

// TestLinkGolden: the stored records Chain links (what the stores insert)
// are the golden identity-N.hex records, their columns the body's.
func TestLinkGolden(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "audit", "records")
	var prev *store.AuditRecord
	for i, ev := range goldenEvents {
		r, err := Chain{}.Link(prev, ev)
		if err != nil {
			t.Fatal(err)
		}
		file, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("identity-%d.hex", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(r.Body); got != strings.TrimSpace(string(file)) {
			t.Errorf("record %d:\n got %s\nwant %s", i+1, got, file)
		}
		n := len(r.Body)
		if r.Seq != uint64(i+1) || !bytes.Equal(r.PrevHash, r.Body[:sha256.Size]) || !bytes.Equal(r.Hash, r.Body[n-sha256.Size:]) {
			t.Errorf("record %d: seq %d, hashes %x %x do not repeat the body", i+1, r.Seq, r.PrevHash, r.Hash)
		}
		if sha256.Sum256(r.Body[:n-sha256.Size]) != Hash(r.Hash) {
			t.Errorf("record %d: the hash is not SHA-256 of the rest of the body", i+1)
		}
		r.IdentityID, r.AuthenticatorID, r.Type = ev.IdentityID, ev.AuthenticatorID, ev.Type
		if _, err := FromStore(&r); err != nil {
			t.Error(err)
		}
		prev = &r
	}
}

// checkGolden compares what m marshals to with the hex in file name, or
// writes it there with -update.
func checkGolden(t *testing.T, name string, m interface{ MarshalBinary() ([]byte, error) }) {
	t.Helper()
	b, _ := m.MarshalBinary()
	if *update {
		if err := os.WriteFile(name, []byte(hex.EncodeToString(b)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	file, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := hex.EncodeToString(b); got != strings.TrimSpace(string(file)) {
		t.Errorf("%s:\n got %s\nwant %s", name, got, file)
	}
}

func TestNext(t *testing.T) {
	evs := scenario(t)
	rs := chain(evs)
	if b := VerifySlice(rs); b != nil {
		t.Fatal(b)
	}
	first := rs[0]
	if first.Seq != 1 || !first.PrevHash.IsZero() || first.Hash != first.ComputeHash() || first.Hash.IsZero() {
		t.Fatalf("first record: %+v", first)
	}
	if first.Time.Location() != time.UTC || first.Time.Nanosecond()%1000 != 0 || !first.Time.Equal(t0.Truncate(time.Microsecond)) {
		t.Errorf("time %v", first.Time)
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].PrevHash != rs[i-1].Hash || rs[i].Seq != rs[i-1].Seq+1 {
			t.Fatalf("record %d not linked", rs[i].Seq)
		}
	}
	// The failure details carried a PIN: it is redacted, the keys stay.
	var failed *Record
	for i := range rs {
		if rs[i].Type == domain.EventLoginFailed {
			failed = &rs[i]
			break
		}
	}
	if failed == nil {
		t.Fatal("no login_failed record")
	}
	if failed.Details["pin"] != Redacted || failed.Details["attempt_code"] != Redacted || failed.Details["kind"] != "app" {
		t.Errorf("details %v", failed.Details)
	}
	for _, r := range rs {
		b, _ := json.Marshal(r)
		if bytes.Contains(b, []byte("314159")) {
			t.Fatalf("record %d keeps the PIN: %s", r.Seq, b)
		}
	}
	// Next copies: changing the event afterwards changes nothing.
	ev := evs[0]
	r := Next(nil, ev, 1)
	for k := range ev.Details {
		ev.Details[k] = "changed"
	}
	if r.Hash != r.ComputeHash() {
		t.Fatal("Next shares Details with the event")
	}
	// Event gives the event back (as stored).
	if got := rs[1].Event(); got.Type != evs[1].Type || got.IdentityID != "id-1" || !got.At.Equal(rs[1].Time) ||
		!reflect.DeepEqual(got.Details, rs[1].Details) {
		t.Errorf("Event = %+v", got)
	}
}

func TestNextCleansStrings(t *testing.T) {
	ev := domain.Event{
		Type:       domain.EventBlocked,
		IdentityID: "id\x00-1",
		Actor:      domain.Support("op\xff"),
		Reason:     "bad \xc3\x28 utf-8",
		Details:    map[string]string{"k\x00": "v\xfe"},
		At:         time.Date(2025, 3, 1, 13, 0, 0, 999, time.FixedZone("CET", 3600)),
	}
	r := Next(nil, ev, 1)
	if r.IdentityID != "id\uFFFD-1" || r.Actor.ID != "op\uFFFD" || r.Reason != "bad \uFFFD( utf-8" ||
		r.Details["k\uFFFD"] != "v\uFFFD" {
		t.Fatalf("Next = %+v", r)
	}
	if r.Time != time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) {
		t.Fatalf("time %v", r.Time)
	}
	// Through JSON (what a store with text columns does) it still verifies.
	b, _ := json.Marshal(r)
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.ComputeHash() != r.Hash || back.Hash != r.Hash {
		t.Fatalf("JSON round trip changed the record: %s", b)
	}
}

// TestJSONRoundTrip stores a chain the way a store with one column per
// field might (JSON here) and verifies it after reading it back.
func TestJSONRoundTrip(t *testing.T) {
	rs := chain(scenario(t))
	b, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000"`)) {
		t.Errorf("hashes are not hex in JSON: %.200s", b)
	}
	var back []Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if br := VerifySlice(back); br != nil {
		t.Fatal(br)
	}
	var h Hash
	for _, bad := range []string{`"00"`, `"` + strings.Repeat("g", 64) + `"`, `12`} {
		if err := json.Unmarshal([]byte(bad), &h); err == nil || !h.IsZero() {
			t.Errorf("Hash from %s: %v, %v", bad, h, err)
		}
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	rs := append(chain(scenario(t)), golden, Record{}, Record{Details: map[string]string{}})
	for _, r := range rs {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b[len(b)-32:], r.Hash[:]) || !bytes.Equal(b[:32], r.PrevHash[:]) {
			t.Fatal("stored form is not PrevHash | ... | Hash")
		}
		if r.Hash != (Hash{}) && Hash(sha256.Sum256(b[:len(b)-32])) != r.Hash {
			t.Fatal("the last 32 bytes are not the hash of the rest")
		}
		var back Record
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		b2, _ := back.MarshalBinary()
		if !bytes.Equal(b, b2) || back.ComputeHash() != r.ComputeHash() {
			t.Fatalf("round trip:\n%x\n%x", b, b2)
		}
	}
}

func TestParseRecordRefuses(t *testing.T) {
	good, _ := golden.MarshalBinary()
	// Offsets in the canonical part (after the 32-byte PrevHash).
	const c = 32
	detailsAt := len(good) - 32 - (4 + 4 + 8 + 4 + 1 + 4 + 4 + 4 + 3)
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"hashes only", make([]byte, 64)},
		{"truncated", good[:len(good)-1]},
		{"byte added", append(bytes.Clone(good), 0)},
		{"version 3", mutate(func(b []byte) []byte { b[c] = 3; return b })},
		{"version 0", mutate(func(b []byte) []byte { b[c] = 0; return b })},
		{"string longer than the record", mutate(func(b []byte) []byte { b[c+17] = 0xff; return b })},
		{"huge detail count", mutate(func(b []byte) []byte {
			copy(b[detailsAt:], []byte{0xff, 0xff, 0xff, 0xff})
			return b
		})},
		{"fewer details than counted", mutate(func(b []byte) []byte { b[detailsAt+3] = 3; return b })},
		{"more details than counted", mutate(func(b []byte) []byte { b[detailsAt+3] = 1; return b })},
		{"keys out of order", func() []byte {
			r := golden
			b, _ := r.MarshalBinary()
			// Swap the two detail entries: "kind" before "failures".
			d := b[detailsAt+4 : len(b)-32]
			first := d[:4+8+4+1]
			swapped := append(append([]byte{}, d[len(first):]...), first...)
			copy(d, swapped)
			return b
		}()},
		{"repeated key", func() []byte {
			r := Record{Details: map[string]string{"a": "1", "b": "2"}}
			b, _ := r.MarshalBinary()
			i := bytes.Index(b, []byte{0, 0, 0, 1, 'b'})
			b[i+4] = 'a'
			return b
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRecord(tt.in)
			if r != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseRecord = %+v, %v", r, err)
			}
			var into Record
			into.Seq = 99
			if err := into.UnmarshalBinary(tt.in); err == nil || into.Seq != 99 {
				t.Fatalf("UnmarshalBinary = %v, changed %+v", err, into)
			}
		})
	}
}

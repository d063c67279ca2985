package service

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/authbench/authbench/server/store/storetest"
)

// TestNewIDOrder: IDs drawn later sort after earlier ones (the time
// first, to the millisecond), IDs drawn in the same millisecond differ in
// their 16 random hex digits, and the form is prefix-<27 hex digits>.
func TestNewIDOrder(t *testing.T) {
	at := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	s := &Service{rand: rand.Reader, now: func() time.Time { return at }}
	form := regexp.MustCompile(`^chip-[0-9a-f]{27}$`)
	var ids []string
	seen := map[string]bool{}
	for i := range 1000 {
		if i%10 == 0 {
			at = at.Add(time.Millisecond)
		}
		id, err := s.newID("chip")
		if err != nil {
			t.Fatal(err)
		}
		if !form.MatchString(id) {
			t.Fatalf("newID = %q; want chip-<27 hex digits>", id)
		}
		if seen[id] {
			t.Fatalf("newID drew %q twice", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	for i := 10; i < len(ids); i++ {
		if ids[i-10] >= ids[i] {
			t.Fatalf("%s (drawn a millisecond later) sorts before %s", ids[i], ids[i-10])
		}
	}
	if got, want := ids[0][5:16], fmt.Sprintf("%011x", time.Date(2026, 12, 7, 19, 0, 0, int(time.Millisecond), time.UTC).UnixMilli()); got != want {
		t.Errorf("time part %s, want %s", got, want)
	}
	// A Service given its own Rand (a seeded one) draws IDs from it alone.
	seeded := &Service{rand: rand.Reader, randomIDs: true, now: s.now}
	if id, err := seeded.newID("chip"); err != nil || !regexp.MustCompile(`^chip-[0-9a-f]{16}$`).MatchString(id) {
		t.Errorf("newID of a seeded Service = %q, %v; want chip-<16 hex digits>", id, err)
	}
	// Before 1970, as at 1970: still the form.
	s.now = func() time.Time { return time.Unix(-5, 0) }
	if id, err := s.newID("pw"); err != nil || !regexp.MustCompile(`^pw-00000000000[0-9a-f]{16}$`).MatchString(id) {
		t.Errorf("newID before 1970 = %q, %v", id, err)
	}
}

// TestSpentKeyForm: a spent mark's key is "spent:", the expiry's Unix
// milliseconds in 11 hex digits, the challenge in base64url: the formula
// the spent_marks_by_expiry migrations (SQLite and PostgreSQL) rewrite
// the old marks with (storetest.NewSpentKey, which their tests use), so
// it must not change. Marks of later expiries
// sort after earlier ones, whatever their challenges.
func TestSpentKeyForm(t *testing.T) {
	exp := time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.UTC)
	ch := bytes.Repeat([]byte{0xfb}, challengeLen)
	if got, want := spentKey(ch, exp), storetest.NewSpentKey(ch, exp); got != want {
		t.Errorf("spentKey = %q; want %q", got, want)
	}
	var keys []string
	for i := range 100 {
		c := make([]byte, challengeLen)
		_, _ = rand.Read(c)
		keys = append(keys, spentKey(c, exp.Add(time.Duration(i)*time.Millisecond)))
	}
	if !slices.IsSorted(keys) {
		t.Errorf("spent marks of later expiries sort before earlier ones: %v", keys)
	}
}

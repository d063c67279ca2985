package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// authenticator returns the stored authenticator aid, failing the test on
// an error.
func (f *fixture) authenticator(aid string) domain.Authenticator {
	f.t.Helper()
	a, err := f.s.Authenticator(f.ctx, aid)
	f.ok(err, "Authenticator(%s)", aid)
	return a
}

// set returns the authenticator set of identityID, failing the test on an
// error.
func (f *fixture) set(identityID string) store.AuthenticatorSet {
	f.t.Helper()
	s, err := f.s.AuthenticatorSet(f.ctx, identityID)
	f.ok(err, "AuthenticatorSet(%s)", identityID)
	return s
}

// wantSet checks the version and the authenticator IDs of identityID's set.
func (f *fixture) wantSet(identityID string, version uint64, ids ...string) {
	f.t.Helper()
	s := f.set(identityID)
	var got []string
	for _, a := range s.Authenticators {
		got = append(got, a.ID)
	}
	if s.Version != version || fmt.Sprint(got) != fmt.Sprint(ids) {
		f.t.Errorf("AuthenticatorSet(%s) = version %d %v, want version %d %v", identityID, s.Version, got, version, ids)
	}
	// The identity comes with the set, as Identity reads it.
	id, err := f.s.Identity(f.ctx, identityID)
	f.ok(err, "Identity(%s)", identityID)
	if !reflect.DeepEqual(s.Identity, id) {
		f.t.Errorf("AuthenticatorSet(%s).Identity = %+v, want %+v", identityID, s.Identity, id)
	}
	for i, a := range s.Authenticators {
		f.sameAuth(a, f.authenticator(a.ID), fmt.Sprintf("AuthenticatorSet(%s)[%d]", identityID, i))
	}
}

// testSetVersion checks what raises the version of an authenticator set
// and what the guard of CreateAuthenticatorAt refuses.
func testSetVersion(f *fixture) {
	id := f.identity("id-1")
	f.identity("id-2")
	f.wantSet("id-1", 0)
	_, err := f.s.AuthenticatorSet(f.ctx, "nobody")
	f.wantErr(err, store.ErrNotFound, "AuthenticatorSet(nobody)")

	// Unguarded creates raise the version too.
	f.create("id-1", "pw-1", device.KindPassword)
	f.wantSet("id-1", 1, "pw-1")
	f.wantSet("id-2", 0)

	f.now = f.now.Add(time.Second)
	app := f.pending("id-1", "app-1", device.KindApp, RefFor(device.KindApp, "app-1"))
	f.ok(f.s.CreateAuthenticatorAt(f.ctx, app, ElementFor(device.KindApp, "app-1"), 1), "CreateAuthenticatorAt at the current version")
	f.wantSet("id-1", 2, "pw-1", "app-1")
	head := f.auditLen()

	// A stale version: nothing is stored, nothing audited.
	f.now = f.now.Add(time.Second)
	stale := f.pending("id-1", "app-2", device.KindApp, RefFor(device.KindApp, "app-2"))
	for _, v := range []uint64{0, 1, 3, 1 << 40} {
		f.wantErr(f.s.CreateAuthenticatorAt(f.ctx, stale, ElementFor(device.KindApp, "app-2"), v), store.ErrConflict, "CreateAuthenticatorAt at version %d (stored 2)", v)
	}
	f.wantErr(f.s.CreateAuthenticatorAt(f.ctx, stale, ElementFor(device.KindApp, "app-2"), 1<<63), store.ErrInvalid, "CreateAuthenticatorAt at version 2^63")
	if _, err := f.s.Authenticator(f.ctx, "app-2"); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("an add from a stale version was stored: %v", err)
	}
	if _, err := f.s.Element(f.ctx, "app-2"); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("the element of an add from a stale version was stored: %v", err)
	}
	if h := f.auditLen(); h != head {
		f.t.Errorf("a refused add was audited: head %d, want %d", h, head)
	}
	f.wantSet("id-1", 2, "pw-1", "app-1")

	// Refused for another reason: the version stays.
	dup := f.pending("id-1", "app-1", device.KindApp, RefFor(device.KindApp, "app-3"))
	f.wantErr(f.s.CreateAuthenticatorAt(f.ctx, dup, ElementFor(device.KindApp, "app-1"), 2), store.ErrDuplicate, "CreateAuthenticatorAt with a taken ID")
	bad := f.pending("id-1", "app-3", device.KindApp, RefFor(device.KindApp, "app-3"))
	f.wantErr(f.s.CreateAuthenticatorAt(f.ctx, bad, store.Element{}, 2), store.ErrInvalid, "CreateAuthenticatorAt without element")
	nobody := f.pending("nobody", "app-3", device.KindApp, RefFor(device.KindApp, "app-3"))
	f.wantErr(f.s.CreateAuthenticatorAt(f.ctx, nobody, ElementFor(device.KindApp, "app-3"), 0), store.ErrNotFound, "CreateAuthenticatorAt for an unknown identity")
	f.wantSet("id-1", 2, "pw-1", "app-1")

	// Transitions and identity updates keep it: none adds to a quota.
	a := f.apply(f.p.Activate(id, f.authenticator("app-1"), sys, f.now))
	a = f.apply(f.p.RecordFailure(a, domain.Failure{Cause: domain.CauseWrongPIN}, f.now))
	f.apply(f.p.Block(a, domain.Owner("id-1", ""), domain.ReasonLost, f.now))
	blocked, err := f.p.BlockIdentity(id, domain.Support("op-1"), domain.ReasonMisuse, f.now)
	f.ok(err, "BlockIdentity")
	f.ok(f.s.UpdateIdentity(f.ctx, blocked), "UpdateIdentity")
	f.wantSet("id-1", 2, "pw-1", "app-1")
	if got := f.set("id-1"); len(got.Authenticators) == 2 {
		f.sameAuth(got.Authenticators[1], f.authenticator("app-1"), "AuthenticatorSet[1]")
	}

	// A cancel deletes the record; the version does not go back, so an add
	// checked before the cancel and the next create cannot meet at one
	// value.
	f.now = f.now.Add(time.Second)
	kv := f.pending("id-1", "kv-1", device.KindCodeDisplay, RefFor(device.KindCodeDisplay, "kv-1"))
	f.ok(f.s.CreateAuthenticatorAt(f.ctx, kv, ElementFor(device.KindCodeDisplay, "kv-1"), 2), "CreateAuthenticatorAt(kv-1)")
	f.apply(f.p.Cancel(kv.Authenticator, sys, f.now))
	f.wantSet("id-1", 3, "pw-1", "app-1")
	f.wantErr(f.s.CreateAuthenticatorAt(f.ctx, stale, ElementFor(device.KindApp, "app-2"), 2), store.ErrConflict, "CreateAuthenticatorAt at the version before a create and a cancel")
}

// testConcurrentCreateAt races creates of different authenticators from
// one version of the set: exactly one is stored.
func testConcurrentCreateAt(f *fixture) {
	f.identity("id-1")
	f.create("id-1", "pw-1", device.KindPassword)
	v := f.set("id-1").Version
	head := f.auditLen()
	errs := race(Concurrency, func(i int) error {
		aid := fmt.Sprint("app-", i)
		c := f.pending("id-1", aid, device.KindApp, RefFor(device.KindApp, aid))
		return f.s.CreateAuthenticatorAt(f.ctx, c, ElementFor(device.KindApp, aid), v)
	})
	if wins := f.countWins(errs, store.ErrConflict, "concurrent CreateAuthenticatorAt"); wins != 1 {
		f.t.Errorf("%d of %d concurrent creates from one version won, want exactly 1", wins, Concurrency)
	}
	s := f.set("id-1")
	if s.Version != v+1 || len(s.Authenticators) != 2 {
		f.t.Errorf("after the race: version %d with %d authenticators, want %d with 2", s.Version, len(s.Authenticators), v+1)
	}
	if h := f.auditLen(); h != head+1 {
		f.t.Errorf("audit head %d after the race, want %d (one added event)", h, head+1)
	}
}

// testQuotaUnderConcurrency runs the loop a server runs (read the set,
// domain.Policy.Add, CreateAuthenticatorAt, retry on ErrConflict) in
// Concurrency goroutines per kind at once: exactly the quota is stored.
func testQuotaUnderConcurrency(f *fixture) {
	id := f.identity("id-1")
	add := func(kind device.Kind, aid string) error {
		ref := RefFor(kind, aid)
		// Each conflict means another add was stored; there are at most
		// five of them. The bound only keeps a broken store from hanging.
		for range 100 {
			set, err := f.s.AuthenticatorSet(f.ctx, id.ID)
			if err != nil {
				return err
			}
			c, err := f.p.Add(id, set.Authenticators, nil, domain.AddRequest{ID: aid, Kind: kind, Ref: ref}, sys, f.now)
			if err != nil {
				return err
			}
			err = f.s.CreateAuthenticatorAt(f.ctx, c, ElementFor(kind, aid), set.Version)
			if !errors.Is(err, store.ErrConflict) {
				return err
			}
		}
		return fmt.Errorf("add %s: conflicts without end", aid)
	}
	kinds := []device.Kind{device.KindApp, device.KindChip, device.KindCodeDisplay, device.KindAudioCodeReader}
	errs := race(len(kinds)*Concurrency/4, func(i int) error {
		return add(kinds[i%len(kinds)], fmt.Sprint("a-", i))
	})
	count := map[string]int{}
	for i, err := range errs {
		k := kinds[i%len(kinds)]
		q := string(k)
		if k == device.KindAudioCodeReader {
			q = string(device.KindCodeDisplay) // one quota for both
		}
		switch {
		case err == nil:
			count[q]++
		case !errors.Is(err, domain.ErrQuotaExceeded):
			f.t.Errorf("add %d (%s): %v, want nil or %q", i, k, err, domain.ErrQuotaExceeded)
		}
	}
	want := map[string]int{
		string(device.KindApp):         f.p.Quota(device.KindApp),
		string(device.KindChip):        f.p.Quota(device.KindChip),
		string(device.KindCodeDisplay): f.p.Quota(device.KindCodeDisplay),
	}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		f.t.Errorf("adds stored per quota: %v, want %v", count, want)
	}
	if n := len(f.set(id.ID).Authenticators); n != 5 {
		f.t.Errorf("%d authenticators stored, want 5", n)
	}
}

package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

func testIdentityCreateGet(f *fixture) {
	want := f.identity("id-1")
	got, err := f.s.Identity(f.ctx, "id-1")
	f.ok(err, "Identity")
	if !reflect.DeepEqual(normIdentity(got), normIdentity(want)) {
		f.t.Errorf("Identity:\n got  %+v\n want %+v", got, want)
	}
	recs := f.audit()
	if len(recs) != 1 || recs[0].Type != domain.EventIdentityCreated || recs[0].IdentityID != "id-1" {
		f.t.Errorf("audit after CreateIdentity: %+v, want one %s record", recs, domain.EventIdentityCreated)
	}
}

func testIdentityErrors(f *fixture) {
	f.identity("id-1")
	c, _ := domain.NewIdentity("id-1", sys, f.now)
	f.wantErr(f.s.CreateIdentity(f.ctx, c), store.ErrDuplicate, "CreateIdentity twice")
	_, err := f.s.Identity(f.ctx, "nobody")
	f.wantErr(err, store.ErrNotFound, "Identity(nobody)")

	bad := []domain.IdentityChange{
		{Identity: domain.Identity{State: domain.IdentityActive, Version: 1}},                   // no ID
		{Identity: domain.Identity{ID: "id-2", State: "zombie", Version: 1}},                    // bad state
		{Identity: domain.Identity{ID: "id-2", State: domain.IdentityActive}},                   // version 0
		{Identity: domain.Identity{ID: "id-2", State: domain.IdentityActive, Version: 1 << 63}}, // out of range
	}
	for i, c := range bad {
		f.wantErr(f.s.CreateIdentity(f.ctx, c), store.ErrInvalid, "CreateIdentity(bad %d)", i)
	}
	if _, err := f.s.Identity(f.ctx, "id-2"); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("a refused identity was stored: %v", err)
	}
}

func testIdentityUpdate(f *fixture) {
	id := f.identity("id-1")
	blocked, err := f.p.BlockIdentity(id, domain.Support("op-1"), domain.ReasonMisuse, f.now.Add(time.Minute))
	f.ok(err, "BlockIdentity")
	f.ok(f.s.UpdateIdentity(f.ctx, blocked), "UpdateIdentity")
	got, err := f.s.Identity(f.ctx, "id-1")
	f.ok(err, "Identity")
	if !reflect.DeepEqual(normIdentity(got), normIdentity(blocked.Identity)) {
		f.t.Errorf("after block:\n got  %+v\n want %+v", got, blocked.Identity)
	}
	// The same change again: the stored version is now 2.
	f.wantErr(f.s.UpdateIdentity(f.ctx, blocked), store.ErrConflict, "UpdateIdentity twice")
	// A change computed from a stale copy.
	stale, err := f.p.BlockIdentity(id, domain.Support("op-2"), domain.ReasonMisuse, f.now)
	f.ok(err, "BlockIdentity")
	f.wantErr(f.s.UpdateIdentity(f.ctx, stale), store.ErrConflict, "UpdateIdentity from stale version")

	unblocked, err := f.p.UnblockIdentity(got, domain.Support("op-1"), "checked", f.now.Add(time.Hour))
	f.ok(err, "UnblockIdentity")
	f.ok(f.s.UpdateIdentity(f.ctx, unblocked), "UpdateIdentity(unblock)")
	got, err = f.s.Identity(f.ctx, "id-1")
	f.ok(err, "Identity")
	if got.Version != 3 || got.State != domain.IdentityActive || !got.BlockedAt.IsZero() || got.BlockedBy != (domain.Actor{}) {
		f.t.Errorf("after unblock: %+v", got)
	}

	ghost := unblocked
	ghost.Identity.ID = "ghost"
	f.wantErr(f.s.UpdateIdentity(f.ctx, ghost), store.ErrNotFound, "UpdateIdentity(unknown)")
	v1 := blocked
	v1.Identity.Version = 1
	f.wantErr(f.s.UpdateIdentity(f.ctx, v1), store.ErrInvalid, "UpdateIdentity(version 1)")

	types := []domain.EventType{}
	for _, r := range f.audit() {
		types = append(types, r.Type)
	}
	want := []domain.EventType{domain.EventIdentityCreated, domain.EventIdentityBlocked, domain.EventIdentityUnblocked}
	if !reflect.DeepEqual(types, want) {
		f.t.Errorf("audit types %v, want %v (refused updates must not be audited)", types, want)
	}
}

func testIdentityConcurrentUpdate(f *fixture) {
	id := f.identity("id-1")
	errs := race(Concurrency, func(i int) error {
		c, err := f.p.BlockIdentity(id, domain.Support(fmt.Sprint("op-", i)), domain.ReasonMisuse, f.now)
		if err != nil {
			return err
		}
		return f.s.UpdateIdentity(f.ctx, c)
	})
	if wins := f.countWins(errs, store.ErrConflict, "concurrent UpdateIdentity"); wins != 1 {
		f.t.Errorf("%d of %d concurrent updates from one version won, want exactly 1", wins, Concurrency)
	}
	if n := len(f.audit()); n != 2 {
		f.t.Errorf("%d audit records, want 2 (created, one block)", n)
	}
}

func testAuthCreateGetList(f *fixture) {
	id := f.identity("id-1")
	f.identity("id-2")
	var want []domain.Authenticator
	for i, k := range device.Kinds {
		f.now = T0.Add(time.Duration(i) * time.Second)
		want = append(want, f.create("id-1", "a-"+string(k), k))
	}
	other := f.create("id-2", "b-chip", device.KindChip)
	for i, w := range want {
		got, err := f.s.Authenticator(f.ctx, w.ID)
		f.ok(err, "Authenticator %s", w.ID)
		f.sameAuth(got, w, "Authenticator "+w.ID)
		gotID, got, err := f.s.AuthenticatorWithIdentity(f.ctx, w.ID)
		f.ok(err, "AuthenticatorWithIdentity %s", w.ID)
		f.sameAuth(got, w, "AuthenticatorWithIdentity "+w.ID)
		if !reflect.DeepEqual(gotID, id) {
			f.t.Errorf("AuthenticatorWithIdentity %s: identity\n got  %+v\n want %+v", w.ID, gotID, id)
		}
		el, err := f.s.Element(f.ctx, w.ID)
		f.ok(err, "Element %s", w.ID)
		if wantEl := ElementFor(device.Kinds[i], w.ID); !reflect.DeepEqual(el, wantEl) {
			f.t.Errorf("Element %s:\n got  %s\n want %s", w.ID, showElement(el), showElement(wantEl))
		}
	}
	list, err := f.s.ListAuthenticators(f.ctx, id.ID)
	f.ok(err, "ListAuthenticators")
	if len(list) != len(want) {
		f.t.Fatalf("ListAuthenticators: %d authenticators, want %d", len(list), len(want))
	}
	for i := range list {
		f.sameAuth(list[i], want[i], fmt.Sprint("ListAuthenticators[", i, "]"))
	}
	list, err = f.s.ListAuthenticators(f.ctx, "id-2")
	f.ok(err, "ListAuthenticators(id-2)")
	if len(list) != 1 || list[0].ID != other.ID {
		f.t.Errorf("ListAuthenticators(id-2) = %+v", list)
	}
	list, err = f.s.ListAuthenticators(f.ctx, "nobody")
	if err != nil || len(list) != 0 {
		f.t.Errorf("ListAuthenticators(nobody) = %v, %v; want none", list, err)
	}
	_, err = f.s.Authenticator(f.ctx, "nothing")
	f.wantErr(err, store.ErrNotFound, "Authenticator(nothing)")
	_, _, err = f.s.AuthenticatorWithIdentity(f.ctx, "nothing")
	f.wantErr(err, store.ErrNotFound, "AuthenticatorWithIdentity(nothing)")
	_, err = f.s.Element(f.ctx, "nothing")
	f.wantErr(err, store.ErrNotFound, "Element(nothing)")
	if n := len(f.audit()); n != 2+len(want)+1 {
		f.t.Errorf("%d audit records, want %d", n, 2+len(want)+1)
	}
}

func showElement(e store.Element) string {
	switch {
	case e.Chip != nil:
		return fmt.Sprintf("chip %+v wiped %v", *e.Chip, e.WipedAt)
	case e.Code != nil:
		return fmt.Sprintf("code %+v wiped %v", *e.Code, e.WipedAt)
	case e.App != nil:
		return fmt.Sprintf("app %+v wiped %v", *e.App, e.WipedAt)
	case e.Password != nil:
		return fmt.Sprintf("password %+v wiped %v", *e.Password, e.WipedAt)
	}
	return fmt.Sprintf("%+v", e)
}

func testAuthCreateErrors(f *fixture) {
	f.identity("id-1")
	f.create("id-1", "a-1", device.KindChip)
	f.identity("id-9")
	head := f.auditLen()

	c := f.pending("nobody", "a-2", device.KindPassword, domain.Ref{})
	f.wantErr(f.s.CreateAuthenticator(f.ctx, c, ElementFor(device.KindPassword, "a-2")), store.ErrNotFound, "CreateAuthenticator for an unknown identity")

	// A taken ID, by its identity or another: the error says which value
	// collided (the key of the identity's authenticators, or the index of
	// all IDs).
	for _, owner := range []string{"id-1", "id-9"} {
		c = f.pending(owner, "a-1", device.KindPassword, domain.Ref{})
		err := f.s.CreateAuthenticator(f.ctx, c, ElementFor(device.KindPassword, "a-1"))
		f.wantErr(err, store.ErrDuplicate, "CreateAuthenticator for %s with a taken ID", owner)
		if err == nil || !strings.Contains(err.Error(), "the ID is taken") {
			f.t.Errorf("CreateAuthenticator for %s with a taken ID: %v, want it to say the ID is taken", owner, err)
		}
	}

	type badCase struct {
		name string
		c    domain.Change
		el   store.Element
	}
	pw := func() domain.Change { return f.pending("id-1", "a-3", device.KindPassword, domain.Ref{}) }
	code := func() domain.Change {
		return f.pending("id-1", "a-3", device.KindCodeDisplay, domain.Ref{Serial: "S-3"})
	}
	cases := []badCase{
		{"element of another kind", pw(), ElementFor(device.KindApp, "a-3")},
		{"no element", pw(), store.Element{}},
		{"two elements", pw(), store.Element{Password: &store.PasswordElement{Verifier: "v"}, App: &store.AppElement{PublicKey: []byte{1}, PINVerifier: "p"}}},
		{"empty verifier", pw(), store.Element{Password: &store.PasswordElement{}}},
		{"code without key ID", code(), store.Element{Code: &store.CodeElement{Secret: store.Sealed{Blob: []byte("x")}}}},
		{"code with 5 digits", code(), store.Element{Code: &store.CodeElement{Secret: store.Sealed{KeyID: "k", Blob: []byte("x")}, OTPParams: store.OTPParams{Digits: 5}}}},
		{"code with a fractional period", code(), store.Element{Code: &store.CodeElement{Secret: store.Sealed{KeyID: "k", Blob: []byte("x")}, OTPParams: store.OTPParams{Period: 1500 * time.Millisecond}}}},
		{"chip with a short AAGUID", f.pending("id-1", "a-3", device.KindChip, domain.Ref{CredentialID: "c-3"}), store.Element{Chip: &store.ChipElement{PublicKey: []byte{1}, AAGUID: []byte{1, 2}}}},
		{"chip without key", f.pending("id-1", "a-3", device.KindChip, domain.Ref{CredentialID: "c-3"}), store.Element{Chip: &store.ChipElement{}}},
	}
	versionZero := pw()
	versionZero.Authenticator.Version = 0
	cases = append(cases, badCase{"version 0", versionZero, ElementFor(device.KindPassword, "a-3")})
	withWipe := pw()
	withWipe.WipeSecret = true
	cases = append(cases, badCase{"a wipe", withWipe, ElementFor(device.KindPassword, "a-3")})
	unknownKind := pw()
	unknownKind.Authenticator.Kind = "abacus"
	cases = append(cases, badCase{"unknown kind", unknownKind, ElementFor(device.KindPassword, "a-3")})
	for _, tc := range cases {
		f.wantErr(f.s.CreateAuthenticator(f.ctx, tc.c, tc.el), store.ErrInvalid, "CreateAuthenticator with %s", tc.name)
	}
	if _, err := f.s.Authenticator(f.ctx, "a-3"); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("a refused authenticator was stored: %v", err)
	}
	if h := f.auditLen(); h != head {
		f.t.Errorf("refused creations were audited: head %d, want %d", h, head)
	}
}

func testAuthFind(f *fixture) {
	f.identity("id-1")
	f.identity("id-2")
	chip := f.create("id-1", "chip-1", device.KindChip)
	code := f.create("id-2", "code-1", device.KindCodeDisplay)
	f.create("id-2", "pw-1", device.KindPassword)
	for _, tc := range []struct {
		ref  domain.Ref
		want []string
	}{
		{domain.Ref{}, nil},
		{domain.Ref{Serial: code.Serial}, []string{"code-1"}},
		{domain.Ref{CredentialID: chip.CredentialID}, []string{"chip-1"}},
		{domain.Ref{Serial: chip.Serial}, []string{"chip-1"}},
		{domain.Ref{Serial: code.Serial, CredentialID: chip.CredentialID}, []string{"chip-1", "code-1"}},
		{domain.Ref{Serial: "none", CredentialID: "none"}, nil},
	} {
		got, err := f.s.FindAuthenticators(f.ctx, tc.ref)
		f.ok(err, "FindAuthenticators(%+v)", tc.ref)
		var ids []string
		for _, a := range got {
			ids = append(ids, a.ID)
		}
		if !sameSet(ids, tc.want) {
			f.t.Errorf("FindAuthenticators(%+v) = %v, want %v", tc.ref, ids, tc.want)
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func testCredentialUniqueForever(f *fixture) {
	id := f.identity("id-1")
	f.identity("id-2")
	chip := f.active(id, "chip-1", device.KindChip)
	dup := f.pending("id-2", "chip-2", device.KindChip, domain.Ref{CredentialID: chip.CredentialID})
	f.wantErr(f.s.CreateAuthenticator(f.ctx, dup, ElementFor(device.KindChip, "chip-2")), store.ErrDuplicate, "a credential ID in use")

	f.apply(f.p.Block(chip, domain.Owner("id-1", ""), domain.ReasonLost, f.now))
	f.wantErr(f.s.CreateAuthenticator(f.ctx, dup, ElementFor(device.KindChip, "chip-2")), store.ErrDuplicate, "a blocked credential ID")

	// The same physical chip (same serial) added again with a new credential.
	again := f.pending("id-1", "chip-3", device.KindChip, domain.Ref{CredentialID: "cred-new", Serial: chip.Serial})
	f.ok(f.s.CreateAuthenticator(f.ctx, again, ElementFor(device.KindChip, "chip-3")), "re-adding a blocked chip with a new credential")

	// A cancelled (removed) pending chip's credential ID stays taken too.
	f.apply(f.p.Cancel(again.Authenticator, sys, f.now))
	re := f.pending("id-2", "chip-4", device.KindChip, domain.Ref{CredentialID: "cred-new"})
	f.wantErr(f.s.CreateAuthenticator(f.ctx, re, ElementFor(device.KindChip, "chip-4")), store.ErrDuplicate, "a cancelled credential ID")

	// App keys are credentials too.
	app := f.create("id-1", "app-1", device.KindApp)
	reuse := f.pending("id-2", "app-2", device.KindApp, domain.Ref{CredentialID: app.CredentialID})
	f.wantErr(f.s.CreateAuthenticator(f.ctx, reuse, ElementFor(device.KindApp, "app-2")), store.ErrDuplicate, "an app key in use")
}

func testSerialInUseAndRevoked(f *fixture) {
	id := f.identity("id-1")
	f.identity("id-2")
	kv := f.active(id, "kv-1", device.KindCodeDisplay)
	for i, k := range []device.Kind{device.KindCodeDisplay, device.KindAudioCodeReader} {
		// Another identity may add the serial (pending: it proves
		// nothing yet), but never make it active beside kv.
		c := f.pending("id-2", fmt.Sprintf("kv-2%d", i), k, domain.Ref{Serial: kv.Serial})
		f.ok(f.s.CreateAuthenticator(f.ctx, c, ElementFor(k, "kv-2")), "a pending %s with a serial in use", k)
		act, err := f.p.Activate(domain.Identity{ID: "id-2", State: domain.IdentityActive, Version: 1}, c.Authenticator, sys, f.now)
		f.ok(err, "Activate")
		f.wantErr(f.s.ApplyChange(f.ctx, act), store.ErrDuplicate, "activating a %s with a serial in use", k)
		f.apply(f.p.Cancel(c.Authenticator, sys, f.now))
	}
	// Another quota may carry the same serial text (a chip's serial).
	chip := f.pending("id-2", "chip-1", device.KindChip, domain.Ref{CredentialID: "c-1", Serial: kv.Serial})
	f.ok(f.s.CreateAuthenticator(f.ctx, chip, ElementFor(device.KindChip, "chip-1")), "a chip whose serial equals a code device's")

	f.apply(f.p.Block(kv, domain.Support("op-1"), domain.ReasonCompromised, f.now))
	for _, k := range []device.Kind{device.KindCodeDisplay, device.KindAudioCodeReader} {
		c := f.pending("id-2", "kv-3", k, domain.Ref{Serial: kv.Serial})
		f.wantErr(f.s.CreateAuthenticator(f.ctx, c, ElementFor(k, "kv-3")), store.ErrDuplicate, "a %s with a revoked serial", k)
	}
	// A cancelled code device was never proven: its serial is free again.
	kv4 := f.create("id-2", "kv-4", device.KindAudioCodeReader)
	f.apply(f.p.Cancel(kv4, sys, f.now))
	again := f.pending("id-1", "kv-5", device.KindCodeDisplay, domain.Ref{Serial: kv4.Serial})
	f.ok(f.s.CreateAuthenticator(f.ctx, again, ElementFor(device.KindCodeDisplay, "kv-5")), "the serial of a cancelled code device")
}

func testAuthUpdate(f *fixture) {
	f.identity("id-1")
	a := f.create("id-1", "pw-1", device.KindPassword)
	n := a
	n.Label = "renamed"
	n.Version = 2
	f.ok(f.s.UpdateAuthenticator(f.ctx, n), "UpdateAuthenticator")
	got, err := f.s.Authenticator(f.ctx, "pw-1")
	f.ok(err, "Authenticator")
	f.sameAuth(got, n, "after UpdateAuthenticator")

	f.wantErr(f.s.UpdateAuthenticator(f.ctx, n), store.ErrConflict, "UpdateAuthenticator twice")
	ghost := n
	ghost.ID = "ghost"
	ghost.Version = 3
	f.wantErr(f.s.UpdateAuthenticator(f.ctx, ghost), store.ErrNotFound, "UpdateAuthenticator(unknown)")
	v1 := got
	v1.Version = 1
	f.wantErr(f.s.UpdateAuthenticator(f.ctx, v1), store.ErrInvalid, "UpdateAuthenticator(version 1)")

	for name, change := range map[string]func(*domain.Authenticator){
		"identity": func(a *domain.Authenticator) { a.IdentityID = "id-2" },
		"kind":     func(a *domain.Authenticator) { a.Kind = device.KindApp },
		"serial":   func(a *domain.Authenticator) { a.Serial = "new" },
	} {
		m := got
		m.Version = 3
		change(&m)
		f.wantErr(f.s.UpdateAuthenticator(f.ctx, m), store.ErrInvalid, "UpdateAuthenticator changing the %s", name)
	}
	got2, err := f.s.Authenticator(f.ctx, "pw-1")
	f.ok(err, "Authenticator")
	f.sameAuth(got2, n, "after refused updates")
}

func testAuthConcurrentUpdate(f *fixture) {
	id := f.identity("id-1")
	a := f.active(id, "pw-1", device.KindPassword)
	errs := race(Concurrency, func(i int) error {
		c, err := f.p.RecordFailure(a, domain.Failure{Cause: domain.CauseWrongPassword}, f.now)
		if err != nil {
			return err
		}
		return f.s.ApplyChange(f.ctx, c)
	})
	if wins := f.countWins(errs, store.ErrConflict, "concurrent ApplyChange"); wins != 1 {
		f.t.Errorf("%d of %d concurrent changes from one version won, want exactly 1", wins, Concurrency)
	}
	got, err := f.s.Authenticator(f.ctx, "pw-1")
	f.ok(err, "Authenticator")
	if got.Failures != 1 || got.Version != a.Version+1 {
		f.t.Errorf("after the race: failures %d version %d, want 1 and %d (no lost update, no double count)", got.Failures, got.Version, a.Version+1)
	}
	// Retrying from a reload is what callers do: it works.
	c, err := f.p.RecordFailure(got, domain.Failure{Cause: domain.CauseWrongPassword}, f.now)
	f.ok(err, "RecordFailure")
	f.ok(f.s.ApplyChange(f.ctx, c), "ApplyChange after reload")
}

func testApplyLifecycle(f *fixture) {
	id := f.identity("id-1")
	a := f.active(id, "app-1", device.KindApp)
	for range 3 {
		a = f.apply(f.p.RecordFailure(a, domain.Failure{Cause: domain.CauseWrongPIN}, f.now))
	}
	got, err := f.s.Authenticator(f.ctx, "app-1")
	f.ok(err, "Authenticator")
	f.sameAuth(got, a, "after three failures")
	if got.State != domain.StateSuspended {
		f.t.Errorf("state %s after three failures, want suspended", got.State)
	}
	pw := f.active(id, "pw-1", device.KindPassword)
	a = f.apply(f.p.Reactivate(id, got, domain.Owner("id-1", "pw-1"), []domain.Authenticator{pw}, f.now.Add(time.Minute)))
	got, err = f.s.Authenticator(f.ctx, "app-1")
	f.ok(err, "Authenticator")
	f.sameAuth(got, a, "after reactivation")
	a = f.apply(f.p.RecordSuccess(got, f.now.Add(2*time.Minute)))
	var types []domain.EventType
	for _, r := range f.audit() {
		if r.AuthenticatorID == "app-1" {
			types = append(types, r.Type)
		}
	}
	want := []domain.EventType{domain.EventAdded, domain.EventActivated,
		domain.EventLoginFailed, domain.EventLoginFailed, domain.EventLoginFailed, domain.EventSuspended,
		domain.EventReactivated, domain.EventLoginSucceeded}
	if !reflect.DeepEqual(types, want) {
		f.t.Errorf("audit of app-1: %v\nwant %v", types, want)
	}
}

func testApplyBlock(f *fixture) {
	id := f.identity("id-1")
	for _, k := range device.Kinds {
		aid := "a-" + string(k)
		a := f.active(id, aid, k)
		before, err := f.s.Element(f.ctx, aid)
		f.ok(err, "Element")
		c, err := f.p.Block(a, domain.Owner("id-1", ""), domain.ReasonLost, f.now.Add(time.Hour))
		f.ok(err, "Block")
		f.ok(f.s.ApplyChange(f.ctx, c), "ApplyChange(block %s)", k)

		got, err := f.s.Authenticator(f.ctx, aid)
		f.ok(err, "Authenticator")
		f.sameAuth(got, c.Authenticator, "blocked "+aid)
		el, err := f.s.Element(f.ctx, aid)
		f.ok(err, "Element after wipe")
		if el.WipedAt.IsZero() {
			f.t.Errorf("%s: WipedAt not set after a wipe", k)
		}
		checkWiped(f, k, before, el)

		ts, err := f.s.FindTombstones(f.ctx, a.Ref)
		f.ok(err, "FindTombstones")
		if k == device.KindPassword {
			ts, err = f.s.FindTombstones(f.ctx, domain.Ref{Serial: "none"})
			f.ok(err, "FindTombstones")
			if len(ts) != 0 {
				f.t.Errorf("FindTombstones(none) = %+v", ts)
			}
			continue
		}
		if len(ts) != 1 || !sameTombstone(ts[0], *c.Tombstone) {
			f.t.Errorf("%s: FindTombstones(%+v) = %+v, want [%+v]", k, a.Ref, ts, *c.Tombstone)
		}
	}
	blocked := 0
	for _, r := range f.audit() {
		if r.Type == domain.EventBlocked {
			blocked++
		}
	}
	if blocked != len(device.Kinds) {
		f.t.Errorf("%d %s records, want %d", blocked, domain.EventBlocked, len(device.Kinds))
	}
}

// checkWiped checks that after holds no key material of before and keeps
// the non-secret fields.
func checkWiped(f *fixture, k device.Kind, before, after store.Element) {
	f.t.Helper()
	switch k {
	case device.KindChip:
		b, a := before.Chip, after.Chip
		if a == nil || a.PublicKey != nil || !bytes.Equal(a.AAGUID, b.AAGUID) || a.SignCount != b.SignCount || a.AttestationFormat != b.AttestationFormat {
			f.t.Errorf("chip element after wipe: %s (before %s)", showElement(after), showElement(before))
		}
	case device.KindCodeDisplay, device.KindAudioCodeReader:
		b, a := before.Code, after.Code
		if a == nil || !a.Secret.IsZero() || a.OTPParams != b.OTPParams || a.HighestStep != b.HighestStep {
			f.t.Errorf("code element after wipe: %s (before %s)", showElement(after), showElement(before))
		}
	case device.KindApp:
		if a := after.App; a == nil || a.PublicKey != nil || a.PINVerifier != "" {
			f.t.Errorf("app element after wipe: %s", showElement(after))
		}
	case device.KindPassword:
		if a := after.Password; a == nil || a.Verifier != "" {
			f.t.Errorf("password element after wipe: %s", showElement(after))
		}
	}
}

func sameTombstone(a, b domain.Tombstone) bool {
	a.BlockedAt, b.BlockedAt = a.BlockedAt.UTC(), b.BlockedAt.UTC()
	return reflect.DeepEqual(a, b)
}

func testApplyCancel(f *fixture) {
	f.identity("id-1")
	a := f.create("id-1", "kv-1", device.KindCodeDisplay)
	c, err := f.p.Cancel(a, sys, f.now)
	f.ok(err, "Cancel")
	f.ok(f.s.ApplyChange(f.ctx, c), "ApplyChange(cancel)")
	_, err = f.s.Authenticator(f.ctx, "kv-1")
	f.wantErr(err, store.ErrNotFound, "Authenticator after cancel")
	_, err = f.s.Element(f.ctx, "kv-1")
	f.wantErr(err, store.ErrNotFound, "Element after cancel")
	f.wantErr(f.s.ApplyChange(f.ctx, c), store.ErrNotFound, "cancel twice")
	ts, err := f.s.FindTombstones(f.ctx, a.Ref)
	f.ok(err, "FindTombstones")
	if len(ts) != 0 {
		f.t.Errorf("a cancel left tombstones: %+v", ts)
	}
	recs := f.audit()
	if last := recs[len(recs)-1]; last.Type != domain.EventCancelled || last.AuthenticatorID != "kv-1" {
		f.t.Errorf("last audit record %+v, want %s of kv-1", last, domain.EventCancelled)
	}
}

func testApplyAtomic(f *fixture) {
	id := f.identity("id-1")
	a := f.active(id, "kv-1", device.KindCodeDisplay)
	elBefore, err := f.s.Element(f.ctx, "kv-1")
	f.ok(err, "Element")
	head := f.auditLen()

	check := func(what string) {
		f.t.Helper()
		got, err := f.s.Authenticator(f.ctx, "kv-1")
		f.ok(err, "Authenticator")
		f.sameAuth(got, a, what+": authenticator")
		el, err := f.s.Element(f.ctx, "kv-1")
		f.ok(err, "Element")
		if !reflect.DeepEqual(el, elBefore) {
			f.t.Errorf("%s: element %s, want %s", what, showElement(el), showElement(elBefore))
		}
		if h := f.auditLen(); h != head {
			f.t.Errorf("%s: audit head %d, want %d", what, h, head)
		}
	}

	// The audit step fails, after the update, the wipe and the tombstone.
	c, err := f.p.Block(a, domain.Support("op-1"), domain.ReasonCompromised, f.now)
	f.ok(err, "Block")
	c.Events = append(c.Events, domain.Event{Type: domain.EventBlocked, IdentityID: "id-1", AuthenticatorID: "kv-1", Reason: FailReason, At: f.now})
	err = f.s.ApplyChange(f.ctx, c)
	if !errors.Is(err, ErrInjected) {
		f.t.Errorf("ApplyChange with a failing audit event: %v, want %v", err, ErrInjected)
	}
	check("after a failed audit append")
	ts, err := f.s.FindTombstones(f.ctx, a.Ref)
	f.ok(err, "FindTombstones")
	if len(ts) != 0 {
		f.t.Errorf("a rolled-back block left a tombstone: %+v", ts)
	}

	// The tombstone step fails: one exists already.
	c, err = f.p.Block(a, domain.Support("op-1"), domain.ReasonCompromised, f.now)
	f.ok(err, "Block")
	f.ok(f.s.PutTombstone(f.ctx, *c.Tombstone), "PutTombstone")
	f.wantErr(f.s.ApplyChange(f.ctx, c), store.ErrDuplicate, "ApplyChange with a duplicate tombstone")
	check("after a failed tombstone insert")

	// A tombstone of another authenticator is refused before anything.
	c2 := c
	t2 := *c.Tombstone
	t2.AuthenticatorID = "other"
	c2.Tombstone = &t2
	f.wantErr(f.s.ApplyChange(f.ctx, c2), store.ErrInvalid, "ApplyChange with another authenticator's tombstone")
	check("after a refused tombstone")
}

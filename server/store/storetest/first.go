package storetest

import (
	"errors"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// first returns an authenticator to create, activated, with the identity
// id: the change of Add followed by Activate, and a fitting element.
func (f *fixture) first(id domain.Identity, aid string, kind device.Kind) store.NewAuthenticator {
	f.t.Helper()
	add := f.pending(id.ID, aid, kind, RefFor(kind, aid))
	act, err := f.p.Activate(id, add.Authenticator, sys, f.now)
	f.ok(err, "Activate %s", aid)
	return store.NewAuthenticator{
		Change:  domain.Change{Authenticator: act.Authenticator, Events: append(add.Events, act.Events...)},
		Element: ElementFor(kind, aid),
	}
}

// testIdentityCreateWith checks that CreateIdentity stores an identity
// with its first authenticators in one transaction: all of it, with the
// events in order, or, when any part is refused, nothing at all.
func testIdentityCreateWith(f *fixture) {
	c, err := domain.NewIdentity("id-1", sys, f.now)
	f.ok(err, "NewIdentity")
	pw := f.first(c.Identity, "pw-1", device.KindPassword)
	chip := f.first(c.Identity, "chip-1", device.KindChip)
	code := f.first(c.Identity, "kv-1", device.KindCodeDisplay)
	serial := code.Change.Authenticator.Serial
	im := store.Import{Serial: serial, Secret: store.Sealed{KeyID: "k1", Blob: []byte("SEALED-PSKC")},
		OTPParams: store.OTPParams{Digits: 6, Period: 30 * time.Second, Algorithm: otp.SHA1}, ImportedAt: f.now}
	f.ok(f.s.PutImport(f.ctx, im), "PutImport")

	f.ok(f.s.CreateIdentity(f.ctx, c, pw, chip, code), "CreateIdentity with three authenticators")
	got, err := f.s.Identity(f.ctx, "id-1")
	f.ok(err, "Identity")
	if normIdentity(got) != normIdentity(c.Identity) {
		f.t.Errorf("Identity:\n got  %+v\n want %+v", got, c.Identity)
	}
	f.wantSet("id-1", 3, "chip-1", "kv-1", "pw-1")
	for _, n := range []store.NewAuthenticator{pw, chip, code} {
		a := n.Change.Authenticator
		f.sameAuth(f.authenticator(a.ID), a, "Authenticator("+a.ID+")")
		if _, err := f.s.Element(f.ctx, a.ID); err != nil {
			f.t.Errorf("Element(%s): %v", a.ID, err)
		}
	}
	el, err := f.s.Element(f.ctx, "pw-1")
	f.ok(err, "Element(pw-1)")
	if el.Password == nil || el.Password.Verifier != pw.Element.Password.Verifier {
		f.t.Errorf("Element(pw-1) = %+v, want the verifier %q", el, pw.Element.Password.Verifier)
	}
	if _, err := f.s.Import(f.ctx, serial); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("the import of %s was not consumed: %v", serial, err)
	}
	var want []domain.Event
	want = append(want, c.Events...)
	for _, n := range []store.NewAuthenticator{pw, chip, code} {
		want = append(want, n.Change.Events...)
	}
	recs := f.audit()
	if len(recs) != len(want) {
		f.t.Fatalf("audit has %d records, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		if r.Type != want[i].Type || r.IdentityID != "id-1" || r.AuthenticatorID != want[i].AuthenticatorID {
			f.t.Errorf("audit record %d = %s %s/%s, want %s %s/%s", i+1, r.Type, r.IdentityID, r.AuthenticatorID,
				want[i].Type, want[i].IdentityID, want[i].AuthenticatorID)
		}
	}

	// Refusals: the identity, its authenticators, their elements and
	// events are all left out, and a waiting import stays.
	head := f.auditLen()
	c2, err := domain.NewIdentity("id-2", sys, f.now)
	f.ok(err, "NewIdentity")
	im2 := im
	im2.Serial = "serial-kv-2"
	f.ok(f.s.PutImport(f.ctx, im2), "PutImport")
	pw2 := f.first(c2.Identity, "pw-2", device.KindPassword)
	code2 := f.first(c2.Identity, "kv-2", device.KindCodeDisplay)
	dupCred := f.first(c2.Identity, "chip-2", device.KindChip)
	dupCred.Change.Authenticator.CredentialID = chip.Change.Authenticator.CredentialID
	takenID := f.first(c2.Identity, "pw-1", device.KindPassword)
	foreign := f.first(c.Identity, "pw-3", device.KindPassword)
	misfit := f.first(c2.Identity, "pw-4", device.KindPassword)
	misfit.Element = ElementFor(device.KindApp, "pw-4")
	for _, tc := range []struct {
		name  string
		c     domain.IdentityChange
		first []store.NewAuthenticator
		want  error
	}{
		{"a credential ID registered before", c2, []store.NewAuthenticator{pw2, code2, dupCred}, store.ErrDuplicate},
		{"an authenticator ID taken", c2, []store.NewAuthenticator{pw2, code2, takenID}, store.ErrDuplicate},
		{"the identity ID taken", c, []store.NewAuthenticator{f.first(c.Identity, "pw-5", device.KindPassword)}, store.ErrDuplicate},
		{"an authenticator of another identity", c2, []store.NewAuthenticator{pw2, foreign}, store.ErrInvalid},
		{"an element that does not fit", c2, []store.NewAuthenticator{pw2, misfit}, store.ErrInvalid},
	} {
		f.wantErr(f.s.CreateIdentity(f.ctx, tc.c, tc.first...), tc.want, "CreateIdentity with %s", tc.name)
		if _, err := f.s.Identity(f.ctx, "id-2"); !errors.Is(err, store.ErrNotFound) {
			f.t.Errorf("CreateIdentity with %s: the identity was stored (%v)", tc.name, err)
		}
		for _, aid := range []string{"pw-2", "kv-2", "chip-2", "pw-3", "pw-4", "pw-5"} {
			if _, err := f.s.Authenticator(f.ctx, aid); !errors.Is(err, store.ErrNotFound) {
				f.t.Errorf("CreateIdentity with %s: authenticator %s was stored (%v)", tc.name, aid, err)
			}
			if _, err := f.s.Element(f.ctx, aid); !errors.Is(err, store.ErrNotFound) {
				f.t.Errorf("CreateIdentity with %s: the element of %s was stored (%v)", tc.name, aid, err)
			}
		}
		if h := f.auditLen(); h != head {
			f.t.Errorf("CreateIdentity with %s: the audit head moved from %d to %d", tc.name, head, h)
		}
		if _, err := f.s.Import(f.ctx, im2.Serial); err != nil {
			f.t.Errorf("CreateIdentity with %s: the import of %s: %v", tc.name, im2.Serial, err)
		}
	}
	f.wantSet("id-1", 3, "chip-1", "kv-1", "pw-1")
	f.sameAuth(f.authenticator("pw-1"), pw.Change.Authenticator, "Authenticator(pw-1) after the refusals")

	// The refused identity can be created after all, without the culprit.
	f.ok(f.s.CreateIdentity(f.ctx, c2, pw2, code2), "CreateIdentity id-2")
	f.wantSet("id-2", 2, "kv-2", "pw-2")
	if _, err := f.s.Import(f.ctx, im2.Serial); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("the import of %s was not consumed: %v", im2.Serial, err)
	}
	f.audit()
}

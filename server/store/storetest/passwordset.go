package storetest

import (
	"fmt"
	"reflect"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// testSetWithPasswords checks AuthenticatorSetWithPasswords: the set is
// AuthenticatorSet's, and each password comes with its element as
// ElementOfKind reads it (a wiped one with its wipe), in the order of the
// set, every other authenticator with none.
func testSetWithPasswords(f *fixture) {
	id := f.identity("id-1")
	f.identity("id-2")
	check := func(identityID, when string) {
		f.t.Helper()
		set, els, err := f.s.AuthenticatorSetWithPasswords(f.ctx, identityID)
		f.ok(err, "AuthenticatorSetWithPasswords(%s) %s", identityID, when)
		if want := f.set(identityID); !reflect.DeepEqual(set, want) {
			f.t.Errorf("%s: AuthenticatorSetWithPasswords(%s) = %+v, AuthenticatorSet %+v", when, identityID, set, want)
		}
		if len(els) != len(set.Authenticators) {
			f.t.Fatalf("%s: %d elements for %d authenticators", when, len(els), len(set.Authenticators))
		}
		for i, a := range set.Authenticators {
			what := fmt.Sprintf("%s: the element of %s (%s)", when, a.ID, a.Kind)
			if a.Kind != device.KindPassword {
				if els[i] != nil {
					f.t.Errorf("%s = %+v, want none", what, *els[i])
				}
				continue
			}
			want, err := f.s.ElementOfKind(f.ctx, a.ID, a.Kind)
			f.ok(err, "ElementOfKind(%s)", a.ID)
			if els[i] == nil || !reflect.DeepEqual(*els[i], want) {
				f.t.Errorf("%s = %v, want %+v", what, els[i], want)
			}
		}
	}
	check("id-2", "without authenticators")
	_, _, err := f.s.AuthenticatorSetWithPasswords(f.ctx, "nobody")
	f.wantErr(err, store.ErrNotFound, "AuthenticatorSetWithPasswords(nobody)")

	f.active(id, "chip-1", device.KindChip)
	f.now = f.now.Add(time.Second)
	old := f.active(id, "pw-1", device.KindPassword)
	f.now = f.now.Add(time.Second)
	f.active(id, "code-1", device.KindCodeDisplay)
	check("id-1", "with a password between two devices")

	// The old password blocked (its verifier wiped), a new one added.
	f.now = f.now.Add(time.Second)
	f.apply(f.p.Block(old, sys, domain.ReasonLost, f.now))
	f.active(id, "pw-2", device.KindPassword)
	check("id-1", "with a blocked password and a new one")
	set, els, err := f.s.AuthenticatorSetWithPasswords(f.ctx, "id-1")
	f.ok(err, "AuthenticatorSetWithPasswords(id-1)")
	for i, a := range set.Authenticators {
		switch {
		case a.ID == "pw-1" && (els[i] == nil || els[i].WipedAt.IsZero() || els[i].Password.Verifier != ""):
			f.t.Errorf("the blocked password's element reads %+v, not wiped", els[i])
		case a.ID == "pw-2" && (els[i] == nil || els[i].Password.Verifier != ElementFor(device.KindPassword, "pw-2").Password.Verifier):
			f.t.Errorf("the new password's element reads %+v", els[i])
		}
	}
}

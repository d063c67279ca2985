package domain_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
)

// Three wrong PINs suspend an app; the owner reactivates it with their
// password; later they lose the phone and block the app for good.
func Example() {
	p := domain.DefaultPolicy()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	id := domain.Identity{ID: "id-1", State: domain.IdentityActive, Version: 1}
	pw := domain.Authenticator{ID: "pw-1", IdentityID: "id-1", Kind: device.KindPassword, State: domain.StateActive, Version: 1}

	c, _ := p.Add(id, []domain.Authenticator{pw}, nil, domain.AddRequest{
		ID: "app-1", Kind: device.KindApp, Ref: domain.Ref{CredentialID: "appkey-1"},
	}, domain.Owner("id-1", "pw-1"), now)
	c, _ = p.Activate(id, c.Authenticator, domain.Owner("id-1", "pw-1"), now)
	app := c.Authenticator

	for range 3 {
		c, _ = p.RecordFailure(app, domain.Failure{Cause: domain.CauseWrongPIN}, now)
		app = c.Authenticator
	}
	fmt.Println(app.State, c.Events[len(c.Events)-1].Type)

	err := p.CanLogin(id, app, now)
	fmt.Println(errors.Is(err, domain.ErrSuspended))

	c, _ = p.Reactivate(id, app, domain.Owner("id-1", "pw-1"), []domain.Authenticator{pw}, now)
	app = c.Authenticator
	fmt.Println(app.State, c.Events[0].Reason, "via", c.Events[0].Details["via"])

	c, _ = p.Block(app, domain.Owner("id-1", "pw-1"), domain.ReasonLost, now)
	fmt.Println(c.Authenticator.State, "wipe:", c.WipeSecret, "tombstone:", c.Tombstone.CredentialID)

	err = p.CheckAdd(id, []domain.Authenticator{pw, c.Authenticator}, device.KindApp, domain.Ref{CredentialID: "appkey-1"}, []domain.Tombstone{*c.Tombstone})
	fmt.Println(err)
	// Output:
	// suspended authenticator.suspended
	// true
	// active self-service via pw-1
	// blocked wipe: true tombstone: appkey-1
	// domain: cannot add app: this credential was permanently blocked and can never be used again; register the MitID app anew (a new app key)
}

// A blocked code display's serial number can never be added again.
func ExamplePolicy_CheckAdd() {
	var p domain.Policy // the zero Policy is the default
	id := domain.Identity{ID: "id-1", State: domain.IdentityActive}
	tomb := domain.Tombstone{IdentityID: "id-1", AuthenticatorID: "kv-1", Kind: device.KindCodeDisplay,
		Ref: domain.Ref{Serial: "K123"}, Reason: domain.ReasonLost}
	err := p.CheckAdd(id, nil, device.KindCodeDisplay, domain.Ref{Serial: "K123"}, []domain.Tombstone{tomb})
	fmt.Println(err)
	fmt.Println(errors.Is(err, domain.ErrSerialRevoked))
	// Output:
	// domain: cannot add code-display: this serial number was permanently blocked and can never be added again; order a new authenticator
	// true
}

package domain

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
)

// clock is a virtual clock: tests move it instead of sleeping.
type clock struct{ now time.Time }

func (c *clock) tick() time.Time { c.now = c.now.Add(time.Minute); return c.now }

// enrol adds and activates an authenticator for the identity and returns it.
func enrol(t *testing.T, p Policy, id Identity, existing []Authenticator, tombs []Tombstone, req AddRequest, now time.Time) Authenticator {
	t.Helper()
	c := ch(t)(p.Add(id, existing, tombs, req, Owner(id.ID, ""), now))
	if c.Authenticator.State != StatePending || !hasType(c.Events, EventAdded) {
		t.Fatalf("Add: %+v", c)
	}
	c = ch(t)(p.Activate(id, c.Authenticator, Owner(id.ID, ""), now))
	return c.Authenticator
}

// "If you enter your one time access code too many times, your
// authenticator will be temporarily blocked."
func TestScenarioThreeWrongCodesSuspend(t *testing.T) {
	p := DefaultPolicy()
	clk := &clock{now: t0}
	id := person()
	kv := enrol(t, p, id, nil, nil, AddRequest{ID: "kv-1", Kind: device.KindCodeDisplay, Ref: Ref{Serial: "K123"}}, clk.tick())

	wrong := Failure{Cause: CauseWrongCode}
	// Two wrong codes, then a right one: the count starts over.
	for range 2 {
		kv = ch(t)(p.RecordFailure(kv, wrong, clk.tick())).Authenticator
	}
	if kv.State != StateActive || kv.Failures != 2 {
		t.Fatalf("after 2 failures: %s, %d", kv.State, kv.Failures)
	}
	kv = ch(t)(p.RecordSuccess(kv, clk.tick())).Authenticator
	if kv.Failures != 0 || kv.LastUsedAt != clk.now {
		t.Fatalf("a success did not reset: %+v", kv)
	}
	// Three wrong codes in a row suspend it.
	var c Change
	for i := range 3 {
		if err := p.CanLogin(id, kv, clk.tick()); err != nil {
			t.Fatalf("attempt %d refused: %v", i+1, err)
		}
		c = ch(t)(p.RecordFailure(kv, wrong, clk.now))
		kv = c.Authenticator
	}
	if kv.State != StateSuspended || kv.Suspensions != 1 || kv.SuspendReason != ReasonFailures || kv.SuspendedAt != clk.now {
		t.Fatalf("after 3 failures: %+v", kv)
	}
	if got := types(c.Events); len(got) != 2 || got[0] != EventLoginFailed || got[1] != EventSuspended {
		t.Fatalf("events = %v", got)
	}
	if c.Events[0].Details["cause"] != "wrong-code" || c.Events[0].Details["failures"] != "3" {
		t.Errorf("failure event details = %v", c.Events[0].Details)
	}
	// The fourth attempt is refused before any code is checked.
	err := p.CanLogin(id, kv, clk.tick())
	te := refused(t, err, OpLogin, ErrSuspended)
	if !strings.Contains(err.Error(), "self-service") {
		t.Errorf("message %q does not say how to reactivate", err)
	}
	if e := te.Audit(System("login"), clk.now); e.Type != EventRefused || e.AuthenticatorID != "kv-1" {
		t.Errorf("audit of the refusal: %+v", e)
	}
	// MitID suspensions do not lift by themselves.
	if err := p.CanLogin(id, kv, clk.now.Add(365*24*time.Hour)); !errors.Is(err, ErrSuspended) {
		t.Errorf("a year later: %v", err)
	}
}

// "A temporarily suspended app can be reactivated on MitID.dk or you can
// contact MitID support."
func TestScenarioSelfServiceReactivation(t *testing.T) {
	p := DefaultPolicy()
	clk := &clock{now: t0}
	id := person()
	app := auth("app-1", device.KindApp, StateSuspended)
	pw := auth("pw-1", device.KindPassword, StateActive)
	chip := auth("chip-1", device.KindChip, StatePending)
	otherApp := auth("app-9", device.KindApp, StateActive)
	otherApp.IdentityID = "id-2"
	suspendedKV := auth("kv-1", device.KindCodeDisplay, StateSuspended)
	mine := []Authenticator{app, pw, chip, suspendedKV, otherApp}

	refusals := []struct {
		name string
		id   Identity
		by   Actor
		want error
	}{
		{"no proof", id, Owner("id-1", ""), ErrSelfServiceRefused},
		{"the same authenticator", id, Owner("id-1", "app-1"), ErrSelfServiceRefused},
		{"a pending proof", id, Owner("id-1", "chip-1"), ErrSelfServiceRefused},
		{"a suspended proof", id, Owner("id-1", "kv-1"), ErrSelfServiceRefused},
		{"another identity's authenticator", id, Owner("id-1", "app-9"), ErrSelfServiceRefused},
		{"an unknown authenticator", id, Owner("id-1", "nope"), ErrSelfServiceRefused},
		{"a session of another identity", id, Owner("id-2", "app-9"), ErrNotAllowed},
		{"the system", id, System("cron"), ErrNotAllowed},
		{"support without an operator ID", id, Support(""), ErrNotAllowed},
		{"a blocked identity", Identity{ID: "id-1", State: IdentityBlocked}, Owner("id-1", "pw-1"), ErrIdentityBlocked},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			_, err := p.Reactivate(r.id, app, r.by, mine, clk.tick())
			refused(t, err, OpReactivate, r.want)
		})
	}

	c := ch(t)(p.Reactivate(id, app, Owner("id-1", "pw-1"), mine, clk.tick()))
	if c.Authenticator.State != StateActive || c.Authenticator.Failures != 0 || c.Authenticator.Suspensions != 1 {
		t.Fatalf("reactivated: %+v", c.Authenticator)
	}
	e := c.Events[0]
	if e.Type != EventReactivated || e.Reason != "self-service" || e.Details["via"] != "pw-1" || e.Actor != Owner("id-1", "pw-1") {
		t.Errorf("audit: %+v", e)
	}

	// Support reactivates too, and says so.
	c = ch(t)(p.Reactivate(id, app, Support("op-7"), nil, clk.tick()))
	if e := c.Events[0]; e.Reason != "support" || e.Actor.ID != "op-7" {
		t.Errorf("audit: %+v", e)
	}

	// A suspension support imposed is lifted by support only.
	app2 := ch(t)(p.Suspend(pw, Support("op-7"), ReasonMisuse, clk.tick())).Authenticator
	_, err := p.Reactivate(id, app2, Owner("id-1", "app-1"), []Authenticator{c.Authenticator}, clk.tick())
	if te := refused(t, err, OpReactivate, ErrSelfServiceRefused); !strings.Contains(te.Error(), "contact support") {
		t.Errorf("message: %v", te)
	}
	// The owner cannot impose a temporary block; they block for good.
	_, err = p.Suspend(pw, Owner("id-1", "app-1"), ReasonLost, clk.tick())
	refused(t, err, OpSuspend, ErrNotAllowed)
}

// "finally blocked if a wrong PIN code is continuously being entered";
// "If your MitID app or password are permanently blocked, you will not be
// able to use them again. You have to get a new MitID app or password."
func TestScenarioThreeSuspensionsBlockForGood(t *testing.T) {
	p := DefaultPolicy()
	clk := &clock{now: t0}
	id := person()
	app := enrol(t, p, id, nil, nil, AddRequest{ID: "app-1", Kind: device.KindApp, Ref: Ref{CredentialID: "appkey-1"}}, clk.tick())
	pw := enrol(t, p, id, []Authenticator{app}, nil, AddRequest{ID: "pw-1", Kind: device.KindPassword}, clk.tick())

	var last Change
	for round := 1; round <= 3; round++ {
		for range 3 {
			last = ch(t)(p.RecordFailure(app, Failure{Cause: CauseWrongPIN}, clk.tick()))
			app = last.Authenticator
		}
		if round < 3 {
			if app.State != StateSuspended || app.Suspensions != round {
				t.Fatalf("round %d: %+v", round, app)
			}
			// A success in between does not forgive earlier suspensions.
			app = ch(t)(p.Reactivate(id, app, Owner("id-1", "pw-1"), []Authenticator{pw}, clk.tick())).Authenticator
			app = ch(t)(p.RecordSuccess(app, clk.tick())).Authenticator
		}
	}
	if app.State != StateBlocked || app.BlockReason != ReasonEscalation || app.Suspensions != 3 {
		t.Fatalf("after the 3rd suspension: %+v", app)
	}
	if got := types(last.Events); len(got) != 2 || got[1] != EventBlocked || last.Events[1].Reason != "escalation" {
		t.Fatalf("events: %v", last.Events)
	}
	if !last.WipeSecret || last.Tombstone == nil || last.Tombstone.CredentialID != "appkey-1" || last.Tombstone.Reason != ReasonEscalation {
		t.Fatalf("effects: wipe %v, tombstone %+v", last.WipeSecret, last.Tombstone)
	}
	// Nobody brings it back.
	_, err := p.Reactivate(id, app, Support("op-7"), nil, clk.tick())
	if te := refused(t, err, OpReactivate, ErrBlocked); !strings.Contains(te.Error(), "new MitID app") {
		t.Errorf("message %q does not say to get a new app", te)
	}
	// The old app key is refused forever; a new registration is fine.
	all := []Authenticator{app, pw}
	tombs := []Tombstone{*last.Tombstone}
	err = p.CheckAdd(id, all, device.KindApp, Ref{CredentialID: "appkey-1"}, tombs)
	refused(t, err, OpAdd, ErrCredentialRevoked)
	enrol(t, p, id, all, tombs, AddRequest{ID: "app-2", Kind: device.KindApp, Ref: Ref{CredentialID: "appkey-2"}}, clk.tick())

	// A blocked password: a new password may be added.
	pwc := ch(t)(p.Block(pw, Owner("id-1", "app-2"), ReasonCompromised, clk.tick()))
	if !pwc.WipeSecret || pwc.Tombstone == nil {
		t.Fatalf("password block: %+v", pwc)
	}
	all = []Authenticator{app, pwc.Authenticator}
	enrol(t, p, id, all, append(tombs, *pwc.Tombstone), AddRequest{ID: "pw-2", Kind: device.KindPassword}, clk.tick())
}

// "If your MitID chip is permanently blocked, you will be able to use the
// physical chip again and add it as a new MitID authenticator ... When the
// same MitID chip is added again, then a new security element is created."
func TestScenarioChipBlockedAndAddedAgain(t *testing.T) {
	p := DefaultPolicy()
	clk := &clock{now: t0}
	id := person()
	chipRef := Ref{Serial: "FIDO-42", CredentialID: EncodeCredentialID([]byte{1, 2, 3, 4})}
	chip := enrol(t, p, id, nil, nil, AddRequest{ID: "chip-1", Kind: device.KindChip, Ref: chipRef, Label: "keyring"}, clk.tick())

	// The owner lost it and blocks it: the security element goes.
	c := ch(t)(p.Block(chip, Owner("id-1", "chip-1"), ReasonLost, clk.tick()))
	if c.Authenticator.State != StateBlocked || !c.WipeSecret {
		t.Fatalf("block: %+v", c)
	}
	tomb := c.Tombstone
	want := Tombstone{IdentityID: "id-1", AuthenticatorID: "chip-1", Kind: device.KindChip, Ref: chipRef,
		Reason: ReasonLost, BlockedAt: clk.now, By: Owner("id-1", "chip-1")}
	if tomb == nil || *tomb != want {
		t.Fatalf("tombstone = %+v, want %+v", tomb, want)
	}
	if tomb.RevokesSerial() {
		t.Error("a chip tombstone revokes the serial")
	}
	if e := c.Events[0]; e.Details["credential_id"] != chipRef.CredentialID || e.Details["serial"] != "FIDO-42" || e.Reason != "lost" {
		t.Errorf("audit: %+v", e)
	}

	// The chip is found again: the same physical chip, a new credential.
	all := []Authenticator{c.Authenticator}
	tombs := []Tombstone{*tomb}
	newRef := Ref{Serial: "FIDO-42", CredentialID: EncodeCredentialID([]byte{9, 9, 9})}
	chip2 := enrol(t, p, id, all, tombs, AddRequest{ID: "chip-2", Kind: device.KindChip, Ref: newRef}, clk.tick())
	if chip2.State != StateActive {
		t.Fatalf("re-added chip: %+v", chip2)
	}

	// The old credential ID stays refused, for this identity and others,
	// with or without the tombstone at hand.
	for _, tc := range []struct {
		name  string
		id    Identity
		all   []Authenticator
		tombs []Tombstone
	}{
		{"tombstone", id, []Authenticator{chip2}, tombs},
		{"blocked record", id, all, nil},
		{"another identity", Identity{ID: "id-2", State: IdentityActive}, nil, tombs},
	} {
		err := p.CheckAdd(tc.id, tc.all, device.KindChip, Ref{CredentialID: chipRef.CredentialID}, tc.tombs)
		if te := refused(t, err, OpAdd, ErrCredentialRevoked); !strings.Contains(te.Error(), "new credential") {
			t.Errorf("%s: message %q", tc.name, te)
		}
	}
}

// "If your MitID code display or your MitID audio code reader is blocked,
// you will not be able to use it again. You are required to order a new
// authenticator."
func TestScenarioBlockedCodeDeviceSerialRefused(t *testing.T) {
	p := DefaultPolicy()
	clk := &clock{now: t0}
	id := person()
	kv := enrol(t, p, id, nil, nil, AddRequest{ID: "kv-1", Kind: device.KindCodeDisplay, Ref: Ref{Serial: "K123"}}, clk.tick())
	c := ch(t)(p.Block(kv, Owner("id-1", "pw-1"), ReasonCompromised, clk.tick()))
	if !c.WipeSecret || c.Tombstone == nil || !c.Tombstone.RevokesSerial() {
		t.Fatalf("block: %+v", c)
	}
	tombs := []Tombstone{*c.Tombstone}
	all := []Authenticator{c.Authenticator}
	for _, tc := range []struct {
		name string
		id   Identity
		kind device.Kind
	}{
		{"same serial", id, device.KindCodeDisplay},
		{"as an audio code reader", id, device.KindAudioCodeReader},
		{"by another identity", Identity{ID: "id-2", State: IdentityActive}, device.KindCodeDisplay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Add(tc.id, all, tombs, AddRequest{ID: "kv-2", Kind: tc.kind, Ref: Ref{Serial: "K123"}}, Owner(tc.id.ID, ""), clk.tick())
			refused(t, err, OpAdd, ErrSerialRevoked)
			if !strings.Contains(err.Error(), "order a new authenticator") {
				t.Errorf("message %q does not tell the person to order a new authenticator", err)
			}
		})
	}
	// Without the tombstone, the blocked record is enough.
	refused(t, p.CheckAdd(id, all, device.KindCodeDisplay, Ref{Serial: "K123"}, nil), OpAdd, ErrSerialRevoked)
	// A new device with another serial is welcome.
	enrol(t, p, id, all, tombs, AddRequest{ID: "kv-2", Kind: device.KindAudioCodeReader, Ref: Ref{Serial: "A777"}}, clk.tick())
}

// DESIGN §1 quotas: at most 3 apps, one code device (display or audio
// reader), one chip; pending and suspended ones count, blocked ones do not.
func TestScenarioQuotas(t *testing.T) {
	id := person()
	app := func(i string, s State) Authenticator { return auth("app-"+i, device.KindApp, s) }
	tests := []struct {
		name     string
		p        Policy
		existing []Authenticator
		kind     device.Kind
		ref      Ref
		want     error
	}{
		{"first app", Policy{}, nil, device.KindApp, Ref{CredentialID: "k"}, nil},
		{"third app", Policy{}, []Authenticator{app("1", StateActive), app("2", StateActive)}, device.KindApp, Ref{CredentialID: "k"}, nil},
		{"fourth app", Policy{}, []Authenticator{app("1", StateActive), app("2", StateSuspended), app("3", StatePending)}, device.KindApp, Ref{CredentialID: "k"}, ErrQuotaExceeded},
		{"fourth app, one blocked", Policy{}, []Authenticator{app("1", StateActive), app("2", StateActive), app("3", StateBlocked)}, device.KindApp, Ref{CredentialID: "k"}, nil},
		{"other identity's apps do not count", Policy{}, func() []Authenticator {
			as := []Authenticator{app("1", StateActive), app("2", StateActive), app("3", StateActive)}
			for i := range as {
				as[i].IdentityID = "id-2"
			}
			return as
		}(), device.KindApp, Ref{CredentialID: "k"}, nil},
		{"fourth app, policy allows 4", Policy{MaxApps: 4}, []Authenticator{app("1", StateActive), app("2", StateActive), app("3", StateActive)}, device.KindApp, Ref{CredentialID: "k"}, nil},
		{"apps unlimited", Policy{MaxApps: -1}, []Authenticator{app("1", StateActive), app("2", StateActive), app("3", StateActive)}, device.KindApp, Ref{CredentialID: "k"}, nil},
		{"audio reader next to a display", Policy{}, []Authenticator{auth("kv", device.KindCodeDisplay, StateActive)}, device.KindAudioCodeReader, Ref{Serial: "A1"}, ErrQuotaExceeded},
		{"display next to a pending display", Policy{}, []Authenticator{auth("kv", device.KindCodeDisplay, StatePending)}, device.KindCodeDisplay, Ref{Serial: "K2"}, ErrQuotaExceeded},
		{"display next to a blocked display", Policy{}, []Authenticator{auth("kv", device.KindCodeDisplay, StateBlocked)}, device.KindCodeDisplay, Ref{Serial: "K2"}, nil},
		{"display next to a chip and apps", Policy{}, []Authenticator{auth("c", device.KindChip, StateActive), app("1", StateActive)}, device.KindCodeDisplay, Ref{Serial: "K2"}, nil},
		{"second chip", Policy{}, []Authenticator{auth("c", device.KindChip, StateSuspended)}, device.KindChip, Ref{CredentialID: "new"}, ErrQuotaExceeded},
		{"second password", Policy{}, []Authenticator{auth("pw", device.KindPassword, StateActive)}, device.KindPassword, Ref{}, ErrQuotaExceeded},
		{"same serial already mine", Policy{MaxCodeDevices: 2}, []Authenticator{auth("kv", device.KindCodeDisplay, StateActive)}, device.KindCodeDisplay, Ref{Serial: "SN-kv"}, ErrAlreadyAdded},
		{"same credential elsewhere", Policy{}, []Authenticator{func() Authenticator {
			a := auth("c", device.KindChip, StateActive)
			a.IdentityID = "id-2"
			return a
		}()}, device.KindChip, Ref{CredentialID: "cred-c"}, ErrAlreadyAdded},
		{"same chip serial, chips unlimited", Policy{MaxChips: -1}, []Authenticator{func() Authenticator {
			a := auth("c", device.KindChip, StateActive)
			a.Serial = "FIDO-1"
			return a
		}()}, device.KindChip, Ref{Serial: "FIDO-1", CredentialID: "other"}, ErrAlreadyAdded},
		{"code device without serial", Policy{}, nil, device.KindCodeDisplay, Ref{}, ErrInvalid},
		{"chip without credential", Policy{}, nil, device.KindChip, Ref{Serial: "FIDO-1"}, ErrInvalid},
		{"app without key", Policy{}, nil, device.KindApp, Ref{}, ErrInvalid},
		{"unknown kind", Policy{}, nil, "toaster", Ref{Serial: "T"}, ErrInvalid},
		{"malformed existing record", Policy{}, []Authenticator{{ID: "x"}}, device.KindPassword, Ref{}, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.CheckAdd(id, tc.existing, tc.kind, tc.ref, nil)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == ErrQuotaExceeded && !strings.Contains(err.Error(), "block (or cancel) one first") {
				t.Errorf("message %q does not say what to do", err)
			}
		})
	}

	// Replacing a code display: cancel the pending mistake, then add.
	p := DefaultPolicy()
	typo := ch(t)(p.Add(id, nil, nil, AddRequest{ID: "kv-typo", Kind: device.KindCodeDisplay, Ref: Ref{Serial: "K12"}}, Owner("id-1", ""), t0)).Authenticator
	refused(t, p.CheckAdd(id, []Authenticator{typo}, device.KindCodeDisplay, Ref{Serial: "K123"}, nil), OpAdd, ErrQuotaExceeded)
	c := ch(t)(p.Cancel(typo, Owner("id-1", ""), t0))
	if !c.Remove || c.Tombstone != nil {
		t.Fatalf("cancel: %+v", c)
	}
	if err := p.CheckAdd(id, nil, device.KindCodeDisplay, Ref{Serial: "K12"}, nil); err != nil {
		t.Fatalf("a cancelled serial is refused: %v", err)
	}
}

// "The whole identity can be temporarily blocked on suspected misuse; only
// support lifts that."
func TestScenarioIdentityBlock(t *testing.T) {
	p := DefaultPolicy()
	clk := &clock{now: t0}
	ic := idc(t)(NewIdentity("id-1", Support("op-1"), clk.tick()))
	id := ic.Identity
	if id.State != IdentityActive || id.Version != 1 || ic.Events[0].Type != EventIdentityCreated {
		t.Fatalf("new identity: %+v", ic)
	}
	app := auth("app-1", device.KindApp, StateActive)
	pw := auth("pw-1", device.KindPassword, StateActive)
	sus := auth("app-2", device.KindApp, StateSuspended)
	pend := auth("kv-1", device.KindCodeDisplay, StatePending)

	ic = idc(t)(p.BlockIdentity(id, System("misuse-detector"), ReasonMisuse, clk.tick()))
	blocked := ic.Identity
	if blocked.State != IdentityBlocked || blocked.BlockedReason != ReasonMisuse || blocked.BlockedBy != System("misuse-detector") {
		t.Fatalf("blocked identity: %+v", blocked)
	}

	// No login succeeds, with any authenticator.
	for _, a := range []Authenticator{app, pw} {
		err := p.CanLogin(blocked, a, clk.tick())
		if te := refused(t, err, OpLogin, ErrIdentityBlocked); !strings.Contains(te.Error(), "contact support") {
			t.Errorf("message %q", te)
		}
	}
	// Self-service is refused: reactivation, adding, activating.
	_, err := p.Reactivate(blocked, sus, Owner("id-1", "pw-1"), []Authenticator{pw}, clk.tick())
	refused(t, err, OpReactivate, ErrIdentityBlocked)
	_, err = p.Add(blocked, nil, nil, AddRequest{ID: "app-3", Kind: device.KindApp, Ref: Ref{CredentialID: "k3"}}, Owner("id-1", "pw-1"), clk.tick())
	refused(t, err, OpAdd, ErrIdentityBlocked)
	_, err = p.Activate(blocked, pend, Owner("id-1", "pw-1"), clk.tick())
	refused(t, err, OpActivate, ErrIdentityBlocked)
	// Blocking a lost authenticator stays possible: it only takes access away.
	ch(t)(p.Block(app, Support("op-7"), ReasonLost, clk.tick()))

	// Only support lifts the block.
	for _, by := range []Actor{Owner("id-1", "pw-1"), System("misuse-detector"), Support("")} {
		_, err := p.UnblockIdentity(blocked, by, "", clk.tick())
		refused(t, err, OpUnblockIdentity, ErrNotAllowed)
	}
	ic = idc(t)(p.UnblockIdentity(blocked, Support("op-7"), "verified in person", clk.tick()))
	if ic.Identity.State != IdentityActive || ic.Identity.BlockedReason != "" || ic.Identity.Version != blocked.Version+1 {
		t.Fatalf("unblocked: %+v", ic.Identity)
	}
	if e := ic.Events[0]; e.Type != EventIdentityUnblocked || e.Reason != "verified in person" || e.Details["blocked_reason"] != "misuse" {
		t.Errorf("audit: %+v", e)
	}
	if err := p.CanLogin(ic.Identity, app, clk.tick()); err != nil {
		t.Errorf("login after the block was lifted: %v", err)
	}
	// An authenticator of another identity is never accepted.
	other := app
	other.IdentityID = "id-2"
	refused(t, p.CanLogin(ic.Identity, other, clk.tick()), OpLogin, ErrNotAllowed)
}

// Policy.SuspensionExpiry and Policy.ActivationDelay on a virtual clock.
func TestScenarioTimedRules(t *testing.T) {
	p := Policy{SuspensionExpiry: 30 * time.Minute, ActivationDelay: 72 * time.Hour}
	id := person()
	add := ch(t)(p.Add(id, nil, nil, AddRequest{ID: "app-1", Kind: device.KindApp, Ref: Ref{CredentialID: "k"}}, Owner("id-1", ""), t0))
	_, err := p.Activate(id, add.Authenticator, Owner("id-1", ""), t0.Add(71*time.Hour))
	if te := refused(t, err, OpActivate, ErrTooEarly); !strings.Contains(te.Error(), "2025-03-04T12:00:00Z") {
		t.Errorf("message %q does not say when", te)
	}
	app := ch(t)(p.Activate(id, add.Authenticator, Owner("id-1", ""), t0.Add(72*time.Hour))).Authenticator

	now := t0.Add(100 * time.Hour)
	for range 3 {
		app = ch(t)(p.RecordFailure(app, Failure{Cause: CauseWrongPIN}, now)).Authenticator
	}
	refused(t, p.CanLogin(id, app, now.Add(29*time.Minute)), OpLogin, ErrSuspended)
	if err := p.CanLogin(id, app, now.Add(30*time.Minute)); err != nil {
		t.Fatalf("after the expiry: %v", err)
	}
	c := ch(t)(p.RecordSuccess(app, now.Add(31*time.Minute)))
	if got := types(c.Events); len(got) != 2 || got[0] != EventSuspensionExpired {
		t.Errorf("events = %v", got)
	}
	if c.Authenticator.State != StateActive || c.Authenticator.SuspendReason != "" || !c.Authenticator.SuspendedAt.IsZero() {
		t.Errorf("after the expiry: %+v", c.Authenticator)
	}
}

// Who may do what, apart from the state rules.
func TestActors(t *testing.T) {
	p := DefaultPolicy()
	a := auth("app-1", device.KindApp, StateActive)
	stranger := Owner("id-2", "x")
	checks := []struct {
		name string
		op   Op
		err  error
	}{
		{"block by a stranger", OpBlock, func() error { _, err := p.Block(a, stranger, ReasonLost, t0); return err }()},
		{"block without reason", OpBlock, func() error { _, err := p.Block(a, Support("op"), "", t0); return err }()},
		{"block with a reserved reason", OpBlock, func() error { _, err := p.Block(a, Support("op"), ReasonEscalation, t0); return err }()},
		{"block by nobody", OpBlock, func() error { _, err := p.Block(a, Actor{}, ReasonLost, t0); return err }()},
		{"suspend with a reserved reason", OpSuspend, func() error { _, err := p.Suspend(a, Support("op"), ReasonFailures, t0); return err }()},
		{"cancel by a stranger", OpCancel, func() error { _, err := p.Cancel(a, stranger, t0); return err }()},
		{"activate by a stranger", OpActivate, func() error {
			_, err := p.Activate(person(), auth("x", device.KindApp, StatePending), stranger, t0)
			return err
		}()},
		{"add for a stranger", OpAdd, func() error {
			_, err := p.Add(person(), nil, nil, AddRequest{ID: "n", Kind: device.KindPassword}, stranger, t0)
			return err
		}()},
		{"add without ID", OpAdd, func() error {
			_, err := p.Add(person(), nil, nil, AddRequest{Kind: device.KindPassword}, Support("op"), t0)
			return err
		}()},
		{"add with a taken ID", OpAdd, func() error {
			_, err := p.Add(person(), []Authenticator{a}, nil, AddRequest{ID: "app-1", Kind: device.KindPassword}, Support("op"), t0)
			return err
		}()},
	}
	want := map[string]error{
		"block without reason": ErrInvalid, "block with a reserved reason": ErrInvalid,
		"suspend with a reserved reason": ErrInvalid, "add without ID": ErrInvalid, "add with a taken ID": ErrAlreadyAdded,
	}
	for _, c := range checks {
		w, ok := want[c.name]
		if !ok {
			w = ErrNotAllowed
		}
		t.Run(c.name, func(t *testing.T) { refused(t, c.err, c.op, w) })
	}
	// Support may act while the identity is blocked.
	blocked := person()
	blocked.State = IdentityBlocked
	c := ch(t)(p.Add(blocked, nil, nil, AddRequest{ID: "pw-1", Kind: device.KindPassword}, Support("op"), t0))
	ch(t)(p.Activate(blocked, c.Authenticator, Support("op"), t0))
}

package domain

import (
	"testing"
	"time"

	"github.com/authbench/authbench/device"
)

// An anonymous caller (one who knows only the identity ID) can suspend the
// password with wrong guesses, as the seed allows, but however often the
// owner reactivates it, the suspensions such guesses cause never make the
// block permanent and never wipe the verifier.
func TestAnonymousFailuresNeverEscalate(t *testing.T) {
	p := DefaultPolicy()
	clk := &clock{now: t0}
	id := person()
	app := enrol(t, p, id, nil, nil, AddRequest{ID: "app-1", Kind: device.KindApp, Ref: Ref{CredentialID: "appkey-1"}}, clk.tick())
	pw := enrol(t, p, id, []Authenticator{app}, nil, AddRequest{ID: "pw-1", Kind: device.KindPassword}, clk.tick())
	for round := 1; round <= 10; round++ {
		var last Change
		for range p.Failures() {
			last = ch(t)(p.RecordFailure(pw, Failure{Cause: CauseWrongPassword, Anonymous: true}, clk.tick()))
			pw = last.Authenticator
		}
		if pw.State != StateSuspended || pw.Suspensions != 0 || last.WipeSecret || last.Tombstone != nil {
			t.Fatalf("round %d: %+v (wipe %v)", round, pw, last.WipeSecret)
		}
		ev := last.Events[len(last.Events)-1]
		if ev.Type != EventSuspended || ev.Details["escalation"] == "" {
			t.Fatalf("round %d: the suspension's event does not say it is not counted: %+v", round, ev)
		}
		pw = ch(t)(p.Reactivate(id, pw, Owner("id-1", "app-1"), []Authenticator{app}, clk.tick())).Authenticator
	}
	// The same number of failures by a caller who had proven another
	// factor escalates as the seed says.
	for round := 1; round <= 3; round++ {
		for range p.Failures() {
			pw = ch(t)(p.RecordFailure(pw, Failure{Cause: CauseWrongPassword}, clk.tick())).Authenticator
		}
		if round < 3 {
			pw = ch(t)(p.Reactivate(id, pw, Owner("id-1", "app-1"), []Authenticator{app}, clk.tick())).Authenticator
		}
	}
	if pw.State != StateBlocked || pw.BlockReason != ReasonEscalation {
		t.Fatalf("after three counted suspensions: %+v", pw)
	}
}

// A session proven with two factors vouches for reactivating a third
// authenticator only when both are active and neither is the one to
// reactivate.
func TestSelfServiceWithTwoFactors(t *testing.T) {
	p := DefaultPolicy()
	id := person()
	pw := auth("pw-1", device.KindPassword, StateActive)
	kv := auth("kv-1", device.KindCodeDisplay, StateActive)
	chip := auth("chip-1", device.KindChip, StateSuspended)
	others := []Authenticator{pw, kv, chip}
	now := t0.Add(2 * time.Hour)
	by := Owner("id-1", "pw-1", "kv-1")
	if by.Via != "pw-1+kv-1" || len(by.Proofs()) != 2 {
		t.Fatalf("Owner via = %q, proofs %v", by.Via, by.Proofs())
	}
	c := ch(t)(p.Reactivate(id, chip, by, others, now))
	if c.Authenticator.State != StateActive || c.Events[0].Details["via"] != "pw-1+kv-1" {
		t.Fatalf("reactivation: %+v", c)
	}
	// The suspended chip cannot vouch for itself, even beside the password.
	_, err := p.Reactivate(id, chip, Owner("id-1", "pw-1", "chip-1"), others, now)
	refused(t, err, OpReactivate, ErrSelfServiceRefused)
	// A proof that is not active any more does not count.
	susp := kv
	susp.State, susp.SuspendReason = StateSuspended, ReasonFailures
	_, err = p.Reactivate(id, chip, by, []Authenticator{pw, susp, chip}, now)
	refused(t, err, OpReactivate, ErrSelfServiceRefused)
	// Nor one that is unknown.
	_, err = p.Reactivate(id, chip, Owner("id-1", "pw-1", "kv-404"), others, now)
	refused(t, err, OpReactivate, ErrSelfServiceRefused)
}

// A pending authenticator that was not activated within PendingExpiry can
// only be cancelled.
func TestPendingExpiry(t *testing.T) {
	p := DefaultPolicy()
	id := person()
	add := ch(t)(p.Add(id, nil, nil, AddRequest{ID: "kv-1", Kind: device.KindCodeDisplay, Ref: Ref{Serial: "SN-1"}}, Owner("id-1", "pw-1", "app-1"), t0))
	kv := add.Authenticator
	if p.PendingExpired(kv, t0.Add(DefaultPendingExpiry-time.Second)) {
		t.Fatal("expired too early")
	}
	ch(t)(p.Activate(id, kv, Owner("id-1", "pw-1", "app-1"), t0.Add(DefaultPendingExpiry-time.Second)))
	_, err := p.Activate(id, kv, Owner("id-1", "pw-1", "app-1"), t0.Add(DefaultPendingExpiry))
	refused(t, err, OpActivate, ErrExpired)
	c := ch(t)(p.Cancel(kv, Support("op-1"), t0.Add(48*time.Hour)))
	if !c.Remove || c.Tombstone != nil {
		t.Fatalf("cancel of an expired pending add: %+v", c)
	}
	if never := (Policy{PendingExpiry: -1}); never.PendingExpired(kv, t0.Add(1000*time.Hour)) {
		t.Error("PendingExpiry -1 expired")
	}
}

package sqlcore

import (
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// TestLoginEvents: the password's success and the second factor's are one
// audit event, the factor's naming the password, only when the password's
// events are its success alone, at the same moment; otherwise every event
// is kept as it is, the password's first.
func TestLoginEvents(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p := domain.DefaultPolicy()
	p.SuspensionExpiry = time.Hour
	active := func(id string, k device.Kind) domain.Authenticator {
		return domain.Authenticator{ID: id, IdentityID: "id-1", Kind: k, State: domain.StateActive, CreatedAt: t0, ActivatedAt: t0, Version: 1}
	}
	success := func(a domain.Authenticator, at time.Time) domain.Change {
		t.Helper()
		c, err := p.RecordSuccess(a, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pw, chip := active("pw-1", device.KindPassword), active("chip-1", device.KindChip)

	prior, c := success(pw, t0), success(chip, t0)
	got := loginEvents(&prior, true, c.Events)
	if len(got) != 1 {
		t.Fatalf("%d events, want one: %+v", len(got), got)
	}
	e := got[0]
	if e.Type != domain.EventLoginSucceeded || e.AuthenticatorID != "chip-1" || e.Details["kind"] != string(device.KindChip) ||
		e.Details[store.DetailFirstFactor] != "pw-1" || e.Details[store.DetailFirstFactorKind] != string(device.KindPassword) {
		t.Errorf("the one event of the login: %+v", e)
	}
	if _, ok := c.Events[0].Details[store.DetailFirstFactor]; ok {
		t.Error("loginEvents changed the factor's own event")
	}

	// A password whose suspension expired meanwhile: its suspension's
	// end is audited too, so both successes stay as they are.
	sp := pw
	sp.State, sp.SuspendedAt, sp.SuspendReason, sp.Failures, sp.Version = domain.StateSuspended, t0, domain.ReasonFailures, 3, 2
	later := t0.Add(p.SuspensionExpiry + time.Minute)
	prior = success(sp, later)
	c = success(chip, later)
	if len(prior.Events) < 2 {
		t.Fatalf("the success of a password whose suspension expired: %d events, want its expiry and its success", len(prior.Events))
	}
	got = loginEvents(&prior, true, c.Events)
	if len(got) != len(prior.Events)+len(c.Events) {
		t.Fatalf("%d events, want %d (the password's, then the chip's)", len(got), len(prior.Events)+len(c.Events))
	}
	for i, e := range got {
		if _, ok := e.Details[store.DetailFirstFactor]; ok {
			t.Errorf("event %d names a first factor: %+v", i, e)
		}
	}
	if got[len(got)-1].AuthenticatorID != "chip-1" || got[0].AuthenticatorID != "pw-1" {
		t.Errorf("events out of order: %+v", got)
	}

	// A password that had failures to reset (not plain): its success
	// stays a record of its own.
	prior, c = success(pw, t0), success(chip, t0)
	if got := loginEvents(&prior, false, c.Events); len(got) != 2 || got[0].AuthenticatorID != "pw-1" {
		t.Errorf("a success that resets failures: %+v, want the password's record, then the chip's", got)
	}

	// Successes at different moments are not one event.
	prior, c = success(pw, t0), success(chip, t0.Add(time.Second))
	if got := loginEvents(&prior, true, c.Events); len(got) != 2 {
		t.Errorf("successes at different moments: %d events, want 2", len(got))
	}
}

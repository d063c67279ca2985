package domain

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/authbench/authbench/device"
)

// WebAuthn Level 2 §6.1.1 and §7.2 step 21: a counter that is non-zero on
// either side must grow.
func TestCheckSignCount(t *testing.T) {
	tests := []struct {
		stored, received uint32
		clone            bool
	}{
		{0, 0, false}, // the chip keeps no counter
		{0, 1, false},
		{5, 6, false},
		{5, 1000, false},
		{0xFFFFFFFE, 0xFFFFFFFF, false},
		{5, 5, true},
		{5, 4, true},
		{5, 0, true}, // a counter that went back to zero
		{0xFFFFFFFF, 0, true},
		{0xFFFFFFFF, 0xFFFFFFFF, true},
	}
	for _, tc := range tests {
		err := CheckSignCount(tc.stored, tc.received)
		if (err != nil) != tc.clone {
			t.Errorf("CheckSignCount(%d, %d) = %v, want clone %v", tc.stored, tc.received, err, tc.clone)
			continue
		}
		if err == nil {
			continue
		}
		var se *SignCountError
		if !errors.As(err, &se) || !errors.Is(err, ErrCloneSuspected) || se.Stored != tc.stored || se.Received != tc.received {
			t.Errorf("CheckSignCount(%d, %d) = %#v", tc.stored, tc.received, err)
		}
		if !strings.HasPrefix(err.Error(), "domain: ") {
			t.Errorf("message %q", err)
		}
		if f := se.Failure(); f.Cause != CauseSignCount || f.Details["stored_count"] == "" {
			t.Errorf("Failure() = %+v", f)
		}
	}
}

// RFC 6238 §5.2: a time step at or below the highest used step is refused.
// The steps are those of the RFC 6238 Appendix B test times (X = 30 s).
func TestCheckOTPStep(t *testing.T) {
	step := func(unix int64) uint64 { return uint64(unix / 30) }
	tests := []struct {
		name          string
		highest, step uint64
		replay        bool
	}{
		{"first code ever", 0, step(59), false},
		{"later code", step(59), step(1111111109), false},
		{"the next step, two seconds later", step(1111111109), step(1111111111), false},
		{"the same step, five seconds later", step(1234567890), step(1234567895), true},
		{"the same code again", step(1234567890), step(1234567890), true},
		{"an older code", step(2000000000), step(1234567890), true},
		{"far future", step(2000000000), step(20000000000), false},
		{"step zero with nothing used", 0, 0, true},
	}
	if step(1111111109) != 0x23523EC || step(1111111111) != 0x23523ED || step(20000000000) != 0x27BC86AA {
		t.Fatal("steps do not match RFC 6238 Appendix B")
	}
	for _, tc := range tests {
		err := CheckOTPStep(tc.highest, tc.step)
		if (err != nil) != tc.replay {
			t.Errorf("%s: CheckOTPStep(%d, %d) = %v", tc.name, tc.highest, tc.step, err)
			continue
		}
		if err == nil {
			continue
		}
		var re *ReplayError
		if !errors.As(err, &re) || !errors.Is(err, ErrCodeReplayed) || re.Step != tc.step || re.Highest != tc.highest {
			t.Errorf("%s: %#v", tc.name, err)
		}
		if f := re.Failure(); f.Cause != CauseReplayedCode {
			t.Errorf("%s: Failure() = %+v", tc.name, f)
		}
	}
}

func TestPolicyDefaults(t *testing.T) {
	d := DefaultPolicy()
	if d.MaxFailures != 3 || d.MaxSuspensions != 3 || d.MaxApps != 3 || d.MaxCodeDevices != 1 || d.MaxChips != 1 ||
		d.MaxPasswords != 1 || d.SuspensionExpiry != 0 || d.ActivationDelay != 0 || d.CountReplays {
		t.Errorf("DefaultPolicy() = %+v", d)
	}
	tests := []struct {
		p    Policy
		kind device.Kind
		want int
	}{
		{Policy{}, device.KindApp, 3},
		{Policy{}, device.KindCodeDisplay, 1},
		{Policy{}, device.KindAudioCodeReader, 1},
		{Policy{}, device.KindChip, 1},
		{Policy{}, device.KindPassword, 1},
		{Policy{}, "toaster", 0},
		{Policy{MaxApps: 5}, device.KindApp, 5},
		{Policy{MaxApps: -1}, device.KindApp, -1},
		{Policy{MaxCodeDevices: 2}, device.KindAudioCodeReader, 2},
		{Policy{MaxChips: -7}, device.KindChip, -1},
	}
	for _, tc := range tests {
		if got := tc.p.Quota(tc.kind); got != tc.want || d.Quota(tc.kind) != (Policy{}).Quota(tc.kind) {
			t.Errorf("%+v.Quota(%s) = %d, want %d", tc.p, tc.kind, got, tc.want)
		}
	}

	// MaxFailures and MaxSuspensions: other numbers, and no limit.
	a := auth("app-1", device.KindApp, StateActive)
	fail := func(p Policy, a Authenticator, n int) Authenticator {
		for range n {
			c, err := p.RecordFailure(a, Failure{Cause: CauseWrongPIN}, t0)
			if err != nil {
				t.Fatal(err)
			}
			a = c.Authenticator
		}
		return a
	}
	if got := fail(Policy{MaxFailures: 5}, a, 4); got.State != StateActive {
		t.Errorf("MaxFailures 5, 4 failures: %s", got.State)
	}
	if got := fail(Policy{MaxFailures: 5}, a, 5); got.State != StateSuspended {
		t.Errorf("MaxFailures 5, 5 failures: %s", got.State)
	}
	if got := fail(Policy{MaxFailures: -1}, a, 50); got.State != StateActive || got.Failures != 50 {
		t.Errorf("no failure limit: %+v", got)
	}
	a.Suspensions = 10
	if got := fail(Policy{MaxSuspensions: -1}, a, 3); got.State != StateSuspended {
		t.Errorf("no suspension limit: %s", got.State)
	}
	a.Suspensions = 0
	if got := fail(Policy{MaxSuspensions: 1}, a, 3); got.State != StateBlocked {
		t.Errorf("MaxSuspensions 1: %s", got.State)
	}
}

func TestParseStates(t *testing.T) {
	for _, s := range States {
		if got, err := ParseState(string(s)); err != nil || got != s {
			t.Errorf("ParseState(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []IdentityState{IdentityActive, IdentityBlocked} {
		if got, err := ParseIdentityState(string(s)); err != nil || got != s {
			t.Errorf("ParseIdentityState(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "Active", "blocked ", "temporarily blocked", "removed"} {
		if _, err := ParseState(s); !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "domain: ") {
			t.Errorf("ParseState(%q): %v", s, err)
		}
	}
	if _, err := ParseIdentityState("blocked"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseIdentityState(blocked): %v", err)
	}
}

// The messages are sentences for a person and name the way out.
func TestMessages(t *testing.T) {
	app := auth("app-1", device.KindApp, StateBlocked)
	chip := auth("chip-1", device.KindChip, StateBlocked)
	kv := auth("kv-1", device.KindAudioCodeReader, StateBlocked)
	pw := auth("pw-1", device.KindPassword, StateBlocked)
	p := DefaultPolicy()
	tests := []struct {
		err  error
		want string
	}{
		{p.CanLogin(person(), app, t0), "domain: cannot log in with app app-1 (blocked): the authenticator is permanently blocked; get a new MitID app (a new app registration)"},
		{p.CanLogin(person(), chip, t0), "domain: cannot log in with chip chip-1 (blocked): the authenticator is permanently blocked; add the chip again to create a new security element in it"},
		{p.CanLogin(person(), kv, t0), "domain: cannot log in with audio-code-reader kv-1 (blocked): the authenticator is permanently blocked; order a new authenticator"},
		{p.CanLogin(person(), pw, t0), "domain: cannot log in with password pw-1 (blocked): the authenticator is permanently blocked; create a new password"},
		{func() error {
			_, err := p.UnblockIdentity(Identity{ID: "id-1", State: IdentityBlocked}, Owner("id-1", ""), "", t0)
			return err
		}(), "domain: cannot lift the block of identity id-1 (temporarily-blocked): not allowed; only a support operator can do this"},
		{p.CheckAdd(person(), []Authenticator{auth("a1", device.KindCodeDisplay, StateActive)}, device.KindAudioCodeReader, Ref{Serial: "X"}, nil),
			"domain: cannot add audio-code-reader: no more authenticators of this kind can be added; at most 1 code device (code display or audio code reader) can be pending, active or suspended at once; block (or cancel) one first"},
		{CheckSignCount(7, 3), "domain: the chip's signature counter 3 is not above the stored 7; the chip may be cloned"},
		{CheckOTPStep(10, 10), "domain: the one-time code of time step 10 was already used (highest used step 10); wait for the next code"},
	}
	for _, tc := range tests {
		if tc.err == nil || tc.err.Error() != tc.want {
			t.Errorf("got  %v\nwant %s", tc.err, tc.want)
		}
	}
	var te TransitionError
	if got := te.Error(); got != "domain: cannot change authenticator: refused" {
		t.Errorf("zero TransitionError: %q", got)
	}
}

// The records carry JSON tags for the store and the API; a round trip
// keeps every field.
func TestJSONRoundTrip(t *testing.T) {
	a := auth("chip-1", device.KindChip, StateSuspended)
	a.Serial = "FIDO-42"
	a.Label = "keyring"
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back Authenticator
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(a, back) {
		t.Errorf("round trip: %v\n%+v\n%+v", err, a, back)
	}
	if !strings.Contains(string(b), `"credential_id":"cred-chip-1"`) || strings.Contains(string(b), "blocked_at") {
		t.Errorf("JSON: %s", b)
	}
	if got := EncodeCredentialID([]byte{0xfb, 0xff, 0x01}); got != "-_8B" {
		t.Errorf("EncodeCredentialID = %q", got)
	}
	if s := Owner("id-1", "pw-1").String(); s != "owner:id-1 via pw-1" {
		t.Errorf("Actor.String() = %q", s)
	}
}

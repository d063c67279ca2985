package domain

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
)

// The operations of the state × event table, run on an app of identity
// id-1 at now = t0+2h. The owner proves themself with pw-1, an active
// password.
var tableOps = map[Op]func(p Policy, a Authenticator, now time.Time) (Change, error){
	OpActivate: func(p Policy, a Authenticator, now time.Time) (Change, error) {
		return p.Activate(person(), a, Owner("id-1", "pw-1"), now)
	},
	OpSuccess: func(p Policy, a Authenticator, now time.Time) (Change, error) {
		return p.RecordSuccess(a, now)
	},
	OpFailure: func(p Policy, a Authenticator, now time.Time) (Change, error) {
		return p.RecordFailure(a, Failure{Cause: CauseWrongPIN}, now)
	},
	OpSuspend: func(p Policy, a Authenticator, now time.Time) (Change, error) {
		return p.Suspend(a, Support("op-7"), ReasonMisuse, now)
	},
	OpReactivate + "/self": func(p Policy, a Authenticator, now time.Time) (Change, error) {
		return p.Reactivate(person(), a, Owner("id-1", "pw-1"), []Authenticator{auth("pw-1", device.KindPassword, StateActive), a}, now)
	},
	OpReactivate + "/support": func(p Policy, a Authenticator, now time.Time) (Change, error) {
		return p.Reactivate(person(), a, Support("op-7"), nil, now)
	},
	OpBlock: func(p Policy, a Authenticator, now time.Time) (Change, error) {
		return p.Block(a, Owner("id-1", "pw-1"), ReasonLost, now)
	},
	OpCancel: func(p Policy, a Authenticator, now time.Time) (Change, error) {
		return p.Cancel(a, Owner("id-1", "pw-1"), now)
	},
	OpExpire: func(p Policy, a Authenticator, now time.Time) (Change, error) {
		return p.Expire(a, now)
	},
	OpLogin: func(p Policy, a Authenticator, now time.Time) (Change, error) {
		if err := p.CanLogin(person(), a, now); err != nil {
			return Change{}, err
		}
		return Change{Authenticator: a}, nil
	},
}

// TestTransitions walks every (state × event) pair of an authenticator and
// of an identity, including the refused ones, and checks the resulting
// state, error, audit events and effects.
func TestTransitions(t *testing.T) {
	hourly := Policy{SuspensionExpiry: time.Hour}
	later := Policy{SuspensionExpiry: 3 * time.Hour}
	failing := func(n, s int) func(*Authenticator) {
		return func(a *Authenticator) { a.Failures, a.Suspensions = n, s }
	}
	bySupport := func(a *Authenticator) { a.SuspendReason = ReasonMisuse }

	type row struct {
		from   State
		op     Op
		note   string
		setup  func(*Authenticator)
		p      Policy
		failOp func(Policy, Authenticator, time.Time) (Change, error) // replaces the table op

		want         State
		err          error
		events       []EventType
		failures     int
		suspensions  int
		wipe, remove bool
	}
	ev := func(ts ...EventType) []EventType { return ts }
	rows := []row{
		// pending
		{from: StatePending, op: OpActivate, want: StateActive, events: ev(EventActivated)},
		{from: StatePending, op: OpSuccess, err: ErrNotActive},
		{from: StatePending, op: OpFailure, err: ErrNotActive},
		{from: StatePending, op: OpSuspend, err: ErrNotActive},
		{from: StatePending, op: OpReactivate + "/self", err: ErrInvalidTransition},
		{from: StatePending, op: OpReactivate + "/support", err: ErrInvalidTransition},
		{from: StatePending, op: OpBlock, want: StateBlocked, events: ev(EventBlocked), wipe: true},
		{from: StatePending, op: OpCancel, want: StatePending, events: ev(EventCancelled), wipe: true, remove: true},
		{from: StatePending, op: OpExpire, err: ErrInvalidTransition},
		{from: StatePending, op: OpLogin, err: ErrNotActive},

		// active
		{from: StateActive, op: OpActivate, err: ErrInvalidTransition},
		{from: StateActive, op: OpSuccess, note: "resets failures", setup: failing(2, 1), want: StateActive, events: ev(EventLoginSucceeded), suspensions: 1},
		{from: StateActive, op: OpFailure, note: "1st", want: StateActive, events: ev(EventLoginFailed), failures: 1},
		{from: StateActive, op: OpFailure, note: "3rd suspends", setup: failing(2, 0), want: StateSuspended,
			events: ev(EventLoginFailed, EventSuspended), failures: 3, suspensions: 1},
		{from: StateActive, op: OpFailure, note: "3rd suspension blocks", setup: failing(2, 2), want: StateBlocked,
			events: ev(EventLoginFailed, EventBlocked), failures: 3, suspensions: 3, wipe: true},
		{from: StateActive, op: OpFailure, note: "replay is not counted", setup: failing(2, 0), want: StateActive,
			events: ev(EventLoginFailed), failures: 2,
			failOp: func(p Policy, a Authenticator, now time.Time) (Change, error) {
				return p.RecordFailure(a, (&ReplayError{Highest: 9, Step: 9}).Failure(), now)
			}},
		{from: StateActive, op: OpFailure, note: "replay counted by policy", setup: failing(2, 0), p: Policy{CountReplays: true},
			want: StateSuspended, events: ev(EventLoginFailed, EventSuspended), failures: 3, suspensions: 1,
			failOp: func(p Policy, a Authenticator, now time.Time) (Change, error) {
				return p.RecordFailure(a, (&ReplayError{Highest: 9, Step: 9}).Failure(), now)
			}},
		{from: StateActive, op: OpFailure, note: "sign counter", setup: failing(2, 0), want: StateSuspended,
			events: ev(EventLoginFailed, EventSuspended), failures: 3, suspensions: 1,
			failOp: func(p Policy, a Authenticator, now time.Time) (Change, error) {
				return p.RecordFailure(a, CheckSignCount(5, 5).(*SignCountError).Failure(), now)
			}},
		{from: StateActive, op: OpFailure, note: "no cause", err: ErrInvalid,
			failOp: func(p Policy, a Authenticator, now time.Time) (Change, error) {
				return p.RecordFailure(a, Failure{}, now)
			}},
		{from: StateActive, op: OpSuspend, want: StateSuspended, events: ev(EventSuspended)},
		{from: StateActive, op: OpReactivate + "/self", err: ErrInvalidTransition},
		{from: StateActive, op: OpReactivate + "/support", err: ErrInvalidTransition},
		{from: StateActive, op: OpBlock, want: StateBlocked, events: ev(EventBlocked), wipe: true},
		{from: StateActive, op: OpCancel, err: ErrInvalidTransition},
		{from: StateActive, op: OpExpire, err: ErrInvalidTransition},
		{from: StateActive, op: OpLogin, want: StateActive},

		// suspended (by failures, at t0+1h)
		{from: StateSuspended, op: OpActivate, err: ErrSuspended},
		{from: StateSuspended, op: OpSuccess, err: ErrSuspended},
		{from: StateSuspended, op: OpSuccess, note: "expired", p: hourly, want: StateActive,
			events: ev(EventSuspensionExpired, EventLoginSucceeded), suspensions: 1},
		{from: StateSuspended, op: OpFailure, err: ErrSuspended},
		{from: StateSuspended, op: OpFailure, note: "expired", p: hourly, want: StateActive,
			events: ev(EventSuspensionExpired, EventLoginFailed), failures: 1, suspensions: 1},
		{from: StateSuspended, op: OpSuspend, err: ErrSuspended},
		{from: StateSuspended, op: OpReactivate + "/self", want: StateActive, events: ev(EventReactivated), suspensions: 1},
		{from: StateSuspended, op: OpReactivate + "/self", note: "suspended by support", setup: bySupport, err: ErrSelfServiceRefused},
		{from: StateSuspended, op: OpReactivate + "/support", want: StateActive, events: ev(EventReactivated), suspensions: 1},
		{from: StateSuspended, op: OpReactivate + "/support", note: "suspended by support", setup: bySupport,
			want: StateActive, events: ev(EventReactivated), suspensions: 1},
		{from: StateSuspended, op: OpBlock, want: StateBlocked, events: ev(EventBlocked), failures: 3, suspensions: 1, wipe: true},
		{from: StateSuspended, op: OpCancel, err: ErrInvalidTransition},
		{from: StateSuspended, op: OpExpire, note: "never under the default policy", err: ErrNotAllowed},
		{from: StateSuspended, op: OpExpire, note: "due", p: hourly, want: StateActive, events: ev(EventSuspensionExpired), suspensions: 1},
		{from: StateSuspended, op: OpExpire, note: "not due", p: later, err: ErrTooEarly},
		{from: StateSuspended, op: OpExpire, note: "suspended by support", p: hourly, setup: bySupport, err: ErrNotAllowed},
		{from: StateSuspended, op: OpLogin, err: ErrSuspended},
		{from: StateSuspended, op: OpLogin, note: "expired", p: hourly, want: StateSuspended},

		// blocked (terminal)
		{from: StateBlocked, op: OpActivate, err: ErrBlocked},
		{from: StateBlocked, op: OpSuccess, err: ErrBlocked},
		{from: StateBlocked, op: OpFailure, err: ErrBlocked},
		{from: StateBlocked, op: OpSuspend, err: ErrBlocked},
		{from: StateBlocked, op: OpReactivate + "/self", err: ErrBlocked},
		{from: StateBlocked, op: OpReactivate + "/support", err: ErrBlocked},
		{from: StateBlocked, op: OpBlock, err: ErrBlocked},
		{from: StateBlocked, op: OpCancel, err: ErrBlocked},
		{from: StateBlocked, op: OpExpire, err: ErrBlocked},
		{from: StateBlocked, op: OpLogin, err: ErrBlocked},
	}

	// Every pair is in the table.
	seen := map[string]bool{}
	for _, r := range rows {
		seen[string(r.from)+" "+string(r.op)] = true
	}
	for _, s := range States {
		for op := range tableOps {
			if !seen[string(s)+" "+string(op)] {
				t.Errorf("the table lacks (%s, %s)", s, op)
			}
		}
	}

	now := t0.Add(2 * time.Hour)
	for _, r := range rows {
		name := fmt.Sprintf("%s/%s", r.from, r.op)
		if r.note != "" {
			name += "/" + strings.ReplaceAll(r.note, " ", "_")
		}
		t.Run(name, func(t *testing.T) {
			a := auth("app-1", device.KindApp, r.from)
			if r.setup != nil {
				r.setup(&a)
			}
			before := a
			run := tableOps[r.op]
			if r.failOp != nil {
				run = r.failOp
			}
			c, err := run(r.p, a, now)
			if a != before {
				t.Fatalf("the input changed:\n%+v\n%+v", before, a)
			}
			if r.err != nil {
				base := Op(strings.Split(string(r.op), "/")[0])
				te := refused(t, err, base, r.err)
				if te.From != string(r.from) || te.AuthenticatorID != "app-1" || te.IdentityID != "id-1" {
					t.Errorf("TransitionError = %+v", te)
				}
				if !reflect.DeepEqual(c, Change{}) {
					t.Errorf("a refused transition returned %+v", c)
				}
				if e := te.Audit(Owner("id-1", "pw-1"), now); e.Type != EventRefused || e.Details["op"] != string(base) {
					t.Errorf("Audit() = %+v", e)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			n := c.Authenticator
			if n.State != r.want {
				t.Errorf("state = %s, want %s", n.State, r.want)
			}
			if got := types(c.Events); !slices.Equal(got, r.events) {
				t.Errorf("events = %v, want %v", got, r.events)
			}
			if r.op == OpLogin {
				return // a check, not a change
			}
			if n.Failures != r.failures || n.Suspensions != r.suspensions {
				t.Errorf("failures, suspensions = %d, %d; want %d, %d", n.Failures, n.Suspensions, r.failures, r.suspensions)
			}
			if n.Version != a.Version+1 {
				t.Errorf("version = %d, want %d", n.Version, a.Version+1)
			}
			if c.WipeSecret != r.wipe || c.Remove != r.remove || (c.Tombstone != nil) != (r.wipe && !r.remove) {
				t.Errorf("effects: wipe %v remove %v tombstone %v", c.WipeSecret, c.Remove, c.Tombstone)
			}
			if n.ID != a.ID || n.IdentityID != a.IdentityID || n.Kind != a.Kind || n.Ref != a.Ref {
				t.Errorf("identity of the authenticator changed: %+v", n)
			}
			for _, e := range c.Events {
				if e.At != now || e.IdentityID != "id-1" || e.AuthenticatorID != "app-1" || e.Details["kind"] != "app" {
					t.Errorf("event %+v", e)
				}
				if e.Actor.Kind == "" {
					t.Errorf("event %s has no actor", e.Type)
				}
			}
		})
	}

	// The identity: every state × {block, unblock}, by each kind of actor.
	type irow struct {
		from   IdentityState
		op     Op
		by     Actor
		reason Reason
		want   IdentityState
		err    error
	}
	irows := []irow{
		{from: IdentityActive, op: OpBlockIdentity, by: System("misuse-detector"), reason: ReasonMisuse, want: IdentityBlocked},
		{from: IdentityActive, op: OpBlockIdentity, by: Support("op-7"), reason: ReasonMisuse, want: IdentityBlocked},
		{from: IdentityActive, op: OpBlockIdentity, by: Owner("id-1", "pw-1"), reason: ReasonCompromised, want: IdentityBlocked},
		{from: IdentityActive, op: OpBlockIdentity, by: Owner("id-2", "x"), reason: ReasonMisuse, err: ErrNotAllowed},
		{from: IdentityActive, op: OpBlockIdentity, by: Support(""), reason: ReasonMisuse, err: ErrNotAllowed},
		{from: IdentityActive, op: OpBlockIdentity, by: Support("op-7"), err: ErrInvalid},
		{from: IdentityActive, op: OpUnblockIdentity, by: Support("op-7"), err: ErrInvalidTransition},
		{from: IdentityBlocked, op: OpBlockIdentity, by: Support("op-7"), reason: ReasonMisuse, err: ErrIdentityBlocked},
		{from: IdentityBlocked, op: OpUnblockIdentity, by: Support("op-7"), want: IdentityActive},
		{from: IdentityBlocked, op: OpUnblockIdentity, by: Owner("id-1", "pw-1"), err: ErrNotAllowed},
		{from: IdentityBlocked, op: OpUnblockIdentity, by: System("misuse-detector"), err: ErrNotAllowed},
	}
	for _, r := range irows {
		t.Run(fmt.Sprintf("identity/%s/%s/%s", r.from, r.op, r.by.Kind), func(t *testing.T) {
			id := person()
			if r.from == IdentityBlocked {
				id.State, id.BlockedReason, id.BlockedAt, id.BlockedBy = IdentityBlocked, ReasonMisuse, t0, Support("op-1")
			}
			before := id
			var c IdentityChange
			var err error
			if r.op == OpBlockIdentity {
				c, err = Policy{}.BlockIdentity(id, r.by, r.reason, now)
			} else {
				c, err = Policy{}.UnblockIdentity(id, r.by, "verified in person", now)
			}
			if id != before {
				t.Fatal("the input changed")
			}
			if r.err != nil {
				te := refused(t, err, r.op, r.err)
				if te.IdentityID != "id-1" || te.From != string(r.from) {
					t.Errorf("TransitionError = %+v", te)
				}
				if e := te.Audit(r.by, now); e.Type != EventIdentityRefused {
					t.Errorf("Audit() = %+v", e)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			want := EventIdentityBlocked
			if r.op == OpUnblockIdentity {
				want = EventIdentityUnblocked
			}
			if c.Identity.State != r.want || c.Identity.Version != id.Version+1 {
				t.Errorf("identity = %+v", c.Identity)
			}
			if len(c.Events) != 1 || c.Events[0].Type != want || c.Events[0].Actor != r.by || c.Events[0].At != now {
				t.Errorf("events = %+v", c.Events)
			}
		})
	}
}

// TestRefusalsNeverPanicOnBadRecords: malformed records are refused with
// ErrInvalid by every operation.
func TestBadRecords(t *testing.T) {
	bad := []Authenticator{
		{},
		{ID: "a", IdentityID: "id-1", Kind: "toaster", State: StateActive},
		{ID: "a", IdentityID: "id-1", Kind: device.KindApp, State: "sleeping"},
		{ID: "a", Kind: device.KindApp, State: StateActive},
		{ID: "a", IdentityID: "id-1", Kind: device.KindApp, State: StateActive, Failures: -1},
	}
	for i, a := range bad {
		for op, run := range tableOps {
			if _, err := run(Policy{}, a, t0); !errors.Is(err, ErrInvalid) {
				t.Errorf("record %d, %s: err = %v, want ErrInvalid", i, op, err)
			}
		}
	}
	for _, s := range []IdentityState{"", "frozen"} {
		id := Identity{ID: "id-1", State: s}
		if _, err := (Policy{}).BlockIdentity(id, Support("op"), ReasonMisuse, t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("state %q: err = %v", s, err)
		}
		if err := (Policy{}).CanLogin(id, auth("a", device.KindApp, StateActive), t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("state %q: err = %v", s, err)
		}
	}
	if _, err := NewIdentity("", System("test"), t0); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewIdentity(\"\"): %v", err)
	}
}

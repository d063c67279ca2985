package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
)

// t0 is the virtual clock's origin in every test.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// person is the identity of most tests.
func person() Identity {
	return Identity{ID: "id-1", State: IdentityActive, CreatedAt: t0, Version: 1}
}

// auth returns an authenticator of identity id-1 in state s, with the
// timestamps and counters a real record in that state would have.
func auth(id string, kind device.Kind, s State) Authenticator {
	a := Authenticator{
		ID: id, IdentityID: "id-1", Kind: kind, State: s,
		Label: "test", CreatedAt: t0, Version: 5,
	}
	switch kind {
	case device.KindChip, device.KindApp:
		a.CredentialID = "cred-" + id
	case device.KindCodeDisplay, device.KindAudioCodeReader:
		a.Serial = "SN-" + id
	}
	if s != StatePending {
		a.ActivatedAt = t0
	}
	switch s {
	case StateSuspended:
		a.Failures = 3
		a.Suspensions = 1
		a.SuspendedAt = t0.Add(time.Hour)
		a.SuspendReason = ReasonFailures
	case StateBlocked:
		a.BlockedAt = t0.Add(time.Hour)
		a.BlockReason = ReasonLost
	}
	return a
}

func types(events []Event) []EventType {
	var ts []EventType
	for _, e := range events {
		ts = append(ts, e.Type)
	}
	return ts
}

// ch returns a function that fails the test on an error and otherwise
// returns the Change: ch(t)(p.Block(...)).
func ch(t *testing.T) func(Change, error) Change {
	return func(c Change, err error) Change {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return c
	}
}

// idc is ch for identity transitions.
func idc(t *testing.T) func(IdentityChange, error) IdentityChange {
	return func(c IdentityChange, err error) IdentityChange {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return c
	}
}

// refused checks that err is a *TransitionError for op unwrapping to want,
// with a message for a person, and returns it.
func refused(t *testing.T, err error, op Op, want error) *TransitionError {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", op, want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %q does not wrap %q", op, err, want)
	}
	var te *TransitionError
	if !errors.As(err, &te) {
		t.Fatalf("%s: error %T is not a *TransitionError", op, err)
	}
	if te.Event != op {
		t.Errorf("TransitionError.Event = %q, want %q", te.Event, op)
	}
	if !strings.HasPrefix(err.Error(), "domain: ") {
		t.Errorf("message %q lacks the package prefix", err)
	}
	return te
}

func hasType(events []Event, t EventType) bool {
	return slices.ContainsFunc(events, func(e Event) bool { return e.Type == t })
}

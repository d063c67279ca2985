package service_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
)

// TestMessage: a refusal keeps its words (the ones the API and the pages
// show), an internal error shows none of its own.
func TestMessage(t *testing.T) {
	te := &domain.TransitionError{IdentityID: "alice", AuthenticatorID: "kv-1", Kind: "code-display", Event: domain.OpAdd,
		Reason: domain.ErrSerialRevoked, Detail: "order a new authenticator"}
	for _, c := range []struct {
		err     error
		want    string
		refusal bool
	}{
		{te, "Cannot add code-display kv-1: this serial number was permanently blocked and can never be added again; order a new authenticator.", true},
		{fmt.Errorf("service: %w: password is missing", service.ErrInvalid), "Invalid request: password is missing.", true},
		{&service.FailureError{Cause: domain.CauseWrongCode, Failures: 1, MaxFailures: 3, State: domain.StateActive},
			"Wrong one-time code (1 failed attempts in a row; 2 more and the authenticator is temporarily blocked).", true},
		{&service.RateLimitError{RetryAfter: 1500 * time.Millisecond}, "Too many attempts; try again in 2 seconds.", true},
		{&service.BusyError{RetryAfter: time.Second}, "The server is busy hashing other passwords and PINs; nothing was checked or counted. Try again in 1 second.", true},
		{errors.New("sqlite: disk I/O error at /var/lib/secret/path"), service.InternalMessage, false},
	} {
		got, refusal := service.Message(c.err)
		if got != c.want || refusal != c.refusal {
			t.Errorf("Message(%v) = %q, %v; want %q, %v", c.err, got, refusal, c.want, c.refusal)
		}
		if !refusal && strings.Contains(got, "secret") {
			t.Errorf("an internal error leaks its details: %q", got)
		}
	}
}

// TestLastUsed: the view says when an authenticator last proved a login.
func TestLastUsed(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	d := codeDevice("KV-200")
	v, err := e.addCode("alice", support, d)
	if err != nil {
		t.Fatal(err)
	}
	if !e.auth(v.ID).LastUsedAt.IsZero() {
		t.Fatal("a code device that never logged in has a last use")
	}
	e.clk.Advance(30 * time.Second)
	at := e.clk.Now().UTC()
	if _, err := e.loginCode("alice", v.ID, d.Code(at)); err != nil {
		t.Fatal(err)
	}
	id, err := e.svc.Identity(e.ctx, support, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range id.Authenticators {
		if !a.LastUsedAt.Equal(at) {
			t.Errorf("%s %s: last used %v, want %v", a.Kind, a.ID, a.LastUsedAt, at)
		}
	}
}

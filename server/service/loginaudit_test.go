package service_test

import (
	"testing"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
	"github.com/authbench/authbench/server/store"
)

// TestLoginAuditKeepsPasswordReset: the right password is proven with no
// failures to reset, then somebody sends wrong passwords for the same
// identity, then the owner finishes with the chip. The login resets the
// password's failures, and the password's own audit trail must show it:
// its last record is its success, not the wrong guesses.
func TestLoginAuditKeepsPasswordReset(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	c := newChip(t, "audit-reset-chip", chipOpts())
	ch, err := e.addChip("alice", support, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	login := func(guesses int) []store.AuditRecord {
		t.Helper()
		before, err := e.st.ListAudit(e.ctx, "alice", 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		pr, err := e.svc.LoginPassword(e.ctx, "alice", service.PasswordLoginRequest{Password: thePassword, Second: ch.ID})
		if err != nil {
			t.Fatal(err)
		}
		for range guesses {
			if _, err := e.loginPassword("alice", "wrong guess!"); err == nil {
				t.Fatal("a wrong password was accepted")
			}
		}
		if got := e.auth(pw).Failures; got != guesses {
			t.Fatalf("password failures %d before the chip, want %d", got, guesses)
		}
		resp, err := servicetest.Assert(e.ctx, c, origin, pr.Next.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.FinishLogin(e.ctx, "alice", service.FinishLoginRequest{Ceremony: pr.Next.Ceremony, Credential: resp}); err != nil {
			t.Fatal(err)
		}
		if got := e.auth(pw).Failures; got != 0 {
			t.Fatalf("password failures %d after the login, want 0", got)
		}
		after, err := e.st.ListAudit(e.ctx, "alice", 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		return after[len(before):]
	}

	// Nothing to reset: the login is one record, the chip's, naming the
	// password.
	recs := login(0)
	if len(recs) != 1 || recs[0].AuthenticatorID != ch.ID || recs[0].Type != domain.EventLoginSucceeded {
		t.Fatalf("a plain login wrote %d records (%+v), want the chip's success alone", len(recs), recs)
	}

	// Wrong guesses between the two steps: the password's success is a
	// record of its own, after the guesses.
	recs = login(2)
	last := ""
	for _, r := range recs {
		if r.AuthenticatorID == pw {
			last = string(r.Type)
		}
	}
	if last != string(domain.EventLoginSucceeded) {
		for _, r := range recs {
			t.Logf("seq %d %s of %s", r.Seq, r.Type, r.AuthenticatorID)
		}
		t.Fatalf("the login reset the password's failures, but the password's own audit trail ends at %q", last)
	}
}

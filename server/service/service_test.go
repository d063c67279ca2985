package service_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
	"github.com/authbench/authbench/server/store"
)

// DESIGN §1: the 3rd consecutive failure suspends; a success resets the
// count; the answer of the 3rd failure already says "suspended".
func TestPasswordLockout(t *testing.T) {
	tests := []struct {
		name      string
		attempts  []bool // true = right password
		wantState domain.State
		wantFails int
	}{
		{"two wrong", []bool{false, false}, domain.StateActive, 2},
		{"three wrong", []bool{false, false, false}, domain.StateSuspended, 3},
		{"success resets", []bool{false, false, true, false, false}, domain.StateActive, 2},
		{"right only", []bool{true, true}, domain.StateActive, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			pw := password(e.identity("alice"))
			for i, ok := range tt.attempts {
				p := "wrong"
				if ok {
					p = thePassword
				}
				_, err := e.loginPassword("alice", p)
				if ok {
					if err != nil {
						t.Fatalf("attempt %d: %v", i, err)
					}
					continue
				}
				fe := failure(t, err)
				if !errors.Is(err, service.ErrWrongPassword) || fe.Cause != domain.CauseWrongPassword {
					t.Fatalf("attempt %d: %v", i, err)
				}
			}
			a := e.auth(pw)
			if a.State != tt.wantState || a.Failures != tt.wantFails {
				t.Fatalf("state %s failures %d, want %s %d", a.State, a.Failures, tt.wantState, tt.wantFails)
			}
		})
	}
}

// A right password yields no session: a ceremony for the second factor,
// and the list of second factors; the ceremony is no bearer token.
func TestPasswordAloneGivesNoSession(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	kv := must[service.AuthenticatorView](t)(e.addCode("alice", support, codeDevice("KV-1")))
	r := must[service.PasswordLoginResult](t)(e.loginPassword("alice", thePassword))
	if len(r.SecondFactors) != 1 || r.SecondFactors[0].ID != kv.ID || r.SecondFactors[0].Serial != "KV-1" || r.Next != nil {
		t.Fatalf("%+v", r)
	}
	if _, err := e.svc.Authenticate(e.ctx, r.Ceremony); !errors.Is(err, service.ErrUnauthorized) {
		t.Fatalf("the password's ceremony as a session: %v", err)
	}
	// Nor can the password's ceremony finish a login by itself.
	if _, err := e.svc.FinishLogin(e.ctx, "alice", service.FinishLoginRequest{Ceremony: r.Ceremony, Code: "123456"}); !errors.Is(err, service.ErrCeremonyExpired) {
		t.Fatalf("finishing with the password's ceremony: %v", err)
	}
	// The second factor is chosen with it.
	f := must[service.FactorLogin](t)(e.svc.BeginSecondFactor(e.ctx, "alice", service.SecondFactorRequest{Ceremony: r.Ceremony, Authenticator: kv.ID}))
	e.clk.Advance(30 * time.Second)
	s := must[service.LoginResult](t)(e.svc.FinishLogin(e.ctx, "alice", service.FinishLoginRequest{Ceremony: f.Ceremony, Code: codeDevice("KV-1").Code(e.clk.Now())}))
	if s.Level != service.LevelTwoFactor || len(s.Authenticators) != 2 || s.Authenticators[1] != kv.ID {
		t.Fatalf("%+v", s)
	}
	by := must[domain.Actor](t)(e.svc.Authenticate(e.ctx, s.Session))
	if len(by.Proofs()) != 2 || by.Proofs()[0] != password(must[service.IdentityView](t)(e.svc.Identity(e.ctx, support, "alice"))) {
		t.Fatalf("actor %+v", by)
	}
	// Another identity's ceremony is not this one's.
	e.identity("bob")
	if _, err := e.svc.BeginSecondFactor(e.ctx, "bob", service.SecondFactorRequest{Ceremony: r.Ceremony, Authenticator: kv.ID}); !errors.Is(err, service.ErrCeremonyExpired) {
		t.Fatalf("alice's ceremony for bob: %v", err)
	}
}

func TestThirdFailureAnswersSuspended(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	var fe *service.FailureError
	for i := 1; i <= 3; i++ {
		_, err := e.loginPassword("alice", "wrong")
		fe = failure(t, err)
		if fe.Failures != i {
			t.Fatalf("attempt %d: failures %d", i, fe.Failures)
		}
	}
	if fe.State != domain.StateSuspended {
		t.Fatalf("3rd failure: state %s", fe.State)
	}
	// From now on every answer is the same, whatever the guess.
	var msgs []string
	for _, pw := range []string{thePassword, "wrong", "another wrong one"} {
		_, err := e.loginPassword("alice", pw)
		if !errors.Is(err, domain.ErrSuspended) {
			t.Fatalf("login while suspended: %v", err)
		}
		msgs = append(msgs, err.Error())
	}
	if msgs[0] != msgs[1] || msgs[1] != msgs[2] {
		t.Fatalf("the answers after the suspension differ:\n%s", msgs)
	}
}

// Wrong passwords are anonymous: whoever knows the identity ID can send
// them, so however often the owner reactivates the password, they never
// block it for good nor wipe its verifier.
func TestAnonymousPasswordGuessesNeverBlock(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	_, owner := e.owner("alice")
	for round := 1; round <= 5; round++ {
		var fe *service.FailureError
		for range 3 {
			_, err := e.loginPassword("alice", fmt.Sprintf("guess %d", round))
			fe = failure(t, err)
		}
		if fe.State != domain.StateSuspended {
			t.Fatalf("round %d: %s", round, fe.State)
		}
		// The owner's app session is not proven with the password: it
		// lives on, and reactivates it.
		if _, err := e.svc.Reactivate(e.ctx, owner, "alice", pw); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	a := e.auth(pw)
	if a.State != domain.StateActive || a.Suspensions != 0 {
		t.Fatalf("%+v", a)
	}
	el, err := e.st.Element(e.ctx, pw)
	if err != nil || el.Password == nil || el.Password.Verifier == "" {
		t.Fatalf("the verifier: %+v %v", el.Password, err)
	}
	must[service.PasswordLoginResult](t)(e.loginPassword("alice", thePassword))
}

// DESIGN §1: the 3rd suspension blocks for good and wipes the element,
// when the failures come from somebody who proved another factor first
// (here: wrong codes after the right password).
func TestEscalationBlocksAndWipes(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	kv := must[service.AuthenticatorView](t)(e.addCode("alice", support, codeDevice("KV-1")))
	for round := 1; round <= 3; round++ {
		var fe *service.FailureError
		for range 3 {
			_, err := e.loginCode("alice", kv.ID, "000000")
			fe = failure(t, err)
		}
		if round < 3 {
			if fe.State != domain.StateSuspended {
				t.Fatalf("round %d: %s", round, fe.State)
			}
			if _, err := e.svc.Reactivate(e.ctx, support, "alice", kv.ID); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if fe.State != domain.StateBlocked {
			t.Fatalf("round 3: %s", fe.State)
		}
	}
	a := e.auth(kv.ID)
	if a.State != domain.StateBlocked || a.BlockReason != "escalation" || a.Suspensions != 3 {
		t.Fatalf("%+v", a)
	}
	if w, ok := a.Element.(service.WipedSummary); !ok || !w.Wiped {
		t.Fatalf("element %#v, want wiped", a.Element)
	}
	el, err := e.st.Element(e.ctx, kv.ID)
	if err != nil || el.Code == nil || !el.Code.Secret.IsZero() {
		t.Fatalf("stored element %+v %v, want the secret gone", el.Code, err)
	}
	if _, err := e.svc.Reactivate(e.ctx, support, "alice", kv.ID); !errors.Is(err, domain.ErrBlocked) {
		t.Fatalf("reactivate blocked: %v", err)
	}
}

// DESIGN §1: self-service reactivation needs a two-factor session proven
// with OTHER active authenticators of the same identity.
func TestSelfServiceReactivation(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	e.identity("bob")
	kv := must[service.AuthenticatorView](t)(e.addCode("alice", support, codeDevice("KV-1")))
	app, key, err := e.addApp("alice", support, appPIN)
	if err != nil {
		t.Fatal(err)
	}
	viaApp := must[service.LoginResult](t)(e.loginApp("alice", app.ID, key, appPIN))
	ownerViaApp := must[domain.Actor](t)(e.svc.Authenticate(e.ctx, viaApp.Session))
	for range 3 {
		_, err := e.loginApp("alice", app.ID, key, "000001")
		if !errors.Is(err, service.ErrWrongPIN) {
			t.Fatalf("wrong PIN: %v", err)
		}
	}
	if e.auth(app.ID).State != domain.StateSuspended {
		t.Fatal("app not suspended")
	}
	// The app's session ended with the app.
	if _, err := e.svc.Authenticate(e.ctx, viaApp.Session); !errors.Is(err, service.ErrUnauthorized) {
		t.Fatalf("the session of the suspended app: %v", err)
	}
	if _, err := e.svc.Reactivate(e.ctx, ownerViaApp, "alice", app.ID); !errors.Is(err, domain.ErrSelfServiceRefused) {
		t.Fatalf("vouching for itself: %v", err)
	}
	_, bob := e.owner("bob")
	if _, err := e.svc.Reactivate(e.ctx, bob, "alice", app.ID); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("another identity's session: %v", err)
	}
	e.clk.Advance(30 * time.Second)
	viaCode := must[service.LoginResult](t)(e.loginCode("alice", kv.ID, codeDevice("KV-1").Code(e.clk.Now())))
	owner := must[domain.Actor](t)(e.svc.Authenticate(e.ctx, viaCode.Session))
	if owner.Via != pw+"+"+kv.ID {
		t.Fatalf("session via %q, want %q", owner.Via, pw+"+"+kv.ID)
	}
	v, err := e.svc.Reactivate(e.ctx, owner, "alice", app.ID)
	if err != nil || v.State != domain.StateActive || v.Failures != 0 {
		t.Fatalf("self-service: %+v %v", v, err)
	}
	page := must[service.AuditPage](t)(e.svc.ListAudit(e.ctx, support, "alice", 0, 1000))
	found := false
	for _, ev := range page.Events {
		if ev.Type == string(domain.EventReactivated) {
			found = ev.Reason == "self-service" && ev.Details["via"] == owner.Via && ev.Actor.Kind == "owner"
		}
	}
	if !found {
		t.Fatal("the reactivation is not audited with who and how")
	}
	if _, err := e.loginApp("alice", app.ID, key, appPIN); err != nil {
		t.Fatal(err)
	}
}

func TestSessionsExpire(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	res, _ := e.owner("alice")
	if !res.ExpiresAt.Equal(e.clk.Now().Add(15 * time.Minute)) {
		t.Fatalf("expires %v", res.ExpiresAt)
	}
	if _, err := e.svc.Authenticate(e.ctx, res.Session); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(15*time.Minute + time.Second)
	if _, err := e.svc.Authenticate(e.ctx, res.Session); !errors.Is(err, service.ErrUnauthorized) {
		t.Fatalf("expired session: %v", err)
	}
	if _, err := e.svc.Authenticate(e.ctx, "nonsense"); !errors.Is(err, service.ErrUnauthorized) {
		t.Fatalf("unknown session: %v", err)
	}
}

// DESIGN §1: a session ends when any authenticator that proved it stops
// being active, and when the identity is blocked; it stays ended when
// they come back.
func TestSessionsEndWithWhatProvedThem(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	kv := must[service.AuthenticatorView](t)(e.addCode("alice", support, codeDevice("KV-1")))
	code := func() string { e.clk.Advance(30 * time.Second); return codeDevice("KV-1").Code(e.clk.Now()) }
	withCode := must[service.LoginResult](t)(e.loginCode("alice", kv.ID, code()))
	withApp, _ := e.owner("alice")
	alive := func(s service.LoginResult) bool {
		_, err := e.svc.Authenticate(e.ctx, s.Session)
		if err != nil && !errors.Is(err, service.ErrUnauthorized) {
			t.Fatal(err)
		}
		return err == nil
	}
	// Three wrong codes suspend the code display: the session it proved
	// ends, the app's does not; reactivation does not bring it back.
	for range 3 {
		e.loginCode("alice", kv.ID, "000000")
	}
	if alive(withCode) || !alive(withApp) {
		t.Fatalf("after the display's suspension: code session %v, app session %v", alive(withCode), alive(withApp))
	}
	must[service.AuthenticatorView](t)(e.svc.Reactivate(e.ctx, support, "alice", kv.ID))
	if alive(withCode) {
		t.Fatal("the session came back with the reactivation")
	}
	// Blocking the password (compromised) ends the sessions it proved.
	withCode = must[service.LoginResult](t)(e.loginCode("alice", kv.ID, code()))
	_, owner := e.owner("alice")
	must[service.AuthenticatorView](t)(e.svc.Block(e.ctx, owner, "alice", pw, service.BlockRequest{Reason: "compromised"}))
	if alive(withCode) {
		t.Fatal("a session proven with the blocked password still works")
	}
	// A new password added with the app's session is active; the old
	// sessions stay ended.
	must[service.AddResult](t)(e.svc.AddAuthenticator(e.ctx, owner, "alice", service.AddRequest{Kind: "password", Password: "a new password"}))
	if alive(withCode) {
		t.Fatal("a session came back with the new password")
	}
	// Blocking the identity ends every session, for good.
	must[service.IdentityView](t)(e.svc.BlockIdentity(e.ctx, support, "alice", "suspected misuse"))
	if alive(withApp) {
		t.Fatal("the app's session outlived the identity's block")
	}
	must[service.IdentityView](t)(e.svc.UnblockIdentity(e.ctx, support, "alice", ""))
	if alive(withApp) {
		t.Fatal("the app's session came back with the unblock")
	}
}

// Self-service needs two factors: a session proven with one factor (none
// is ever issued; one planted in the store stands for any bug that would)
// can change nothing, nor even read.
func TestOneFactorSessionChangesNothing(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	now := e.clk.Now()
	token, hash := secrets.NewToken(now)
	if err := e.st.PutSession(e.ctx, store.Session{TokenHash: hash, ID: "ses-one", IdentityID: "alice", Level: store.LevelOneFactor,
		Authenticators: []string{pw}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authenticate(e.ctx, token); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("a one-factor session: %v, want ErrForbidden", err)
	}
}

// A person lists their sessions, ends one, and logs out.
func TestSessionsListEndLogout(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	e.identity("bob")
	a, owner := e.owner("alice")
	b, _ := e.owner("alice")
	_, bob := e.owner("bob")
	list := must[service.SessionList](t)(e.svc.Sessions(e.ctx, owner, "alice", a.Session))
	current := map[string]bool{}
	for _, s := range list.Sessions {
		current[s.ID] = s.Current
	}
	if len(list.Sessions) != 2 || !current[a.SessionID] || current[b.SessionID] || len(current) != 2 {
		t.Fatalf("%+v", list)
	}
	if _, err := e.svc.Sessions(e.ctx, bob, "alice", ""); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("bob lists alice's sessions: %v", err)
	}
	if _, err := e.svc.EndSession(e.ctx, bob, "alice", b.SessionID); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("bob ends alice's session: %v", err)
	}
	must[service.EndedSession](t)(e.svc.EndSession(e.ctx, owner, "alice", b.SessionID))
	if _, err := e.svc.Authenticate(e.ctx, b.Session); !errors.Is(err, service.ErrUnauthorized) {
		t.Fatalf("an ended session: %v", err)
	}
	if _, err := e.svc.EndSession(e.ctx, owner, "alice", b.SessionID); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("ending it twice: %v", err)
	}
	if r := must[service.EndedSession](t)(e.svc.Logout(e.ctx, a.Session)); r.Ended != a.SessionID {
		t.Fatalf("%+v", r)
	}
	if _, err := e.svc.Authenticate(e.ctx, a.Session); !errors.Is(err, service.ErrUnauthorized) {
		t.Fatalf("after logout: %v", err)
	}
	if _, err := e.svc.Logout(e.ctx, a.Session); !errors.Is(err, service.ErrUnauthorized) {
		t.Fatalf("logout twice: %v", err)
	}
}

// DESIGN §1: while an identity is blocked no login succeeds; only
// support lifts it.
func TestIdentityBlock(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	_, owner := e.owner("alice")
	if _, err := e.svc.BlockIdentity(e.ctx, owner, "alice", "misuse"); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("owner blocks identity: %v", err)
	}
	v, err := e.svc.BlockIdentity(e.ctx, support, "alice", "suspected misuse")
	if err != nil || v.State != "temporarily-blocked" {
		t.Fatalf("%+v %v", v, err)
	}
	if _, err := e.loginPassword("alice", thePassword); !errors.Is(err, domain.ErrIdentityBlocked) {
		t.Fatalf("login while blocked: %v", err)
	}
	if _, err := e.svc.UnblockIdentity(e.ctx, owner, "alice", ""); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("owner unblocks: %v", err)
	}
	if _, err := e.svc.UnblockIdentity(e.ctx, support, "alice", "checked by phone"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.loginPassword("alice", thePassword); err != nil {
		t.Fatal(err)
	}
}

// A login begun before the block cannot be finished after it.
func TestIdentityBlockStopsOpenCeremony(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	kv := must[service.AuthenticatorView](t)(e.addCode("alice", support, codeDevice("KV-1")))
	r := must[service.PasswordLoginResult](t)(e.svc.LoginPassword(e.ctx, "alice", service.PasswordLoginRequest{Password: thePassword, Second: kv.ID}))
	must[service.IdentityView](t)(e.svc.BlockIdentity(e.ctx, support, "alice", "misuse"))
	e.clk.Advance(30 * time.Second)
	_, err := e.svc.FinishLogin(e.ctx, "alice", service.FinishLoginRequest{Ceremony: r.Next.Ceremony, Code: codeDevice("KV-1").Code(e.clk.Now())})
	if !errors.Is(err, domain.ErrIdentityBlocked) {
		t.Fatalf("%v", err)
	}
	if _, err := e.svc.BeginSecondFactor(e.ctx, "alice", service.SecondFactorRequest{Ceremony: r.Ceremony, Authenticator: kv.ID}); !errors.Is(err, domain.ErrIdentityBlocked) {
		t.Fatalf("%v", err)
	}
}

// Login ceremonies expire, and an app's challenge is used once.
func TestCeremonies(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	app, key, err := e.addApp("alice", support, appPIN)
	if err != nil {
		t.Fatal(err)
	}
	b := must[service.FactorLogin](t)(e.svc.BeginApp(e.ctx, "alice", service.AppLoginRequest{Authenticator: app.ID}))
	sig := must[string](t)(servicetest.SignChallenge(key, b.Challenge))
	e.clk.Advance(service.DefaultCeremonyTTL + time.Second)
	_, err = e.svc.FinishLogin(e.ctx, "alice", service.FinishLoginRequest{Ceremony: b.Ceremony, PIN: appPIN, Signature: sig})
	if !errors.Is(err, service.ErrCeremonyExpired) {
		t.Fatalf("expired ceremony: %v", err)
	}
	b = must[service.FactorLogin](t)(e.svc.BeginApp(e.ctx, "alice", service.AppLoginRequest{Authenticator: app.ID}))
	sig = must[string](t)(servicetest.SignChallenge(key, b.Challenge))
	if _, err := e.svc.FinishLogin(e.ctx, "alice", service.FinishLoginRequest{Ceremony: b.Ceremony, PIN: "000001", Signature: sig}); !errors.Is(err, service.ErrWrongPIN) {
		t.Fatal(err)
	}
	// The signature cannot be replayed with another PIN guess.
	_, err = e.svc.FinishLogin(e.ctx, "alice", service.FinishLoginRequest{Ceremony: b.Ceremony, PIN: appPIN, Signature: sig})
	if !errors.Is(err, service.ErrCeremonyExpired) {
		t.Fatalf("reused ceremony: %v", err)
	}
	for _, junk := range []string{"", "t2.x", "t2.AAAA.BBBB", "nonsense"} {
		if _, err := e.svc.FinishLogin(e.ctx, "alice", service.FinishLoginRequest{Ceremony: junk, PIN: appPIN, Signature: sig}); !errors.Is(err, service.ErrCeremonyExpired) && !errors.Is(err, service.ErrInvalid) {
			t.Errorf("ceremony %q: %v", junk, err)
		}
	}
}

// Lockout is exact under concurrency: of 64 simultaneous wrong passwords
// at most three are ever evaluated (attempts are reserved before they are
// checked), exactly three are recorded, and every other answer is the
// suspension's, word for word.
func TestConcurrentLockoutIsExact(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = e.loginPassword("alice", fmt.Sprintf("wrong %d", i))
		})
	}
	close(start)
	wg.Wait()
	failures, suspended := 0, map[string]int{}
	for _, err := range errs {
		var fe *service.FailureError
		switch {
		case errors.As(err, &fe):
			failures++
		case errors.Is(err, domain.ErrSuspended):
			suspended[err.Error()]++
		default:
			t.Fatalf("unexpected %v", err)
		}
	}
	if failures != 3 || len(suspended) != 1 {
		t.Fatalf("%d failures recorded; refusals %v; want 3 failures and %d identical refusals", failures, suspended, n-3)
	}
	if got := e.metrics.checked("password"); got != 3 {
		t.Fatalf("%d guesses were evaluated against the verifier, want 3", got)
	}
	a := e.auth(pw)
	if a.State != domain.StateSuspended || a.Failures != 3 {
		t.Fatalf("%+v", a)
	}
}

// Made-up authenticator IDs are answered like a real app's and cost the
// owner nothing: the rate limit keys on what was found.
func TestUnknownAppAnsweredLikeKnown(t *testing.T) {
	e := newEnv(t, withLimit(service.Rate{Burst: 2, Every: time.Hour}))
	e.identity("alice")
	app, key, err := e.addApp("alice", support, appPIN)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := appKey(t)
	answer := func(aid string) string {
		b, err := e.svc.BeginApp(e.ctx, "alice", service.AppLoginRequest{Authenticator: aid})
		if err != nil {
			t.Fatalf("begin %s: %v", aid, err)
		}
		if b.Challenge == "" || b.Ceremony == "" {
			t.Fatalf("begin %s: %+v", aid, b)
		}
		sig := must[string](t)(servicetest.SignChallenge(other, b.Challenge))
		_, err = e.svc.FinishLogin(e.ctx, "alice", service.FinishLoginRequest{Ceremony: b.Ceremony, PIN: appPIN, Signature: sig})
		if !errors.Is(err, service.ErrBadSignature) {
			t.Fatalf("finish %s: %v", aid, err)
		}
		return err.Error()
	}
	known := answer(app.ID)
	for i := range 20 {
		if got := answer(fmt.Sprintf("app-madeup%d", i)); got != known {
			t.Fatalf("a made-up ID is answered %q, a real one %q", got, known)
		}
	}
	if e.auth(app.ID).Failures != 0 {
		t.Fatal("a foreign signature counted against the app")
	}
	// The owner's bucket (2 checks) is untouched by all of it.
	for range 2 {
		must[service.LoginResult](t)(e.loginApp("alice", app.ID, key, appPIN))
	}
	_, err = e.loginApp("alice", app.ID, key, appPIN)
	var rl *service.RateLimitError
	if !errors.As(err, &rl) || !errors.Is(err, service.ErrRateLimited) || rl.RetryAfter <= 0 {
		t.Fatalf("the third check within the limit: %v", err)
	}
	if e.auth(app.ID).Failures != 0 || e.metrics.checked("app") != 2 {
		t.Fatalf("a rate-limited attempt was counted or checked: failures %d, checked %d", e.auth(app.ID).Failures, e.metrics.checked("app"))
	}
}

func TestQuotas(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	for i := range 3 {
		if _, _, err := e.addApp("alice", support, appPIN); err != nil {
			t.Fatalf("app %d: %v", i, err)
		}
	}
	if _, _, err := e.addApp("alice", support, appPIN); !errors.Is(err, domain.ErrQuotaExceeded) {
		t.Fatalf("4th app: %v", err)
	}
	_, err := e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "password", Password: "another"})
	if !errors.Is(err, domain.ErrQuotaExceeded) {
		t.Fatalf("2nd password: %v", err)
	}
	if _, err := e.addCode("alice", support, codeDevice("KV-1")); err != nil {
		t.Fatal(err)
	}
	e.importCode(codeDevice("KO-2"))
	_, err = e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "audio-code-reader", Serial: "KO-2"})
	if !errors.Is(err, domain.ErrQuotaExceeded) {
		t.Fatalf("code display + audio reader: %v", err)
	}
	c := newChip(t, "chip-1", chipOpts())
	if _, err := e.addChip("alice", support, c, nil); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "chip"})
	if !errors.Is(err, domain.ErrQuotaExceeded) {
		t.Fatalf("2nd chip: %v", err)
	}
}

func TestAccessControl(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	e.identity("bob")
	_, owner := e.owner("alice")
	if _, err := e.svc.Identity(e.ctx, owner, "alice"); err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{}
	_, checks["get other"] = e.svc.Identity(e.ctx, owner, "bob")
	_, checks["create"] = e.svc.CreateIdentity(e.ctx, owner, service.CreateIdentityRequest{ID: "carol"})
	_, checks["verify audit"] = e.svc.VerifyAudit(e.ctx, owner)
	_, checks["import"] = e.svc.ImportPSKC(e.ctx, owner, []byte("<x/>"))
	_, checks["add to other"] = e.svc.AddAuthenticator(e.ctx, owner, "bob", service.AddRequest{Kind: "chip"})
	_, checks["audit of other"] = e.svc.ListAudit(e.ctx, owner, "bob", 0, 10)
	_, checks["sessions of other"] = e.svc.Sessions(e.ctx, owner, "bob", "")
	_, checks["no actor"] = e.svc.Identity(e.ctx, domain.Actor{}, "alice")
	for name, err := range checks {
		if !errors.Is(err, service.ErrForbidden) {
			t.Errorf("%s: %v, want ErrForbidden", name, err)
		}
	}
}

func TestInvalidInput(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	_, pub := appKey(t)
	bad := []service.AddRequest{
		{Kind: "toaster"},
		{Kind: "password"},
		{Kind: "password", Password: "x", Serial: "S"},
		{Kind: "code-display"},
		{Kind: "app", PublicKey: pub},
		{Kind: "app", PublicKey: pub, PIN: "123456"}, // weak
		{Kind: "app", PublicKey: pub, PIN: "12a456"},
		{Kind: "app", PublicKey: "not base64!", PIN: appPIN},
		{Kind: "app", PublicKey: b64.EncodeToString([]byte("junk")), PIN: appPIN},
		{Kind: "chip", Label: "tab\there"},
		{Kind: "code-display", Serial: "NOT-IMPORTED"},
	}
	for _, req := range bad {
		if _, err := e.svc.AddAuthenticator(e.ctx, support, "alice", req); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", req, err)
		}
	}
	for _, id := range []string{"", "..", "a/b", "-x", string(make([]byte, 65))} {
		if _, err := e.svc.CreateIdentity(e.ctx, support, service.CreateIdentityRequest{ID: id + "?"}); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("identity ID %q: %v", id, err)
		}
	}
	if _, err := e.svc.CreateIdentity(e.ctx, support, service.CreateIdentityRequest{ID: "alice", Password: "whatever"}); !errors.Is(err, service.ErrIdentityTaken) {
		t.Errorf("duplicate identity: %v", err)
	}
	if _, err := e.svc.Identity(e.ctx, support, "nobody"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("unknown identity: %v", err)
	}
	if _, err := e.loginPassword("nobody", "x"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("password of an unknown identity: %v", err)
	}
	if _, err := e.loginPassword("alice", ""); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("empty password: %v", err)
	}
}

func TestAuditChainVerifies(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	for range 2 {
		e.loginPassword("alice", "wrong")
	}
	must[service.PasswordLoginResult](t)(e.loginPassword("alice", thePassword))
	v := must[service.AuditVerification](t)(e.svc.VerifyAudit(e.ctx, support))
	if !v.OK || v.Records < 6 {
		t.Fatalf("%+v", v)
	}
	p := must[service.AuditPage](t)(e.svc.ListAudit(e.ctx, support, "alice", 0, 2))
	if len(p.Events) != 2 || p.Next == nil {
		t.Fatalf("first page %+v", p)
	}
	p2 := must[service.AuditPage](t)(e.svc.ListAudit(e.ctx, support, "alice", *p.Next, 1000))
	if len(p2.Events) == 0 || p2.Events[0].Seq <= *p.Next || p2.Next != nil {
		t.Fatalf("second page %+v", p2)
	}
	for _, ev := range append(p.Events, p2.Events...) {
		if ev.Hash == "" || len(ev.PrevHash) != 64 || ev.IdentityID != "alice" {
			t.Fatalf("event %+v", ev)
		}
	}
}

func TestAuditTamperingIsFound(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	e.loginPassword("alice", "wrong")
	must[service.PasswordLoginResult](t)(e.loginPassword("alice", thePassword))
	tamper(t, e.path, func(body []byte) { body[len(body)-40] ^= 0x01 })
	v := must[service.AuditVerification](t)(e.svc.VerifyAudit(e.ctx, support))
	if v.OK || v.Break == nil || v.Break.Seq == 0 {
		t.Fatalf("%+v", v)
	}
}

// With Policy.SuspensionExpiry set, a failure suspension lifts by itself
// once it has lasted that long (the virtual clock moves; nothing sleeps).
func TestSuspensionExpiry(t *testing.T) {
	e := newEnv(t, withPolicy(domain.Policy{SuspensionExpiry: time.Hour}))
	pw := password(e.identity("alice"))
	for range 3 {
		e.loginPassword("alice", "wrong")
	}
	if _, err := e.loginPassword("alice", thePassword); !errors.Is(err, domain.ErrSuspended) {
		t.Fatalf("%v", err)
	}
	e.clk.Advance(59 * time.Minute)
	if _, err := e.loginPassword("alice", thePassword); !errors.Is(err, domain.ErrSuspended) {
		t.Fatalf("before expiry: %v", err)
	}
	e.clk.Advance(time.Minute)
	if _, err := e.loginPassword("alice", thePassword); err != nil {
		t.Fatal(err)
	}
	if a := e.auth(pw); a.State != domain.StateActive || a.Failures != 0 {
		t.Fatalf("%+v", a)
	}
}

// Support reactivation is audited with the operator's ID.
func TestSupportReactivationAudited(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	for range 3 {
		e.loginPassword("alice", "wrong")
	}
	must[service.AuthenticatorView](t)(e.svc.Reactivate(e.ctx, support, "alice", pw))
	p := must[service.AuditPage](t)(e.svc.ListAudit(e.ctx, support, "alice", 0, 1000))
	last := p.Events[len(p.Events)-1]
	if last.Type != string(domain.EventReactivated) || last.Actor != (service.ActorView{Kind: "support", ID: "op-1"}) || last.Reason != "support" {
		t.Fatalf("%+v", last)
	}
	if _, err := e.svc.Reactivate(e.ctx, support, "alice", pw); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("reactivating an active one: %v", err)
	}
}

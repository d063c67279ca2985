package service_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
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
			id := e.identity("alice")
			pw := password(id)
			for i, ok := range tt.attempts {
				p := "wrong"
				if ok {
					p = "correct horse"
				}
				_, err := e.loginPassword("alice", pw, p)
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

func TestThirdFailureAnswersSuspended(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	var fe *service.FailureError
	for i := 1; i <= 3; i++ {
		_, err := e.loginPassword("alice", pw, "wrong")
		fe = failure(t, err)
		if fe.Failures != i {
			t.Fatalf("attempt %d: failures %d", i, fe.Failures)
		}
	}
	if fe.State != domain.StateSuspended {
		t.Fatalf("3rd failure: state %s", fe.State)
	}
	if _, err := e.loginPassword("alice", pw, "correct horse"); !errors.Is(err, domain.ErrSuspended) {
		t.Fatalf("login while suspended: %v", err)
	}
}

// DESIGN §1: the 3rd suspension blocks for good and wipes the element.
func TestEscalationBlocksAndWipes(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	for round := 1; round <= 3; round++ {
		var fe *service.FailureError
		for range 3 {
			_, err := e.loginPassword("alice", pw, "wrong")
			fe = failure(t, err)
		}
		if round < 3 {
			if fe.State != domain.StateSuspended {
				t.Fatalf("round %d: %s", round, fe.State)
			}
			if _, err := e.svc.Reactivate(e.ctx, support, "alice", pw); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if fe.State != domain.StateBlocked {
			t.Fatalf("round 3: %s", fe.State)
		}
	}
	a := e.auth(pw)
	if a.State != domain.StateBlocked || a.BlockReason != "escalation" || a.Suspensions != 3 {
		t.Fatalf("%+v", a)
	}
	if w, ok := a.Element.(service.WipedSummary); !ok || !w.Wiped {
		t.Fatalf("element %#v, want wiped", a.Element)
	}
	el, err := e.st.Element(e.ctx, pw)
	if err != nil || el.Password == nil || el.Password.Verifier != "" {
		t.Fatalf("stored element %+v %v, want the verifier gone", el.Password, err)
	}
	if _, err := e.svc.Reactivate(e.ctx, support, "alice", pw); !errors.Is(err, domain.ErrBlocked) {
		t.Fatalf("reactivate blocked: %v", err)
	}
}

// DESIGN §1: self-service reactivation needs a session proven with
// ANOTHER active authenticator of the same identity.
func TestSelfServiceReactivation(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	e.identity("bob")
	app, key, err := e.addApp("alice", support, "428613")
	if err != nil {
		t.Fatal(err)
	}
	viaApp := must[service.LoginResult](t)(e.loginApp("alice", app.ID, key, "428613"))
	for range 3 {
		_, err := e.loginApp("alice", app.ID, key, "000001")
		if !errors.Is(err, service.ErrWrongPIN) {
			t.Fatalf("wrong PIN: %v", err)
		}
	}
	if e.auth(app.ID).State != domain.StateSuspended {
		t.Fatal("app not suspended")
	}
	ownerViaApp := must[domain.Actor](t)(e.svc.Authenticate(e.ctx, viaApp.Session))
	if _, err := e.svc.Reactivate(e.ctx, ownerViaApp, "alice", app.ID); !errors.Is(err, domain.ErrSelfServiceRefused) {
		t.Fatalf("vouching for itself: %v", err)
	}
	bobPW := password(must[service.IdentityView](t)(e.svc.Identity(e.ctx, support, "bob")))
	bob := must[service.LoginResult](t)(e.loginPassword("bob", bobPW, "correct horse"))
	bobActor := must[domain.Actor](t)(e.svc.Authenticate(e.ctx, bob.Session))
	if _, err := e.svc.Reactivate(e.ctx, bobActor, "alice", app.ID); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("another identity's session: %v", err)
	}
	viaPW := must[service.LoginResult](t)(e.loginPassword("alice", pw, "correct horse"))
	owner := must[domain.Actor](t)(e.svc.Authenticate(e.ctx, viaPW.Session))
	if owner.Via != pw {
		t.Fatalf("session via %q, want %q", owner.Via, pw)
	}
	v, err := e.svc.Reactivate(e.ctx, owner, "alice", app.ID)
	if err != nil || v.State != domain.StateActive || v.Failures != 0 {
		t.Fatalf("self-service: %+v %v", v, err)
	}
	page := must[service.AuditPage](t)(e.svc.ListAudit(e.ctx, support, "alice", 0, 1000))
	found := false
	for _, ev := range page.Events {
		if ev.Type == string(domain.EventReactivated) {
			found = ev.Reason == "self-service" && ev.Details["via"] == pw && ev.Actor.Kind == "owner"
		}
	}
	if !found {
		t.Fatal("the reactivation is not audited with who and how")
	}
	if _, err := e.loginApp("alice", app.ID, key, "428613"); err != nil {
		t.Fatal(err)
	}
}

func TestSessionsExpire(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	res := must[service.LoginResult](t)(e.loginPassword("alice", pw, "correct horse"))
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

// DESIGN §1: while an identity is blocked no login succeeds; only
// support lifts it.
func TestIdentityBlock(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	sess := must[service.LoginResult](t)(e.loginPassword("alice", pw, "correct horse"))
	owner := must[domain.Actor](t)(e.svc.Authenticate(e.ctx, sess.Session))
	if _, err := e.svc.BlockIdentity(e.ctx, owner, "alice", "misuse"); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("owner blocks identity: %v", err)
	}
	v, err := e.svc.BlockIdentity(e.ctx, support, "alice", "suspected misuse")
	if err != nil || v.State != "temporarily-blocked" {
		t.Fatalf("%+v %v", v, err)
	}
	if _, err := e.svc.BeginLogin(e.ctx, "alice", pw); !errors.Is(err, domain.ErrIdentityBlocked) {
		t.Fatalf("login while blocked: %v", err)
	}
	if _, err := e.svc.UnblockIdentity(e.ctx, owner, "alice", ""); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("owner unblocks: %v", err)
	}
	if _, err := e.svc.UnblockIdentity(e.ctx, support, "alice", "checked by phone"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.loginPassword("alice", pw, "correct horse"); err != nil {
		t.Fatal(err)
	}
}

// A login ceremony begun before the block cannot be finished after it.
func TestIdentityBlockStopsOpenCeremony(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	b := must[service.BeginLoginResult](t)(e.svc.BeginLogin(e.ctx, "alice", pw))
	must[service.IdentityView](t)(e.svc.BlockIdentity(e.ctx, support, "alice", "misuse"))
	_, err := e.svc.FinishLogin(e.ctx, "alice", pw, service.FinishLoginRequest{Ceremony: b.Ceremony, Password: "correct horse"})
	if !errors.Is(err, domain.ErrIdentityBlocked) {
		t.Fatalf("%v", err)
	}
}

func TestCeremonies(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	b := must[service.BeginLoginResult](t)(e.svc.BeginLogin(e.ctx, "alice", pw))
	e.clk.Advance(service.DefaultCeremonyTTL + time.Second)
	_, err := e.svc.FinishLogin(e.ctx, "alice", pw, service.FinishLoginRequest{Ceremony: b.Ceremony, Password: "correct horse"})
	if !errors.Is(err, service.ErrCeremonyExpired) {
		t.Fatalf("expired ceremony: %v", err)
	}
	b = must[service.BeginLoginResult](t)(e.svc.BeginLogin(e.ctx, "alice", pw))
	if _, err := e.svc.FinishLogin(e.ctx, "alice", pw, service.FinishLoginRequest{Ceremony: b.Ceremony, Password: "correct horse"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.FinishLogin(e.ctx, "alice", pw, service.FinishLoginRequest{Ceremony: b.Ceremony, Password: "correct horse"})
	if !errors.Is(err, service.ErrCeremonyExpired) {
		t.Fatalf("reused ceremony: %v", err)
	}
}

// Lockout is exact under concurrency: of 64 simultaneous wrong attempts
// exactly three are recorded and the rest are refused as suspended.
func TestConcurrentLockoutIsExact(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	const n = 64
	ceremonies := make([]string, n)
	for i := range ceremonies {
		ceremonies[i] = must[service.BeginLoginResult](t)(e.svc.BeginLogin(e.ctx, "alice", pw)).Ceremony
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.svc.FinishLogin(e.ctx, "alice", pw, service.FinishLoginRequest{Ceremony: ceremonies[i], Password: "wrong"})
		})
	}
	wg.Wait()
	failures, suspended := 0, 0
	for _, err := range errs {
		var fe *service.FailureError
		switch {
		case errors.As(err, &fe):
			failures++
		case errors.Is(err, domain.ErrSuspended):
			suspended++
		default:
			t.Fatalf("unexpected %v", err)
		}
	}
	if failures != 3 || suspended != n-3 {
		t.Fatalf("%d failures recorded, %d refused; want 3 and %d", failures, suspended, n-3)
	}
	a := e.auth(pw)
	if a.State != domain.StateSuspended || a.Suspensions != 1 || a.Failures != 3 {
		t.Fatalf("%+v", a)
	}
}

func TestQuotas(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	for i := range 3 {
		if _, _, err := e.addApp("alice", support, "428613"); err != nil {
			t.Fatalf("app %d: %v", i, err)
		}
	}
	if _, _, err := e.addApp("alice", support, "428613"); !errors.Is(err, domain.ErrQuotaExceeded) {
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
	pw := password(e.identity("alice"))
	e.identity("bob")
	sess := must[service.LoginResult](t)(e.loginPassword("alice", pw, "correct horse"))
	owner := must[domain.Actor](t)(e.svc.Authenticate(e.ctx, sess.Session))
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
		{Kind: "app", PublicKey: "not base64!", PIN: "428613"},
		{Kind: "app", PublicKey: b64.EncodeToString([]byte("junk")), PIN: "428613"},
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
	if _, err := e.svc.CreateIdentity(e.ctx, support, service.CreateIdentityRequest{ID: "alice"}); !errors.Is(err, service.ErrIdentityTaken) {
		t.Errorf("duplicate identity: %v", err)
	}
	if _, err := e.svc.Identity(e.ctx, support, "nobody"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("unknown identity: %v", err)
	}
}

func TestAuditChainVerifies(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	for range 2 {
		e.loginPassword("alice", pw, "wrong")
	}
	must[service.LoginResult](t)(e.loginPassword("alice", pw, "correct horse"))
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
	pw := password(e.identity("alice"))
	e.loginPassword("alice", pw, "wrong")
	must[service.LoginResult](t)(e.loginPassword("alice", pw, "correct horse"))
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
		e.loginPassword("alice", pw, "wrong")
	}
	if _, err := e.svc.BeginLogin(e.ctx, "alice", pw); !errors.Is(err, domain.ErrSuspended) {
		t.Fatalf("%v", err)
	}
	e.clk.Advance(59 * time.Minute)
	if _, err := e.svc.BeginLogin(e.ctx, "alice", pw); !errors.Is(err, domain.ErrSuspended) {
		t.Fatalf("before expiry: %v", err)
	}
	e.clk.Advance(time.Minute)
	r, err := e.loginPassword("alice", pw, "correct horse")
	if err != nil || r.Authenticator.State != domain.StateActive || r.Authenticator.Suspensions != 1 {
		t.Fatalf("%+v %v", r.Authenticator, err)
	}
}

// Support reactivation is audited with the operator's ID.
func TestSupportReactivationAudited(t *testing.T) {
	e := newEnv(t)
	pw := password(e.identity("alice"))
	for range 3 {
		e.loginPassword("alice", pw, "wrong")
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

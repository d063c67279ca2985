package service_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
)

func TestCodeDeviceLifecycle(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	d := codeDevice("KV-100")
	e.importCode(d)
	res := must[service.AddResult](t)(e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "code-display", Serial: d.Serial}))
	if res.Activation != (service.CodeActivation{Needs: "code"}) || res.Authenticator.State != domain.StatePending {
		t.Fatalf("%+v", res)
	}
	aid := res.Authenticator.ID
	// A wrong first code is refused and audited, not counted.
	_, err := e.svc.Activate(e.ctx, support, "alice", aid, service.ActivateRequest{Code: "000000"})
	if fe := failure(t, err); fe.State != domain.StatePending || fe.Cause != domain.CauseWrongCode {
		t.Fatalf("%v", err)
	}
	code := d.Code(e.clk.Now())
	v := must[service.AuthenticatorView](t)(e.svc.Activate(e.ctx, support, "alice", aid, service.ActivateRequest{Code: code}))
	if v.State != domain.StateActive || v.Serial != d.Serial {
		t.Fatalf("%+v", v)
	}
	// The activation code was used: replaying it at login is refused.
	_, err = e.loginCode("alice", aid, code)
	if fe := failure(t, err); fe.Cause != domain.CauseReplayedCode || fe.Failures != 0 || !errors.Is(err, domain.ErrCodeReplayed) {
		t.Fatalf("replay: %v", err)
	}
	e.clk.Advance(30 * time.Second)
	r := must[service.LoginResult](t)(e.loginCode("alice", aid, d.Code(e.clk.Now())))
	sum := r.Authenticator.Element.(service.CodeSummary)
	if sum.Digits != 6 || sum.PeriodSeconds != 30 || sum.Algorithm != "sha1" || sum.LastStep != d.TOTP().Step(e.clk.Now()) {
		t.Fatalf("%+v", sum)
	}
	// A device whose clock runs one step ahead is accepted; the drift is
	// recorded (RFC 6238 §6).
	e.clk.Advance(30 * time.Second)
	r = must[service.LoginResult](t)(e.loginCode("alice", aid, d.Code(e.clk.Now().Add(30*time.Second))))
	if got := r.Authenticator.Element.(service.CodeSummary).DriftSteps; got != 1 {
		t.Fatalf("drift %d", got)
	}
	// Two steps off is a wrong code.
	e.clk.Advance(90 * time.Second)
	_, err = e.loginCode("alice", aid, d.Code(e.clk.Now().Add(-60*time.Second)))
	if fe := failure(t, err); fe.Cause != domain.CauseWrongCode || fe.Failures != 1 {
		t.Fatalf("%v", err)
	}
	// Malformed codes are bad requests, not failures.
	for _, c := range []string{"12345", "1234567", "12a456", "１２３４５６"} {
		if _, err := e.loginCode("alice", aid, c); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("code %q: %v", c, err)
		}
	}
}

func TestCodeReplaysCountWithPolicy(t *testing.T) {
	for _, count := range []bool{false, true} {
		e := newEnv(t, withPolicy(domain.Policy{CountReplays: count}))
		e.identity("alice")
		d := codeDevice("KV-7")
		v := must[service.AuthenticatorView](t)(e.addCode("alice", support, d))
		e.clk.Advance(30 * time.Second)
		code := d.Code(e.clk.Now())
		must[service.LoginResult](t)(e.loginCode("alice", v.ID, code))
		_, err := e.loginCode("alice", v.ID, code)
		want := 0
		if count {
			want = 1
		}
		if fe := failure(t, err); fe.Failures != want {
			t.Fatalf("CountReplays %v: failures %d", count, fe.Failures)
		}
	}
}

// DESIGN §1: the same OTP sent many times at once is accepted exactly
// once.
func TestConcurrentCodeAcceptedOnce(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	d := codeDevice("KV-9")
	v := must[service.AuthenticatorView](t)(e.addCode("alice", support, d))
	e.clk.Advance(30 * time.Second)
	code := d.Code(e.clk.Now())
	const n = 32
	cer := make([]string, n)
	for i := range cer {
		cer[i] = must[service.BeginLoginResult](t)(e.svc.BeginLogin(e.ctx, "alice", v.ID)).Ceremony
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.svc.FinishLogin(e.ctx, "alice", v.ID, service.FinishLoginRequest{Ceremony: cer[i], Code: code})
		})
	}
	wg.Wait()
	ok, replayed := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, domain.ErrCodeReplayed):
			replayed++
		default:
			t.Fatalf("%v", err)
		}
	}
	if ok != 1 || replayed != n-1 {
		t.Fatalf("%d accepted, %d replays", ok, replayed)
	}
}

// DESIGN §1: a blocked code device's serial is revoked forever: adding it
// again is refused with "order a new authenticator".
func TestCodeDeviceSerialRevoked(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	e.identity("bob")
	d := codeDevice("KV-5")
	v := must[service.AuthenticatorView](t)(e.addCode("alice", support, d))
	b := must[service.AuthenticatorView](t)(e.svc.Block(e.ctx, support, "alice", v.ID, service.BlockRequest{Reason: "lost"}))
	if b.Element != (service.WipedSummary{Wiped: true}) {
		t.Fatalf("%+v", b)
	}
	el, err := e.st.Element(e.ctx, v.ID)
	if err != nil || !el.Code.Secret.IsZero() {
		t.Fatalf("secret not wiped: %v", err)
	}
	for _, who := range []string{"alice", "bob"} {
		_, err := e.svc.AddAuthenticator(e.ctx, support, who, service.AddRequest{Kind: "audio-code-reader", Serial: d.Serial})
		if !errors.Is(err, domain.ErrSerialRevoked) || !contains(err.Error(), "order a new authenticator") {
			t.Fatalf("%s: %v", who, err)
		}
	}
	doc, _ := servicetest.PSKC(pskcKey, d)
	if _, err := e.svc.ImportPSKC(e.ctx, support, doc); !errors.Is(err, service.ErrPSKCInvalid) {
		t.Fatalf("re-import of a revoked serial: %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestPSKCImport(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	a, b := codeDevice("KV-A"), codeDevice("KV-B")
	doc, err := servicetest.PSKC(pskcKey, a, b)
	if err != nil {
		t.Fatal(err)
	}
	res := must[service.ImportResult](t)(e.svc.ImportPSKC(e.ctx, support, doc))
	if res.Imported != 2 || res.Serials[0] != "KV-A" || res.Serials[1] != "KV-B" {
		t.Fatalf("%+v", res)
	}
	// Importing the same serial again: all or nothing.
	c := codeDevice("KV-C")
	doc2, _ := servicetest.PSKC(pskcKey, c, a)
	if _, err := e.svc.ImportPSKC(e.ctx, support, doc2); !errors.Is(err, service.ErrPSKCInvalid) {
		t.Fatalf("%v", err)
	}
	if _, err := e.st.Import(e.ctx, "KV-C"); err == nil {
		t.Fatal("KV-C imported by a refused document")
	}
	// A document under another key fails its MAC check.
	doc3, _ := servicetest.PSKC([]byte("another key, 32 bytes long!!!!!!"), c)
	if _, err := e.svc.ImportPSKC(e.ctx, support, doc3); !errors.Is(err, service.ErrPSKCMAC) {
		t.Fatalf("wrong key: %v", err)
	}
	for _, junk := range []string{"", "<x/>", "not xml", "<KeyContainer/>"} {
		if _, err := e.svc.ImportPSKC(e.ctx, support, []byte(junk)); !errors.Is(err, service.ErrPSKCInvalid) {
			t.Errorf("%q: %v", junk, err)
		}
	}
}

func TestAppLogin(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	app, key, err := e.addApp("alice", support, "428613")
	if err != nil {
		t.Fatal(err)
	}
	if app.State != domain.StateActive || app.Element != (service.AppSummary{PublicKeyAlg: "ES256"}) {
		t.Fatalf("%+v", app)
	}
	must[service.LoginResult](t)(e.loginApp("alice", app.ID, key, "428613"))
	_, err = e.loginApp("alice", app.ID, key, "428614")
	if fe := failure(t, err); fe.Cause != domain.CauseWrongPIN || fe.Failures != 1 {
		t.Fatalf("%v", err)
	}
	other, _ := appKey(t)
	_, err = e.loginApp("alice", app.ID, other, "428613")
	if fe := failure(t, err); fe.Cause != domain.CauseBadSignature || fe.Failures != 2 {
		t.Fatalf("%v", err)
	}
	if _, err := e.loginApp("alice", app.ID, key, "42861"); !errors.Is(err, service.ErrInvalid) {
		t.Fatalf("short PIN: %v", err)
	}
	must[service.LoginResult](t)(e.loginApp("alice", app.ID, key, "428613"))
	if e.auth(app.ID).Failures != 0 {
		t.Fatal("success did not reset the count")
	}
	// The app's key ID is revoked with it: a new registration of the same
	// key is refused.
	must[service.AuthenticatorView](t)(e.svc.Block(e.ctx, support, "alice", app.ID, service.BlockRequest{Reason: "compromised"}))
	_, err = e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "app", PublicKey: e.appPub[app.ID], PIN: "428613"})
	if !errors.Is(err, domain.ErrCredentialRevoked) {
		t.Fatalf("re-adding a blocked app key: %v", err)
	}
	if _, _, err := e.addApp("alice", support, "428613"); err != nil {
		t.Fatalf("a new app key: %v", err)
	}
}

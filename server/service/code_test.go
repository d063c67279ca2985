package service_test

import (
	"errors"
	"fmt"
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
	// A pending code device holds nothing of the secret.
	if _, err := e.st.Element(e.ctx, aid); err == nil {
		t.Fatal("a pending code device has an element")
	}
	// A wrong first code is refused, audited and counted against the
	// serial.
	_, err := e.svc.Activate(e.ctx, support, "alice", aid, service.ActivateRequest{Code: "000000"})
	if fe := failure(t, err); fe.State != domain.StatePending || fe.Cause != domain.CauseWrongCode || fe.Failures != 1 {
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
		cer[i] = e.factor("alice", v.ID).Ceremony
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.svc.FinishLogin(e.ctx, "alice", service.FinishLoginRequest{Ceremony: cer[i], Code: code})
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
	// Another key's signature proves the caller does not hold the
	// phone: refused, and counted against nothing.
	other, _ := appKey(t)
	_, err = e.loginApp("alice", app.ID, other, "428613")
	var fe *service.FailureError
	if !errors.Is(err, service.ErrBadSignature) || errors.As(err, &fe) || e.auth(app.ID).Failures != 1 {
		t.Fatalf("%v (failures %d)", err, e.auth(app.ID).Failures)
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

// DESIGN §1: a code device proves possession before it takes its secret.
// Somebody who adds another person's serial gets a pending add that holds
// nothing; their wrong codes count against the serial and are cut off at
// Policy.MaxActivationFailures (at most that many are ever checked, also
// when sent at once); support unlocks the serial by importing it again;
// the first right code takes it, and the other add can never be
// activated; cancelling it revokes nothing.
func TestCodeDeviceProofOfPossession(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	e.identity("mallory")
	d := codeDevice("KV-1")
	e.importCode(d)
	add := func(who string) string {
		r := must[service.AddResult](t)(e.svc.AddAuthenticator(e.ctx, support, who, service.AddRequest{Kind: "code-display", Serial: d.Serial}))
		return r.Authenticator.ID
	}
	mine, theirs := add("alice"), add("mallory")
	// 64 wrong codes at once from mallory.
	const n = 64
	max := domain.DefaultMaxActivationFailures
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			code := fmt.Sprintf("%06d", (i*7919+13)%1_000_000)
			for code == d.Code(e.clk.Now()) || code == d.Code(e.clk.Now().Add(-30*time.Second)) || code == d.Code(e.clk.Now().Add(30*time.Second)) {
				code = fmt.Sprintf("%06d", (i*7919+14)%1_000_000)
			}
			_, errs[i] = e.svc.Activate(e.ctx, support, "mallory", theirs, service.ActivateRequest{Code: code})
		})
	}
	close(start)
	wg.Wait()
	wrong, locked := 0, 0
	for _, err := range errs {
		switch {
		case errors.Is(err, service.ErrWrongCode):
			wrong++
		case errors.Is(err, service.ErrSerialLocked):
			locked++
		default:
			t.Fatalf("unexpected %v", err)
		}
	}
	if wrong != max || locked != n-max || e.metrics.checked("code-display") != max {
		t.Fatalf("%d wrong, %d locked, %d checked; want %d, %d, %d", wrong, locked, e.metrics.checked("code-display"), max, n-max, max)
	}
	// Locked for everybody, the right code too, until support imports
	// the secret again.
	if _, err := e.svc.Activate(e.ctx, support, "alice", mine, service.ActivateRequest{Code: d.Code(e.clk.Now())}); !errors.Is(err, service.ErrSerialLocked) {
		t.Fatalf("alice's right code on the locked serial: %v", err)
	}
	e.importCode(d)
	v := must[service.AuthenticatorView](t)(e.svc.Activate(e.ctx, support, "alice", mine, service.ActivateRequest{Code: d.Code(e.clk.Now())}))
	if v.State != domain.StateActive {
		t.Fatalf("%+v", v)
	}
	e.clk.Advance(30 * time.Second)
	if _, err := e.svc.Activate(e.ctx, support, "mallory", theirs, service.ActivateRequest{Code: d.Code(e.clk.Now())}); !errors.Is(err, domain.ErrAlreadyAdded) {
		t.Fatalf("activating a serial another identity activated: %v", err)
	}
	must[service.CancelResult](t)(e.svc.Cancel(e.ctx, support, "mallory", theirs))
	if tombs, _ := e.st.FindTombstones(e.ctx, domain.Ref{Serial: d.Serial}); len(tombs) != 0 {
		t.Fatalf("cancelling revoked the serial: %+v", tombs)
	}
	must[service.LoginResult](t)(e.loginCode("alice", mine, d.Code(e.clk.Now())))
}

// A pending add expires (Policy.PendingExpiry): it cannot be activated,
// it no longer holds the quota, and it can be cancelled, by its owner too.
func TestPendingAddExpires(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	_, owner := e.owner("alice")
	d := codeDevice("KV-2")
	e.importCode(d)
	r := must[service.AddResult](t)(e.svc.AddAuthenticator(e.ctx, owner, "alice", service.AddRequest{Kind: "code-display", Serial: d.Serial}))
	must[service.CancelResult](t)(e.svc.Cancel(e.ctx, owner, "alice", r.Authenticator.ID))
	r = must[service.AddResult](t)(e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "code-display", Serial: d.Serial}))
	e.clk.Advance(domain.DefaultPendingExpiry)
	_, owner = e.owner("alice")
	if _, err := e.svc.Activate(e.ctx, owner, "alice", r.Authenticator.ID, service.ActivateRequest{Code: d.Code(e.clk.Now())}); !errors.Is(err, domain.ErrExpired) {
		t.Fatalf("activating an expired add: %v", err)
	}
	// Adding again cancels the expired add first: the quota is free.
	again := must[service.AddResult](t)(e.svc.AddAuthenticator(e.ctx, owner, "alice", service.AddRequest{Kind: "audio-code-reader", Serial: d.Serial}))
	if _, err := e.st.Authenticator(e.ctx, r.Authenticator.ID); err == nil {
		t.Fatal("the expired add is still there")
	}
	must[service.AuthenticatorView](t)(e.svc.Activate(e.ctx, owner, "alice", again.Authenticator.ID, service.ActivateRequest{Code: d.Code(e.clk.Now())}))
	if _, err := e.svc.Cancel(e.ctx, owner, "alice", again.Authenticator.ID); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("cancelling an active device: %v", err)
	}
}

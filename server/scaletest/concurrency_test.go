package scaletest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/service/servicetest"
	"github.com/authbench/authbench/sim/app"
	"github.com/authbench/authbench/sim/chip"
)

// Figures of DESIGN §7 ("lockout exact under 3 replicas × 64 concurrent
// wrong attempts; the same OTP sent 100× at once accepted exactly once").
const (
	wrongAttempts = 64  // concurrent wrong codes, PINs, passwords
	maxFailures   = 3   // domain.DefaultMaxFailures: the 3rd suspends
	sameOTP       = 100 // copies of one valid code sent at once
	chipClones    = 24  // cloned chips asserting with the same counter
	chipReplays   = 32  // copies of one chip assertion sent at once
	origin        = "https://localhost"
)

// scenario is one concurrency check against a cluster; the scenarios of a
// backend share its servers and run at the same time on their own
// identities.
type scenario struct {
	name string
	run  func(t *testing.T, ctx context.Context, c *cluster)
}

var scenarios = []scenario{
	{"lockout/code", func(t *testing.T, ctx context.Context, c *cluster) { lockout(t, ctx, c, codeLockout) }},
	{"lockout/pin", func(t *testing.T, ctx context.Context, c *cluster) { lockout(t, ctx, c, pinLockout) }},
	{"lockout/password", func(t *testing.T, ctx context.Context, c *cluster) { lockout(t, ctx, c, passwordLockout) }},
	{"otp-replay", otpReplay},
	{"chip/clones", chipCloneLogins},
	{"chip/replayed-assertion", chipReplayedAssertion},
}

// TestConcurrency runs the scenarios against one server on an SQLite file
// (64 and 100 concurrent clients) and against three replicas on one
// PostgreSQL database (requests spread round-robin; a login begun on one
// replica is finished on the next).
func TestConcurrency(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		db := b.open(t)
		c := newCluster(t, b.name, db, b.replicas)
		ctx := testContext(t)
		concurrently(t, len(scenarios), func(i int) string { return scenarios[i].name }, func(t *testing.T, i int) {
			scenarios[i].run(t, ctx, c)
		})
	})
}

// lockoutCase is one kind of authenticator whose wrong secret is
// counted.
type lockoutCase struct {
	what  string // "codes", "PINs", "passwords"
	kind  string // the authenticator kind, as the metrics name it
	wrong string // the answer of a wrong attempt
	// enroll gives identity id an active authenticator of the kind and
	// returns its ID and prep, which readies wrong attempt i (the right
	// password first, for a code; the app's challenge and signature, for
	// a PIN) on client cl and returns the request that sends it.
	enroll func(t *testing.T, ctx context.Context, c *cluster, id string) (aid string, prep func(cl *client.Client, i int) (send func(cl *client.Client) error, err error))
}

// thePassword is the password of the identities of the concurrency tests.
func thePassword(id string) string { return "the right password of " + id }

var codeLockout = lockoutCase{what: "codes", kind: client.KindCodeDisplay, wrong: "wrong_code",
	enroll: func(t *testing.T, ctx context.Context, c *cluster, id string) (string, func(*client.Client, int) (func(*client.Client) error, error)) {
		dev := newCodeDevice(t)
		importCodeDevices(t, ctx, c, dev)
		_, err := c.support(0).CreateIdentity(ctx, client.CreateIdentityRequest{ID: id, Password: thePassword(id)})
		fatal(t, err)
		aid := enrollCodeDevice(t, ctx, c, id, dev)
		valid := map[string]bool{}
		for k := -4; k <= 4; k++ {
			valid[dev.Code(time.Now().Add(time.Duration(k)*dev.Period))] = true
		}
		return aid, func(cl *client.Client, i int) (func(*client.Client) error, error) {
			v := uint32(i*104729 + 271828)
			code := fmt.Sprintf("%06d", v%1_000_000)
			for valid[code] {
				v++
				code = fmt.Sprintf("%06d", v%1_000_000)
			}
			step, err := cl.PasswordLogin(ctx, id, thePassword(id), aid)
			if err != nil {
				return nil, err
			}
			return func(cl *client.Client) error {
				_, err := cl.FinishLogin(ctx, id, client.FinishLoginRequest{Ceremony: step.Next.Ceremony, Code: code})
				return err
			}, nil
		}
	}}

var pinLockout = lockoutCase{what: "PINs", kind: client.KindApp, wrong: "wrong_pin",
	enroll: func(t *testing.T, ctx context.Context, c *cluster, id string) (string, func(*client.Client, int) (func(*client.Client) error, error)) {
		phone, err := app.New(app.Options{Seed: random(t, 32), PIN: "246810"})
		fatal(t, err)
		_, err = c.support(0).CreateIdentity(ctx, client.CreateIdentityRequest{ID: id})
		fatal(t, err)
		a, err := client.EnrollApp(ctx, c.support(0), id, "phone", phone, phone.PIN())
		fatal(t, err)
		return a.ID, func(cl *client.Client, i int) (func(*client.Client) error, error) {
			ch, err := cl.AppLogin(ctx, id, a.ID)
			if err != nil {
				return nil, err
			}
			sig, err := phone.Sign(ch.Challenge) // a good signature, a wrong PIN
			if err != nil {
				return nil, err
			}
			return func(cl *client.Client) error {
				_, err := cl.FinishLogin(ctx, id, client.FinishLoginRequest{Ceremony: ch.Ceremony, PIN: fmt.Sprintf("%06d", 100000+i), Signature: sig})
				return err
			}, nil
		}
	}}

var passwordLockout = lockoutCase{what: "passwords", kind: client.KindPassword, wrong: "wrong_password",
	enroll: func(t *testing.T, ctx context.Context, c *cluster, id string) (string, func(*client.Client, int) (func(*client.Client) error, error)) {
		p, err := c.support(0).CreateIdentity(ctx, client.CreateIdentityRequest{ID: id, Password: thePassword(id)})
		fatal(t, err)
		return p.Authenticators[0].ID, func(_ *client.Client, i int) (func(*client.Client) error, error) {
			return func(cl *client.Client) error {
				_, err := cl.PasswordLogin(ctx, id, fmt.Sprintf("wrong password number %d", i), "")
				return err
			}, nil
		}
	}}

// lockout sends wrongAttempts wrong proofs for one authenticator at once
// (DESIGN §1: the 3rd consecutive failure suspends; attempts are reserved
// before they are checked): exactly maxFailures are counted as wrong;
// every other one is refused as suspended without being counted, with the
// same status, code and words; and the authenticator ends suspended, with
// one audit event per counted failure and one for the suspension. (How
// many guesses were evaluated is measured in attack_test.go, on servers
// of its own: the scenarios here share theirs.)
func lockout(t *testing.T, ctx context.Context, c *cluster, lc lockoutCase) {
	id := uniqueName(t, "lockout-")
	aid, prep := lc.enroll(t, ctx, c, id)
	n := wrongAttempts
	sends := make([]func(*client.Client) error, n)
	limited, err := prepare(ctx, n, 8, func(i int) error {
		var err error
		sends[i], err = prep(c.anon(i), i)
		return err
	})
	fatal(t, err)
	refill(ctx, limited)
	bodies := newBodies()
	got := burst(ctx, n, func(i int) error {
		err := sends[i](c.anon(i + 1))
		bodies.add(err)
		return err
	})
	a := authenticatorOf(t, ctx, c, id, aid)
	t.Logf("%d concurrent wrong %s for one authenticator over %d server(s): %s; then %s with failures=%d suspensions=%d",
		n, lc.what, c.replicas(), got, a.State, a.Failures, a.Suspensions)
	if w, s := got.get(lc.wrong), got.get("authenticator_suspended"); w != maxFailures || s != n-maxFailures {
		t.Errorf("answers: %d %s and %d authenticator_suspended, want exactly %d and %d", w, lc.wrong, s, maxFailures, n-maxFailures)
	}
	if o := got.others(lc.wrong, "authenticator_suspended"); len(o) > 0 {
		t.Errorf("unexpected answers: %v", o)
	}
	if d := bodies.distinct("authenticator_suspended"); len(d) != 1 {
		t.Errorf("the answers after the suspension differ (%d versions): %q", len(d), d)
	}
	if a.State != client.StateSuspended || a.Failures != maxFailures {
		t.Errorf("authenticator after the burst: state %s, failures %d; want suspended, %d", a.State, a.Failures, maxFailures)
	}
	wantSusp := 1
	if lc.kind == client.KindPassword {
		wantSusp = 0 // anonymous failures never count toward a permanent block
	}
	if a.Suspensions != wantSusp {
		t.Errorf("suspensions counted toward a permanent block: %d, want %d", a.Suspensions, wantSusp)
	}
	ev := eventsOf(t, ctx, c, id, aid)
	if f, s := ev["authenticator.login_failed"], ev["authenticator.suspended"]; f != maxFailures || s != 1 {
		t.Errorf("audit of the authenticator: %d login_failed and %d suspended events, want %d and 1 (all: %v)", f, s, maxFailures, ev)
	}
}

// otpReplay sends one valid one-time code sameOTP times at once, each with
// its own login ceremony, spread over the servers: it is accepted exactly
// once (RFC 6238 §5.2; DESIGN §1 "also when two replicas see it at the
// same instant"); the copies are refused as replayed (or as wrong, should
// the code have aged out meanwhile), and a replay is not counted as a
// failed attempt.
func otpReplay(t *testing.T, ctx context.Context, c *cluster) {
	id := uniqueName(t, "otp-")
	dev := newCodeDevice(t)
	importCodeDevices(t, ctx, c, dev)
	_, err := c.support(0).CreateIdentity(ctx, client.CreateIdentityRequest{ID: id, Password: thePassword(id)})
	fatal(t, err)
	aid := enrollCodeDevice(t, ctx, c, id, dev)
	n := sameOTP
	ceremonies := make([]string, n)
	limited, err := prepare(ctx, n, 8, func(i int) error {
		step, err := c.anon(i).PasswordLogin(ctx, id, thePassword(id), aid)
		if err == nil {
			ceremonies[i] = step.Next.Ceremony
		}
		return err
	})
	fatal(t, err)
	refill(ctx, limited)
	now := time.Now()
	code := dev.Code(now)
	got := burst(ctx, n, func(i int) error {
		_, err := c.anon(i+1).FinishLogin(ctx, id, client.FinishLoginRequest{Ceremony: ceremonies[i], Code: code})
		return err
	})
	a := authenticatorOf(t, ctx, c, id, aid)
	t.Logf("one valid code sent %d times at once over %d server(s): %s; then %s, failures=%d, last_step=%d",
		n, c.replicas(), got, a.State, a.Failures, a.Element.LastStep)
	if ok := got.get("ok"); ok != 1 {
		t.Errorf("the code was accepted %d times, want exactly once", ok)
	}
	if o := got.others("ok", "code_replayed", "wrong_code"); len(o) > 0 {
		t.Errorf("unexpected answers: %v", o)
	}
	if step := dev.TOTP().Step(now); a.Element.LastStep < step {
		t.Errorf("the watermark is at step %d, below the accepted code's step %d", a.Element.LastStep, step)
	}
	if got.get("wrong_code") == 0 && (a.State != client.StateActive || a.Failures != 0) {
		t.Errorf("replays were counted as failures: state %s, failures %d", a.State, a.Failures)
	}
}

// chipCloneLogins has chipClones copies of one chip (the same credential
// and signature counter, as a cloned chip would have) each sign its own
// login at once: every assertion carries the same counter value, so at
// most one is accepted (WebAuthn Level 3 §6.1.1: a counter that does not
// increase signals a clone); the others are sign_count failures, counted,
// until the chip is suspended.
func chipCloneLogins(t *testing.T, ctx context.Context, c *cluster) {
	id, aid, original := enrollChip(t, ctx, c)
	var state bytes.Buffer
	fatal(t, original.Save(&state))
	n := chipClones
	resps := make([]*client.AuthenticationResponse, n)
	ceremonies := make([]string, n)
	counts := make([]uint32, n)
	limited, err := prepare(ctx, n, 8, func(i int) error {
		step, err := c.anon(i).PasswordLogin(ctx, id, thePassword(id), aid)
		if err != nil {
			return err
		}
		ch := step.Next
		clone, err := chip.Load(bytes.NewReader(state.Bytes()), chip.Options{})
		if err != nil {
			return err
		}
		defer clone.Close()
		r, err := client.ChipAssertion(ctx, clone, ch.PublicKey, origin)
		if err != nil {
			return err
		}
		raw, err := webauthn.Decode("authenticatorData", r.Response.AuthenticatorData)
		if err != nil {
			return err
		}
		ad, err := ctap2.ParseAuthData(raw)
		if err != nil {
			return err
		}
		resps[i], ceremonies[i], counts[i] = r, ch.Ceremony, ad.SignCount
		return nil
	})
	fatal(t, err)
	for i := range counts {
		if counts[i] != counts[0] || counts[i] == 0 {
			t.Fatalf("clone %d signed with counter %d, clone 0 with %d: the clones should agree on a non-zero counter", i, counts[i], counts[0])
		}
	}
	refill(ctx, limited)
	got := burst(ctx, n, func(i int) error {
		_, err := c.anon(i+1).FinishLogin(ctx, id, client.FinishLoginRequest{Ceremony: ceremonies[i], Credential: resps[i]})
		return err
	})
	a := authenticatorOf(t, ctx, c, id, aid)
	t.Logf("%d cloned chips logged in at once with counter %d over %d server(s): %s; then %s, failures=%d, sign_count=%d",
		n, counts[0], c.replicas(), got, a.State, a.Failures, a.Element.SignCount)
	if ok := got.get("ok"); ok > 1 {
		t.Errorf("%d logins with the same counter were accepted, want at most one", ok)
	}
	if o := got.others("ok", "sign_count", "authenticator_suspended"); len(o) > 0 {
		t.Errorf("unexpected answers: %v", o)
	}
	// Failures can only follow the accepted login, whose counter they
	// repeat, so the 3rd suspends the chip.
	if s := got.get("sign_count"); s > maxFailures {
		t.Errorf("%d sign_count failures were counted, but the 3rd after the accepted login suspends", s)
	}
	if a.Element.SignCount > counts[0] {
		t.Errorf("stored sign count %d is above any the clones sent (%d)", a.Element.SignCount, counts[0])
	}
	if got.get("sign_count") == maxFailures && a.State != client.StateSuspended {
		t.Errorf("after %d sign_count failures the chip is %s, want suspended", maxFailures, a.State)
	}
	// The counter moves only with an accepted login, and every accepted
	// login is answered as such and audited once.
	ev := eventsOf(t, ctx, c, id, aid)
	ok, moved, succeeded := got.get("ok"), a.Element.SignCount == counts[0], ev["authenticator.login_succeeded"]
	msg := fmt.Sprintf("%d logins answered ok and %d login_succeeded events, but the stored counter is %d (the clones sent %d)",
		ok, succeeded, a.Element.SignCount, counts[0])
	if moved != (ok == 1) || succeeded != ok {
		t.Error(msg)
	}
}

// chipReplayedAssertion sends one chip assertion (one ceremony, one
// signature) chipReplays times at once: at most one login is accepted;
// the copies find the ceremony spent or the counter not increased.
func chipReplayedAssertion(t *testing.T, ctx context.Context, c *cluster) {
	id, aid, ch := enrollChip(t, ctx, c)
	step, err := c.anon(0).PasswordLogin(ctx, id, thePassword(id), aid)
	fatal(t, err)
	lc := step.Next
	resp, err := client.ChipAssertion(ctx, ch, lc.PublicKey, origin)
	fatal(t, err)
	req := client.FinishLoginRequest{Ceremony: lc.Ceremony, Credential: resp}
	n := chipReplays
	got := burst(ctx, n, func(i int) error {
		_, err := c.anon(i+1).FinishLogin(ctx, id, req)
		return err
	})
	a := authenticatorOf(t, ctx, c, id, aid)
	t.Logf("one chip assertion sent %d times at once over %d server(s): %s; then %s, failures=%d, sign_count=%d",
		n, c.replicas(), got, a.State, a.Failures, a.Element.SignCount)
	if ok := got.get("ok"); ok > 1 {
		t.Errorf("one assertion was accepted %d times, want at most once", ok)
	}
	if o := got.others("ok", "ceremony_expired", "sign_count", "authenticator_suspended"); len(o) > 0 {
		t.Errorf("unexpected answers: %v", o)
	}
}

// newCodeDevice returns a TOTP code device (6 digits, 30 s) with a random
// secret and serial number, as a provisioning station would make it.
func newCodeDevice(t testing.TB) servicetest.CodeDevice {
	return servicetest.CodeDevice{Serial: uniqueName(t, "SC-"), Secret: random(t, 20), Digits: 6, Period: 30 * time.Second}
}

// importCodeDevices sends the secrets of devs to the servers in one PSKC
// document (RFC 6030) protected by the cluster's pre-shared key.
func importCodeDevices(t testing.TB, ctx context.Context, c *cluster, devs ...servicetest.CodeDevice) {
	t.Helper()
	doc, err := servicetest.PSKC(c.pskcKey, devs...)
	fatal(t, err)
	res, err := c.support(0).ImportPSKC(ctx, doc)
	fatal(t, err)
	if res.Imported != len(devs) {
		t.Fatalf("PSKC import: %d imported, want %d", res.Imported, len(devs))
	}
}

// enrollCodeDevice adds dev to identity id and activates it with the code
// of the previous time step (within the accepted skew), so that the code
// of the current step is still unused. It returns the authenticator ID.
func enrollCodeDevice(t testing.TB, ctx context.Context, c *cluster, id string, dev servicetest.CodeDevice) string {
	t.Helper()
	added, err := c.support(0).AddAuthenticator(ctx, id, client.AddRequest{Kind: client.KindCodeDisplay, Label: "code display", Serial: dev.Serial})
	fatal(t, err)
	aid := added.Authenticator.ID
	for try := 0; ; try++ {
		_, err = c.support(0).Activate(ctx, id, aid, client.ActivateRequest{Code: dev.Code(time.Now().Add(-dev.Period))})
		// Under load the step may have moved on twice before the server
		// checked the code: it then counts as a wrong activation code
		// (of the 9 a serial takes), and the next step's code is sent.
		if !errors.Is(err, client.ErrWrongCode) || try == 2 {
			break
		}
	}
	fatal(t, err)
	return aid
}

// enrollChip makes an identity with a new simulated chip, closed at the
// end of the test, and returns the identity, the authenticator and the
// chip.
func enrollChip(t *testing.T, ctx context.Context, c *cluster) (string, string, *chip.Chip) {
	t.Helper()
	ch, err := chip.New(chip.Options{Seed: random(t, 32)})
	fatal(t, err)
	t.Cleanup(func() { ch.Close() })
	id := uniqueName(t, "chip-")
	_, err = c.support(0).CreateIdentity(ctx, client.CreateIdentityRequest{ID: id, Password: thePassword(id)})
	fatal(t, err)
	a, err := client.EnrollChip(ctx, c.support(0), id, "chip", ch)
	fatal(t, err)
	return id, a.ID, ch
}

// authenticatorOf returns authenticator aid of identity id as the server
// shows it.
func authenticatorOf(t testing.TB, ctx context.Context, c *cluster, id, aid string) *client.Authenticator {
	t.Helper()
	p, err := c.support(0).Identity(ctx, id)
	fatal(t, err)
	a := p.Authenticator(aid)
	if a == nil {
		t.Fatalf("identity %s has no authenticator %s", id, aid)
	}
	return a
}

// eventsOf counts the audit events of authenticator aid by type.
func eventsOf(t testing.TB, ctx context.Context, c *cluster, id, aid string) map[string]int {
	t.Helper()
	evs, err := c.support(0).AllAudit(ctx, id)
	fatal(t, err)
	n := map[string]int{}
	for _, e := range evs {
		if e.AuthenticatorID == aid {
			n[e.Type]++
		}
	}
	return n
}

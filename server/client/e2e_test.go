package client_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/server/api"
	"github.com/authbench/authbench/server/api/apitest"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/pskc"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service/servicetest"
	"github.com/authbench/authbench/sim/app"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/code"
)

// The end-to-end tests run the real server (server/embedded: API, service,
// SQLite store) on a loopback port and drive simulated devices through it
// with the ceremonies of this package, one rule of the lifecycle (server/domain) at a time.

type world struct {
	t       *testing.T
	srv     *embedded.Server
	clock   *servicetest.Clock
	support *client.Client
	anon    *client.Client
	pskcKey []byte
	keys    *secrets.Keyring
	origin  string
	// apps holds the app each person's owner session logs in with.
	apps map[string]*client.Authenticator
}

const origin = "https://mitid.e2e"

func newWorld(t *testing.T, db string) *world {
	t.Helper()
	w := &world{t: t, clock: servicetest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), pskcKey: bytes.Repeat([]byte{7}, 16), origin: origin,
		apps: map[string]*client.Authenticator{}}
	keys, err := secrets.GenerateKeyring(nil)
	fatal(t, err)
	w.keys = keys
	w.srv = startServer(t, db, w.clock, w.pskcKey, keys)
	w.support = newClient(t, w.srv.URL, w.srv.SupportToken)
	w.anon = w.support.WithToken("")
	return w
}

// startServer starts a server (a replica, when db is shared) with the
// master keyring keys.
func startServer(t *testing.T, db string, clock *servicetest.Clock, key []byte, keys *secrets.Keyring) *embedded.Server {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(chip.TestCACertPEM())
	srv, err := embedded.Start(context.Background(), embedded.Options{
		DB: db, Keyring: keys, RPID: "mitid.e2e", RPOrigins: []string{origin}, AttestationRoots: roots,
		Hasher: secrets.FastParams(), PSKCKey: key, Now: clock.Now,
		SupportTokens: map[string]string{"support-e2e": "operator-1"},
		RateLimit:     api.RateLimit{PerSource: api.Rate{Every: -1}, PerAuthenticator: api.Rate{Every: -1}},
		// Every exchange of the client with the server is checked
		// against the OpenAPI document.
		Wrap: apitest.ForTest(t).Wrap,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("server close: %v", err)
		}
	})
	return srv
}

func newClient(t *testing.T, url, token string) *client.Client {
	c, err := client.New(url, client.Options{Token: token, Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

var ctx = context.Background()

func fatal(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// person creates an identity with a password ("pw of ID") and an app
// (registered by support, as at the counter), and returns the password
// authenticator's ID and a client with a two-factor session from the app.
func (w *world) person(id string) (string, *client.Client) {
	w.t.Helper()
	p, err := w.support.CreateIdentity(ctx, client.CreateIdentityRequest{ID: id, Password: "pw of " + id})
	fatal(w.t, err)
	pw := p.Authenticators[0].ID
	a, err := app.New(app.Options{Seed: []byte("owner app of " + id)})
	fatal(w.t, err)
	au, err := client.EnrollApp(ctx, w.support, id, "owner's phone", a, a.PIN())
	fatal(w.t, err)
	w.apps[id] = au
	s, err := client.LoginApp(ctx, w.anon, id, au.ID, a, a.PIN())
	fatal(w.t, err)
	return pw, w.support.WithToken(s.Token)
}

// password returns the password of identity id.
func password(id string) string { return "pw of " + id }

func (w *world) chip(seed string) *chip.Chip {
	w.t.Helper()
	c, err := chip.New(chip.Options{Seed: []byte(seed)})
	fatal(w.t, err)
	w.t.Cleanup(func() { c.Close() })
	return c
}

// codeDevice makes a simulated code device on the virtual clock and
// imports its secret as a provisioning station would (PSKC, RFC 6030).
func (w *world) codeDevice(kind device.Kind, seed string) *code.Device {
	w.t.Helper()
	d, err := code.New(code.Options{Kind: kind, Seed: []byte(seed), Now: w.clock.Now})
	fatal(w.t, err)
	w.importPSKC(d)
	return d
}

func (w *world) importPSKC(devs ...*code.Device) {
	w.t.Helper()
	var keys []pskc.Key
	for i, d := range devs {
		tp := d.TOTP()
		keys = append(keys, pskc.Key{Serial: d.Serial(), ID: fmt.Sprint("k", i), Algorithm: pskc.TOTP, Hash: tp.Algorithm, Digits: tp.Digits, Period: tp.Period, Secret: tp.Secret})
	}
	var doc bytes.Buffer
	if err := pskc.Write(&doc, keys, pskc.EncryptOptions{Key: w.pskcKey}); err != nil {
		w.t.Fatal(err)
	}
	res, err := w.support.ImportPSKC(ctx, doc.Bytes())
	fatal(w.t, err)
	if res.Imported != len(devs) {
		w.t.Fatalf("imported %d of %d", res.Imported, len(devs))
	}
}

// wrongCode returns a code none of the steps around the device's clock
// gives.
func wrongCode(d *code.Device) string {
	tp := d.TOTP()
	s := tp.Step(d.Clock())
	near := map[string]bool{}
	for i := s - 1; i <= s+1; i++ {
		c, _ := tp.Code(i)
		near[c] = true
	}
	for i := 0; ; i++ {
		c := strings.Repeat(fmt.Sprint(i%10), 6)
		if !near[c] {
			return c
		}
	}
}

// failed checks a failed attempt's code, count and state.
func failed(t *testing.T, err, want error, n int, state string) {
	t.Helper()
	var ae *client.APIError
	if !errors.As(err, &ae) || !errors.Is(err, want) || !errors.Is(err, client.ErrFailedAttempt) {
		t.Fatalf("err %v, want %v", err, want)
	}
	got, ok := ae.Failures()
	if ae.State() != state || state == client.StateActive && (!ok || got != n) {
		t.Fatalf("failures %d (%v), state %q; want %d, %q: %v", got, ok, ae.State(), n, state, err)
	}
}

func state(t *testing.T, c *client.Client, id, aid string) *client.Authenticator {
	t.Helper()
	p, err := c.Identity(ctx, id)
	fatal(t, err)
	a := p.Authenticator(aid)
	if a == nil {
		t.Fatalf("no authenticator %s", aid)
	}
	return a
}

// Rule: the 3rd consecutive wrong password / PIN / code suspends the
// authenticator; a success resets the consecutive count.
func TestRuleThirdFailureSuspends(t *testing.T) {
	w := newWorld(t, "")
	t.Run("password", func(t *testing.T) {
		w.person("p-password")
		for i := 1; i <= 2; i++ {
			_, err := w.anon.PasswordLogin(ctx, "p-password", "wrong", "")
			failed(t, err, client.ErrWrongPassword, i, client.StateActive)
		}
		if _, err := w.anon.PasswordLogin(ctx, "p-password", "pw of p-password", ""); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 3; i++ {
			_, err := w.anon.PasswordLogin(ctx, "p-password", "wrong", "")
			st := client.StateActive
			if i == 3 {
				st = client.StateSuspended
			}
			failed(t, err, client.ErrWrongPassword, i, st)
		}
		if _, err := w.anon.PasswordLogin(ctx, "p-password", "pw of p-password", ""); !errors.Is(err, client.ErrSuspended) {
			t.Errorf("right password while suspended: %v", err)
		}
	})
	t.Run("app PIN", func(t *testing.T) {
		_, owner := w.person("p-app")
		a, err := app.New(app.Options{Seed: []byte("e2e app")})
		fatal(t, err)
		au, err := client.EnrollApp(ctx, owner, "p-app", "", a, a.PIN())
		fatal(t, err)
		for i := 1; i <= 3; i++ {
			_, err := client.LoginApp(ctx, w.anon, "p-app", au.ID, a, "999999")
			st := client.StateActive
			if i == 3 {
				st = client.StateSuspended
			}
			failed(t, err, client.ErrWrongPIN, i, st)
		}
	})
	t.Run("code", func(t *testing.T) {
		_, owner := w.person("p-code")
		d := w.codeDevice(device.KindCodeDisplay, "e2e code")
		au, err := client.EnrollCodeDevice(ctx, owner, "p-code", "", d)
		fatal(t, err)
		for i := 1; i <= 2; i++ {
			_, err := client.LoginPasswordCode(ctx, w.anon, "p-code", password("p-code"), au.ID, wrongCode(d))
			failed(t, err, client.ErrWrongCode, i, client.StateActive)
		}
		w.clock.Advance(30 * time.Second)
		if _, err := client.LoginPasswordCodeDevice(ctx, w.anon, "p-code", password("p-code"), d); err != nil {
			t.Fatal(err)
		}
		if a := state(t, w.support, "p-code", au.ID); a.Failures != 0 {
			t.Errorf("failures %d after a success", a.Failures)
		}
	})
}

// Rule: a suspended authenticator is reactivated self-service (proved with
// another active authenticator) or by support; reactivation is audited
// with who and how.
func TestRuleReactivation(t *testing.T) {
	w := newWorld(t, "")
	_, owner := w.person("p1")
	a, err := app.New(app.Options{Seed: []byte("e2e reactivate")})
	fatal(t, err)
	au, err := client.EnrollApp(ctx, owner, "p1", "", a, a.PIN())
	fatal(t, err)
	suspend := func() {
		t.Helper()
		for i := 0; i < 3; i++ {
			client.LoginApp(ctx, w.anon, "p1", au.ID, a, "000000")
		}
		if st := state(t, w.support, "p1", au.ID).State; st != client.StateSuspended {
			t.Fatalf("state %s", st)
		}
	}
	// A session from the app itself (taken while it was active) ends with
	// its suspension: self-service needs OTHER active authenticators.
	s, err := client.LoginApp(ctx, w.anon, "p1", au.ID, a, a.PIN())
	fatal(t, err)
	appSession := w.support.WithToken(s.Token)
	suspend()
	if _, err := appSession.Reactivate(ctx, "p1", au.ID); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("reactivation with the suspended app's own session: %v", err)
	}
	// Another identity's session may not.
	_, other := w.person("p2")
	if _, err := other.Reactivate(ctx, "p1", au.ID); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("another person's session: %v", err)
	}
	// Self-service with the session of the owner's other app.
	if got, err := owner.Reactivate(ctx, "p1", au.ID); err != nil || got.State != client.StateActive {
		t.Errorf("self-service reactivation: %+v, %v", got, err)
	}
	// Support.
	suspend()
	if got, err := w.support.Reactivate(ctx, "p1", au.ID); err != nil || got.State != client.StateActive || got.Suspensions != 2 {
		t.Errorf("support reactivation: %+v, %v", got, err)
	}
	// The audit says who and how.
	events, err := w.support.AllAudit(ctx, "p1")
	fatal(t, err)
	var who []string
	for _, e := range events {
		if strings.Contains(e.Type, "reactivat") && e.AuthenticatorID == au.ID {
			who = append(who, e.Actor.Kind+"/"+e.Actor.Via)
		}
	}
	wantOwner := "owner/" + w.apps["p1"].ID
	if len(who) != 2 || who[len(who)-1] != "support/" || !strings.Contains(strings.Join(who, " "), wantOwner) {
		t.Errorf("reactivations audited as %v, want owner via %s and support", who, w.apps["p1"].ID)
	}
}

// Rule: the 3rd suspension makes the block permanent; a permanent block
// deletes the element; a code device's serial is then revoked forever.
func TestRuleEscalationRevokesSerial(t *testing.T) {
	w := newWorld(t, "")
	_, owner := w.person("p1")
	d := w.codeDevice(device.KindAudioCodeReader, "e2e escalation")
	au, err := client.EnrollCodeDevice(ctx, owner, "p1", "", d)
	fatal(t, err)
	for round := 1; round <= 3; round++ {
		var err error
		for i := 0; i < 3; i++ {
			_, err = client.LoginPasswordCode(ctx, w.anon, "p1", password("p1"), au.ID, wrongCode(d))
		}
		want := client.StateSuspended
		if round == 3 {
			want = client.StateBlocked
		}
		failed(t, err, client.ErrWrongCode, 3, want)
		if round < 3 {
			if _, err := owner.Reactivate(ctx, "p1", au.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	a := state(t, w.support, "p1", au.ID)
	if a.State != client.StateBlocked || !a.Element.Wiped || a.Suspensions != 3 {
		t.Errorf("after escalation: %+v", a)
	}
	if _, err := owner.Reactivate(ctx, "p1", au.ID); !errors.Is(err, client.ErrBlocked) {
		t.Errorf("reactivating a blocked authenticator: %v", err)
	}
	w.clock.Advance(30 * time.Second)
	c, err := d.Press(ctx)
	fatal(t, err)
	if _, err := client.LoginPasswordCode(ctx, w.anon, "p1", password("p1"), au.ID, c.Digits); !errors.Is(err, client.ErrBlocked) {
		t.Errorf("login after the block: %v", err)
	}
	// A blocked code device is no second factor any more.
	if _, err := client.LoginPasswordCodeDevice(ctx, w.anon, "p1", password("p1"), d); !errors.Is(err, client.ErrSecondFactor) {
		t.Errorf("login with the blocked device: %v", err)
	}
	_, err = client.EnrollCodeDevice(ctx, owner, "p1", "", d)
	var ae *client.APIError
	if !errors.Is(err, client.ErrSerialRevoked) || !errors.As(err, &ae) || !strings.Contains(strings.ToLower(ae.Message), "order a new") {
		t.Errorf("adding the revoked serial again: %v", err)
	}
	// Also for another person, and after a fresh PSKC import of it.
	_, other := w.person("p2")
	if _, err := client.EnrollCodeDevice(ctx, other, "p2", "", d); !errors.Is(err, client.ErrSerialRevoked) {
		t.Errorf("another person adding the revoked serial: %v", err)
	}
}

// Rule: the person can block any authenticator at once; app and password
// are then unusable forever.
func TestRuleOwnerBlocks(t *testing.T) {
	w := newWorld(t, "")
	pw, owner := w.person("p1")
	a, err := app.New(app.Options{Seed: []byte("e2e block app")})
	fatal(t, err)
	au, err := client.EnrollApp(ctx, owner, "p1", "", a, a.PIN())
	fatal(t, err)
	got, err := owner.Block(ctx, "p1", au.ID, client.ReasonCompromised)
	fatal(t, err)
	if got.State != client.StateBlocked || got.BlockReason != client.ReasonCompromised || !got.Element.Wiped {
		t.Errorf("blocked app: %+v", got)
	}
	if _, err := client.LoginApp(ctx, w.anon, "p1", au.ID, a, a.PIN()); !errors.Is(err, client.ErrBlocked) {
		t.Errorf("login with the blocked app: %v", err)
	}
	if _, err := w.support.Reactivate(ctx, "p1", au.ID); !errors.Is(err, client.ErrBlocked) {
		t.Errorf("support reactivating a blocked app: %v", err)
	}
	// The same app key cannot be registered again.
	if _, err := client.EnrollApp(ctx, owner, "p1", "", a, a.PIN()); err == nil {
		t.Error("the blocked app's key was registered again")
	}
	got, err = owner.Block(ctx, "p1", pw, client.ReasonLost)
	fatal(t, err)
	if got.State != client.StateBlocked {
		t.Errorf("blocked password: %+v", got)
	}
	if _, err := w.anon.PasswordLogin(ctx, "p1", "pw of p1", ""); !errors.Is(err, client.ErrBlocked) {
		t.Errorf("login with the blocked password: %v", err)
	}
	if _, err := owner.Block(ctx, "p1", au.ID, "bored"); !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("a reason that is neither lost nor compromised: %v", err)
	}
}

// Rule: a blocked chip can be added again; it gets a new credential and a
// new element, and the old credential stays rejected.
func TestRuleChipReadded(t *testing.T) {
	w := newWorld(t, "")
	_, owner := w.person("p1")
	ch := w.chip("e2e chip")
	first, err := client.EnrollChip(ctx, owner, "p1", "", ch)
	fatal(t, err)
	if first.Element.AttestationTrusted == nil || !*first.Element.AttestationTrusted || first.Element.ChipSerial != "" {
		t.Errorf("first element %+v", first.Element)
	}
	// One active chip: the same chip cannot be enrolled twice.
	if _, err := client.EnrollChip(ctx, owner, "p1", "", ch); !errors.Is(err, ctap2.ErrCredentialExcluded) && !errors.Is(err, client.ErrQuotaExceeded) {
		t.Errorf("second enrolment of the same chip: %v", err)
	}
	// And no second chip while one is active.
	if _, err := client.EnrollChip(ctx, owner, "p1", "", w.chip("second chip")); !errors.Is(err, client.ErrQuotaExceeded) {
		t.Errorf("a second chip: %v", err)
	}
	if _, err := owner.Block(ctx, "p1", first.ID, client.ReasonLost); err != nil {
		t.Fatal(err)
	}
	second, err := client.EnrollChip(ctx, owner, "p1", "", ch)
	fatal(t, err)
	if second.CredentialID == first.CredentialID || second.ID == first.ID {
		t.Fatalf("re-added chip reuses %s", first.CredentialID)
	}
	if _, err := client.LoginPasswordChip(ctx, w.anon, "p1", password("p1"), second.ID, ch); err != nil {
		t.Fatal(err)
	}
	if _, err := client.LoginPasswordChip(ctx, w.anon, "p1", password("p1"), first.ID, ch); !errors.Is(err, client.ErrBlocked) {
		t.Errorf("login with the old element: %v", err)
	}
	// The chip still holds the old credential and signs with it: refused.
	step, err := w.anon.PasswordLogin(ctx, "p1", password("p1"), second.ID)
	fatal(t, err)
	lc := step.Next
	opts := *lc.PublicKey
	opts.AllowCredentials = []client.CredentialDescriptor{{Type: "public-key", ID: first.CredentialID}}
	cred, err := client.ChipAssertion(ctx, ch, &opts, origin)
	fatal(t, err)
	if _, err := w.anon.FinishLogin(ctx, "p1", client.FinishLoginRequest{Ceremony: lc.Ceremony, Credential: cred}); !errors.Is(err, client.ErrCredentialRevoked) {
		t.Errorf("login with the old credential: %v, want credential_revoked", err)
	}
}

// Rule: a chip whose non-zero sign counter does not increase is refused,
// counted as a failure, and audited.
func TestRuleClonedChip(t *testing.T) {
	w := newWorld(t, "")
	_, owner := w.person("p1")
	ch := w.chip("e2e clone")
	au, err := client.EnrollChip(ctx, owner, "p1", "", ch)
	fatal(t, err)
	var saved bytes.Buffer
	if err := ch.Save(&saved); err != nil {
		t.Fatal(err)
	}
	clone, err := chip.Load(&saved, chip.Options{})
	fatal(t, err)
	defer clone.Close()
	if _, err := client.LoginPasswordChip(ctx, w.anon, "p1", password("p1"), au.ID, ch); err != nil {
		t.Fatal(err)
	}
	_, err = client.LoginPasswordChip(ctx, w.anon, "p1", password("p1"), au.ID, clone)
	failed(t, err, client.ErrSignCount, 1, client.StateActive)
	found := false
	events, err := w.support.AllAudit(ctx, "p1")
	fatal(t, err)
	for _, e := range events {
		if e.AuthenticatorID == au.ID && strings.Contains(fmt.Sprint(e.Type, e.Reason, e.Details), "sign") {
			found = true
		}
	}
	if !found {
		t.Error("the clone's attempt is not in the audit")
	}
	// A chip whose counter is stuck at a non-zero value is caught too.
	_, owner2 := w.person("p2")
	stuck, err := chip.New(chip.Options{Seed: []byte("stuck"), Faults: chip.Faults{CounterStuck: true}})
	fatal(t, err)
	defer stuck.Close()
	au2, err := client.EnrollChip(ctx, owner2, "p2", "", stuck)
	fatal(t, err)
	if _, err := client.LoginPasswordChip(ctx, w.anon, "p2", password("p2"), au2.ID, stuck); err != nil {
		t.Fatal(err)
	}
	_, err = client.LoginPasswordChip(ctx, w.anon, "p2", password("p2"), au2.ID, stuck)
	failed(t, err, client.ErrSignCount, 1, client.StateActive)
}

// Rule: quotas: at most 3 apps and one code device.
func TestRuleQuotas(t *testing.T) {
	w := newWorld(t, "")
	_, owner := w.person("p1")
	for i := 1; i < 3; i++ { // the owner's app is the first
		a, err := app.New(app.Options{Seed: []byte{byte(i)}})
		fatal(t, err)
		if _, err := client.EnrollApp(ctx, owner, "p1", "", a, a.PIN()); err != nil {
			t.Fatal(err)
		}
	}
	a4, err := app.New(app.Options{Seed: []byte{4}})
	fatal(t, err)
	if _, err := client.EnrollApp(ctx, owner, "p1", "", a4, a4.PIN()); !errors.Is(err, client.ErrQuotaExceeded) {
		t.Errorf("a fourth app: %v", err)
	}
	d1 := w.codeDevice(device.KindCodeDisplay, "quota 1")
	d2 := w.codeDevice(device.KindAudioCodeReader, "quota 2")
	first, err := client.EnrollCodeDevice(ctx, owner, "p1", "", d1)
	fatal(t, err)
	if _, err := client.EnrollCodeDevice(ctx, owner, "p1", "", d2); !errors.Is(err, client.ErrQuotaExceeded) {
		t.Errorf("a second code device: %v", err)
	}
	if _, err := owner.Block(ctx, "p1", first.ID, client.ReasonLost); err != nil {
		t.Fatal(err)
	}
	if _, err := client.EnrollCodeDevice(ctx, owner, "p1", "", d2); err != nil {
		t.Fatal(err)
	}
}

// Rule: support can block a whole identity temporarily; only support lifts
// it.
func TestRuleIdentityBlock(t *testing.T) {
	w := newWorld(t, "")
	_, owner := w.person("p1")
	if _, err := owner.BlockIdentity(ctx, "p1", "x"); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("the person blocking their identity: %v", err)
	}
	id, err := w.support.BlockIdentity(ctx, "p1", "suspected misuse")
	fatal(t, err)
	if id.State != "temporarily-blocked" {
		t.Errorf("state %s", id.State)
	}
	if _, err := w.anon.PasswordLogin(ctx, "p1", "pw of p1", ""); !errors.Is(err, client.ErrIdentityBlocked) {
		t.Errorf("login while blocked: %v", err)
	}
	if _, err := owner.Identity(ctx, "p1"); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("the session outlived the identity's block: %v", err)
	}
	// The block ended the person's session: they cannot even ask.
	if _, err := owner.UnblockIdentity(ctx, "p1", ""); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("the person lifting the block: %v", err)
	}
	if _, err := w.support.UnblockIdentity(ctx, "p1", "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.anon.PasswordLogin(ctx, "p1", "pw of p1", ""); err != nil {
		t.Fatal(err)
	}
}

// Rule: OTP codes are single use (RFC 6238 §5.2), also when two replicas
// sharing one database see the same code at the same instant.
func TestRuleCodeSingleUse(t *testing.T) {
	db := filepath.Join(t.TempDir(), "shared.db")
	w := newWorld(t, db)
	replica := startServer(t, db, w.clock, w.pskcKey, w.keys)
	other := newClient(t, replica.URL, "")
	_, owner := w.person("p1")
	d := w.codeDevice(device.KindCodeDisplay, "e2e replay")
	au, err := client.EnrollCodeDevice(ctx, owner, "p1", "", d)
	fatal(t, err)
	for round := 0; round < 3; round++ {
		w.clock.Advance(30 * time.Second)
		c, err := d.Press(ctx)
		fatal(t, err)
		// Begin on both replicas first, then finish at once.
		var wg sync.WaitGroup
		lc0, err := w.anon.PasswordLogin(ctx, "p1", password("p1"), au.ID)
		fatal(t, err)
		lc1, err := other.PasswordLogin(ctx, "p1", password("p1"), au.ID)
		fatal(t, err)
		lcs := []*client.FactorChallenge{lc0.Next, lc1.Next}
		errs := make([]error, 2)
		for i, cl := range []*client.Client{w.anon, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = cl.FinishLogin(ctx, "p1", client.FinishLoginRequest{Ceremony: lcs[i].Ceremony, Code: c.Digits})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, client.ErrCodeReplayed):
				t.Errorf("round %d: %v", round, err)
			}
		}
		if ok != 1 {
			t.Errorf("round %d: code accepted %d times (%v)", round, ok, errs)
		}
	}
	// An older code (at or below the highest used step) is refused too.
	tp := d.TOTP()
	old, _ := tp.Code(tp.Step(w.clock.Now()) - 1)
	if _, err := client.LoginPasswordCode(ctx, w.anon, "p1", password("p1"), au.ID, old); !errors.Is(err, client.ErrCodeReplayed) && !errors.Is(err, client.ErrWrongCode) {
		t.Errorf("an older code: %v", err)
	}
}

// The API's access rules as the client sees them: tokens, sessions,
// ceremonies and their expiry.
func TestAccessAndExpiry(t *testing.T) {
	w := newWorld(t, "")
	_, owner := w.person("p1")
	w.person("p2")
	if _, err := w.support.WithToken("wrong").Identity(ctx, "p1"); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := w.anon.Identity(ctx, "p1"); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("no token: %v", err)
	}
	if _, err := owner.Identity(ctx, "p2"); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("a session reading another identity: %v", err)
	}
	if _, err := owner.CreateIdentity(ctx, client.CreateIdentityRequest{ID: "p3"}); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("a session creating an identity: %v", err)
	}
	if _, err := w.support.Identity(ctx, "nobody"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("unknown identity: %v", err)
	}
	// A ceremony expires.
	lc, err := w.anon.AppLogin(ctx, "p1", w.apps["p1"].ID)
	fatal(t, err)
	w.clock.Advance(6 * time.Minute)
	if _, err := w.anon.FinishLogin(ctx, "p1", client.FinishLoginRequest{Ceremony: lc.Ceremony, PIN: "123456", Signature: []byte{1}}); !errors.Is(err, client.ErrCeremonyExpired) {
		t.Errorf("finishing an expired ceremony: %v", err)
	}
	// And so does a session (15 minutes).
	w.clock.Advance(10 * time.Minute)
	if _, err := owner.Identity(ctx, "p1"); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("an expired session: %v", err)
	}
	// Health, OpenAPI and metrics.
	if err := w.anon.Health(ctx); err != nil {
		t.Error(err)
	}
	doc, err := w.anon.OpenAPI(ctx)
	fatal(t, err)
	if !bytes.Contains(doc, []byte(`"openapi"`)) || !bytes.Contains(doc, []byte("/login/finish")) {
		t.Errorf("OpenAPI document: %.200s", doc)
	}
	if m, err := w.anon.Metrics(ctx); err != nil || !strings.Contains(m, "# TYPE") {
		t.Errorf("metrics: %.200s", m)
	}
	v, err := w.support.VerifyAudit(ctx)
	fatal(t, err)
	if !v.OK || v.Records == 0 {
		t.Errorf("audit verification %+v", v)
	}
}

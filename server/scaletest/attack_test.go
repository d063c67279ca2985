package scaletest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/service/servicetest"
	"github.com/authbench/authbench/sim/app"
	"github.com/authbench/authbench/sim/chip"
)

// The attacks of issue 10, each done as an attacker would do it, against
// real `authbench serve` processes: one server on an SQLite file and three
// replicas on one PostgreSQL database. Each test asserts the outcome the
// attacker wanted does not happen.
//
// How many guesses were evaluated against a secret is what the servers
// count right before each evaluation (authbench_verifier_checks_total on
// /metrics, summed over the replicas); the attacks that measure it run one
// after the other on servers of their own, so nothing else is counted.

// victim is a person with a password, a code display, a chip and an app,
// all enrolled by support, and the devices to use them.
type victim struct {
	id, password string
	pw, kv, chip string
	app          *client.Authenticator
	phone        *app.App
	chipDev      *chip.Chip
	codeDev      servicetest.CodeDevice
}

func newVictim(t *testing.T, ctx context.Context, c *cluster, withChip bool) *victim {
	t.Helper()
	v := &victim{id: uniqueName(t, "victim-")}
	v.password = thePassword(v.id)
	p, err := c.support(0).CreateIdentity(ctx, client.CreateIdentityRequest{ID: v.id, Password: v.password})
	fatal(t, err)
	v.pw = p.Authenticators[0].ID
	dev := newCodeDevice(t)
	importCodeDevices(t, ctx, c, dev)
	v.kv = enrollCodeDevice(t, ctx, c, v.id, dev)
	v.codeDev = dev
	v.phone, err = app.New(app.Options{Seed: random(t, 32)})
	fatal(t, err)
	v.app, err = client.EnrollApp(ctx, c.support(0), v.id, "phone", v.phone, v.phone.PIN())
	fatal(t, err)
	if withChip {
		v.chipDev, err = chip.New(chip.Options{Seed: random(t, 32)})
		fatal(t, err)
		t.Cleanup(func() { v.chipDev.Close() })
		a, err := client.EnrollChip(ctx, c.support(0), v.id, "chip", v.chipDev)
		fatal(t, err)
		v.chip = a.ID
	}
	return v
}

// appSession logs the victim in with the app on server i.
func (v *victim) appSession(t *testing.T, ctx context.Context, c *cluster, i int) *client.Session {
	t.Helper()
	s, err := client.LoginApp(ctx, c.anon(i), v.id, v.app.ID, v.phone, v.phone.PIN())
	fatal(t, err)
	return s
}

// everywhere checks that token is refused (401) on every replica.
func everywhere(t *testing.T, ctx context.Context, c *cluster, token, id, what string) {
	t.Helper()
	for i := range c.replicas() {
		if _, err := c.client(i, token).Identity(ctx, id); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("%s: replica %d answers %v, want 401 (the session must have ended)", what, i, err)
		}
	}
}

// TestAttacks runs the attacks on servers of their own per backend.
func TestAttacks(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b.name, b.open(t), b.replicas)
		ctx := testContext(t)
		// One after the other: the verifier counts are the servers'.
		for _, a := range []struct {
			name string
			run  func(t *testing.T, ctx context.Context, c *cluster)
		}{
			{"concurrent-guesses", attackConcurrentGuesses},
			{"session-outlives-proof", attackSessionOutlivesProof},
			{"one-factor", attackOneFactor},
			{"anonymous-permanent-block", attackAnonymousPermanentBlock},
			{"activation-brute-force", attackActivationBruteForce},
		} {
			t.Run(a.name, func(t *testing.T) { a.run(t, ctx, c) })
		}
	})
}

// attackConcurrentGuesses: 64 guesses sent at once, spread over the
// replicas and 64 source addresses, against a password (anonymous), a
// code display (after the right password) and an app's PIN (after its
// valid signature). At most 3 of each are ever evaluated against the
// secret, and every answer after the suspension is byte for byte the
// same, also for the right secret.
func attackConcurrentGuesses(t *testing.T, ctx context.Context, c *cluster) {
	for _, lc := range []lockoutCase{passwordLockout, codeLockout, pinLockout} {
		t.Run(lc.what, func(t *testing.T) {
			id := uniqueName(t, "guess-")
			_, prep := lc.enroll(t, ctx, c, id)
			n := wrongAttempts
			sends := make([]func(*client.Client) error, n)
			_, err := prepare(ctx, n, 8, func(i int) error {
				var err error
				sends[i], err = prep(c.anon(i), i)
				return err
			})
			fatal(t, err)
			before := c.checks(t, ctx, lc.kind)
			bodies := newBodies()
			got := burst(ctx, n, func(i int) error {
				err := sends[i](c.anon(i + 1))
				bodies.add(err)
				return err
			})
			checked := c.checks(t, ctx, lc.kind) - before
			t.Logf("AFTER %s×%d: %d concurrent wrong %s: %d evaluated against the secret; answers %s",
				c.backend, c.replicas(), n, lc.what, checked, got)
			if checked > maxFailures {
				t.Errorf("%d of %d concurrent wrong %s were evaluated against the secret; at most %d may be", checked, n, lc.what, maxFailures)
			}
			if w := got.get(lc.wrong); w != maxFailures || got.get("authenticator_suspended") != n-maxFailures {
				t.Errorf("answers %s; want %d %s and the rest authenticator_suspended", got, maxFailures, lc.wrong)
			}
			if lc.kind != client.KindPassword {
				return
			}
			// Later guesses, the right password among them, on every
			// replica: the same answer, word for word.
			for i := range 2 * c.replicas() {
				pw := fmt.Sprintf("late guess %d", i)
				if i%2 == 1 {
					pw = thePassword(id)
				}
				_, err := c.anon(i).PasswordLogin(ctx, id, pw, "")
				bodies.add(err)
			}
			if d := bodies.distinct("authenticator_suspended"); len(d) != 1 {
				t.Errorf("the answers after the suspension differ (%d versions): %q", len(d), d)
			}
			if after := c.checks(t, ctx, lc.kind) - before; after != checked {
				t.Errorf("%d more guesses were evaluated after the suspension", after-checked)
			}
		})
	}
}

// attackSessionOutlivesProof: an attacker holds a session (stolen, or
// made with a password they learnt). The owner blocks the password as
// compromised, from their app: the stolen session ends on every replica
// and can add nothing. A session made with the new password and the code
// display ends when the code display is suspended; the owner's own
// session ends when support blocks the identity, and stays ended after.
func attackSessionOutlivesProof(t *testing.T, ctx context.Context, c *cluster) {
	v := newVictim(t, ctx, c, false)
	// Each login needs an unused code above the activation's step (the
	// one before now): now's, then the next step's (within the skew).
	next := time.Now().Add(-v.codeDev.Period)
	code := func() string {
		next = next.Add(v.codeDev.Period)
		return v.codeDev.Code(next)
	}
	stolen, err := client.LoginPasswordCode(ctx, c.anon(0), v.id, v.password, v.kv, code())
	fatal(t, err)
	owner := v.appSession(t, ctx, c, 1)
	if _, err := c.client(2, owner.Token).Block(ctx, v.id, v.pw, client.ReasonCompromised); err != nil {
		t.Fatal(err)
	}
	everywhere(t, ctx, c, stolen.Token, v.id, "the session of the blocked password")
	for i := range c.replicas() {
		_, err := c.client(i, stolen.Token).AddAuthenticator(ctx, v.id, client.AddRequest{Kind: client.KindPassword, Password: "the attacker's password"})
		if !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("replica %d: the stolen session added a password: %v", i, err)
		}
	}
	// The owner makes a new password; the attacker learns it too, and
	// fails the code display three times: the code display is suspended,
	// and the session it proved ends.
	const newPassword = "the owner's new password"
	if _, err := c.client(0, owner.Token).AddAuthenticator(ctx, v.id, client.AddRequest{Kind: client.KindPassword, Password: newPassword}); err != nil {
		t.Fatal(err)
	}
	again, err := client.LoginPasswordCode(ctx, c.anon(1), v.id, newPassword, v.kv, code())
	fatal(t, err)
	for i := range 3 {
		_, err := client.LoginPasswordCode(ctx, c.anon(i), v.id, newPassword, v.kv, wrongCode(v.codeDev))
		if !errors.Is(err, client.ErrWrongCode) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	everywhere(t, ctx, c, again.Token, v.id, "the session of the suspended code display")
	// Support blocks the identity: every session ends, for good.
	if _, err := c.support(0).BlockIdentity(ctx, v.id, "suspected misuse"); err != nil {
		t.Fatal(err)
	}
	everywhere(t, ctx, c, owner.Token, v.id, "a session of the blocked identity")
	if _, err := c.support(1).UnblockIdentity(ctx, v.id, ""); err != nil {
		t.Fatal(err)
	}
	everywhere(t, ctx, c, owner.Token, v.id, "a session after the block was lifted")
	for _, tok := range []string{stolen.Token, again.Token} {
		everywhere(t, ctx, c, tok, v.id, "an ended session after the block was lifted")
	}
}

// attackOneFactor: an attacker who has one factor (the password, or
// somebody's app ID without the phone) tries to change anything. Nothing
// gives them a session: the password's ceremony is no bearer token, the
// old one-factor login routes are gone, a made-up signature is refused and
// counted against nothing; and the identity is the same afterwards.
func attackOneFactor(t *testing.T, ctx context.Context, c *cluster) {
	v := newVictim(t, ctx, c, false)
	before, err := c.support(0).Identity(ctx, v.id)
	fatal(t, err)
	step, err := c.anon(0).PasswordLogin(ctx, v.id, v.password, "")
	fatal(t, err)
	if len(step.SecondFactors) != 1 || step.Next != nil {
		t.Fatalf("the password step: %+v", step)
	}
	tok := step.Ceremony
	base := "/v1/identities/" + v.id
	for _, r := range []struct{ method, path, body string }{
		{"GET", base, ""},
		{"GET", base + "/audit", ""},
		{"GET", base + "/sessions", ""},
		{"POST", base + "/authenticators", `{"kind":"password","password":"the attacker's password"}`},
		{"POST", base + "/authenticators/" + v.kv + "/block", `{"reason":"lost"}`},
		{"POST", base + "/authenticators/" + v.app.ID + "/block", `{"reason":"compromised"}`},
		{"POST", base + "/authenticators/" + v.pw + "/reactivate", `{}`},
		{"POST", base + "/authenticators/" + v.kv + "/cancel", `{}`},
		{"POST", "/v1/logout", `{}`},
	} {
		for i := range c.replicas() {
			status, code := rawRequest(t, ctx, c, i, r.method, r.path, tok, r.body)
			if status != 401 {
				t.Errorf("replica %d: %s %s with the password's ceremony as a token: %d %s, want 401", i, r.method, r.path, status, code)
			}
		}
	}
	// The one-factor login routes of earlier versions are gone.
	for _, p := range []string{base + "/authenticators/" + v.pw + "/login/begin", base + "/authenticators/" + v.pw + "/login/finish"} {
		if status, code := rawRequest(t, ctx, c, 0, "POST", p, "", `{"password":"`+v.password+`"}`); status != 404 {
			t.Errorf("POST %s: %d %s, want 404", p, status, code)
		}
	}
	// The password's ceremony cannot finish a login.
	if _, err := c.anon(1).FinishLogin(ctx, v.id, client.FinishLoginRequest{Ceremony: tok, Code: "123456"}); !errors.Is(err, client.ErrCeremonyExpired) {
		t.Errorf("finishing with the password's ceremony: %v", err)
	}
	// Without the phone, the app's ID gives nothing and costs nothing.
	thief, err := app.New(app.Options{Seed: random(t, 32), PIN: v.phone.PIN()})
	fatal(t, err)
	if _, err := client.LoginApp(ctx, c.anon(2), v.id, v.app.ID, thief, v.phone.PIN()); !errors.Is(err, client.ErrBadSignature) {
		t.Errorf("the app's ID with another key: %v", err)
	}
	after, err := c.support(0).Identity(ctx, v.id)
	fatal(t, err)
	if len(after.Authenticators) != len(before.Authenticators) {
		t.Fatalf("the identity has %d authenticators, had %d", len(after.Authenticators), len(before.Authenticators))
	}
	for i, a := range after.Authenticators {
		b := before.Authenticators[i]
		if a.ID != b.ID || a.State != b.State || a.Failures != b.Failures {
			t.Errorf("%s %s changed: %s failures=%d, was %s failures=%d", a.Kind, a.ID, a.State, a.Failures, b.State, b.Failures)
		}
	}
}

// rawRequest sends a request with bearer token to replica i and returns
// the status and error code.
func rawRequest(t *testing.T, ctx context.Context, c *cluster, i int, method, path, token, body string) (int, string) {
	t.Helper()
	c.mu.Lock()
	url := c.servers[i%len(c.servers)].URL
	c.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, method, url+path, strings.NewReader(body))
	fatal(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Transport: c.srcs.transport(i), Timeout: 30 * time.Second}).Do(req)
	fatal(t, err)
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	code := ""
	if i := strings.Index(b.String(), `"code":"`); i >= 0 {
		code, _, _ = strings.Cut(b.String()[i+8:], `"`)
	}
	return resp.StatusCode, code
}

// attackAnonymousPermanentBlock: an attacker who knows only the identity
// ID sends wrong passwords, round after round, from several addresses and
// replicas, while the owner reactivates the password from the app each
// time. The password is suspended every round (the seed's rule), but
// never blocked for good: its verifier stays, and the right password
// works afterwards.
func attackAnonymousPermanentBlock(t *testing.T, ctx context.Context, c *cluster) {
	v := newVictim(t, ctx, c, false)
	owner := v.appSession(t, ctx, c, 0)
	const rounds = 5
	for round := range rounds {
		for k := range 3 {
			_, err := c.anon(round*3+k).PasswordLogin(ctx, v.id, fmt.Sprintf("guess %d.%d", round, k), "")
			if !errors.Is(err, client.ErrWrongPassword) {
				t.Fatalf("round %d guess %d: %v", round, k, err)
			}
		}
		// More guesses change nothing.
		if _, err := c.anon(round).PasswordLogin(ctx, v.id, "one more", ""); !errors.Is(err, client.ErrSuspended) {
			t.Fatalf("round %d: a guess while suspended: %v", round, err)
		}
		a, err := c.client(round, owner.Token).Reactivate(ctx, v.id, v.pw)
		if err != nil {
			t.Fatalf("round %d: the owner's reactivation: %v", round, err)
		}
		if a.State != client.StateActive || a.Suspensions != 0 || a.Element.Wiped {
			t.Fatalf("round %d: the password after reactivation: %+v", round, a)
		}
	}
	a := authenticatorOf(t, ctx, c, v.id, v.pw)
	t.Logf("AFTER %s×%d: %d rounds of 3 anonymous wrong passwords, the owner reactivating in between: password %s, %d suspensions counted toward a permanent block, element wiped %v",
		c.backend, c.replicas(), rounds, a.State, a.Suspensions, a.Element.Wiped)
	if a.State == client.StateBlocked || a.Element.Wiped {
		t.Fatalf("the anonymous attacker blocked the password for good: %+v", a)
	}
	if _, err := client.LoginPasswordCode(ctx, c.anon(1), v.id, v.password, v.kv, "000000"); !errors.Is(err, client.ErrWrongCode) {
		t.Errorf("the right password after the attack (then a wrong code): %v", err)
	}
}

// attackActivationBruteForce: an attacker with an identity of their own
// (and a two-factor session) adds the serial printed on somebody else's
// new code display and guesses activation codes, 64 at once over the
// replicas. At most 9 (Policy.MaxActivationFailures) are ever evaluated;
// then the serial is locked, for the right code too, until support
// imports it again; the owner then activates it, and the attacker's add
// can never be activated; cancelling it revokes nothing.
func attackActivationBruteForce(t *testing.T, ctx context.Context, c *cluster) {
	const maxActivation = 9
	dev := newCodeDevice(t)
	importCodeDevices(t, ctx, c, dev)
	owner := uniqueName(t, "owner-")
	_, err := c.support(0).CreateIdentity(ctx, client.CreateIdentityRequest{ID: owner, Password: thePassword(owner)})
	fatal(t, err)
	mallory := newVictim(t, ctx, c, false) // an identity of the attacker's own
	ms := mallory.appSession(t, ctx, c, 0)
	// The attacker's app and code display do not stop the add: their
	// code display must go first (one code device each).
	if _, err := c.client(0, ms.Token).Block(ctx, mallory.id, mallory.kv, client.ReasonLost); err != nil {
		t.Fatal(err)
	}
	ms = mallory.appSession(t, ctx, c, 0)
	added, err := c.client(0, ms.Token).AddAuthenticator(ctx, mallory.id, client.AddRequest{Kind: client.KindCodeDisplay, Serial: dev.Serial})
	fatal(t, err)
	if added.Authenticator.State != client.StatePending {
		t.Fatalf("the attacker's add: %+v", added.Authenticator)
	}
	// The owner's add of the same serial is not in the way.
	mine, err := c.support(1).AddAuthenticator(ctx, owner, client.AddRequest{Kind: client.KindCodeDisplay, Serial: dev.Serial})
	fatal(t, err)
	valid := map[string]bool{}
	for k := -4; k <= 4; k++ {
		valid[dev.Code(time.Now().Add(time.Duration(k)*dev.Period))] = true
	}
	n := wrongAttempts
	before := c.checks(t, ctx, client.KindCodeDisplay)
	got := burst(ctx, n, func(i int) error {
		code := fmt.Sprintf("%06d", (i*7919+31)%1_000_000)
		for valid[code] {
			code = fmt.Sprintf("%06d", (i*7919+32)%1_000_000)
		}
		_, err := c.client(i, ms.Token).Activate(ctx, mallory.id, added.Authenticator.ID, client.ActivateRequest{Code: code})
		return err
	})
	checked := c.checks(t, ctx, client.KindCodeDisplay) - before
	t.Logf("AFTER %s×%d: %d concurrent wrong activation codes for a serial the attacker added: %d evaluated; answers %s",
		c.backend, c.replicas(), n, checked, got)
	if checked > maxActivation || got.get("wrong_code") != maxActivation || got.get("serial_locked") != n-maxActivation {
		t.Errorf("%d activation codes evaluated, answers %s; want at most %d evaluated, %d wrong_code and the rest serial_locked",
			checked, got, maxActivation, maxActivation)
	}
	// Cut off: the right code does not get through either, for anybody.
	if _, err := c.client(1, ms.Token).Activate(ctx, mallory.id, added.Authenticator.ID, client.ActivateRequest{Code: dev.Code(time.Now())}); !errors.Is(err, client.ErrSerialLocked) {
		t.Errorf("the right code on the locked serial: %v", err)
	}
	if _, err := c.support(2).Activate(ctx, owner, mine.Authenticator.ID, client.ActivateRequest{Code: dev.Code(time.Now())}); !errors.Is(err, client.ErrSerialLocked) {
		t.Errorf("the owner's right code on the locked serial: %v", err)
	}
	// Support imports the secret again; the owner proves possession.
	importCodeDevices(t, ctx, c, dev)
	a, err := c.support(0).Activate(ctx, owner, mine.Authenticator.ID, client.ActivateRequest{Code: dev.Code(time.Now().Add(-dev.Period))})
	fatal(t, err)
	if a.State != client.StateActive {
		t.Fatalf("the owner's code display: %+v", a)
	}
	_, err = c.client(1, ms.Token).Activate(ctx, mallory.id, added.Authenticator.ID, client.ActivateRequest{Code: dev.Code(time.Now())})
	if !errors.Is(err, client.ErrAlreadyRegistered) {
		t.Errorf("the attacker activating a serial the owner activated: %v", err)
	}
	if err := c.client(2, ms.Token).Cancel(ctx, mallory.id, added.Authenticator.ID); err != nil {
		t.Errorf("cancelling the attacker's pending add: %v", err)
	}
	if got := authenticatorOf(t, ctx, c, owner, mine.Authenticator.ID); got.State != client.StateActive || got.Element.Wiped {
		t.Errorf("the owner's code display after the cancel: %+v", got)
	}
}

// TestAttackMadeUpIDs: an anonymous attacker who knows only an identity ID
// sends login requests with made-up authenticator IDs from two source
// addresses, each staying under its per-source limit (the servers run
// with their default limits), to every replica. The owner's logins (the
// password and the chip, from the owner's own address) keep working: at
// least 9 of 10.
func TestAttackMadeUpIDs(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		c := newCluster(t, b.name, b.open(t), b.replicas, withDefaultLimits)
		ctx := testContext(t)
		v := newVictim(t, ctx, c, true)
		var sent, limited, answered atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for src := range 2 {
			wg.Go(func() {
				var cls []*client.Client
				for r := range c.replicas() {
					cls = append(cls, c.clientAt(r, 100+src))
				}
				// The default per-source limit refills 10 per second, per
				// replica: just under it.
				tick := time.NewTicker(105 * time.Millisecond / time.Duration(c.replicas()))
				defer tick.Stop()
				for k := 0; ; k++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					cl := cls[k%len(cls)]
					aid := fmt.Sprintf("app-madeup%d%07d", src, k)
					_, err := cl.AppLogin(ctx, v.id, aid)
					sent.Add(1)
					switch {
					case isRateLimited(err):
						limited.Add(1)
					case err == nil:
						answered.Add(1)
					}
				}
			})
		}
		time.Sleep(3 * time.Second) // the attack is under way
		ok := 0
		var answers []string
		for k := range 10 {
			owner := c.clientAt(k, 7)
			_, err := client.LoginPasswordChip(ctx, owner, v.id, v.password, v.chip, v.chipDev)
			if err == nil {
				ok++
			}
			answers = append(answers, answer(err))
			time.Sleep(500 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		t.Logf("AFTER %s×%d: owner logins (password and chip) while two sources sent made-up authenticator IDs: %d of 10 succeeded %v; the attacker sent %d (%d answered like a real app, %d rate limited per source)",
			c.backend, c.replicas(), ok, answers, sent.Load(), answered.Load(), limited.Load())
		if ok < 9 {
			t.Errorf("only %d of 10 owner logins succeeded during the attack, want at least 9", ok)
		}
		if answered.Load() == 0 {
			t.Error("no made-up ID was answered like a real one")
		}
	})
}

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.bug.st/serial"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/voice"
	"github.com/authbench/authbench/server/api"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/pskc"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/sim/app"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/code"
	"github.com/authbench/authbench/sim/udphid"
)

// demoCmd is `authbench demo`.
type demoCmd struct {
	Seed hexBytes `placeholder:"HEX" help:"Seed of the simulated devices and of the server's randomness: the same seed gives the same devices and IDs (default: the bytes of \"authbench demo\")."`
	Keep string   `placeholder:"DIR" type:"path" help:"Keep the server's SQLite database in DIR instead of a temporary directory."`
	JSON bool     `help:"Print the steps as JSON instead of text."`
}

// timeline prints numbered steps and remembers which failed; with JSON it
// prints nothing and keeps the steps for the JSON report.
type timeline struct {
	w       io.Writer
	n       int
	failed  []string
	start   time.Time
	json    bool
	section string
	steps   []demoStep
}

// demoStep is one step of `authbench demo --json`.
type demoStep struct {
	N       int    `json:"n"`
	Section string `json:"section"`
	What    string `json:"what"`
	OK      bool   `json:"ok"`
	Detail  string `json:"detail,omitempty"`
	Error   string `json:"error,omitempty"`
}

func (tl *timeline) printf(format string, args ...any) {
	if !tl.json {
		fmt.Fprintf(tl.w, format, args...)
	}
}

func (tl *timeline) sectionf(title string) {
	tl.section = title
	tl.printf("\n== %s\n", title)
}

// step runs f and prints its outcome: ✓ with what it returned, or ✗ with
// the error.
func (tl *timeline) step(what string, f func() (string, error)) bool {
	tl.n++
	detail, err := f()
	st := demoStep{N: tl.n, Section: tl.section, What: what, OK: err == nil, Detail: detail}
	if err != nil {
		st.Error = err.Error()
		tl.steps = append(tl.steps, st)
		tl.failed = append(tl.failed, fmt.Sprintf("%d. %s: %v", tl.n, what, err))
		tl.printf("%3d ✗ %s\n      %v\n", tl.n, what, err)
		return false
	}
	tl.steps = append(tl.steps, st)
	if detail != "" {
		detail = " — " + detail
	}
	tl.printf("%3d ✓ %s%s\n", tl.n, what, detail)
	return true
}

// demoJSON is what `authbench demo --json` prints.
type demoJSON struct {
	OK         bool       `json:"ok"`
	Steps      []demoStep `json:"steps"`
	DurationMS int64      `json:"duration_ms"`
}

func (c *demoCmd) Run(ctx context.Context, e *env) error {
	seed := []byte(c.Seed)
	if seed == nil {
		seed = []byte("authbench demo")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if c.Keep != "" {
		if err := os.MkdirAll(c.Keep, 0o700); err != nil {
			return err
		}
	}
	tl := &timeline{w: e.stdout, start: time.Now(), json: c.JSON}
	tl.printf("authbench demo: a person's MitID authenticators, on simulated devices, through the server's HTTP API\n")
	d := &demo{tl: tl, seed: seed, dir: c.Keep, clock: newDemoClock(time.Now()), wrapAPI: e.wrapAPI}
	d.run(ctx)
	d.close()
	if ctx.Err() != nil && context.Cause(ctx) != context.DeadlineExceeded {
		return context.Cause(ctx)
	}

	if c.JSON {
		if err := printJSON(e.stdout, demoJSON{OK: len(tl.failed) == 0, Steps: tl.steps, DurationMS: time.Since(tl.start).Milliseconds()}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "\n%d steps in %v: ", tl.n, time.Since(tl.start).Round(time.Millisecond))
		if len(tl.failed) > 0 {
			fmt.Fprintf(e.stdout, "%d did not behave as the rules say:\n", len(tl.failed))
			for _, f := range tl.failed {
				fmt.Fprintln(e.stdout, "  "+f)
			}
		} else {
			fmt.Fprintln(e.stdout, "every step behaved as the rules say")
		}
	}
	if len(tl.failed) > 0 {
		return exitError{exitFailed}
	}
	return nil
}

// demoClock is the virtual clock the server and the code devices share, so
// that the story can move to the next 30-second time step without
// waiting.
type demoClock struct {
	mu sync.Mutex
	t  time.Time
}

func newDemoClock(t time.Time) *demoClock { return &demoClock{t: t} }

func (c *demoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *demoClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// demoServer is the embedded server the demo talks to over HTTP, with
// what the demo needs to know about its configuration.
type demoServer struct {
	*embedded.Server
	Origin  string
	PSKCKey []byte
}

// startDemoServer starts the embedded server (server/embedded) on a SQLite
// database in dir ("" for a temporary one), on a free loopback port, with
// the test attestation CA as its trusted root, the demo's clock, and keys
// derived from seed.
func startDemoServer(ctx context.Context, dir string, now func() time.Time, seed []byte, wrapAPI func(http.Handler) http.Handler) (*demoServer, error) {
	s := &demoServer{Origin: "https://mitid.demo"}
	h := sha256.Sum256(append([]byte("authbench demo server "), seed...))
	rnd := rand.NewChaCha8(h)
	s.PSKCKey = make([]byte, 16)
	rnd.Read(s.PSKCKey)
	keys, err := secrets.GenerateKeyring(rnd)
	if err != nil {
		return nil, err
	}
	// The server's own randomness (IDs, challenges, session tokens) comes
	// from the seed too, so that the same seed tells the same story.
	var srvSeed [32]byte
	rnd.Read(srvSeed[:])
	db := ""
	if dir != "" {
		db = filepath.Join(dir, "authbench.db")
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(chip.TestCACertPEM())
	srv, err := embedded.Start(ctx, embedded.Options{
		DB:               db,
		Keyring:          keys,
		SupportTokens:    map[string]string{"demo-support-token": "support-demo"},
		RPID:             "mitid.demo",
		RPOrigins:        []string{s.Origin},
		AttestationRoots: roots,
		Hasher:           secrets.FastParams(),
		PSKCKey:          s.PSKCKey,
		Now:              now,
		Rand:             &lockedReader{r: rand.NewChaCha8(srvSeed)},
		// The story logs in more often than a person would.
		RateLimit: api.RateLimit{PerSource: api.Rate{Every: -1}, PerAuthenticator: api.Rate{Every: -1}},
		Wrap:      wrapAPI,
	})
	if err != nil {
		return nil, err
	}
	s.Server = srv
	return s, nil
}

// demo holds the story's state: the server, the simulated devices, and the
// person's authenticators as the server reported them.
type demo struct {
	tl      *timeline
	wrapAPI func(http.Handler) http.Handler // see env.wrapAPI
	seed    []byte
	dir     string
	clock   *demoClock
	sim     *simulation
	srv     *demoServer

	support *client.Client // a support operator
	anon    *client.Client // no credential: the login ceremonies, and the attacker
	owner   *client.Client // the person, with a two-factor session (password and a second factor)
	ownerS  *client.Session
	appS    *client.Session // the person's session from the app alone

	person   string
	password string
	pwAuth   string

	chipDev  *chip.Chip
	chipHost device.Chip // the chip through CTAPHID over UDP
	chipAuth *client.Authenticator
	oldCred  string

	display, reader         *code.Device
	displayHost, readerHost *frame.Host
	displayAuth, readerAuth *client.Authenticator
	decoder                 *voice.Decoder

	app     *app.App
	appAuth *client.Authenticator
}

func (d *demo) close() {
	if d.support != nil {
		d.support.CloseIdleConnections()
	}
	if d.sim != nil {
		d.sim.close()
	}
	if d.srv != nil {
		d.srv.Close()
	}
}

func (d *demo) run(ctx context.Context) {
	tl := d.tl
	if !tl.step("start the server: HTTP API v1 on a SQLite store, trusting the test attestation CA", func() (string, error) {
		s, err := startDemoServer(ctx, d.dir, d.clock.Now, d.seed, d.wrapAPI)
		if err != nil {
			return "", err
		}
		d.srv = s
		d.support, err = client.New(s.URL, client.Options{Token: s.SupportToken, Origin: s.Origin})
		if err != nil {
			return "", err
		}
		d.anon = d.support.WithToken("")
		if err := d.support.Health(ctx); err != nil {
			return "", err
		}
		return s.URL, nil
	}) {
		return
	}
	d.sim = newSimulation(nil)
	if !d.personStory(ctx) {
		return
	}
	if !d.firstDeviceStory(ctx) {
		return
	}
	d.chipStory(ctx)
	d.codeStory(ctx)
	d.audioStory(ctx)
	d.appStory(ctx)
	d.attackerStory(ctx)
	d.sessionStory(ctx)
	d.chipBlockStory(ctx)
	d.identityStory(ctx)
	d.auditStory(ctx)
}

// expect checks that err is the API refusal want; it returns the refusal's
// message, or an error saying what happened instead.
func expect(err, want error) (string, error) {
	if err == nil {
		return "", fmt.Errorf("accepted, but the rules say: %v", want)
	}
	if !errors.Is(err, want) {
		return "", fmt.Errorf("want %q, got: %w", want, err)
	}
	var ae *client.APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("refused: %s (%d %s)", ae.Message, ae.Status, ae.Code), nil
	}
	return "refused: " + err.Error(), nil
}

// failure checks a failed attempt: its code, and the failures count and
// state the server reports after it.
func failure(err, want error, failures int, state string) (string, error) {
	msg, e := expect(err, want)
	if e != nil {
		return "", e
	}
	var ae *client.APIError
	errors.As(err, &ae)
	n, ok := ae.Failures()
	if state == client.StateActive && (!ok || n != failures) || ae.State() != state {
		return "", fmt.Errorf("failures %d (reported: %v), state %q; want %d, %q", n, ok, ae.State(), failures, state)
	}
	return msg, nil
}

// codeDevice starts a simulated code device on a pty and opens its serial
// port.
func (d *demo) codeDevice(ctx context.Context, kind device.Kind, label string) (*code.Device, *frame.Host, string, error) {
	dev, err := code.New(code.Options{Kind: kind, Seed: append(append([]byte(nil), d.seed...), label...), Now: d.clock.Now, Language: map[bool]string{true: "da"}[kind == device.KindAudioCodeReader]})
	if err != nil {
		return nil, nil, "", err
	}
	p, err := code.ServePTY(ctx, dev)
	if err != nil {
		return nil, nil, "", err
	}
	d.sim.addCloser(p)
	port, err := serial.Open(p.Path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		return nil, nil, "", err
	}
	d.sim.addCloser(port)
	return dev, frame.NewHost(port, nil), p.Path, nil
}

// wrongCode returns a code that matches none of the steps a verifier with
// a skew of one step accepts now.
func wrongCode(dev *code.Device) string {
	t := dev.TOTP()
	now := t.Step(dev.Clock())
	near := map[string]bool{}
	for s := now - 1; s <= now+1; s++ {
		c, _ := t.Code(s)
		near[c] = true
	}
	digits := t.Digits
	if digits == 0 {
		digits = 6
	}
	for i := 0; ; i++ {
		c := strings.Repeat(string(rune('0'+i%10)), digits)
		if !near[c] {
			return c
		}
	}
}

// provision imports the secrets of the code devices as a provisioning
// station would: a PSKC document (RFC 6030) encrypted under the server's
// pre-shared key.
func (d *demo) provision(ctx context.Context, devs ...*code.Device) (string, error) {
	var keys []pskc.Key
	for i, dev := range devs {
		t := dev.TOTP()
		keys = append(keys, pskc.Key{
			Serial: dev.Serial(), Manufacturer: "authbench", Model: string(dev.Kind()), ID: fmt.Sprintf("key-%d", i+1),
			Algorithm: pskc.TOTP, Hash: t.Algorithm, Digits: t.Digits, Period: t.Period, Secret: append([]byte(nil), t.Secret...),
		})
	}
	var doc bytes.Buffer
	if err := pskc.Write(&doc, keys, pskc.EncryptOptions{Key: d.srv.PSKCKey}); err != nil {
		return "", err
	}
	res, err := d.support.ImportPSKC(ctx, doc.Bytes())
	if err != nil {
		return "", err
	}
	if res.Imported != len(devs) {
		return "", fmt.Errorf("imported %d of %d", res.Imported, len(devs))
	}
	return fmt.Sprintf("%d secrets imported (%d bytes of PSKC, AES-CBC + HMAC-SHA256), serials %s", res.Imported, doc.Len(), strings.Join(res.Serials, ", ")), nil
}

// nextStep moves the shared clock to the next TOTP time step, as if the
// person waited for a new code.
func (d *demo) nextStep() { d.clock.Advance(30 * time.Second) }

// newDecoder returns a recogniser of the digits the simulated audio code
// reader speaks, built from its reference prompts.
func newDecoder() (*voice.Decoder, error) { return voice.DefaultDecoder() }

func spaced(s string) string { return strings.Join(strings.Split(s, ""), " ") }

// loginCode logs the person in with the password and a code read from the
// code device whose host is h.
func (d *demo) loginCode(ctx context.Context, h *frame.Host) (*client.Session, error) {
	return client.LoginPasswordCodeDevice(ctx, d.anon, d.person, d.password, h)
}

// loginChip logs the person in with the password and chip c.
func (d *demo) loginChip(ctx context.Context, c device.Chip) (*client.Session, error) {
	return client.LoginPasswordChip(ctx, d.anon, d.person, d.password, "", c)
}

// useSession makes s the person's self-service session.
func (d *demo) useSession(s *client.Session) {
	d.ownerS = s
	d.owner = d.support.WithToken(s.Token)
}

// ended checks that the session of c has ended: every use is refused 401.
func ended(ctx context.Context, c *client.Client, person string) error {
	_, err := c.Identity(ctx, person)
	if !errors.Is(err, client.ErrUnauthorized) {
		return fmt.Errorf("the session still works (%v)", err)
	}
	return nil
}

func (d *demo) personStory(ctx context.Context) bool {
	tl := d.tl
	tl.sectionf("The person and their MitID password")
	d.person = "person-1"
	d.password = "correct horse battery staple"
	ok := tl.step("support creates the person with a password", func() (string, error) {
		id, err := d.support.CreateIdentity(ctx, client.CreateIdentityRequest{ID: d.person, Password: d.password})
		if err != nil {
			return "", err
		}
		if len(id.Authenticators) != 1 || id.Authenticators[0].Kind != client.KindPassword || id.Authenticators[0].State != client.StateActive {
			return "", fmt.Errorf("identity %+v: want one active password", id)
		}
		d.pwAuth = id.Authenticators[0].ID
		return fmt.Sprintf("identity %s, password %s (active)", id.ID, d.pwAuth), nil
	})
	ok = ok && tl.step("the password alone gives no session: MitID asks for a second factor, and the person has none yet", func() (string, error) {
		step, err := d.anon.PasswordLogin(ctx, d.person, d.password, "")
		if err != nil {
			return "", err
		}
		if len(step.SecondFactors) != 0 {
			return "", fmt.Errorf("second factors %+v", step.SecondFactors)
		}
		// What the password step hands out is no session.
		_, err = d.support.WithToken(step.Ceremony).Identity(ctx, d.person)
		msg, err := expect(err, client.ErrUnauthorized)
		if err != nil {
			return "", err
		}
		return "the password was right; using its ceremony as a session is " + msg, nil
	})
	return ok
}

// firstDeviceStory: the person gets a code display at the support desk,
// which proves possession with its first code; somebody else who adds
// the same serial gets nothing.
func (d *demo) firstDeviceStory(ctx context.Context) bool {
	tl := d.tl
	tl.sectionf("MitID code display (simulated, CDP/1 on a serial port)")
	if !tl.step("the factory makes a code display and an audio code reader and sends their secrets to the server as PSKC", func() (string, error) {
		var err error
		if d.display, d.displayHost, _, err = d.codeDevice(ctx, device.KindCodeDisplay, "display"); err != nil {
			return "", err
		}
		if d.reader, d.readerHost, _, err = d.codeDevice(ctx, device.KindAudioCodeReader, "reader"); err != nil {
			return "", err
		}
		return d.provision(ctx, d.display, d.reader)
	}) {
		return false
	}
	var other *client.Added
	tl.step("somebody else adds the display's serial: a pending add that holds nothing, and a wrong code counts against the serial", func() (string, error) {
		if _, err := d.support.CreateIdentity(ctx, client.CreateIdentityRequest{ID: "person-2", Password: "another long password"}); err != nil {
			return "", err
		}
		var err error
		if other, err = d.support.AddAuthenticator(ctx, "person-2", client.AddRequest{Kind: client.KindCodeDisplay, Serial: d.display.Serial()}); err != nil {
			return "", err
		}
		_, err = d.support.Activate(ctx, "person-2", other.Authenticator.ID, client.ActivateRequest{Code: wrongCode(d.display)})
		return failure(err, client.ErrWrongCode, 1, client.StatePending)
	})
	ok := tl.step("at the support desk the person adds the code display and proves possession with its first code", func() (string, error) {
		a, err := client.EnrollCodeDevice(ctx, d.support, d.person, "desk drawer", d.displayHost)
		if err != nil {
			return "", err
		}
		d.displayAuth = a
		return fmt.Sprintf("%s, serial %s, %d digits every %d s, state %s", a.ID, a.Serial, a.Element.Digits, a.Element.PeriodSeconds, a.State), nil
	})
	if other != nil {
		tl.step("the other add can never be activated now, and support cancels it without revoking the serial", func() (string, error) {
			d.nextStep()
			c, err := d.displayHost.Press(ctx)
			if err != nil {
				return "", err
			}
			_, err = d.support.Activate(ctx, "person-2", other.Authenticator.ID, client.ActivateRequest{Code: c.Digits})
			msg, err := expect(err, client.ErrAlreadyRegistered)
			if err != nil {
				return "", err
			}
			if err := d.support.Cancel(ctx, "person-2", other.Authenticator.ID); err != nil {
				return "", err
			}
			return msg, nil
		})
	}
	ok = ok && tl.step("the person logs in with the password and a code from the display: a two-factor session", func() (string, error) {
		d.nextStep()
		s, err := d.loginCode(ctx, d.displayHost)
		if err != nil {
			return "", err
		}
		d.useSession(s)
		return fmt.Sprintf("session %s (%s, proven by %s) until %s", s.ID, s.Level, strings.Join(s.Authenticators, " and "), s.ExpiresAt.Format(time.TimeOnly)), nil
	})
	return ok
}

// chipStory: a chip over CTAPHID (UDP HID) is added, activated with its
// packed attestation, and used as the second factor.
func (d *demo) chipStory(ctx context.Context) {
	tl := d.tl
	tl.sectionf("MitID chip (simulated FIDO key over USB HID, carried in UDP)")
	if !tl.step("plug the chip in and open it", func() (string, error) {
		c, err := chip.New(chip.Options{Seed: d.seed})
		if err != nil {
			return "", err
		}
		d.chipDev = c
		d.sim.addCloser(c)
		dev, err := udphid.Listen("127.0.0.1:0", "127.0.0.1:1")
		if err != nil {
			return "", err
		}
		d.sim.addCloser(dev)
		d.sim.goServe(ctx, "demo chip", func(ctx context.Context) error {
			return ctaphid.Serve(ctx, dev, c, ctaphid.ServeOptions{Major: 1})
		})
		host, err := udphid.Dial(dev.LocalAddr().String(), "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		d.sim.addCloser(host)
		conn, err := ctaphid.Open(ctx, host, ctaphid.Options{})
		if err != nil {
			return "", err
		}
		d.sim.addCloser(conn)
		cl := ctap2.NewClient(conn)
		info, err := cl.Info(ctx)
		if err != nil {
			return "", err
		}
		d.chipHost = cl
		return fmt.Sprintf("serial %s, %v, AAGUID %x", c.Serial(), info.Versions, info.AAGUID), nil
	}) {
		return
	}
	tl.step("the person adds the chip with their session: a security element is created in the chip and in the solution", func() (string, error) {
		a, err := client.EnrollChip(ctx, d.owner, d.person, "key ring", d.chipHost)
		if err != nil {
			return "", err
		}
		if a.State != client.StateActive || a.Element.AttestationTrusted == nil || !*a.Element.AttestationTrusted {
			return "", fmt.Errorf("chip %s is %s, attestation trusted %v", a.ID, a.State, a.Element.AttestationTrusted)
		}
		d.chipAuth = a
		return fmt.Sprintf("%s, credential %s, %s attestation trusted (test CA: the model's batch certificate), model AAGUID %s",
			a.ID, short(a.CredentialID), a.Element.AttestationFormat, a.Element.AAGUID), nil
	})
	if d.chipAuth == nil {
		return
	}
	tl.step("log in with the password and the chip twice: the signatures verify and the sign counter rises", func() (string, error) {
		s1, err := d.loginChip(ctx, d.chipHost)
		if err != nil {
			return "", err
		}
		s2, err := d.loginChip(ctx, d.chipHost)
		if err != nil {
			return "", err
		}
		n1, n2 := s1.Authenticator.Element.SignCount, s2.Authenticator.Element.SignCount
		if n2 <= n1 {
			return "", fmt.Errorf("sign counter %d then %d", n1, n2)
		}
		return fmt.Sprintf("sign counter %d then %d", n1, n2), nil
	})
	tl.step("a cloned chip is caught: its sign counter does not rise, and the server says so", func() (string, error) {
		var saved bytes.Buffer
		if err := d.chipDev.Save(&saved); err != nil {
			return "", err
		}
		clone, err := chip.Load(&saved, chip.Options{})
		if err != nil {
			return "", err
		}
		defer clone.Close()
		// The original moves on; the clone, restored from the same state,
		// replays an old count.
		if _, err := d.loginChip(ctx, d.chipHost); err != nil {
			return "", err
		}
		_, err = d.loginChip(ctx, clone)
		return failure(err, client.ErrSignCount, 1, client.StateActive)
	})
	tl.step("the genuine chip logs in again and the failure count is back to zero", func() (string, error) {
		s, err := d.loginChip(ctx, d.chipHost)
		if err != nil {
			return "", err
		}
		if s.Authenticator.Failures != 0 {
			return "", fmt.Errorf("failures %d after a success", s.Authenticator.Failures)
		}
		return fmt.Sprintf("sign counter %d, failures 0", s.Authenticator.Element.SignCount), nil
	})
}

// codeStory: codes are used once; after the right password three wrong
// codes suspend the display, which ends the sessions it proved; the
// person reactivates it; the third suspension blocks it for good and its
// serial is revoked.
func (d *demo) codeStory(ctx context.Context) {
	tl := d.tl
	if d.displayAuth == nil || d.chipAuth == nil {
		return
	}
	tl.sectionf("The code display: single-use codes, wrong codes after the right password")
	aid := d.displayAuth.ID
	tl.step("a code that was used cannot be used again (RFC 6238 §5.2)", func() (string, error) {
		d.nextStep()
		c, err := d.displayHost.Press(ctx)
		if err != nil {
			return "", err
		}
		if _, err := client.LoginPasswordCode(ctx, d.anon, d.person, d.password, aid, c.Digits); err != nil {
			return "", err
		}
		_, err = client.LoginPasswordCode(ctx, d.anon, d.person, d.password, aid, c.Digits)
		return expect(err, client.ErrCodeReplayed)
	})
	wrongRound := func(last string) (string, error) {
		var msg string
		for i := 1; i <= 3; i++ {
			_, err := client.LoginPasswordCode(ctx, d.anon, d.person, d.password, aid, wrongCode(d.display))
			state := client.StateActive
			if i == 3 {
				state = last
			}
			m, e := failure(err, client.ErrWrongCode, i, state)
			if e != nil {
				return "", fmt.Errorf("wrong code %d: %w", i, e)
			}
			msg = m
		}
		return msg, nil
	}
	tl.step("after the right password, three wrong codes in a row: the third answer says the code display is suspended", func() (string, error) {
		return wrongRound(client.StateSuspended)
	})
	tl.step("the session the display proved has ended with it", func() (string, error) {
		if err := ended(ctx, d.owner, d.person); err != nil {
			return "", err
		}
		return "the session of the password and the display is refused (401)", nil
	})
	tl.step("while suspended even a right code is refused", func() (string, error) {
		d.nextStep()
		_, err := d.loginCode(ctx, d.displayHost)
		return expect(err, client.ErrSuspended)
	})
	tl.step("the person logs in with the password and the chip and reactivates the display on self-service", func() (string, error) {
		s, err := d.loginChip(ctx, d.chipHost)
		if err != nil {
			return "", err
		}
		d.useSession(s)
		a, err := d.owner.Reactivate(ctx, d.person, aid)
		if err != nil {
			return "", err
		}
		if a.State != client.StateActive || a.Suspensions != 1 {
			return "", fmt.Errorf("state %s, %d suspensions", a.State, a.Suspensions)
		}
		return fmt.Sprintf("state %s, suspensions %d", a.State, a.Suspensions), nil
	})
	tl.step("a right code after reactivation logs in", func() (string, error) {
		d.nextStep()
		_, err := d.loginCode(ctx, d.displayHost)
		return "", err
	})
	tl.step("another round of wrong codes: second suspension; support reactivates it this time", func() (string, error) {
		if _, err := wrongRound(client.StateSuspended); err != nil {
			return "", err
		}
		a, err := d.support.Reactivate(ctx, d.person, aid)
		if err != nil {
			return "", err
		}
		if a.State != client.StateActive || a.Suspensions != 2 {
			return "", fmt.Errorf("state %s, %d suspensions", a.State, a.Suspensions)
		}
		return fmt.Sprintf("state %s, suspensions %d", a.State, a.Suspensions), nil
	})
	tl.step("a third round by someone who knows the password: the third suspension blocks the display for good and deletes its secret", func() (string, error) {
		if _, err := wrongRound(client.StateBlocked); err != nil {
			return "", err
		}
		id, err := d.support.Identity(ctx, d.person)
		if err != nil {
			return "", err
		}
		a := id.Authenticator(aid)
		if a == nil || a.State != client.StateBlocked || !a.Element.Wiped {
			return "", fmt.Errorf("code display %+v: want blocked and wiped", a)
		}
		return fmt.Sprintf("state %s (%s), element deleted", a.State, a.BlockReason), nil
	})
	tl.step("its serial number can never be added again: the person must order a new authenticator", func() (string, error) {
		_, err := d.owner.AddAuthenticator(ctx, d.person, client.AddRequest{Kind: client.KindCodeDisplay, Serial: d.display.Serial()})
		return expect(err, client.ErrSerialRevoked)
	})
}

// listen presses the audio reader's button and decodes what it says,
// which must be the code it reports.
func (d *demo) listen(ctx context.Context) (heard, shown string, err error) {
	c, err := d.readerHost.Press(ctx)
	if err != nil {
		return "", "", err
	}
	if c.Audio == nil {
		return "", "", errors.New("the audio code reader said nothing")
	}
	r, err := d.decoder.Check(ctx, c.Audio, c.Digits)
	if err != nil {
		return "", "", err
	}
	return r.Utterances[0], c.Digits, nil
}

// audioStory: the audio code reader the person ordered is added while the
// quota allows one code device.
func (d *demo) audioStory(ctx context.Context) {
	tl := d.tl
	if d.reader == nil || d.owner == nil {
		return
	}
	tl.sectionf("MitID audio code reader (simulated, speaks Danish, CDP/1 on a serial port)")
	if !tl.step("prepare the listener: device/voice recognises the reader's spoken digits", func() (string, error) {
		dec, err := newDecoder()
		if err != nil {
			return "", err
		}
		d.decoder = dec
		return "languages " + strings.Join(dec.Languages(), ", "), nil
	}) {
		return
	}
	tl.step("the person adds the audio code reader they ordered, and activates it with the code it speaks", func() (string, error) {
		info, err := d.readerHost.Identify(ctx)
		if err != nil {
			return "", err
		}
		added, err := d.owner.AddAuthenticator(ctx, d.person, client.AddRequest{Kind: string(info.Kind), Serial: info.Serial, Label: "for the car"})
		if err != nil {
			return "", err
		}
		heard, shown, err := d.listen(ctx)
		if err != nil {
			return "", err
		}
		if heard != shown {
			return "", fmt.Errorf("heard %s, the device meant %s", heard, shown)
		}
		a, err := d.owner.Activate(ctx, d.person, added.Authenticator.ID, client.ActivateRequest{Code: heard})
		if err != nil {
			return "", err
		}
		d.readerAuth = a
		return fmt.Sprintf("%s, serial %s; it said “%s”", a.ID, a.Serial, spaced(heard)), nil
	})
	if d.readerAuth == nil {
		return
	}
	tl.step("a second code device is refused while this one is active (one code device per person)", func() (string, error) {
		spare, _, _, err := d.codeDevice(ctx, device.KindCodeDisplay, "spare")
		if err != nil {
			return "", err
		}
		if _, err := d.provision(ctx, spare); err != nil {
			return "", err
		}
		_, err = d.owner.AddAuthenticator(ctx, d.person, client.AddRequest{Kind: client.KindCodeDisplay, Serial: spare.Serial()})
		return expect(err, client.ErrQuotaExceeded)
	})
	tl.step("log in with the password and what the reader says", func() (string, error) {
		d.nextStep()
		heard, _, err := d.listen(ctx)
		if err != nil {
			return "", err
		}
		if _, err := client.LoginPasswordCode(ctx, d.anon, d.person, d.password, d.readerAuth.ID, heard); err != nil {
			return "", err
		}
		return fmt.Sprintf("it said “%s”", spaced(heard)), nil
	})
}

// appStory: a MitID app (a key pair and a PIN) is registered and logs in
// alone.
func (d *demo) appStory(ctx context.Context) {
	tl := d.tl
	if d.owner == nil {
		return
	}
	tl.sectionf("MitID app (simulated: a P-256 device key and a six-digit PIN, two factors in one)")
	tl.step("the person registers the app: the server keeps its public key and a verifier of the PIN", func() (string, error) {
		a, err := app.New(app.Options{Seed: append(append([]byte(nil), d.seed...), "app"...)})
		if err != nil {
			return "", err
		}
		d.app = a
		au, err := client.EnrollApp(ctx, d.owner, d.person, "phone", a, a.PIN())
		if err != nil {
			return "", err
		}
		d.appAuth = au
		return fmt.Sprintf("%s, %s key, state %s", au.ID, au.Element.PublicKeyAlg, au.State), nil
	})
	if d.appAuth == nil {
		return
	}
	wrongPIN := "000000"
	if d.app.PIN() == wrongPIN {
		wrongPIN = "111111"
	}
	tl.step("the app logs in alone: two wrong PINs, then the right one, and the success resets the count", func() (string, error) {
		for i := 1; i <= 2; i++ {
			_, err := client.LoginApp(ctx, d.anon, d.person, d.appAuth.ID, d.app, wrongPIN)
			if _, e := failure(err, client.ErrWrongPIN, i, client.StateActive); e != nil {
				return "", e
			}
		}
		s, err := client.LoginApp(ctx, d.anon, d.person, d.appAuth.ID, d.app, d.app.PIN())
		if err != nil {
			return "", err
		}
		if s.Authenticator.Failures != 0 || s.Level != client.LevelTwoFactor {
			return "", fmt.Errorf("failures %d, level %s after a success", s.Authenticator.Failures, s.Level)
		}
		d.appS = s
		return "failures back to 0; session " + s.ID + " (" + s.Level + ")", nil
	})
	tl.step("a copy of the app on another phone (another key) is refused even with the right PIN, and counts against nothing", func() (string, error) {
		other, err := app.New(app.Options{Seed: []byte("another phone"), PIN: d.app.PIN()})
		if err != nil {
			return "", err
		}
		_, err = client.LoginApp(ctx, d.anon, d.person, d.appAuth.ID, other, d.app.PIN())
		msg, err := expect(err, client.ErrBadSignature)
		if err != nil {
			return "", err
		}
		id, err := d.support.Identity(ctx, d.person)
		if err != nil {
			return "", err
		}
		if a := id.Authenticator(d.appAuth.ID); a == nil || a.Failures != 0 {
			return "", fmt.Errorf("the app's failures after a foreign signature: %+v", a)
		}
		return msg, nil
	})
}

// attackerStory: somebody who knows only the person's identity ID guesses
// passwords. They can suspend the password for a while (the seed's rule),
// never block it for good.
func (d *demo) attackerStory(ctx context.Context) {
	tl := d.tl
	if d.appS == nil || d.chipAuth == nil {
		return
	}
	tl.sectionf("An attacker who knows only the identity ID")
	app := d.support.WithToken(d.appS.Token)
	var before *client.Session
	round := func() error {
		for i := 1; i <= 3; i++ {
			_, err := d.anon.PasswordLogin(ctx, d.person, fmt.Sprintf("guess number %d", i), "")
			state := client.StateActive
			if i == 3 {
				state = client.StateSuspended
			}
			if _, e := failure(err, client.ErrWrongPassword, i, state); e != nil {
				return fmt.Errorf("guess %d: %w", i, e)
			}
		}
		return nil
	}
	tl.step("three wrong passwords suspend the password for a while, and the sessions it proved end", func() (string, error) {
		var err error
		if before, err = d.loginChip(ctx, d.chipHost); err != nil {
			return "", err
		}
		if err := round(); err != nil {
			return "", err
		}
		if err := ended(ctx, d.support.WithToken(before.Token), d.person); err != nil {
			return "", fmt.Errorf("the password and chip session: %w", err)
		}
		if _, err := app.Identity(ctx, d.person); err != nil {
			return "", fmt.Errorf("the app session: %w", err)
		}
		return "the session of the password and the chip ended; the app's lives on", nil
	})
	tl.step("from now on every guess, the right password too, gets the very same answer", func() (string, error) {
		var bodies []string
		for _, pw := range []string{"another guess", d.password} {
			_, err := d.anon.PasswordLogin(ctx, d.person, pw, "")
			var ae *client.APIError
			if !errors.As(err, &ae) || !errors.Is(err, client.ErrSuspended) {
				return "", fmt.Errorf("answer %v", err)
			}
			bodies = append(bodies, fmt.Sprintf("%d %s %s", ae.Status, ae.Code, ae.Message))
		}
		if bodies[0] != bodies[1] {
			return "", fmt.Errorf("the answers differ:\n  %s\n  %s", bodies[0], bodies[1])
		}
		return "both: " + bodies[0], nil
	})
	tl.step("the person reactivates the password with the app's session; the attacker tries twice more; it is still only suspended", func() (string, error) {
		for r := 0; r < 2; r++ {
			if _, err := app.Reactivate(ctx, d.person, d.pwAuth); err != nil {
				return "", err
			}
			if err := round(); err != nil {
				return "", err
			}
		}
		id, err := d.support.Identity(ctx, d.person)
		if err != nil {
			return "", err
		}
		pw := id.Authenticator(d.pwAuth)
		if pw == nil || pw.State != client.StateSuspended || pw.Element.Wiped {
			return "", fmt.Errorf("the password after three rounds: %+v", pw)
		}
		if _, err := app.Reactivate(ctx, d.person, d.pwAuth); err != nil {
			return "", err
		}
		return fmt.Sprintf("three rounds of anonymous guesses, %d suspensions counted toward a permanent block: guesses without another factor never block for good", pw.Suspensions), nil
	})
}

// sessionStory: the person sees their sessions and ends them.
func (d *demo) sessionStory(ctx context.Context) {
	tl := d.tl
	if d.appS == nil {
		return
	}
	tl.sectionf("Sessions")
	app := d.support.WithToken(d.appS.Token)
	var other *client.Session
	tl.step("the person lists their sessions: each says what proved it", func() (string, error) {
		var err error
		if other, err = d.loginChip(ctx, d.chipHost); err != nil {
			return "", err
		}
		list, err := app.Sessions(ctx, d.person)
		if err != nil {
			return "", err
		}
		var parts []string
		for _, s := range list {
			p := s.ID + " (" + strings.Join(s.Authenticators, "+") + ")"
			if s.Current {
				p += " this one"
			}
			parts = append(parts, p)
		}
		if len(list) < 2 {
			return "", fmt.Errorf("sessions %+v", list)
		}
		return strings.Join(parts, ", "), nil
	})
	if other == nil {
		return
	}
	tl.step("they end the password-and-chip session from the app's, and it is gone", func() (string, error) {
		if err := app.EndSession(ctx, d.person, other.ID); err != nil {
			return "", err
		}
		if err := ended(ctx, d.support.WithToken(other.Token), d.person); err != nil {
			return "", err
		}
		return "session " + other.ID + " ended", nil
	})
	tl.step("logging in again, then out: the session ends at logout", func() (string, error) {
		s, err := d.loginChip(ctx, d.chipHost)
		if err != nil {
			return "", err
		}
		c := d.support.WithToken(s.Token)
		if err := c.Logout(ctx); err != nil {
			return "", err
		}
		if err := ended(ctx, c, d.person); err != nil {
			return "", err
		}
		return "session " + s.ID + " logged out", nil
	})
}

// chipBlockStory: the owner blocks the chip; the same chip gets a new
// element; the old credential stays refused.
func (d *demo) chipBlockStory(ctx context.Context) {
	tl := d.tl
	if d.chipAuth == nil || d.appS == nil {
		return
	}
	tl.sectionf("The chip is lost, found again, and added again")
	app := d.support.WithToken(d.appS.Token)
	var chipS *client.Session
	tl.step("the owner blocks the chip (lost) from the app's session: its security element is deleted, and its sessions end", func() (string, error) {
		var err error
		if chipS, err = d.loginChip(ctx, d.chipHost); err != nil {
			return "", err
		}
		a, err := app.Block(ctx, d.person, d.chipAuth.ID, client.ReasonLost)
		if err != nil {
			return "", err
		}
		if a.State != client.StateBlocked || !a.Element.Wiped {
			return "", fmt.Errorf("chip %s: state %s, wiped %v", a.ID, a.State, a.Element.Wiped)
		}
		if err := ended(ctx, d.support.WithToken(chipS.Token), d.person); err != nil {
			return "", fmt.Errorf("the chip's session: %w", err)
		}
		d.oldCred = d.chipAuth.CredentialID
		return fmt.Sprintf("state %s (%s), element deleted, credential %s kept as a tombstone; the chip's session ended", a.State, a.BlockReason, short(d.oldCred)), nil
	})
	tl.step("the blocked chip cannot log in", func() (string, error) {
		_, err := client.LoginPasswordChip(ctx, d.anon, d.person, d.password, d.chipAuth.ID, d.chipHost)
		return expect(err, client.ErrBlocked)
	})
	var again *client.Authenticator
	tl.step("the same physical chip is added again: a new security element in the chip and in the solution", func() (string, error) {
		a, err := client.EnrollChip(ctx, app, d.person, "key ring (again)", d.chipHost)
		if err != nil {
			return "", err
		}
		if a.CredentialID == d.oldCred {
			return "", errors.New("the chip reused its old credential")
		}
		again = a
		return fmt.Sprintf("%s, new credential %s", a.ID, short(a.CredentialID)), nil
	})
	if again == nil {
		return
	}
	tl.step("the new element logs in with the password", func() (string, error) {
		_, err := client.LoginPasswordChip(ctx, d.anon, d.person, d.password, again.ID, d.chipHost)
		return "", err
	})
	tl.step("the old credential stays refused: the chip still holds it, but the server does not accept it any more", func() (string, error) {
		step, err := d.anon.PasswordLogin(ctx, d.person, d.password, again.ID)
		if err != nil {
			return "", err
		}
		opts := *step.Next.PublicKey
		opts.AllowCredentials = []client.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: d.oldCred}}
		cred, err := client.ChipAssertion(ctx, d.chipHost, &opts, d.srv.Origin)
		if err != nil {
			return "", fmt.Errorf("the chip no longer signs with its old credential: %w", err)
		}
		_, err = d.anon.FinishLogin(ctx, d.person, client.FinishLoginRequest{Ceremony: step.Next.Ceremony, Credential: cred})
		if err == nil {
			return "", errors.New("the old credential was accepted")
		}
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status/100 != 4 {
			return "", err
		}
		return fmt.Sprintf("refused: %s (%d %s)", ae.Message, ae.Status, ae.Code), nil
	})
}

// identityStory: support blocks the whole identity on suspected misuse.
func (d *demo) identityStory(ctx context.Context) {
	tl := d.tl
	if d.appS == nil {
		return
	}
	tl.sectionf("The whole identity")
	app := d.support.WithToken(d.appS.Token)
	tl.step("support blocks the identity temporarily (suspected misuse): every session ends, and nothing logs in", func() (string, error) {
		id, err := d.support.BlockIdentity(ctx, d.person, "suspected misuse")
		if err != nil {
			return "", err
		}
		if err := ended(ctx, app, d.person); err != nil {
			return "", fmt.Errorf("the app's session: %w", err)
		}
		_, err = d.anon.PasswordLogin(ctx, d.person, d.password, "")
		msg, err := expect(err, client.ErrIdentityBlocked)
		if err != nil {
			return "", err
		}
		return "state " + id.State + "; the app's session ended; the password " + msg, nil
	})
	tl.step("only support can lift it; then the app logs in again, and the person's own session may not lift blocks", func() (string, error) {
		id, err := d.support.UnblockIdentity(ctx, d.person, "checked with the person")
		if err != nil {
			return "", err
		}
		s, err := client.LoginApp(ctx, d.anon, d.person, d.appAuth.ID, d.app, d.app.PIN())
		if err != nil {
			return "", err
		}
		own := d.support.WithToken(s.Token)
		_, err = own.UnblockIdentity(ctx, d.person, "")
		if _, err := expect(err, client.ErrForbidden); err != nil {
			return "", fmt.Errorf("the person's own session lifting a block: %w", err)
		}
		return "state " + id.State + "; the person's own session may not lift blocks (403)", nil
	})
}

// auditStory: what happened is in the tamper-evident audit chain.
func (d *demo) auditStory(ctx context.Context) {
	tl := d.tl
	tl.sectionf("Audit")
	tl.step("every change is in the person's audit trail, with who did it and how", func() (string, error) {
		ev, err := d.support.AllAudit(ctx, d.person)
		if err != nil {
			return "", err
		}
		var reactivations []string
		types := map[string]int{}
		for _, e := range ev {
			types[e.Type]++
			if strings.Contains(e.Type, "reactivat") {
				who := e.Actor.Kind
				if e.Actor.Via != "" {
					who += " via " + e.Actor.Via
				}
				reactivations = append(reactivations, who)
			}
		}
		if len(reactivations) != 5 {
			return "", fmt.Errorf("%d reactivations audited, want 5 (event types %v)", len(reactivations), types)
		}
		return fmt.Sprintf("%d events; reactivations by %s", len(ev), strings.Join(reactivations, ", ")), nil
	})
	tl.step("the audit chain verifies (each record carries the hash of the one before)", func() (string, error) {
		v, err := d.support.VerifyAudit(ctx)
		if err != nil {
			return "", err
		}
		if !v.OK {
			return "", fmt.Errorf("chain broken at %d: %s", v.Break.Seq, v.Break.Problem)
		}
		return fmt.Sprintf("%d records, chain intact", v.Records), nil
	})
}

// lockedReader makes a deterministic random stream safe for the server's
// concurrent handlers.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

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

func init() {
	register(&command{
		name:    "demo",
		summary: "tell the MitID authenticator story end to end: an embedded server, simulated devices, every step over HTTP",
		usage:   "[--seed HEX] [--keep DIR]",
		run:     runDemo,
	})
}

// timeline prints numbered steps and remembers which failed.
type timeline struct {
	w      io.Writer
	n      int
	failed []string
	start  time.Time
}

func (tl *timeline) section(title string) { fmt.Fprintf(tl.w, "\n== %s\n", title) }

// step runs f and prints its outcome: ✓ with what it returned, or ✗ with
// the error.
func (tl *timeline) step(what string, f func() (string, error)) bool {
	tl.n++
	detail, err := f()
	if err != nil {
		tl.failed = append(tl.failed, fmt.Sprintf("%d. %s: %v", tl.n, what, err))
		fmt.Fprintf(tl.w, "%3d ✗ %s\n      %v\n", tl.n, what, err)
		return false
	}
	if detail != "" {
		detail = " — " + detail
	}
	fmt.Fprintf(tl.w, "%3d ✓ %s%s\n", tl.n, what, detail)
	return true
}

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags(commands["demo"], e)
	seed := hexFlag("authbench demo")
	fs.Var(&seed, "seed", "`HEX` seed of the simulated devices and the server's randomness")
	keep := fs.String("keep", "", "keep the server's SQLite database in `DIR` instead of a temporary directory")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if *keep != "" {
		if err := os.MkdirAll(*keep, 0o700); err != nil {
			return err
		}
	}
	tl := &timeline{w: e.stdout, start: time.Now()}
	fmt.Fprintln(e.stdout, "authbench demo: a person's MitID authenticators, on simulated devices, through the server's HTTP API")
	d := &demo{tl: tl, seed: seed, dir: *keep, clock: newDemoClock(time.Now())}
	defer d.close()
	d.run(ctx)

	fmt.Fprintf(e.stdout, "\n%d steps in %v: ", tl.n, time.Since(tl.start).Round(time.Millisecond))
	if len(tl.failed) > 0 {
		fmt.Fprintf(e.stdout, "%d did not behave as the rules say:\n", len(tl.failed))
		for _, f := range tl.failed {
			fmt.Fprintln(e.stdout, "  "+f)
		}
		return exitError{1}
	}
	fmt.Fprintln(e.stdout, "every step behaved as the rules say")
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
func startDemoServer(ctx context.Context, dir string, now func() time.Time, seed []byte) (*demoServer, error) {
	s := &demoServer{Origin: "https://mitid.demo"}
	h := sha256.Sum256(append([]byte("authbench demo server "), seed...))
	rnd := rand.NewChaCha8(h)
	s.PSKCKey = make([]byte, 16)
	rnd.Read(s.PSKCKey)
	keys, err := secrets.GenerateKeyring(rnd)
	if err != nil {
		return nil, err
	}
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
		// The story logs in more often than a person would.
		RateLimit: api.RateLimit{PerSource: api.Rate{Every: -1}, PerIdentity: api.Rate{Every: -1}},
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
	tl    *timeline
	seed  []byte
	dir   string
	clock *demoClock
	sim   *simulation
	srv   *demoServer

	support *client.Client // a support operator
	owner   *client.Client // the person, with the session of a password login

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
		s, err := startDemoServer(ctx, d.dir, d.clock.Now, d.seed)
		if err != nil {
			return "", err
		}
		d.srv = s
		d.support, err = client.New(s.URL, client.Options{Token: s.SupportToken, Origin: s.Origin})
		if err != nil {
			return "", err
		}
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
	d.chipStory(ctx)
	d.codeStory(ctx)
	d.audioStory(ctx)
	d.appStory(ctx)
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

func (d *demo) personStory(ctx context.Context) bool {
	tl := d.tl
	tl.section("The person and their MitID password")
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
	ok = ok && tl.step("the person logs in with the password and gets a self-service session", func() (string, error) {
		s, err := client.LoginPassword(ctx, d.support.WithToken(""), d.person, d.pwAuth, d.password)
		if err != nil {
			return "", err
		}
		d.owner = d.support.WithToken(s.Token)
		return "session until " + s.ExpiresAt.Format(time.TimeOnly), nil
	})
	return ok
}

// chipStory: a chip over CTAPHID (UDP HID) is added, activated with its
// packed attestation, and used.
func (d *demo) chipStory(ctx context.Context) {
	tl := d.tl
	tl.section("MitID chip (simulated FIDO key over USB HID, carried in UDP)")
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
	tl.step("the person adds the chip: a security element is created in the chip and in the solution", func() (string, error) {
		a, err := client.EnrollChip(ctx, d.owner, d.person, "key ring", d.chipHost)
		if err != nil {
			return "", err
		}
		if a.State != client.StateActive || a.Element.AttestationTrusted == nil || !*a.Element.AttestationTrusted {
			return "", fmt.Errorf("chip %s is %s, attestation trusted %v", a.ID, a.State, a.Element.AttestationTrusted)
		}
		d.chipAuth = a
		return fmt.Sprintf("%s, credential %s, %s attestation trusted (test CA), chip serial %s",
			a.ID, short(a.CredentialID), a.Element.AttestationFormat, a.Element.ChipSerial), nil
	})
	if d.chipAuth == nil {
		return
	}
	tl.step("log in with the chip twice: the signatures verify and the sign counter rises", func() (string, error) {
		s1, err := client.LoginChip(ctx, d.support.WithToken(""), d.person, d.chipAuth.ID, d.chipHost)
		if err != nil {
			return "", err
		}
		s2, err := client.LoginChip(ctx, d.support.WithToken(""), d.person, d.chipAuth.ID, d.chipHost)
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
		if _, err := client.LoginChip(ctx, d.support.WithToken(""), d.person, d.chipAuth.ID, d.chipHost); err != nil {
			return "", err
		}
		_, err = client.LoginChip(ctx, d.support.WithToken(""), d.person, d.chipAuth.ID, clone)
		return failure(err, client.ErrSignCount, 1, client.StateActive)
	})
	tl.step("the genuine chip logs in again and the failure count is back to zero", func() (string, error) {
		s, err := client.LoginChip(ctx, d.support.WithToken(""), d.person, d.chipAuth.ID, d.chipHost)
		if err != nil {
			return "", err
		}
		if s.Authenticator.Failures != 0 {
			return "", fmt.Errorf("failures %d after a success", s.Authenticator.Failures)
		}
		return fmt.Sprintf("sign counter %d, failures 0", s.Authenticator.Element.SignCount), nil
	})
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

// codeStory: a code display on a serial port (a pty): codes are used once,
// three wrong codes suspend it, the person reactivates it, and after the
// third suspension it is blocked for good and its serial is revoked.
func (d *demo) codeStory(ctx context.Context) {
	tl := d.tl
	tl.section("MitID code display (simulated, CDP/1 on a serial port)")
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
		return
	}
	tl.step("the person adds the code display with its serial number and activates it with a code", func() (string, error) {
		a, err := client.EnrollCodeDevice(ctx, d.owner, d.person, "desk drawer", d.displayHost)
		if err != nil {
			return "", err
		}
		d.displayAuth = a
		return fmt.Sprintf("%s, serial %s, %d digits every %d s, state %s", a.ID, a.Serial, a.Element.Digits, a.Element.PeriodSeconds, a.State), nil
	})
	if d.displayAuth == nil {
		return
	}
	aid := d.displayAuth.ID
	anon := d.support.WithToken("")
	tl.step("the code that activated it cannot be used again (RFC 6238 §5.2)", func() (string, error) {
		c, err := d.displayHost.Press(ctx)
		if err != nil {
			return "", err
		}
		_, err = client.LoginCode(ctx, anon, d.person, aid, c.Digits)
		return expect(err, client.ErrCodeReplayed)
	})
	tl.step("thirty seconds later a new code logs in", func() (string, error) {
		d.nextStep()
		s, err := client.LoginCodeDevice(ctx, anon, d.person, aid, d.displayHost)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("last step %d, drift %+d", s.Authenticator.Element.LastStep, s.Authenticator.Element.DriftSteps), nil
	})
	wrongRound := func() (string, error) {
		var msg string
		for i := 1; i <= 3; i++ {
			_, err := client.LoginCode(ctx, anon, d.person, aid, wrongCode(d.display))
			state := client.StateActive
			if i == 3 {
				state = client.StateSuspended
			}
			m, e := failure(err, client.ErrWrongCode, i, state)
			if e != nil {
				return "", fmt.Errorf("wrong code %d: %w", i, e)
			}
			msg = m
		}
		return msg, nil
	}
	tl.step("three wrong codes in a row: the third answer says the code display is suspended", wrongRound)
	tl.step("while suspended even a right code is refused", func() (string, error) {
		d.nextStep()
		_, err := client.LoginCodeDevice(ctx, anon, d.person, aid, d.displayHost)
		return expect(err, client.ErrSuspended)
	})
	tl.step("the person reactivates it on self-service, proving who they are with the password session", func() (string, error) {
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
		_, err := client.LoginCodeDevice(ctx, anon, d.person, aid, d.displayHost)
		return "", err
	})
	tl.step("another round of wrong codes: second suspension; support reactivates it this time", func() (string, error) {
		if _, err := wrongRound(); err != nil {
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
	tl.step("a third round: the third suspension blocks the code display for good and deletes its secret", func() (string, error) {
		for i := 1; i <= 3; i++ {
			_, err := client.LoginCode(ctx, anon, d.person, aid, wrongCode(d.display))
			state := client.StateActive
			if i == 3 {
				state = client.StateBlocked
			}
			if _, e := failure(err, client.ErrWrongCode, i, state); e != nil {
				return "", fmt.Errorf("wrong code %d: %w", i, e)
			}
		}
		id, err := d.owner.Identity(ctx, d.person)
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

// newDecoder returns a recogniser of the digits the simulated audio code
// reader speaks, built from its reference prompts.
func newDecoder() (*voice.Decoder, error) { return voice.DefaultDecoder() }

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

func spaced(s string) string { return strings.Join(strings.Split(s, ""), " ") }

// audioStory: the audio code reader the person ordered is added while the
// quota allows one code device.
func (d *demo) audioStory(ctx context.Context) {
	tl := d.tl
	if d.reader == nil {
		return
	}
	tl.section("MitID audio code reader (simulated, speaks Danish, CDP/1 on a serial port)")
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
	tl.step("log in with what the reader says", func() (string, error) {
		d.nextStep()
		heard, _, err := d.listen(ctx)
		if err != nil {
			return "", err
		}
		if _, err := client.LoginCode(ctx, d.support.WithToken(""), d.person, d.readerAuth.ID, heard); err != nil {
			return "", err
		}
		return fmt.Sprintf("it said “%s”", spaced(heard)), nil
	})
}

// appStory: a MitID app (a key pair and a PIN) is registered and used.
func (d *demo) appStory(ctx context.Context) {
	tl := d.tl
	tl.section("MitID app (simulated: a P-256 device key and a six-digit PIN)")
	anon := d.support.WithToken("")
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
	tl.step("two wrong PINs, then the right one: the success resets the count", func() (string, error) {
		for i := 1; i <= 2; i++ {
			_, err := client.LoginApp(ctx, anon, d.person, d.appAuth.ID, d.app, wrongPIN)
			if _, e := failure(err, client.ErrWrongPIN, i, client.StateActive); e != nil {
				return "", e
			}
		}
		s, err := client.LoginApp(ctx, anon, d.person, d.appAuth.ID, d.app, d.app.PIN())
		if err != nil {
			return "", err
		}
		if s.Authenticator.Failures != 0 {
			return "", fmt.Errorf("failures %d after a success", s.Authenticator.Failures)
		}
		return "failures back to 0", nil
	})
	tl.step("a copy of the app on another phone (another key) is refused even with the right PIN", func() (string, error) {
		other, err := app.New(app.Options{Seed: []byte("another phone"), PIN: d.app.PIN()})
		if err != nil {
			return "", err
		}
		_, err = client.LoginApp(ctx, anon, d.person, d.appAuth.ID, other, d.app.PIN())
		return failure(err, client.ErrBadSignature, 1, client.StateActive)
	})
}

// chipBlockStory: the owner blocks the chip; the same chip gets a new
// element; the old credential stays refused.
func (d *demo) chipBlockStory(ctx context.Context) {
	tl := d.tl
	if d.chipAuth == nil {
		return
	}
	tl.section("The chip is lost, found again, and added again")
	anon := d.support.WithToken("")
	tl.step("the owner blocks the chip (lost): its security element in the solution is deleted", func() (string, error) {
		a, err := d.owner.Block(ctx, d.person, d.chipAuth.ID, client.ReasonLost)
		if err != nil {
			return "", err
		}
		if a.State != client.StateBlocked || !a.Element.Wiped {
			return "", fmt.Errorf("chip %s: state %s, wiped %v", a.ID, a.State, a.Element.Wiped)
		}
		d.oldCred = d.chipAuth.CredentialID
		return fmt.Sprintf("state %s (%s), element deleted, credential %s kept as a tombstone", a.State, a.BlockReason, short(d.oldCred)), nil
	})
	tl.step("the blocked chip cannot log in", func() (string, error) {
		_, err := client.LoginChip(ctx, anon, d.person, d.chipAuth.ID, d.chipHost)
		return expect(err, client.ErrBlocked)
	})
	var again *client.Authenticator
	tl.step("the same physical chip is added again: a new security element in the chip and in the solution", func() (string, error) {
		a, err := client.EnrollChip(ctx, d.owner, d.person, "key ring (again)", d.chipHost)
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
	tl.step("the new element logs in", func() (string, error) {
		_, err := client.LoginChip(ctx, anon, d.person, again.ID, d.chipHost)
		return "", err
	})
	tl.step("the old credential stays refused: the chip still holds it, but the server does not accept it any more", func() (string, error) {
		lc, err := anon.BeginLogin(ctx, d.person, again.ID)
		if err != nil {
			return "", err
		}
		var old client.Bytes
		if err := old.UnmarshalJSON([]byte(`"` + d.oldCred + `"`)); err != nil {
			return "", err
		}
		opts := *lc.PublicKey
		opts.AllowCredentials = []client.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: old}}
		cred, err := client.ChipAssertion(ctx, d.chipHost, &opts, d.srv.Origin)
		if err != nil {
			return "", fmt.Errorf("the chip no longer signs with its old credential: %w", err)
		}
		_, err = anon.FinishLogin(ctx, d.person, again.ID, client.FinishLoginRequest{Ceremony: lc.Ceremony, Credential: cred})
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
	tl.section("The whole identity")
	tl.step("support blocks the identity temporarily (suspected misuse): no authenticator can log in", func() (string, error) {
		id, err := d.support.BlockIdentity(ctx, d.person, "suspected misuse")
		if err != nil {
			return "", err
		}
		_, err = client.LoginPassword(ctx, d.support.WithToken(""), d.person, d.pwAuth, d.password)
		msg, err := expect(err, client.ErrIdentityBlocked)
		if err != nil {
			return "", err
		}
		return "state " + id.State + "; password " + msg, nil
	})
	tl.step("only support can lift it: the person's own session is refused", func() (string, error) {
		_, err := d.owner.UnblockIdentity(ctx, d.person, "")
		return expect(err, client.ErrForbidden)
	})
	tl.step("support lifts the block and the password works again", func() (string, error) {
		id, err := d.support.UnblockIdentity(ctx, d.person, "checked with the person")
		if err != nil {
			return "", err
		}
		if _, err := client.LoginPassword(ctx, d.support.WithToken(""), d.person, d.pwAuth, d.password); err != nil {
			return "", err
		}
		return "state " + id.State, nil
	})
}

// auditStory: what happened is in the tamper-evident audit chain.
func (d *demo) auditStory(ctx context.Context) {
	tl := d.tl
	tl.section("Audit")
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
		if len(reactivations) != 2 {
			return "", fmt.Errorf("%d reactivations audited, want 2 (event types %v)", len(reactivations), types)
		}
		return fmt.Sprintf("%d events; reactivations by %s", len(ev), strings.Join(reactivations, " and by ")), nil
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

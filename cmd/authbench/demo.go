package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"

	"go.bug.st/serial"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/code"
	"github.com/authbench/authbench/sim/udphid"
)

func init() {
	register(&command{
		name:    "demo",
		summary: "tell the MitID authenticator story end to end on simulated devices",
		usage:   "[--seed HEX]",
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
	fs.Var(&seed, "seed", "`HEX` seed of the simulated devices")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tl := &timeline{w: e.stdout, start: time.Now()}
	fmt.Fprintln(e.stdout, "authbench demo: a person's MitID authenticators, on simulated devices")
	d := &demo{tl: tl, seed: seed, policy: domain.DefaultPolicy(), now: time.Now().UTC()}
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

// demo holds the story's state: the simulated devices and the person's
// authenticators under the lifecycle rules.
type demo struct {
	tl     *timeline
	seed   []byte
	policy domain.Policy
	now    time.Time
	sim    *simulation

	person     domain.Identity
	auths      []domain.Authenticator
	tombstones []domain.Tombstone
}

func (d *demo) close() {
	if d.sim != nil {
		d.sim.close()
	}
}

func (d *demo) owner() domain.Actor { return domain.Owner(d.person.ID, "password") }

// apply records a change in the demo's in-memory store.
func (d *demo) apply(c domain.Change) domain.Authenticator {
	for i := range d.auths {
		if d.auths[i].ID == c.Authenticator.ID {
			d.auths[i] = c.Authenticator
			goto done
		}
	}
	d.auths = append(d.auths, c.Authenticator)
done:
	if c.Tombstone != nil {
		d.tombstones = append(d.tombstones, *c.Tombstone)
	}
	return c.Authenticator
}

func (d *demo) add(id string, kind device.Kind, ref domain.Ref) (domain.Authenticator, error) {
	c, err := d.policy.Add(d.person, d.auths, d.tombstones, domain.AddRequest{ID: id, Kind: kind, Ref: ref}, d.owner(), d.now)
	if err != nil {
		return domain.Authenticator{}, err
	}
	a := d.apply(c)
	c, err = d.policy.Activate(d.person, a, d.owner(), d.now)
	if err != nil {
		return domain.Authenticator{}, err
	}
	return d.apply(c), nil
}

func (d *demo) run(ctx context.Context) {
	tl := d.tl
	ic, err := domain.NewIdentity("person-1", domain.System("demo"), d.now)
	if err != nil {
		tl.step("create the person", func() (string, error) { return "", err })
		return
	}
	d.person = ic.Identity
	tl.step("create the person and their password", func() (string, error) {
		_, err := d.add("password", device.KindPassword, domain.Ref{})
		return d.person.ID, err
	})

	d.sim = newSimulation(nil)
	d.chipStory(ctx)
	d.codeStory(ctx)
}

// chipStory: a chip over CTAPHID (UDP HID), its attestation, logins, a
// clone, the owner's block and the same chip added again.
func (d *demo) chipStory(ctx context.Context) {
	tl := d.tl
	tl.section("MitID chip (simulated FIDO key over USB HID, carried in UDP)")
	c, err := chip.New(chip.Options{Seed: d.seed})
	if err != nil {
		tl.step("make a simulated chip", func() (string, error) { return "", err })
		return
	}
	d.sim.addCloser(c)
	var cl *ctap2.Client
	if !tl.step("plug the chip in and open it", func() (string, error) {
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
		cl = ctap2.NewClient(conn)
		info, err := cl.Info(ctx)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("serial %s, %v, AAGUID %x", c.Serial(), info.Versions, info.AAGUID), nil
	}) {
		return
	}

	const rp = "mitid.demo"
	register := func(user string) (*ctap2.AuthData, error) {
		cdh := sha256.Sum256([]byte("register " + user))
		att, err := cl.MakeCredential(ctx, &ctap2.MakeCredentialRequest{
			ClientDataHash:   cdh[:],
			RP:               ctap2.RPEntity{ID: rp, Name: "MitID demo"},
			User:             ctap2.UserEntity{ID: []byte(d.person.ID), Name: user},
			PubKeyCredParams: []ctap2.CredentialParameters{{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgES256}},
		})
		if err != nil {
			return nil, err
		}
		ad, err := ctap2.ParseAuthData(att.AuthData)
		if err != nil {
			return nil, err
		}
		if err := verifyPacked(att, cdh[:]); err != nil {
			return nil, err
		}
		return ad, nil
	}
	login := func(cred *ctap2.AuthData) (uint32, error) {
		h := sha256.Sum256([]byte(fmt.Sprintf("login %d", time.Now().UnixNano())))
		as, err := cl.GetAssertion(ctx, &ctap2.GetAssertionRequest{
			RPID: rp, ClientDataHash: h[:],
			AllowList: []ctap2.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: cred.AttestedCredential.CredentialID}},
		})
		if err != nil {
			return 0, err
		}
		if err := ctap2.VerifyAssertion(cred.AttestedCredential.PublicKey, as.AuthData, h[:], as.Signature); err != nil {
			return 0, err
		}
		ad, err := ctap2.ParseAuthData(as.AuthData)
		if err != nil {
			return 0, err
		}
		return ad.SignCount, nil
	}

	var first *ctap2.AuthData
	var chipAuth domain.Authenticator
	tl.step("add the chip: a security element is created in the chip and in the solution", func() (string, error) {
		var err error
		if first, err = register("demo"); err != nil {
			return "", err
		}
		id := domain.EncodeCredentialID(first.AttestedCredential.CredentialID)
		chipAuth, err = d.add("chip-1", device.KindChip, domain.Ref{Serial: c.Serial(), CredentialID: id})
		return fmt.Sprintf("credential %.16s…, packed attestation verified against the test CA", id), err
	})
	var counter uint32
	tl.step("log in with the chip twice: signatures verify, the counter rises", func() (string, error) {
		n1, err := login(first)
		if err != nil {
			return "", err
		}
		n2, err := login(first)
		if err != nil {
			return "", err
		}
		if err := domain.CheckSignCount(n1, n2); err != nil {
			return "", err
		}
		counter = n2
		return fmt.Sprintf("sign counter %d then %d", n1, n2), nil
	})
	tl.step("a cloned chip is caught: its counter does not rise", func() (string, error) {
		var saved bytes.Buffer
		if err := c.Save(&saved); err != nil {
			return "", err
		}
		clone, err := chip.Load(bytes.NewReader(saved.Bytes()), chip.Options{})
		if err != nil {
			return "", err
		}
		defer clone.Close()
		// The original moves on; the clone, restored from the same state, replays an old count.
		if counter, err = login(first); err != nil {
			return "", err
		}
		h := sha256.Sum256([]byte("clone"))
		as, err := clone.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: rp, ClientDataHash: h[:],
			AllowList: []ctap2.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: first.AttestedCredential.CredentialID}}})
		if err != nil {
			return "", err
		}
		ad, err := ctap2.ParseAuthData(as.AuthData)
		if err != nil {
			return "", err
		}
		err = domain.CheckSignCount(counter, ad.SignCount)
		if !errors.Is(err, domain.ErrCloneSuspected) {
			return "", fmt.Errorf("counter %d after %d was not flagged (%v)", ad.SignCount, counter, err)
		}
		return err.Error(), nil
	})
	tl.step("the owner blocks the chip (lost): its security element is deleted", func() (string, error) {
		ch, err := d.policy.Block(chipAuth, d.owner(), domain.ReasonLost, d.now)
		if err != nil {
			return "", err
		}
		if !ch.WipeSecret || ch.Tombstone == nil {
			return "", errors.New("block did not wipe the element or leave a tombstone")
		}
		chipAuth = d.apply(ch)
		return fmt.Sprintf("state %s, tombstone for credential %.16s…", chipAuth.State, ch.Tombstone.CredentialID), nil
	})
	tl.step("the same physical chip is added again and gets a brand-new element", func() (string, error) {
		second, err := register("demo")
		if err != nil {
			return "", err
		}
		if bytes.Equal(second.AttestedCredential.CredentialID, first.AttestedCredential.CredentialID) {
			return "", errors.New("the chip reused its old credential")
		}
		id := domain.EncodeCredentialID(second.AttestedCredential.CredentialID)
		if _, err := d.add("chip-2", device.KindChip, domain.Ref{Serial: c.Serial(), CredentialID: id}); err != nil {
			return "", err
		}
		return fmt.Sprintf("new credential %.16s…", id), nil
	})
	tl.step("the old credential stays refused forever", func() (string, error) {
		old := domain.EncodeCredentialID(first.AttestedCredential.CredentialID)
		err := d.policy.CheckAdd(d.person, d.auths, device.KindChip, domain.Ref{Serial: c.Serial(), CredentialID: old}, d.tombstones)
		if !errors.Is(err, domain.ErrCredentialRevoked) {
			return "", fmt.Errorf("old credential not refused: %v", err)
		}
		return err.Error(), nil
	})
}

// codeStory: a code display on a serial port (a pty), codes that are used
// once, three wrong codes, self-service reactivation, escalation to a
// permanent block, and a serial that can never be added again.
func (d *demo) codeStory(ctx context.Context) {
	tl := d.tl
	tl.section("MitID code display (simulated, CDP/1 on a serial port)")
	dev, err := code.New(code.Options{Kind: device.KindCodeDisplay, Seed: d.seed})
	if err != nil {
		tl.step("make a simulated code display", func() (string, error) { return "", err })
		return
	}
	secret := dev.TOTP() // what a PSKC import would give the server
	var h *frame.Host
	if !tl.step("connect to the code display's serial port", func() (string, error) {
		p, err := code.ServePTY(ctx, dev)
		if err != nil {
			return "", err
		}
		d.sim.addCloser(p)
		port, err := serial.Open(p.Path, &serial.Mode{BaudRate: 115200})
		if err != nil {
			return "", err
		}
		d.sim.addCloser(port)
		h = frame.NewHost(port, nil)
		info, err := h.Identify(ctx)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s, serial %s, %d digits every %v", p.Path, info.Serial, info.Digits, info.Period), nil
	}) {
		return
	}
	var auth domain.Authenticator
	var highest uint64
	check := func(codeText string) (uint64, error) {
		m, err := secret.Verify(codeText, dev.Clock(), 1, highest)
		if err != nil {
			return 0, err
		}
		if !d.policyAdvance(&highest, m.Step) {
			return 0, fmt.Errorf("step %d already used", m.Step)
		}
		return m.Step, nil
	}
	tl.step("activate it with its serial number and a current code", func() (string, error) {
		c, err := h.Press(ctx)
		if err != nil {
			return "", err
		}
		if _, err := check(c.Digits); err != nil {
			return "", err
		}
		auth, err = d.add("code-1", device.KindCodeDisplay, domain.Ref{Serial: dev.Serial()})
		return fmt.Sprintf("code %s accepted", c.Digits), err
	})
	tl.step("the same code is refused the second time (RFC 6238 §5.2)", func() (string, error) {
		c, err := h.Press(ctx)
		if err != nil {
			return "", err
		}
		if _, err := check(c.Digits); err == nil {
			return "", fmt.Errorf("code %s accepted twice", c.Digits)
		}
		return "code " + c.Digits + " refused: already used", nil
	})
	wrong := func(n int) error {
		for i := 0; i < n; i++ {
			if _, err := check("000000"); err == nil {
				return errors.New("a wrong code was accepted")
			}
			ch, err := d.policy.RecordFailure(auth, domain.Failure{Cause: domain.CauseWrongCode}, d.now)
			if err != nil {
				return err
			}
			auth = d.apply(ch)
		}
		return nil
	}
	tl.step("three wrong codes in a row suspend the code display", func() (string, error) {
		if err := wrong(3); err != nil {
			return "", err
		}
		if auth.State != domain.StateSuspended {
			return "", fmt.Errorf("state %s, want suspended", auth.State)
		}
		return fmt.Sprintf("state %s (suspension %d)", auth.State, auth.Suspensions), nil
	})
	tl.step("the person reactivates it themselves, proving who they are with the password", func() (string, error) {
		ch, err := d.policy.Reactivate(d.person, auth, d.owner(), d.auths, d.now)
		if err != nil {
			return "", err
		}
		auth = d.apply(ch)
		return "state " + string(auth.State), nil
	})
	tl.step("two more rounds of wrong codes: the third suspension blocks it for good", func() (string, error) {
		for round := 0; round < 2; round++ {
			if err := wrong(3); err != nil {
				return "", err
			}
			if auth.State == domain.StateSuspended {
				ch, err := d.policy.Reactivate(d.person, auth, d.owner(), d.auths, d.now)
				if err != nil {
					return "", err
				}
				auth = d.apply(ch)
			}
		}
		if auth.State != domain.StateBlocked {
			return "", fmt.Errorf("state %s, want blocked", auth.State)
		}
		return fmt.Sprintf("state %s, secret wiped, reason %s", auth.State, auth.BlockReason), nil
	})
	tl.step("its serial number can never be added again", func() (string, error) {
		err := d.policy.CheckAdd(d.person, d.auths, device.KindCodeDisplay, domain.Ref{Serial: dev.Serial()}, d.tombstones)
		if !errors.Is(err, domain.ErrSerialRevoked) {
			return "", fmt.Errorf("serial not refused: %v", err)
		}
		return err.Error(), nil
	})
}

// policyAdvance moves the highest used step forward if step is above it,
// as the store's single atomic statement does.
func (d *demo) policyAdvance(highest *uint64, step uint64) bool {
	if err := domain.CheckOTPStep(*highest, step); err != nil {
		return false
	}
	*highest = step
	return true
}

// verifyPacked checks a packed attestation: the leaf certificate chains to
// the test CA and signed authData || clientDataHash.
func verifyPacked(att *ctap2.Attestation, cdh []byte) error {
	if att.Format != "packed" || len(att.Statement.X5C) == 0 {
		return fmt.Errorf("attestation format %q with %d certificates, want packed with x5c", att.Format, len(att.Statement.X5C))
	}
	leaf, err := x509.ParseCertificate(att.Statement.X5C[0])
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(chip.TestCACertPEM()) {
		return errors.New("test CA certificate unreadable")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("attestation certificate: %w", err)
	}
	return ctap2.VerifySignature(leaf.PublicKey, att.AuthData, cdh, att.Statement.Sig)
}

package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/devicetest"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/voice"
	"github.com/authbench/authbench/driver/pcsc"
	serialdrv "github.com/authbench/authbench/driver/serial"
	"github.com/authbench/authbench/driver/usb"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/code"
	"github.com/authbench/authbench/sim/udphid"
)

// checkCmd is `authbench check`.
type checkCmd struct {
	Device        string        `required:"" placeholder:"SELECTOR" help:"The device to check: pcsc:N or pcsc:READER, usb[:VID:PID[:N]], udp[:HOST:PORT], serial:PATH, sim:chip, sim:code-display or sim:audio-code-reader."`
	Report        string        `placeholder:"FILE" type:"path" help:"Write a JUnit XML report to FILE (<failure> for a failed check, <error> for one that could not run; written also when the device cannot be opened)."`
	HTML          string        `placeholder:"FILE" type:"path" help:"Write an HTML report to FILE."`
	Markdown      string        `placeholder:"FILE" type:"path" help:"Write a Markdown report to FILE."`
	AudioDir      string        `placeholder:"DIR" type:"path" help:"Save what audio code readers said (WAV) and other artifacts in DIR."`
	Prompts       string        `placeholder:"DIR" type:"path" help:"Recognise an audio code reader's speech with the prompts learnt from it in DIR (authbench voice learn); default: the simulated reader's own voice."`
	AudioTries    int           `name:"audio-tries" default:"3" placeholder:"N" help:"How many codes the audio check may hear before it judges: when the decoder is unsure of a word (not when it hears other digits) it waits for the reader's next code and presses again, within --timeout; 1 judges the first code."`
	Roots         string        `placeholder:"FILE" type:"existingfile" help:"PEM file of trusted attestation roots (default for simulators: the test CA)."`
	OTPSecretFile string        `name:"otp-secret-file" placeholder:"FILE" type:"existingfile" help:"File holding the OTP secret of a code device in hex, when known: codes are then checked against TOTP. $AUTHBENCH_OTP_SECRET may hold the hex instead."`
	Only          string        `name:"run" placeholder:"TEXT" help:"Run only the checks whose names contain TEXT."`
	Timeout       time.Duration `default:"30s" placeholder:"DURATION" help:"Limit for each check."`
	MaxClockSkew  time.Duration `name:"max-clock-skew" default:"30s" placeholder:"DURATION" help:"How far a code device's clock may be from this machine's before the status check fails (one TOTP step by default; 0 only notes it)."`
	Destructive   bool          `help:"Allow checks that erase a chip or seal a code device."`
	Operator      bool          `help:"Someone at the bench follows prompts on standard error: touch the chip when asked, keep off it when told (the check that cancels a request waiting for a touch needs this on hardware)."`
	Quiet         bool          `short:"q" help:"Print only the summary."`
	JSON          bool          `help:"Print the report as JSON instead of text (also when the device cannot be opened)."`
}

const selectorHelp = `selectors:
  pcsc:N | pcsc:READER-NAME   a chip on a PC/SC reader (N counts readers from 0)
  usb[:VID:PID[:N]]           a FIDO HID chip on USB
  udp[:HOST:PORT]             a chip speaking CTAPHID over UDP (authbench sim --chip udp)
  serial:PATH                 a code display or audio code reader on a serial port or pty
  sim:chip[:fido2|u2f|ctap2] | sim:code-display | sim:audio-code-reader
                              an in-process simulator (sim:chip:u2f is a U2F-only chip)
A chip's profile (FIDO2, U2F-only, CTAP2-only) is found when it is opened;
U2F-only chips are driven through the CTAP 2.1 §10 translation.`

// checkJSON is what `authbench check --json` prints.
type checkJSON struct {
	devicetest.Tally
	*devicetest.Report
}

func (c *checkCmd) Run(ctx context.Context, e *env) error {
	if c.AudioTries < 1 {
		return usageError{fmt.Errorf("--audio-tries %d: want 1 or more", c.AudioTries)}
	}
	var o targetOptions
	if c.Roots != "" {
		b, err := os.ReadFile(c.Roots)
		if err != nil {
			return err
		}
		o.roots = x509.NewCertPool()
		if !o.roots.AppendCertsFromPEM(b) {
			return fmt.Errorf("%s: no PEM certificates", c.Roots)
		}
	}
	secret, err := readHexSecret(c.OTPSecretFile, "AUTHBENCH_OTP_SECRET")
	if err != nil {
		return err
	}
	o.secret = secret
	var desc string
	if o.voice, desc, err = loadDecoder(c.Prompts); err != nil {
		return err
	}
	if c.Prompts != "" && !c.Quiet && !c.JSON {
		fmt.Fprintf(e.stdout, "prompts %s: %s\n", c.Prompts, desc)
	}
	if c.Operator {
		o.operator = e.stderr
	}
	o.maxClockSkew = c.MaxClockSkew
	o.audioTries = c.AudioTries
	runOpts := devicetest.RunOptions{Timeout: c.Timeout, Tool: versionString()}
	if c.AudioDir != "" {
		// Absolute, so that every report can link to the files relative to
		// its own place.
		if runOpts.ArtifactDir, err = filepath.Abs(c.AudioDir); err != nil {
			return err
		}
	}

	t, err := openDevice(ctx, c.Device, o)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) || errors.Is(context.Cause(ctx), errInterrupted) {
			return err
		}
		// The device could not be opened: an error, not a failure, and
		// the reports say so.
		s, name := suiteFor(c.Device)
		rep := devicetest.OpenFailed(s, name, err, runOpts)
		if werr := c.writeReports(e, rep); werr != nil {
			return werr
		}
		return err
	}
	defer t.close()
	if c.Destructive {
		t.setDestructive()
	}
	runOpts.TargetName, runOpts.Device = t.name, t.device
	if c.Only != "" {
		only := c.Only
		runOpts.Select = func(name string) bool { return strings.Contains(name, only) }
		if !slices.ContainsFunc(t.suite.Names(), runOpts.Select) {
			return usageError{fmt.Errorf("--run %q matches none of the checks of %s: %s", c.Only, t.suite.Name, strings.Join(t.suite.Names(), ", "))}
		}
	}
	quiet := c.Quiet || c.JSON
	if !quiet {
		fmt.Fprintf(e.stdout, "checking %s (%s)\n", t.name, t.suite.Name)
		runOpts.Progress = func(r devicetest.Result) {
			if r.NotRun {
				return // said once, after the run
			}
			fmt.Fprintf(e.stdout, "  %-11s %-40s %6s", statusLabel(r.Status), r.Name, r.Duration.Round(time.Millisecond))
			if r.Message != "" && r.Status != devicetest.Pass {
				fmt.Fprintf(e.stdout, "  %s", r.Message)
			}
			fmt.Fprintln(e.stdout)
		}
	}
	rep := devicetest.RunSuite(ctx, t.suite, t.target, runOpts)
	if err := c.writeReports(e, rep); err != nil {
		return err
	}
	tally := rep.Tally()
	if !c.JSON {
		name := t.name
		if rep.Profile != "" {
			name += " (" + rep.Profile + " profile)"
		}
		if rep.Stopped != "" {
			fmt.Fprintf(e.stdout, "stopped: %s\n", rep.Stopped)
		}
		fmt.Fprintf(e.stdout, "%s: %s in %v\n", name, summary(tally), rep.Duration.Round(time.Millisecond))
	}
	switch {
	case errors.Is(context.Cause(ctx), errInterrupted):
		return errInterrupted
	case rep.Stopped != "":
		// The device went away or stopped answering: an error, not a
		// failure (exit status 3); the reports say so.
		return unreachableError{fmt.Errorf("%s: %s", t.name, rep.Stopped)}
	case tally.Failed > 0 || tally.Errors > 0:
		return exitError{exitFailed}
	}
	return nil
}

// readHexSecret reads a secret written in hex from file, or else from the
// environment variable env; nil when neither is given. Secrets never come
// from the command line, where other users of the machine can read them.
func readHexSecret(file, env string) ([]byte, error) {
	src, text := "$"+env, os.Getenv(env)
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		src, text = file, string(b)
	}
	text = strings.TrimPrefix(strings.TrimSpace(text), "0x")
	if text == "" {
		if file != "" {
			return nil, fmt.Errorf("%s is empty", file)
		}
		return nil, nil
	}
	b, err := hex.DecodeString(text)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: not hex: %v", src, err)}
	}
	return b, nil
}

// writeFile writes a report to path, making its directory when needed.
func writeFile(path string, f func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f(out); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return out.Close()
}

// checkTarget is an opened device with the suite that fits it.
type checkTarget struct {
	name           string
	device         device.Info // what is known of the device beforehand (a simulator's serial)
	target         any
	suite          devicetest.Suite
	chipOpts       *devicetest.ChipOptions
	codeOpts       *devicetest.CodeOptions
	closers        []func()
	setDestructive func()
	operator       io.Writer     // targetOptions.operator
	maxClockSkew   time.Duration // targetOptions.maxClockSkew
	audioTries     int           // targetOptions.audioTries
}

func (t *checkTarget) close() {
	for i := len(t.closers) - 1; i >= 0; i-- {
		t.closers[i]()
	}
}

func (t *checkTarget) chip(opts devicetest.ChipOptions) {
	if t.operator != nil {
		operatorPrompts(t.operator, &opts)
	}
	t.chipOpts = &opts
	t.suite = devicetest.ChipSuite(opts)
	t.setDestructive = func() { t.chipOpts.Destructive = true; t.suite = devicetest.ChipSuite(*t.chipOpts) }
}

func (t *checkTarget) code(opts devicetest.CodeOptions) {
	opts.MaxClockSkew = t.maxClockSkew
	opts.AudioTries = t.audioTries
	t.codeOpts = &opts
	t.suite = devicetest.CodeDeviceSuite(opts)
	t.setDestructive = func() { t.codeOpts.Destructive = true; t.suite = devicetest.CodeDeviceSuite(*t.codeOpts) }
}

// targetOptions are what a check knows about a device beforehand.
type targetOptions struct {
	roots    *x509.CertPool // trusted attestation roots; nil: none (the test CA for simulators)
	secret   []byte         // a code device's OTP secret, when known
	voice    *voice.Decoder // what an audio reader's speech is checked with; nil: the simulated reader's voice
	operator io.Writer      // where to prompt someone at the bench; nil: nobody is there

	maxClockSkew time.Duration // how far a code device's clock may be off
	audioTries   int           // how many codes an audio check may hear
}

// openTarget opens the device a selector names.
func openTarget(ctx context.Context, sel string, o targetOptions) (*checkTarget, error) {
	roots, secret := o.roots, o.secret
	kind, arg, _ := strings.Cut(sel, ":")
	t := &checkTarget{name: sel, operator: o.operator, maxClockSkew: o.maxClockSkew, audioTries: o.audioTries}
	testRoots := func() *x509.CertPool {
		if roots != nil {
			return roots
		}
		p := x509.NewCertPool()
		p.AppendCertsFromPEM(chip.TestCACertPEM())
		return p
	}
	switch kind {
	case "sim":
		simKind, profileName, _ := strings.Cut(arg, ":")
		switch device.Kind(simKind) {
		case device.KindChip:
			profile := chip.ProfileFIDO2
			if profileName != "" {
				p, err := chip.ParseProfile(profileName)
				if err != nil {
					return nil, usageError{fmt.Errorf("%s: %v", sel, err)}
				}
				profile = p
			}
			var hold atomic.Bool
			c, err := chip.New(chip.Options{Seed: []byte("authbench check"), Profile: profile, PresenceFunc: func(chip.Op) chip.Presence {
				if hold.Load() {
					return chip.Never
				}
				return chip.Auto
			}})
			if err != nil {
				return nil, err
			}
			t.closers = append(t.closers, func() { c.Close() })
			t.device = device.Info{Kind: device.KindChip, Transport: "sim", Serial: c.Serial()}
			t.target = c.Host() // a U2F-only chip through the CTAP 2.1 §10 translation
			t.chip(devicetest.ChipOptions{Roots: testRoots(), RequireAttestation: true, WithholdPresence: hold.Store})
		case device.KindCodeDisplay, device.KindAudioCodeReader:
			if profileName != "" {
				return nil, usageError{fmt.Errorf("%s: only chips have profiles", sel)}
			}
			d, err := code.New(code.Options{Kind: device.Kind(simKind), Seed: []byte("authbench check")})
			if err != nil {
				return nil, err
			}
			a, b := net.Pipe()
			// The device lives until the target is closed, past the
			// deadline of opening it.
			sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			done := make(chan struct{})
			go func() { frame.Serve(sctx, b, d); close(done) }()
			t.closers = append(t.closers, func() { cancel(); a.Close(); b.Close(); <-done })
			t.target = devicetest.NewCDPTarget(a, nil)
			t.code(devicetest.CodeOptions{Secret: d.TOTP().Secret, CheckAudio: checkAudio(o.voice)})
		default:
			return nil, usageError{fmt.Errorf("unknown simulator %q: want sim:chip[:fido2|u2f|ctap2], sim:code-display or sim:audio-code-reader", arg)}
		}
	case "udp":
		addr := udphid.DefaultDeviceAddr
		if arg != "" {
			addr = arg
		}
		conn, err := udphid.Dial(addr, "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		// The same CTAPHID host as for a USB key: a key without CBOR in its
		// INIT capabilities is driven over CTAPHID_MSG.
		ch, err := usb.NewChip(ctx, conn, device.Info{Kind: device.KindChip, Transport: "udp", Path: addr}, usb.Options{})
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("no CTAPHID answer from %s: %w", addr, err)
		}
		t.closers = append(t.closers, func() { ch.Close(); conn.Close() })
		t.target = ch
		t.device = simSerial(func(d simDevice) bool { return d.Transport == "udp" && d.Addr == addr })
		t.chip(devicetest.ChipOptions{Roots: testRoots()})
	case "pcsc":
		pc, err := pcsc.Open(ctx, pcsc.Options{})
		if err != nil {
			return nil, err
		}
		t.closers = append(t.closers, func() { pc.Close() })
		readers, err := pc.Readers(ctx)
		if err != nil {
			return nil, err
		}
		name := arg
		if n, err := strconv.Atoi(arg); err == nil {
			if n < 0 || n >= len(readers) {
				return nil, fmt.Errorf("pcsc:%d: there are %d readers", n, len(readers))
			}
			name = readers[n].Name
		}
		ch, err := pc.OpenChip(ctx, name)
		if err != nil {
			return nil, err
		}
		t.closers = append(t.closers, func() { ch.Close() })
		t.name = "pcsc:" + name
		t.target = ch
		t.device = simSerial(func(d simDevice) bool { return d.Reader == name })
		t.chip(devicetest.ChipOptions{Roots: roots})
	case "usb":
		s, err := usb.ParseSelector(sel)
		if err != nil {
			return nil, usageError{err}
		}
		ch, err := usb.Open(ctx, s, usb.Options{})
		if err != nil {
			return nil, err
		}
		t.closers = append(t.closers, func() { ch.Close() })
		t.target = ch
		t.chip(devicetest.ChipOptions{Roots: roots})
	case "serial":
		if arg == "" {
			return nil, usageError{errors.New("serial: needs a path, e.g. serial:/dev/ttyUSB0")}
		}
		// The driver's port: a pulled cable reads as device.ErrRemoved.
		port, err := serialdrv.OpenPort(arg)
		if err != nil {
			return nil, err
		}
		t.closers = append(t.closers, func() { port.Close() })
		t.target = devicetest.NewCDPTarget(port, nil)
		t.code(devicetest.CodeOptions{Secret: secret, CheckAudio: checkAudio(o.voice)})
	default:
		return nil, usageError{fmt.Errorf("unknown selector %q\n%s", sel, selectorHelp)}
	}
	return t, nil
}

// checkAudio returns the check of spoken digits with dec, or with
// voice.DefaultDecoder (the simulated reader's prompts in Danish and
// English) when dec is nil. It returns nil, and the audio is then not
// decoded, when the embedded prompts cannot be loaded.
func checkAudio(dec *voice.Decoder) func(ctx context.Context, a *device.Audio, code string) (string, error) {
	if dec == nil {
		var err error
		if dec, err = voice.DefaultDecoder(); err != nil {
			return nil
		}
	}
	return func(ctx context.Context, a *device.Audio, code string) (string, error) {
		r, err := dec.Check(ctx, a, code)
		if r == nil {
			return "", err
		}
		return strings.Join(r.Utterances, " "), err
	}
}

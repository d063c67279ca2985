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
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.bug.st/serial"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/devicetest"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/voice"
	"github.com/authbench/authbench/driver/pcsc"
	"github.com/authbench/authbench/driver/usb"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/code"
	"github.com/authbench/authbench/sim/udphid"
)

// checkCmd is `authbench check`.
type checkCmd struct {
	Device        string        `required:"" placeholder:"SELECTOR" help:"The device to check: pcsc:N or pcsc:READER, usb[:VID:PID[:N]], udp[:HOST:PORT], serial:PATH, sim:chip, sim:code-display or sim:audio-code-reader."`
	Report        string        `placeholder:"FILE" type:"path" help:"Write a JUnit XML report to FILE."`
	HTML          string        `placeholder:"FILE" type:"path" help:"Write an HTML report to FILE."`
	Markdown      string        `placeholder:"FILE" type:"path" help:"Write a Markdown report to FILE."`
	AudioDir      string        `placeholder:"DIR" type:"path" help:"Save what audio code readers said (WAV) and other artifacts in DIR."`
	Prompts       string        `placeholder:"DIR" type:"path" help:"Recognise an audio code reader's speech with the prompts learnt from it in DIR (authbench voice learn); default: the simulated reader's own voice."`
	Roots         string        `placeholder:"FILE" type:"existingfile" help:"PEM file of trusted attestation roots (default for simulators: the test CA)."`
	OTPSecretFile string        `name:"otp-secret-file" placeholder:"FILE" type:"existingfile" help:"File holding the OTP secret of a code device in hex, when known: codes are then checked against TOTP. $AUTHBENCH_OTP_SECRET may hold the hex instead."`
	Only          string        `name:"run" placeholder:"TEXT" help:"Run only the checks whose names contain TEXT."`
	Timeout       time.Duration `default:"30s" placeholder:"DURATION" help:"Limit for each check."`
	Destructive   bool          `help:"Allow checks that erase a chip or seal a code device."`
	Quiet         bool          `short:"q" help:"Print only the summary."`
	JSON          bool          `help:"Print the report as JSON instead of text."`
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
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	*devicetest.Report
}

func (c *checkCmd) Run(ctx context.Context, e *env) error {
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

	t, err := openDevice(ctx, c.Device, o)
	if err != nil {
		return err
	}
	defer t.close()
	if c.Destructive {
		t.setDestructive()
	}
	runOpts := devicetest.RunOptions{
		Timeout:     c.Timeout,
		ArtifactDir: c.AudioDir,
		TargetName:  t.name,
	}
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
			mark := map[devicetest.Status]string{devicetest.Pass: "PASS", devicetest.Fail: "FAIL", devicetest.Skip: "SKIP"}[r.Status]
			fmt.Fprintf(e.stdout, "  %-4s %-40s %6s", mark, r.Name, r.Duration.Round(time.Millisecond))
			if r.Message != "" && r.Status != devicetest.Pass {
				fmt.Fprintf(e.stdout, "  %s", r.Message)
			}
			fmt.Fprintln(e.stdout)
		}
	}
	rep := devicetest.RunSuite(ctx, t.suite, t.target, runOpts)
	for _, w := range []struct {
		path  string
		write func(io.Writer, ...*devicetest.Report) error
	}{{c.Report, devicetest.WriteJUnit}, {c.HTML, devicetest.WriteHTML}, {c.Markdown, devicetest.WriteMarkdown}} {
		if w.path == "" {
			continue
		}
		if err := writeFile(w.path, func(f io.Writer) error { return w.write(f, rep) }); err != nil {
			return err
		}
	}
	pass, fail, skip := rep.Counts()
	if c.JSON {
		if err := printJSON(e.stdout, checkJSON{Passed: pass, Failed: fail, Skipped: skip, Report: rep}); err != nil {
			return err
		}
	} else {
		name := t.name
		if rep.Profile != "" {
			name += " (" + rep.Profile + " profile)"
		}
		fmt.Fprintf(e.stdout, "%s: %d passed, %d failed, %d skipped in %v\n", name, pass, fail, skip, rep.Duration.Round(time.Millisecond))
	}
	if fail > 0 {
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

func writeFile(path string, f func(io.Writer) error) error {
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
	target         any
	suite          devicetest.Suite
	chipOpts       *devicetest.ChipOptions
	codeOpts       *devicetest.CodeOptions
	closers        []func()
	setDestructive func()
}

func (t *checkTarget) close() {
	for i := len(t.closers) - 1; i >= 0; i-- {
		t.closers[i]()
	}
}

func (t *checkTarget) chip(opts devicetest.ChipOptions) {
	t.chipOpts = &opts
	t.suite = devicetest.ChipSuite(opts)
	t.setDestructive = func() { t.chipOpts.Destructive = true; t.suite = devicetest.ChipSuite(*t.chipOpts) }
}

func (t *checkTarget) code(opts devicetest.CodeOptions) {
	t.codeOpts = &opts
	t.suite = devicetest.CodeDeviceSuite(opts)
	t.setDestructive = func() { t.codeOpts.Destructive = true; t.suite = devicetest.CodeDeviceSuite(*t.codeOpts) }
}

// targetOptions are what a check knows about a device beforehand.
type targetOptions struct {
	roots  *x509.CertPool // trusted attestation roots; nil: none (the test CA for simulators)
	secret []byte         // a code device's OTP secret, when known
	voice  *voice.Decoder // what an audio reader's speech is checked with; nil: the simulated reader's voice
}

// openTarget opens the device a selector names.
func openTarget(ctx context.Context, sel string, o targetOptions) (*checkTarget, error) {
	roots, secret := o.roots, o.secret
	kind, arg, _ := strings.Cut(sel, ":")
	t := &checkTarget{name: sel}
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
		port, err := serial.Open(arg, &serial.Mode{BaudRate: 115200})
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", arg, err)
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

package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.bug.st/serial"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/devicetest"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/voice"
	"github.com/authbench/authbench/driver/pcsc"
	"github.com/authbench/authbench/driver/usb"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/code"
	"github.com/authbench/authbench/sim/udphid"
)

func init() {
	register(&command{
		name:    "check",
		summary: "run the conformance checks against one device and write reports",
		usage:   "--device SELECTOR [--report junit.xml] [--html report.html] [--markdown report.md] [--audio-dir DIR] [--prompts DIR]",
		run:     runCheck,
	})
}

const selectorHelp = `selectors:
  pcsc:N | pcsc:READER-NAME   a chip on a PC/SC reader (N counts readers from 0)
  usb[:VID:PID[:N]]           a FIDO HID chip on USB
  udp[:HOST:PORT]             a chip speaking CTAPHID over UDP (authbench sim --chip udp)
  serial:PATH                 a code display or audio code reader on a serial port or pty
  sim:chip | sim:code-display | sim:audio-code-reader
                              an in-process simulator`

func runCheck(ctx context.Context, e *env, args []string) error {
	c := commands["check"]
	fs := newFlags(c, e)
	var (
		sel, junit, html, md, audioDir, roots, only string
		prompts                                     string
		secret                                      hexFlag
		timeout                                     time.Duration
		destructive, quiet                          bool
	)
	fs.StringVar(&sel, "device", "", "the device to check (see below)")
	fs.StringVar(&junit, "report", "", "write a JUnit XML report to `FILE`")
	fs.StringVar(&html, "html", "", "write an HTML report to `FILE`")
	fs.StringVar(&md, "markdown", "", "write a Markdown report to `FILE`")
	fs.StringVar(&audioDir, "audio-dir", "", "save what audio code readers said (WAV) and other artifacts in `DIR`")
	fs.StringVar(&prompts, "prompts", "", "recognise an audio code reader's speech with the prompts learnt from it in `DIR` (authbench voice learn); default: the simulated reader's voice")
	fs.StringVar(&roots, "roots", "", "PEM `FILE` of trusted attestation roots (default for simulators: the test CA)")
	fs.Var(&secret, "otp-secret", "`HEX` OTP secret of a code device, when known: codes are then checked against TOTP")
	fs.StringVar(&only, "run", "", "run only the checks whose names contain this `TEXT`")
	fs.DurationVar(&timeout, "timeout", 30*time.Second, "limit for each check")
	fs.BoolVar(&destructive, "destructive", false, "allow checks that erase a chip or seal a code device")
	fs.BoolVar(&quiet, "q", false, "print only the summary")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: authbench check %s\n\n%s\n\nflags:\n", c.usage, c.summary)
		fs.PrintDefaults()
		fmt.Fprintln(e.stderr, "\n"+selectorHelp)
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if sel == "" {
		return usageError{errors.New("--device is required")}
	}
	var pool *x509.CertPool
	if roots != "" {
		b, err := os.ReadFile(roots)
		if err != nil {
			return err
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("%s: no PEM certificates", roots)
		}
	}

	dec, desc, err := loadDecoder(prompts)
	if err != nil {
		return err
	}
	if prompts != "" && !quiet {
		fmt.Fprintf(e.stdout, "prompts %s: %s\n", prompts, desc)
	}
	t, err := openTarget(ctx, sel, pool, secret, dec)
	if err != nil {
		return err
	}
	defer t.close()
	if !quiet {
		fmt.Fprintf(e.stdout, "checking %s (%s)\n", t.name, t.suite.Name)
	}
	opts := devicetest.RunOptions{
		Timeout:     timeout,
		ArtifactDir: audioDir,
		TargetName:  t.name,
		Progress: func(r devicetest.Result) {
			if quiet {
				return
			}
			mark := map[devicetest.Status]string{devicetest.Pass: "PASS", devicetest.Fail: "FAIL", devicetest.Skip: "SKIP"}[r.Status]
			fmt.Fprintf(e.stdout, "  %-4s %-40s %6s", mark, r.Name, r.Duration.Round(time.Millisecond))
			if r.Message != "" && r.Status != devicetest.Pass {
				fmt.Fprintf(e.stdout, "  %s", r.Message)
			}
			fmt.Fprintln(e.stdout)
		},
	}
	if only != "" {
		opts.Select = func(name string) bool { return strings.Contains(name, only) }
	}
	if destructive {
		t.setDestructive()
	}
	rep := devicetest.RunSuite(ctx, t.suite, t.target, opts)
	for _, w := range []struct {
		path  string
		write func(io.Writer, ...*devicetest.Report) error
	}{{junit, devicetest.WriteJUnit}, {html, devicetest.WriteHTML}, {md, devicetest.WriteMarkdown}} {
		if w.path == "" {
			continue
		}
		if err := writeFile(w.path, func(f io.Writer) error { return w.write(f, rep) }); err != nil {
			return err
		}
	}
	pass, fail, skip := count(rep)
	fmt.Fprintf(e.stdout, "%s: %d passed, %d failed, %d skipped in %v\n", t.name, pass, fail, skip, rep.Duration.Round(time.Millisecond))
	if fail > 0 {
		return exitError{1}
	}
	return nil
}

func count(r *devicetest.Report) (pass, fail, skip int) {
	for _, res := range r.Results {
		switch res.Status {
		case devicetest.Pass:
			pass++
		case devicetest.Fail:
			fail++
		default:
			skip++
		}
	}
	return
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

// openTarget opens the device a selector names.
// dec recognises what audio code readers say; nil means the simulated
// reader's voice (voice.DefaultDecoder).
func openTarget(ctx context.Context, sel string, roots *x509.CertPool, secret []byte, dec *voice.Decoder) (*checkTarget, error) {
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
		switch device.Kind(arg) {
		case device.KindChip:
			var hold atomic.Bool
			c, err := chip.New(chip.Options{Seed: []byte("authbench check"), PresenceFunc: func(chip.Op) chip.Presence {
				if hold.Load() {
					return chip.Never
				}
				return chip.Auto
			}})
			if err != nil {
				return nil, err
			}
			t.closers = append(t.closers, func() { c.Close() })
			t.target = c
			t.chip(devicetest.ChipOptions{Roots: testRoots(), RequireAttestation: true, WithholdPresence: hold.Store})
		case device.KindCodeDisplay, device.KindAudioCodeReader:
			d, err := code.New(code.Options{Kind: device.Kind(arg), Seed: []byte("authbench check")})
			if err != nil {
				return nil, err
			}
			a, b := net.Pipe()
			sctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { frame.Serve(sctx, b, d); close(done) }()
			t.closers = append(t.closers, func() { cancel(); a.Close(); b.Close(); <-done })
			t.target = devicetest.NewCDPTarget(a, nil)
			t.code(devicetest.CodeOptions{Secret: d.TOTP().Secret, CheckAudio: checkAudio(dec)})
		default:
			return nil, usageError{fmt.Errorf("unknown simulator %q: want sim:chip, sim:code-display or sim:audio-code-reader", arg)}
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
		hid, err := ctaphid.Open(ctx, conn, ctaphid.Options{})
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("no CTAPHID answer from %s: %w", addr, err)
		}
		t.closers = append(t.closers, func() { hid.Close(); conn.Close() })
		t.target = devicetest.NewMessengerChip(hid)
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
		t.code(devicetest.CodeOptions{Secret: secret, CheckAudio: checkAudio(dec)})
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

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/code"
	simvoice "github.com/authbench/authbench/sim/code/voice"
	"github.com/authbench/authbench/sim/udphid"
	"github.com/authbench/authbench/sim/umockdev"
	"github.com/authbench/authbench/sim/vicc"
)

// simCmd is `authbench sim`.
type simCmd struct {
	Chip          []string      `placeholder:"pcsc[=HOST:PORT]|udp[=PORT]|usb" help:"A simulated chip: pcsc[=HOST:PORT] (through pcscd's vpcd; default 127.0.0.1:35963), udp[=PORT] (CTAPHID over UDP; default 8111) or usb (a USB key on an emulated bus, for CMD or for programs run with the LD_PRELOAD and UMOCKDEV_DIR sim prints; needs the Debian packages umockdev, gir1.2-umockdev-1.0 and python3-gi). Repeatable."`
	CodeDisplay   []string      `placeholder:"pty" enum:"pty" help:"A simulated code display on a new pty. Repeatable."`
	AudioReader   []string      `placeholder:"pty" enum:"pty" help:"A simulated audio code reader on a new pty. Repeatable."`
	Seed          hexBytes      `placeholder:"HEX" help:"Seed: the same seed gives the same devices (default: random)."`
	State         string        `placeholder:"FILE" type:"path" help:"File holding the first chip's state, so that it survives restarts (created if missing)."`
	OTPSecretFile string        `name:"otp-secret-file" placeholder:"FILE" type:"existingfile" help:"File holding the OTP secret of the code devices in hex (default: derived from the seed). $AUTHBENCH_OTP_SECRET may hold the hex instead."`
	OTPDigits     int           `name:"otp-digits" default:"6" placeholder:"N" help:"Digits of a code (6-8)."`
	OTPPeriod     int           `name:"otp-period" default:"30" placeholder:"SECONDS" help:"TOTP period in seconds."`
	OTPAlg        string        `name:"otp-alg" default:"sha1" enum:"sha1,sha256,sha512" help:"OTP hash."`
	Factory       bool          `help:"Code devices start in factory mode (PROVISION, SET_CLOCK, SEAL work)."`
	Presence      string        `default:"auto" enum:"auto,deny,never,manual" help:"What the simulated user does when a chip asks for a touch: auto touches at once, deny refuses, never leaves it alone (requests wait until the host gives up), manual waits for a key pressed here (a line on standard input when it is not a terminal) or for SIGUSR1."`
	Fault         []string      `sep:"none" placeholder:"NAME[@WHEN][=VALUE]" help:"Inject a fault into the simulated devices (repeatable), such as bad-signature, removed@makeCredential, mute@5, drop-answer@2,3, bad-crc@1, low-battery, clock-offset=45s, 9100-storm: see Faults above."`
	U2FOnly       bool          `name:"u2f-only" help:"The chips speak U2F (CTAP1) only, as many MitID chips: SELECT answers U2F_V2, NFCCTAP_MSG 6D00, CTAPHID_INIT has no CBOR flag."`
	Attestation   string        `default:"batch" enum:"batch,serial,self,none" help:"The chips' attestation: batch (the model's certificate, no serial number), serial (a certificate with the chip's serial), self or none (not with --u2f-only)."`
	Language      string        `placeholder:"da|en" help:"Language of the audio code readers: da or en (default: the language of --voice or --prompts, else da)."`
	Voice         string        `placeholder:"VOICE" help:"The audio code readers speak with espeak-ng in VOICE (en+f3, en+m3, da+m3, da+klatt, en-us, ...), as connected speech: a reader with a speech synthesiser."`
	VoiceGap      time.Duration `name:"voice-gap" placeholder:"DURATION" help:"With --voice, a pause of DURATION between digits (default: none)."`
	Prompts       string        `placeholder:"DIR" type:"existingdir" help:"The audio code readers speak the prompts in DIR (authbench voice learn, or LANG/0.wav to 9.wav)."`
	JSON          bool          `help:"Print one JSON object per device once it is reachable, then {\"ready\":true}."`
	Verbose       bool          `short:"v" help:"Log connection events to stderr."`
	Command       []string      `arg:"" name:"cmd" optional:"" passthrough:"" help:"A command to run (after --) while the devices run, with the emulated USB bus in its environment; sim ends when it ends, with its exit status."`
}

func (*simCmd) runsUntilInterrupted() {}

// hexBytes is a flag holding bytes written in hex.
type hexBytes []byte

func (h *hexBytes) UnmarshalText(v []byte) error {
	b, err := hex.DecodeString(strings.TrimPrefix(string(v), "0x"))
	if err != nil {
		return fmt.Errorf("not hex: %v", err)
	}
	*h = b
	return nil
}

// simConfig is what `authbench sim` was asked to run.
type simConfig struct {
	chips        []string // "pcsc", "pcsc=HOST:PORT", "udp", "udp=PORT"
	codeDisplays []string // "pty"
	audioReaders []string // "pty"
	seed         []byte
	state        string
	otpSecret    []byte
	otpDigits    int
	otpPeriod    time.Duration
	otpAlg       otp.Algorithm
	factory      bool
	presence     chip.Presence
	profile      chip.Profile
	attestation  chip.Attestation
	language     string
	voice        simvoice.Voice // how audio readers speak; nil: their own voice
	faults       *simFaults     // --fault
	toucher      *toucher       // --presence manual
}

// simDevice is one running simulated device, as printed by `authbench sim`.
type simDevice struct {
	Kind      device.Kind `json:"kind"`
	Transport string      `json:"transport"`
	Addr      string      `json:"addr,omitempty"`
	Path      string      `json:"path,omitempty"`
	Serial    string      `json:"serial"`
	Reader    string      `json:"reader,omitempty"`
	Model     string      `json:"model,omitempty"`        // chips: the product name
	Profile   string      `json:"profile,omitempty"`      // chips: "FIDO2", "U2F-only"
	Hidraw    string      `json:"hidraw,omitempty"`       // usb: the hidraw node
	USBFS     string      `json:"usbfs,omitempty"`        // usb: the node libusb opens
	Testbed   string      `json:"umockdev_dir,omitempty"` // usb: UMOCKDEV_DIR of the emulated bus
}

func (c *simCmd) Run(ctx context.Context, e *env) error {
	cfg := simConfig{
		chips: c.Chip, codeDisplays: c.CodeDisplay, audioReaders: c.AudioReader,
		seed: c.Seed, state: c.State, otpDigits: c.OTPDigits,
		otpPeriod: time.Duration(c.OTPPeriod) * time.Second,
		factory:   c.Factory, language: c.Language,
	}
	var err error
	if cfg.otpSecret, err = readHexSecret(c.OTPSecretFile, "AUTHBENCH_OTP_SECRET"); err != nil {
		return err
	}
	if cfg.otpAlg, err = otp.ParseAlgorithm(c.OTPAlg); err != nil {
		return usageError{err}
	}
	if cfg.presence, err = parsePresence(c.Presence); err != nil {
		return err
	}
	if cfg.faults, err = parseFaults(c.Fault); err != nil {
		return err
	}
	if cfg.attestation, err = chip.ParseAttestation(c.Attestation); err != nil {
		return usageError{fmt.Errorf("--attestation %q: want batch, serial, self or none", c.Attestation)}
	}
	if c.U2FOnly {
		cfg.profile = chip.ProfileU2F
		if cfg.attestation == chip.AttestationNone {
			return usageError{errors.New("--attestation none with --u2f-only: a U2F registration always carries an attestation certificate; use batch, serial or self")}
		}
	}
	if cfg.voice, err = simVoice(c.Voice, c.VoiceGap, c.Prompts); err != nil {
		return err
	}
	switch {
	case cfg.language == "":
		cfg.language = simVoiceLanguage(cfg.voice, c.Voice)
	case !slices.Contains(simvoice.Languages, cfg.language):
		return usageError{fmt.Errorf("--language %q: want da or en", cfg.language)}
	}
	if len(c.Chip)+len(c.CodeDisplay)+len(c.AudioReader) == 0 {
		return usageError{errors.New("nothing to simulate: give at least one --chip, --code-display or --audio-reader")}
	}
	if err := cfg.faults.check(cfg); err != nil {
		return err
	}
	if cfg.presence == chip.Manual {
		cfg.toucher = newToucher(e.stderr)
	}
	if cfg.seed == nil {
		cfg.seed = make([]byte, 16)
		rand.Read(cfg.seed)
	}
	if len(c.Command) > 0 { // kong passes the separator through
		if c.Command[0] != "--" {
			// A stray word (a misspelt flag value, a flag without its
			// dashes) is not run as a program.
			return usageError{fmt.Errorf("unexpected argument %q: a command to run goes after --, as in authbench sim --chip usb -- %s", c.Command[0], strings.Join(c.Command, " "))}
		}
		c.Command = c.Command[1:]
		if len(c.Command) == 0 {
			return usageError{errors.New("nothing to run after --")}
		}
	}
	jsonOut, verbose := c.JSON, c.Verbose
	log := slog.New(slog.DiscardHandler)
	if verbose {
		log = slog.New(slog.NewTextHandler(e.stderr, nil))
	}

	s := newSimulation(log)
	s.out = e.stderr
	defer s.close()
	var started []simDevice
	out := e.stdout
	if len(c.Command) > 0 {
		out = e.stderr // stdout is the command's
	}
	announce := func(d simDevice) {
		started = append(started, d)
		if jsonOut {
			b, _ := json.Marshal(d)
			fmt.Fprintln(out, string(b))
			return
		}
		where := d.Addr
		if d.Path != "" {
			where = d.Path
		}
		var notes []string
		if d.Profile != "" {
			notes = append(notes, d.Profile)
		}
		if d.Reader != "" {
			notes = append(notes, fmt.Sprintf("reader %q", d.Reader))
		}
		if d.Hidraw != "" {
			notes = append(notes, d.Hidraw, d.USBFS)
		}
		extra := ""
		if len(notes) > 0 {
			extra = " (" + strings.Join(notes, ", ") + ")"
		}
		fmt.Fprintf(out, "%-18s %-6s %-22s serial %s%s\n", d.Kind, d.Transport, where, d.Serial, extra)
	}
	if err := s.start(ctx, cfg, announce); err != nil {
		return err
	}
	defer registerSim(started)()
	if cfg.toucher != nil {
		cfg.toucher.run(ctx, e.in())
		fmt.Fprintf(e.stderr, "presence manual: press a key here (or send a line on standard input), or run kill -USR1 %d, to touch the chips\n", os.Getpid())
	}
	if len(c.Command) > 0 {
		return s.runCommand(ctx, e, c.Command)
	}
	if s.bus != nil && !jsonOut {
		fmt.Fprintf(e.stdout, "USB keys: run programs with %s\n", strings.Join(s.bus.Environ(nil), " "))
	}
	if jsonOut {
		fmt.Fprintln(e.stdout, `{"ready":true}`)
	} else {
		fmt.Fprintln(e.stdout, "ready; press Ctrl-C to stop")
	}
	<-ctx.Done()
	if !jsonOut {
		fmt.Fprintln(e.stderr, "stopping")
	}
	return s.close()
}

// simulation owns running simulated devices and the goroutines serving them.
type simulation struct {
	log *slog.Logger
	out io.Writer // where injected faults are announced; nil: nowhere

	mu      sync.Mutex
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closers []io.Closer
	errs    []error
	closed  bool

	usbKeys []umockdev.Key    // chips waiting for the emulated bus
	bus     *umockdev.Testbed // the emulated USB bus, once started
}

// newSimulation returns an empty simulation; log may be nil.
func newSimulation(log *slog.Logger) *simulation {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &simulation{log: log}
}

func (s *simulation) goServe(ctx context.Context, what string, f func(ctx context.Context) error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := f(ctx)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil && ctx.Err() == nil && !s.closed {
			s.log.Error("simulated device stopped", "device", what, "err", err)
			s.errs = append(s.errs, fmt.Errorf("%s: %w", what, err))
		}
	}()
}

// start makes and exposes every device in cfg, calling announce for each
// once it is reachable. It returns when all are, or with the first error.
func (s *simulation) start(parent context.Context, cfg simConfig, announce func(simDevice)) error {
	ctx, cancel := context.WithCancel(parent)
	s.cancel = cancel
	var onBus []simDevice
	for i, spec := range cfg.chips {
		d, err := s.startChip(ctx, cfg, i, spec)
		if err != nil {
			return err
		}
		if d.Transport == "usb" {
			onBus = append(onBus, d) // announced once the bus is up
			continue
		}
		announce(d)
	}
	if len(onBus) > 0 {
		devs, err := s.startBus(ctx, onBus)
		if err != nil {
			return err
		}
		for _, d := range devs {
			announce(d)
		}
	}
	n := 0
	for _, spec := range cfg.codeDisplays {
		d, err := s.startCode(ctx, cfg, device.KindCodeDisplay, n, spec)
		if err != nil {
			return err
		}
		n++
		announce(d)
	}
	for _, spec := range cfg.audioReaders {
		d, err := s.startCode(ctx, cfg, device.KindAudioCodeReader, n, spec)
		if err != nil {
			return err
		}
		n++
		announce(d)
	}
	return nil
}

// deviceSeed gives device i of a kind its own seed; device 0 uses the seed
// as given, so `--seed X` makes the same chip as chip.New(Seed: X).
func deviceSeed(seed []byte, label string, i int) []byte {
	if i == 0 {
		return seed
	}
	return append(append(append([]byte(nil), seed...), label...), strconv.Itoa(i)...)
}

func (s *simulation) startChip(ctx context.Context, cfg simConfig, i int, spec string) (simDevice, error) {
	transport, arg, _ := strings.Cut(spec, "=")
	opts := chip.Options{Seed: deviceSeed(cfg.seed, "chip", i), Presence: cfg.presence, Profile: cfg.profile, Attestation: cfg.attestation,
		Faults: cfg.faults.chip}
	var serial string
	if cfg.toucher != nil {
		opts.PresenceFunc = cfg.toucher.presence(&serial)
	}
	var (
		c   *chip.Chip
		err error
	)
	if cfg.state != "" && i == 0 {
		c, err = chip.Open(cfg.state, opts)
	} else {
		c, err = chip.New(opts)
	}
	if err != nil {
		return simDevice{}, fmt.Errorf("chip %d: %w", i, err)
	}
	s.addCloser(c)
	serial = c.Serial()
	if cfg.toucher != nil {
		cfg.toucher.add(c)
	}
	note := func(msg string) { s.note(msg) }
	// The transports announce what the chip speaks (it reports its
	// protocols to apdu.NewCard and ctaphid.Serve).
	d := simDevice{Kind: device.KindChip, Serial: c.Serial(), Model: c.DeviceInfo().Model, Profile: c.Protocols().String()}
	switch transport {
	case "pcsc":
		addr := vicc.DefaultAddr
		if arg != "" {
			addr = arg
		}
		card := apdu.NewCard(c, cfg.faults.card)
		s.addCloser(card)
		// Connect once here, so that a pcscd that is not running is
		// reported at once instead of after vpcdWait.
		first, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return d, unreachableError{fmt.Errorf("chip %d: nothing listens on %s, where pcscd's vpcd reader should be listening: start pcscd with `pcscd -f &` (or `systemctl start pcscd`), with vsmartcard-vpcd installed (apt-get install pcscd vsmartcard-vpcd)\n  (%v)", i, addr, err)}
		}
		vopts, cardCtl := cfg.faults.viccOptions(vicc.Options{Logger: s.log}, c, note)
		conn := vicc.New(addr, card, vopts)
		s.goServe(ctx, "chip on vpcd "+addr, func(ctx context.Context) error {
			return cardCtl.runCard(ctx, conn, first, s.log)
		})
		select {
		case <-conn.Ready():
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(vpcdWait):
			return d, fmt.Errorf("chip %d: pcscd's vpcd did not answer on %s in %v: is pcscd running (pcscd -f) with vsmartcard-vpcd installed?", i, addr, vpcdWait)
		}
		d.Transport, d.Addr = "pcsc", addr
		d.Reader = vpcdReaderName(addr)
	case "udp":
		addr := udphid.DefaultDeviceAddr
		if arg != "" {
			if _, err := strconv.Atoi(arg); err == nil {
				addr = "127.0.0.1:" + arg
			} else {
				addr = arg
			}
		}
		conn, err := udphid.Listen(addr, "")
		if err != nil {
			return d, fmt.Errorf("chip %d: %w", i, err)
		}
		s.addCloser(conn)
		s.goServe(ctx, "chip on UDP "+addr, func(ctx context.Context) error {
			stop := context.AfterFunc(ctx, func() { conn.Close() })
			defer stop()
			return ctaphid.Serve(ctx, cfg.faults.hidStream(conn, serial, note), c, ctaphid.ServeOptions{Major: 1})
		})
		d.Transport, d.Addr = "udp", conn.LocalAddr().String()
	case "usb":
		if arg != "" {
			return d, usageError{fmt.Errorf("--chip %q: usb takes no argument", spec)}
		}
		s.usbKeys = append(s.usbKeys, umockdev.Key{Chip: c, Serial: c.Serial()})
		d.Transport = "usb"
	default:
		return d, usageError{fmt.Errorf("--chip %q: want pcsc[=HOST:PORT], udp[=PORT] or usb", spec)}
	}
	return d, nil
}

// vpcdWait bounds the wait for pcscd's first message to a new simulated
// card. pcscd polls its readers on its own schedule, which a loaded
// machine stretches; a missing pcscd is reported when it passes.
const vpcdWait = 30 * time.Second

// vpcdReaderName names the reader pcscd shows for a vpcd port: the default
// configuration maps 35963 to "Virtual PCD 00 00" and 35964 to "00 01".
func vpcdReaderName(addr string) string {
	switch {
	case strings.HasSuffix(addr, ":35963"):
		return "Virtual PCD 00 00"
	case strings.HasSuffix(addr, ":35964"):
		return "Virtual PCD 00 01"
	}
	return ""
}

func (s *simulation) startCode(ctx context.Context, cfg simConfig, kind device.Kind, i int, spec string) (simDevice, error) {
	if spec != "pty" {
		return simDevice{}, usageError{fmt.Errorf("%s %q: only pty is supported", kind, spec)}
	}
	opts := code.Options{
		Kind:      kind,
		Seed:      deviceSeed(cfg.seed, "code", i),
		Secret:    cfg.otpSecret,
		Digits:    cfg.otpDigits,
		Period:    cfg.otpPeriod,
		Algorithm: cfg.otpAlg,
		Factory:   cfg.factory,
		Faults:    cfg.faults.code,
		Battery:   cfg.faults.battery,
		Drift:     cfg.faults.drift,
	}
	if kind == device.KindAudioCodeReader {
		opts.Language, opts.Voice = cfg.language, cfg.voice
	}
	d, err := code.New(opts)
	if err != nil {
		return simDevice{}, fmt.Errorf("%s: %w", kind, err)
	}
	popts, self := cfg.faults.ptyOptions(d, s.note)
	p, err := code.ServePTYOptions(ctx, d, popts)
	if err != nil {
		return simDevice{}, fmt.Errorf("%s: %w", kind, err)
	}
	self.Store(p)
	s.addCloser(p)
	return simDevice{Kind: kind, Transport: "serial", Path: p.Path, Serial: d.Serial()}, nil
}

// note tells the operator what an injected fault just did.
func (s *simulation) note(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out != nil {
		fmt.Fprintln(s.out, msg)
	}
}

func (s *simulation) addCloser(c io.Closer) {
	s.mu.Lock()
	s.closers = append(s.closers, c)
	s.mu.Unlock()
}

// close stops every device and reports the first error any of them had.
func (s *simulation) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i].Close()
	}
	s.wg.Wait()
	return errors.Join(s.errs...)
}

// commandStopWait is how long a command has to end after it was asked to
// (SIGTERM, when authbench itself is interrupted) before it is killed.
const commandStopWait = 10 * time.Second

// runCommand runs the command a user gave after "--" while the devices
// run, with the emulated USB bus (if any) in its environment, and returns
// its exit status as an exitError (0 is nil).
func (s *simulation) runCommand(ctx context.Context, e *env, args []string) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = os.Environ()
	if s.bus != nil {
		cmd.Env = s.bus.Environ(cmd.Env)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.in(), e.stdout, e.stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = commandStopWait
	err := cmd.Run()
	simErr := s.close()
	var xe *exec.ExitError
	switch {
	case errors.As(err, &xe):
		if ws, ok := xe.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return exitError{128 + int(ws.Signal())}
		}
		return exitError{xe.ExitCode()}
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(e.stderr, "authbench sim: %v\n", err)
		return exitError{127}
	case err != nil:
		fmt.Fprintf(e.stderr, "authbench sim: %v\n", err)
		return exitError{126}
	}
	if simErr != nil {
		return fmt.Errorf("the command succeeded, but a simulated device failed: %w", simErr)
	}
	return nil
}

// simVoice returns the voice that --voice or --prompts ask for, or nil
// for the reader's own. An espeak-ng voice is tried once, so that a
// missing espeak-ng is reported at start.
func simVoice(name string, gap time.Duration, dir string) (simvoice.Voice, error) {
	switch {
	case name != "" && dir != "":
		return nil, usageError{errors.New("give --voice or --prompts, not both")}
	case name != "":
		if l, _, _ := strings.Cut(strings.SplitN(name, "+", 2)[0], "-"); !slices.Contains(simvoice.Languages, l) {
			return nil, usageError{fmt.Errorf("--voice %s: want an espeak-ng voice of %s, such as en+f3 or da+klatt", name, strings.Join(simvoice.Languages, " or "))}
		}
		v := &simvoice.Espeak{Voice: name, Gap: gap}
		lang := simVoiceLanguage(v, name)
		if _, err := v.Say("0", simvoice.Settings{Language: lang, Speed: 100, Volume: 100, Repeat: 1}); err != nil {
			return nil, fmt.Errorf("--voice %s: %w", name, err)
		}
		return v, nil
	case gap != 0:
		return nil, usageError{errors.New("--voice-gap needs --voice")}
	case dir != "":
		p, _, err := loadPrompts(dir)
		if err != nil {
			return nil, err
		}
		return simvoice.NewPromptVoice(p)
	}
	return nil, nil
}

// simVoiceLanguage is the language a reader with voice v starts in: that
// of the espeak-ng voice name, or the first the voice speaks, "da" first.
func simVoiceLanguage(v simvoice.Voice, name string) string {
	if l, _, _ := strings.Cut(strings.SplitN(name, "+", 2)[0], "-"); name != "" && slices.Contains(simvoice.Languages, l) {
		return l
	}
	for _, l := range simvoice.Languages {
		if v == nil || v.Speaks(l) {
			return l
		}
	}
	return simvoice.Languages[0]
}

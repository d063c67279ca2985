package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/driver/pcsc"
	"github.com/authbench/authbench/server/client"
)

func init() {
	register(&command{
		name:    "enroll",
		summary: "enrol a chip (physical or simulated) as a MitID chip of an identity on a running server",
		usage:   "--server URL --identity ID --device SELECTOR [--token TOKEN | --token-file FILE] [--label TEXT]",
		run:     runEnroll,
	})
}

// defaultServer is the server the developer commands talk to when neither
// --server nor $AUTHBENCH_SERVER says otherwise.
const defaultServer = "http://127.0.0.1:8080"

// serverFlags are the flags every command that talks to a server shares.
type serverFlags struct {
	server    string
	token     string
	tokenFile string
	origin    string
	timeout   time.Duration
	needToken bool
}

func (sf *serverFlags) register(fs *flag.FlagSet, needToken bool) {
	sf.needToken = needToken
	def := os.Getenv("AUTHBENCH_SERVER")
	if def == "" {
		def = defaultServer
	}
	fs.StringVar(&sf.server, "server", def, "`URL` of the authbench server (default $AUTHBENCH_SERVER or "+defaultServer+")")
	if needToken {
		fs.StringVar(&sf.token, "token", "", "support or session `TOKEN` (prefer --token-file or $AUTHBENCH_TOKEN: a flag is visible to other users)")
		fs.StringVar(&sf.tokenFile, "token-file", "", "read the token from `FILE`: a session file of `authbench login`, or the support token file of `authbench serve` (its first token)")
	}
	fs.StringVar(&sf.origin, "origin", "", "WebAuthn `ORIGIN` put into the client data (default https://RP-ID)")
	fs.DurationVar(&sf.timeout, "timeout", 2*time.Minute, "give up after this long (touching the chip included)")
}

// readToken returns the token of --token, --token-file or $AUTHBENCH_TOKEN.
func (sf *serverFlags) readToken() (string, error) {
	if !sf.needToken {
		return "", nil
	}
	switch {
	case sf.token != "" && sf.tokenFile != "":
		return "", usageError{errors.New("give --token or --token-file, not both")}
	case sf.token != "":
		return sf.token, nil
	case sf.tokenFile != "":
		b, err := os.ReadFile(sf.tokenFile)
		if err != nil {
			return "", fmt.Errorf("token file: %w", err)
		}
		if tok := tokenFromFile(string(b)); tok != "" {
			return tok, nil
		}
		return "", fmt.Errorf("token file %s holds no token", sf.tokenFile)
	}
	if tok := os.Getenv("AUTHBENCH_TOKEN"); tok != "" {
		return tok, nil
	}
	return "", usageError{errors.New("a token is needed: give --token-file FILE (or --token, or set $AUTHBENCH_TOKEN)")}
}

// tokenFromFile returns the token in a token file: the first line that is
// not empty or a "#" comment. The line is either the token alone (as
// `authbench login --session-file` writes it) or "operator-id token" (as
// in the support token file of `authbench serve`).
func tokenFromFile(content string) string {
	for _, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		return f[len(f)-1]
	}
	return ""
}

// client returns a client of the server with the token; keepalive may be
// nil.
func (sf *serverFlags) client(keepalive func(ctap2.KeepaliveStatus)) (*client.Client, error) {
	tok, err := sf.readToken()
	if err != nil {
		return nil, err
	}
	c, err := client.New(sf.server, client.Options{Token: tok, Origin: sf.origin, Keepalive: keepalive})
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// touchPrompt prints "Touch your chip…" when a chip first asks for
// presence, then a dot per second of waiting, and ends the line when the
// waiting is over.
type touchPrompt struct {
	w    io.Writer
	mu   sync.Mutex
	on   bool
	last time.Time
}

func (p *touchPrompt) keepalive(s ctap2.KeepaliveStatus) {
	if s != ctap2.StatusUPNeeded {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if !p.on {
		p.on, p.last = true, now
		fmt.Fprint(p.w, "Touch your chip…")
		return
	}
	if now.Sub(p.last) >= time.Second {
		p.last = now
		fmt.Fprint(p.w, ".")
	}
}

// done ends the prompt's line, if one was started.
func (p *touchPrompt) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.on {
		fmt.Fprintln(p.w)
		p.on = false
	}
}

// openTimeout bounds opening a device: a chip that does not answer its
// first command within it is not there.
const openTimeout = 10 * time.Second

// openDevice opens the device a selector names (the selectors of
// `authbench check`), and explains the errors a developer meets.
func openDevice(ctx context.Context, sel string) (*checkTarget, error) {
	octx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	t, err := openTarget(octx, sel, nil, nil, nil)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return nil, err
		}
		if octx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("nothing answered at %s in time: is the device connected (and `authbench sim` running, for udp:)?\n  (%v)", sel, err)
		}
		return nil, explainDevice(sel, err)
	}
	return t, nil
}

// openChip opens the chip a selector names.
func openChip(ctx context.Context, sel string) (device.Chip, func(), error) {
	t, err := openDevice(ctx, sel)
	if err != nil {
		return nil, nil, err
	}
	ch, ok := t.target.(device.Chip)
	if !ok {
		t.close()
		return nil, nil, usageError{fmt.Errorf("--device %s is not a chip: enrol code devices through a PSKC import and `authbench login --device`", sel)}
	}
	return ch, t.close, nil
}

func runEnroll(ctx context.Context, e *env, args []string) error {
	fs := newFlags(commands["enroll"], e)
	var sf serverFlags
	sf.register(fs, true)
	identity := fs.String("identity", "", "the identity (person) to enrol the chip for")
	sel := fs.String("device", "", "the `SELECTOR` of the chip: pcsc:N, pcsc:READER, usb[:VID:PID], udp:HOST:PORT or sim:chip (see authbench help check)")
	label := fs.String("label", "", "a label for the new authenticator")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	case *identity == "":
		return usageError{errors.New("--identity is required")}
	case *sel == "":
		return usageError{errors.New("--device is required")}
	}
	prompt := &touchPrompt{w: e.stdout}
	c, err := sf.client(prompt.keepalive)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, sf.timeout)
	defer cancel()

	// Ask the server first, so that a wrong token or an unreachable server
	// is reported before anyone is asked to touch anything.
	if _, err := c.Identity(ctx, *identity); err != nil {
		return explainServer(&sf, *identity, err)
	}
	chip, closeChip, err := openChip(ctx, *sel)
	if err != nil {
		return err
	}
	defer closeChip()
	a, err := client.EnrollChip(ctx, c, *identity, *label, chip)
	prompt.done()
	if err != nil {
		return explainEnroll(&sf, *identity, *sel, err)
	}
	fmt.Fprintf(e.stdout, "enrolled the chip as a MitID chip of %s: a new security element in the chip and on the server\n", *identity)
	printAuthenticator(e.stdout, a)
	return nil
}

// printAuthenticator prints one authenticator as "name value" lines.
func printAuthenticator(w io.Writer, a *client.Authenticator) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-19s %s\n", k, v)
		}
	}
	row("authenticator", a.ID)
	row("kind", a.Kind)
	row("state", a.State)
	row("label", a.Label)
	row("serial", a.Serial)
	row("credential ID", a.CredentialID)
	el := a.Element
	row("AAGUID", el.AAGUID)
	if el.AttestationTrusted != nil {
		trust := "trusted (chains to the server's attestation roots)"
		if !*el.AttestationTrusted {
			trust = "NOT trusted (accepted without a trusted attestation)"
		}
		row("attestation", el.AttestationFormat+", "+trust)
	}
	if el.ChipSerial != a.Serial {
		row("chip serial", el.ChipSerial)
	}
	if el.Digits > 0 {
		row("code", fmt.Sprintf("%d digits every %d s, %s", el.Digits, el.PeriodSeconds, el.Algorithm))
	}
	row("app key", el.PublicKeyAlg)
	if el.Wiped {
		row("element", "deleted (permanent block)")
	}
	if a.Failures > 0 || a.Suspensions > 0 {
		row("failures", fmt.Sprintf("%d in a row, %d suspensions", a.Failures, a.Suspensions))
	}
}

// explainServer turns an error talking to the server into what to do.
func explainServer(sf *serverFlags, identity string, err error) error {
	var ae *client.APIError
	switch {
	case errors.Is(err, client.ErrUnreachable):
		return fmt.Errorf("cannot reach the server at %s: is it running (authbench serve) and is --server right?\n  (%v)", sf.server, err)
	case errors.Is(err, client.ErrUnauthorized):
		return fmt.Errorf("the server refused the token (wrong or expired): check --token-file / --token / $AUTHBENCH_TOKEN\n  (%v)", err)
	case errors.Is(err, client.ErrForbidden):
		return fmt.Errorf("the token may not act for identity %q: use a support token or a session of that identity\n  (%v)", identity, err)
	case errors.Is(err, client.ErrNotFound) && errors.As(err, &ae) && strings.HasSuffix(ae.Path, "/identities/"+identity):
		return fmt.Errorf("the server has no identity %q\n  (%v)", identity, err)
	case errors.Is(err, client.ErrBadResponse):
		return fmt.Errorf("the server at %s does not answer like an authbench server: is --server right?\n  (%v)", sf.server, err)
	}
	return err
}

// explainDevice turns an error opening a device into what to do.
func explainDevice(sel string, err error) error {
	var pe *pcsc.Error
	if errors.As(err, &pe) {
		switch pe.Code {
		case pcsc.CodeNoSmartcard, pcsc.CodeRemovedCard:
			return fmt.Errorf("no chip in reader %q: insert it (or hold it on the reader) and try again\n  (%v)", pe.Reader, err)
		case pcsc.CodeUnknownReader, pcsc.CodeReaderUnavailable:
			return fmt.Errorf("no reader %q: run `authbench devices` to see the readers\n  (%v)", pe.Reader, err)
		case pcsc.CodeNoReaders:
			return fmt.Errorf("no PC/SC reader is connected: plug one in and try again\n  (%v)", err)
		case pcsc.CodeSharingViolation:
			return fmt.Errorf("another program holds the chip: close it and try again\n  (%v)", err)
		}
	}
	var se *apdu.StatusError
	switch {
	case errors.Is(err, pcsc.ErrNoService):
		return fmt.Errorf("pcscd is not running: start it (pcscd -f, or systemctl start pcscd.socket) and try again\n  (%v)", err)
	case errors.As(err, &se) && errors.Is(err, device.ErrNotFound):
		return fmt.Errorf("the card in the reader is not a FIDO chip (it has no FIDO applet): use a MitID chip\n  (%v)", err)
	case errors.Is(err, device.ErrRemoved):
		return fmt.Errorf("the chip was removed: put it back and try again\n  (%v)", err)
	case errors.Is(err, device.ErrNotFound) && strings.HasPrefix(sel, "pcsc:"):
		return fmt.Errorf("no chip found at %s: check the reader and the card, or run `authbench devices`\n  (%v)", sel, err)
	case errors.Is(err, device.ErrNotFound):
		return fmt.Errorf("no chip found at %s: is it plugged in? run `authbench devices`\n  (%v)", sel, err)
	case errors.Is(err, device.ErrNotSupported):
		return fmt.Errorf("%s: this build or device does not support it\n  (%v)", sel, err)
	}
	return err
}

// explainEnroll turns an enrolment error into what to do.
func explainEnroll(sf *serverFlags, identity, sel string, err error) error {
	var ce *client.CeremonyError
	step := ""
	if errors.As(err, &ce) {
		step = ce.Step
	}
	switch {
	case errors.Is(err, ctap2.ErrCredentialExcluded):
		return fmt.Errorf("this chip is already enrolled for %s (it holds one of the identity's credentials): nothing was changed; to get a new element, block the old chip authenticator first (authbench block)\n  (%v)", identity, err)
	case errors.Is(err, ctap2.ErrOperationDenied), errors.Is(err, device.ErrPresenceDenied):
		return fmt.Errorf("the chip refused: the touch was denied\n  (%v)", err)
	case step == "makeCredential" && (errors.Is(err, ctap2.ErrKeepaliveCancel) || errors.Is(err, ctap2.ErrUserActionTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, device.ErrTimeout)):
		return fmt.Errorf("nobody touched the chip in time: run the command again and touch the chip when asked\n  (%v)", err)
	case errors.Is(err, client.ErrAttestationUntrusted):
		return fmt.Errorf("the server does not trust this chip: its attestation certificate does not chain to the server's attestation roots (or it is not a MitID chip); nothing was stored\n  (%v)", err)
	case errors.Is(err, client.ErrQuotaExceeded):
		return fmt.Errorf("%s already has as many chips as allowed: block the old one first (authbench block --reason lost)\n  (%v)", identity, err)
	case errors.Is(err, client.ErrAlreadyRegistered):
		return fmt.Errorf("the server already knows the credential this chip made: reset the chip or use another one\n  (%v)", err)
	case errors.Is(err, client.ErrCredentialRevoked):
		return fmt.Errorf("the chip answered with a credential that was blocked for good: reset the chip or use another one\n  (%v)", err)
	case errors.Is(err, client.ErrIdentityBlocked):
		return fmt.Errorf("identity %s is temporarily blocked: only support can lift that\n  (%v)", identity, err)
	case step == "makeCredential":
		return explainDevice(sel, err)
	}
	return explainServer(sf, identity, err)
}

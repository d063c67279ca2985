package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

// enrollCmd is `authbench enroll`.
type enrollCmd struct {
	serverFlags
	tokenFlags
	Identity string `required:"" placeholder:"ID" help:"The identity (person) to enrol the chip for."`
	Device   string `required:"" placeholder:"SELECTOR" help:"The chip: pcsc:N, pcsc:READER, usb[:VID:PID], udp:HOST:PORT or sim:chip (see authbench help check)."`
	Label    string `placeholder:"TEXT" help:"A label for the new authenticator."`
	JSON     bool   `help:"Print the new authenticator as JSON."`
}

// defaultServer is the server the developer commands talk to when neither
// --server nor $AUTHBENCH_SERVER says otherwise.
const defaultServer = "http://127.0.0.1:8080"

// serverFlags are the flags every command that talks to a server shares.
type serverFlags struct {
	Server  string        `placeholder:"URL" default:"${default_server}" env:"AUTHBENCH_SERVER" help:"URL of the authbench server (with or without the /v1 of the API)."`
	Origin  string        `placeholder:"ORIGIN" help:"WebAuthn origin put into the client data (default: https://RP-ID)."`
	Timeout time.Duration `default:"2m" placeholder:"DURATION" help:"Give up after this long (touching the chip included)."`
}

// tokenFlags are the flags of commands that need a support or session
// token. The token itself never goes on the command line, where other
// users could read it: it comes from a file or the environment.
type tokenFlags struct {
	TokenFile string `placeholder:"FILE" env:"AUTHBENCH_TOKEN_FILE" help:"Read the support or session token from FILE: a session file of authbench login, or the support token file of authbench serve (its first token). Without it, $AUTHBENCH_TOKEN holds the token."`
}

// readToken returns the token of --token-file or $AUTHBENCH_TOKEN.
func (tf *tokenFlags) readToken() (string, error) {
	if tf.TokenFile != "" {
		b, err := os.ReadFile(tf.TokenFile)
		if errors.Is(err, fs.ErrNotExist) {
			// A missing input file is a wrong command line (exit status 2).
			return "", usageError{fmt.Errorf("--token-file %s: no such file (a session file of authbench login, or the support token file of authbench serve)", tf.TokenFile)}
		}
		if err != nil {
			return "", fmt.Errorf("token file: %w", err)
		}
		if tok := tokenFromFile(string(b)); tok != "" {
			return tok, nil
		}
		return "", fmt.Errorf("token file %s holds no token", tf.TokenFile)
	}
	if tok := os.Getenv("AUTHBENCH_TOKEN"); tok != "" {
		return tok, nil
	}
	return "", usageError{errors.New("a token is needed: give --token-file FILE, or set $AUTHBENCH_TOKEN")}
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

// client returns a client of the server with token ("" for none);
// keepalive may be nil.
func (sf *serverFlags) client(token string, keepalive func(ctap2.KeepaliveStatus)) (*client.Client, error) {
	c, err := client.New(sf.Server, client.Options{Token: token, Origin: sf.Origin, Keepalive: keepalive})
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// authedClient returns a client of the server with the token of tf.
func (sf *serverFlags) authedClient(tf *tokenFlags, keepalive func(ctap2.KeepaliveStatus)) (*client.Client, error) {
	tok, err := tf.readToken()
	if err != nil {
		return nil, err
	}
	return sf.client(tok, keepalive)
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
// first command within it is not there. A chip on UDP, which is always a
// simulator on this or a nearby machine, gets udpOpenTimeout.
const (
	openTimeout    = 10 * time.Second
	udpOpenTimeout = 2 * time.Second
)

// openDevice opens the device a selector names (see selectorHelp) with
// the options of a check, and explains the errors a developer meets. An
// error opening the device is an unreachableError (exit status 3); a bad
// selector a usageError.
func openDevice(ctx context.Context, sel string, o targetOptions) (*checkTarget, error) {
	limit := openTimeout
	if strings.HasPrefix(sel, "udp") {
		limit = udpOpenTimeout
	}
	octx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	t, err := openTarget(octx, sel, o)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return nil, err
		}
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.DeadlineExceeded) {
			return nil, cause // interrupted
		}
		if octx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			what := "is the device connected?"
			if strings.HasPrefix(sel, "udp") {
				what = "is `authbench sim --chip udp` running there, and is the address right?"
			}
			return nil, unreachableError{fmt.Errorf("nothing answered at %s within %v: %s\n  (%v)", sel, time.Since(start).Round(100*time.Millisecond), what, err)}
		}
		return nil, unreachableError{explainDevice(sel, err)}
	}
	return t, nil
}

// openChip opens the chip a selector names.
func openChip(ctx context.Context, sel string) (device.Chip, func(), error) {
	t, err := openDevice(ctx, sel, targetOptions{})
	if err != nil {
		return nil, nil, err
	}
	ch, ok := t.target.(device.Chip)
	if !ok {
		t.close()
		return nil, nil, usageError{fmt.Errorf("--device %s is not a chip: a code device is added by its serial, once support imported its secret (PSKC), and activated with a code it shows (the API's add and activate)", sel)}
	}
	return ch, t.close, nil
}

func (c *enrollCmd) Run(ctx context.Context, e *env) error {
	out := e.stdout
	if c.JSON {
		out = e.stderr
	}
	prompt := &touchPrompt{w: out}
	cl, err := c.authedClient(&c.tokenFlags, prompt.keepalive)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()

	// Ask the server first, so that a wrong token or an unreachable server
	// is reported before anyone is asked to touch anything.
	if _, err := cl.Identity(ctx, c.Identity); err != nil {
		return explainServer(&c.serverFlags, c.Identity, err)
	}
	chip, closeChip, err := openChip(ctx, c.Device)
	if err != nil {
		return err
	}
	defer closeChip()
	a, err := client.EnrollChip(ctx, cl, c.Identity, c.Label, chip)
	prompt.done()
	if err != nil {
		return explainEnroll(&c.serverFlags, c.Identity, c.Device, err)
	}
	if c.JSON {
		return printJSON(e.stdout, a)
	}
	fmt.Fprintf(e.stdout, "enrolled the chip as a MitID chip of %s: a new security element in the chip and on the server\n", c.Identity)
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

// wrongServer returns an error of exit status 3 when err is a 404 and
// the server at --server has no API there: its answers for an unknown
// path and for an unknown identity (or authenticator, session) share the
// code not_found, so it asks for the API's own document, which every
// authbench server serves. It returns nil for any other error, and when
// the document is there (the 404 is about what the command named).
func (sf *serverFlags) wrongServer(err error) error {
	var ae *client.APIError
	if !errors.Is(err, client.ErrNotFound) || !errors.As(err, &ae) {
		return nil
	}
	cl, cerr := client.New(sf.Server, client.Options{})
	if cerr != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, perr := cl.OpenAPI(ctx)
	if perr == nil || !(errors.Is(perr, client.ErrNotFound) || errors.Is(perr, client.ErrBadResponse)) {
		return nil
	}
	return unreachableError{fmt.Errorf("the server at %s has no such endpoint (%s %s): is --server right? (it is the server's address, as authbench serve prints it, with or without /v1)\n  (%v)",
		sf.Server, ae.Method, ae.Path, err)}
}

// explainServer turns an error talking to the server into what to do.
func explainServer(sf *serverFlags, identity string, err error) error {
	if werr := sf.wrongServer(err); werr != nil {
		return werr
	}
	var ae *client.APIError
	switch {
	case errors.Is(err, client.ErrUnreachable):
		return unreachableError{fmt.Errorf("cannot reach the server at %s: is it running (authbench serve) and is --server right?\n  (%v)", sf.Server, err)}
	case errors.Is(err, client.ErrUnauthorized):
		return fmt.Errorf("the server refused the token (wrong or expired): check --token-file or $AUTHBENCH_TOKEN\n  (%v)", err)
	case errors.Is(err, client.ErrForbidden):
		return fmt.Errorf("the token may not act for identity %q: use a support token or a session of that identity\n  (%v)", identity, err)
	case errors.Is(err, client.ErrNotFound) && errors.As(err, &ae) && strings.HasSuffix(ae.Path, "/identities/"+identity):
		return fmt.Errorf("the server has no identity %q\n  (%v)", identity, err)
	case errors.Is(err, client.ErrBadResponse):
		return unreachableError{fmt.Errorf("the server at %s does not answer like an authbench server: is --server right?\n  (%v)", sf.Server, err)}
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
		return fmt.Errorf("the %s was removed: put it back and try again\n  (%v)", selectedWord(sel), err)
	case errors.Is(err, device.ErrNotFound) && strings.HasPrefix(sel, "pcsc:"):
		return fmt.Errorf("no chip found at %s: check the reader and the card, or run `authbench devices`\n  (%v)", sel, err)
	case errors.Is(err, device.ErrNotFound) && strings.HasPrefix(sel, "serial:"):
		return fmt.Errorf("no code device found at %s: is it connected and the path right (or the simulator running)? run `authbench devices`\n  (%v)", sel, err)
	case errors.Is(err, device.ErrNotFound):
		return fmt.Errorf("no %s found at %s: is it plugged in? run `authbench devices`\n  (%v)", selectedWord(sel), sel, err)
	case errors.Is(err, device.ErrNotSupported):
		return fmt.Errorf("%s: this build or device does not support it\n  (%v)", sel, err)
	}
	return err
}

// selectedWord is what a selector names: a code device on a serial port
// (or a simulated one), a chip on PC/SC, USB or UDP.
func selectedWord(sel string) string {
	switch {
	case strings.HasPrefix(sel, "serial:"), strings.HasPrefix(sel, "sim:code"), strings.HasPrefix(sel, "sim:audio"):
		return "code device"
	case strings.HasPrefix(sel, "pcsc:"), strings.HasPrefix(sel, "usb"), strings.HasPrefix(sel, "udp"), strings.HasPrefix(sel, "sim:chip"):
		return "chip"
	}
	return "device"
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

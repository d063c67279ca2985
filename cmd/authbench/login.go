package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/sim/app"
)

func init() {
	register(&command{
		name:    "login",
		summary: "log in with one authenticator (chip, code device, code, password or simulated app) and print the session",
		usage:   "--server URL --identity ID --authenticator AID (--device SELECTOR | --code CODE | --password-stdin | --app-seed HEX --pin PIN) [--session-file FILE]",
		run:     runLogin,
	})
	register(&command{
		name:    "block",
		summary: "block an authenticator permanently (lost or compromised); its security element is deleted",
		usage:   "--server URL --identity ID --authenticator AID --reason lost|compromised [--token TOKEN | --token-file FILE]",
		run:     runBlock,
	})
	register(&command{
		name:    "reactivate",
		summary: "reactivate a suspended authenticator (support token, or a session from another authenticator)",
		usage:   "--server URL --identity ID --authenticator AID [--token TOKEN | --token-file FILE]",
		run:     runReactivate,
	})
}

// stdin is what --password-stdin reads; tests replace it.
var stdin io.Reader = os.Stdin

func runLogin(ctx context.Context, e *env, args []string) error {
	fs := newFlags(commands["login"], e)
	var sf serverFlags
	sf.register(fs, false)
	identity := fs.String("identity", "", "the identity (person)")
	aid := fs.String("authenticator", "", "the authenticator's ID (see `authbench status`)")
	sel := fs.String("device", "", "the `SELECTOR` of a chip or code device to log in with (see authbench help check)")
	code := fs.String("code", "", "a one-time `CODE` read from a code display or audio code reader")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	var appSeed hexFlag
	fs.Var(&appSeed, "app-seed", "`HEX` seed of a simulated MitID app (sim/app); use with --pin")
	pin := fs.String("pin", "", "the app's six-digit `PIN`")
	sessionFile := fs.String("session-file", "", "write the session token to `FILE` (mode 0600) for --token-file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *identity == "" || *aid == "" {
		return usageError{errors.New("--identity and --authenticator are required")}
	}
	ways := 0
	for _, set := range []bool{*sel != "", *code != "", *pwStdin, appSeed != nil} {
		if set {
			ways++
		}
	}
	if ways != 1 {
		return usageError{errors.New("give exactly one of --device, --code, --password-stdin and --app-seed")}
	}
	if (appSeed != nil) != (*pin != "") {
		return usageError{errors.New("--app-seed and --pin go together")}
	}
	prompt := &touchPrompt{w: e.stdout}
	c, err := sf.client(prompt.keepalive)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, sf.timeout)
	defer cancel()

	var s *client.Session
	switch {
	case *code != "":
		s, err = client.LoginCode(ctx, c, *identity, *aid, *code)
	case *pwStdin:
		line, rerr := bufio.NewReader(stdin).ReadString('\n')
		if rerr != nil && (rerr != io.EOF || line == "") {
			return fmt.Errorf("reading the password from standard input: %w", rerr)
		}
		s, err = client.LoginPassword(ctx, c, *identity, *aid, strings.TrimRight(line, "\r\n"))
	case appSeed != nil:
		a, aerr := app.New(app.Options{Seed: appSeed, PIN: *pin})
		if aerr != nil {
			// The PIN is checked by the server; a malformed one still goes
			// there, so that it counts as the attempt it is.
			a, aerr = app.New(app.Options{Seed: appSeed})
			if aerr != nil {
				return aerr
			}
		}
		s, err = client.LoginApp(ctx, c, *identity, *aid, a, *pin)
	default:
		t, oerr := openDevice(ctx, *sel)
		if oerr != nil {
			return oerr
		}
		defer t.close()
		switch d := t.target.(type) {
		case device.Chip:
			s, err = client.LoginChip(ctx, c, *identity, *aid, d)
			prompt.done()
		case device.CodeDevice:
			s, err = client.LoginCodeDevice(ctx, c, *identity, *aid, d)
		default:
			return usageError{fmt.Errorf("--device %s is neither a chip nor a code device", *sel)}
		}
	}
	if err != nil {
		return explainLogin(&sf, *identity, *sel, err)
	}
	fmt.Fprintf(e.stdout, "logged in to %s with %s %s; the session ends at %s\n", *identity, s.Authenticator.Kind, s.Authenticator.ID, s.ExpiresAt.Local().Format(time.DateTime))
	if *sessionFile != "" {
		if err := os.WriteFile(*sessionFile, []byte(s.Token+"\n"), 0o600); err != nil {
			return fmt.Errorf("session file: %w", err)
		}
		fmt.Fprintf(e.stdout, "session token written to %s (use --token-file %s)\n", *sessionFile, *sessionFile)
	} else {
		fmt.Fprintf(e.stdout, "session token: %s\n", s.Token)
	}
	return nil
}

// explainLogin turns a login error into what to do.
func explainLogin(sf *serverFlags, identity, sel string, err error) error {
	var ae *client.APIError
	var ce *client.CeremonyError
	errors.As(err, &ae)
	step := ""
	if errors.As(err, &ce) {
		step = ce.Step
	}
	left := ""
	if ae != nil {
		if n, ok := ae.Failures(); ok && ae.State() == client.StateActive {
			left = fmt.Sprintf(" (%d failed attempt(s) in a row)", n)
		}
	}
	switch {
	case errors.Is(err, client.ErrFailedAttempt) && ae != nil && ae.State() == client.StateSuspended:
		return fmt.Errorf("refused, and the authenticator is now temporarily blocked: %s\n  to reactivate it, log in with another authenticator and run `authbench reactivate --token-file SESSION`, or ask support", ae.Message)
	case errors.Is(err, client.ErrFailedAttempt) && ae != nil && ae.State() == client.StateBlocked:
		return fmt.Errorf("refused, and the authenticator is now permanently blocked: %s", ae.Message)
	case errors.Is(err, client.ErrSignCount):
		return fmt.Errorf("refused: the chip's signature counter did not increase, so it may be a clone; this was recorded%s\n  (%v)", left, err)
	case errors.Is(err, client.ErrFailedAttempt):
		return fmt.Errorf("refused%s\n  (%v)", left, err)
	case errors.Is(err, client.ErrCodeReplayed):
		return fmt.Errorf("that code was already used: wait for the next one\n  (%v)", err)
	case errors.Is(err, client.ErrSuspended):
		return fmt.Errorf("the authenticator is temporarily blocked: reactivate it with another authenticator (authbench reactivate) or ask support\n  (%v)", err)
	case errors.Is(err, client.ErrBlocked):
		return fmt.Errorf("the authenticator is permanently blocked and cannot be used again\n  (%v)", err)
	case errors.Is(err, client.ErrPending):
		return fmt.Errorf("the authenticator is not activated yet\n  (%v)", err)
	case errors.Is(err, ctap2.ErrNoCredentials):
		return fmt.Errorf("this chip does not hold the authenticator's credential: is it the right chip (or was it reset)?\n  (%v)", err)
	case step == "getAssertion" || step == "press":
		return explainEnroll(sf, identity, sel, err)
	case errors.Is(err, client.ErrNotFound):
		return fmt.Errorf("the server knows no such identity or authenticator: see `authbench status`\n  (%v)", err)
	}
	return explainServer(sf, identity, err)
}

// runAuthenticatorChange runs block or reactivate.
func runAuthenticatorChange(ctx context.Context, e *env, name string, args []string) error {
	fs := newFlags(commands[name], e)
	var sf serverFlags
	sf.register(fs, true)
	identity := fs.String("identity", "", "the identity (person)")
	aid := fs.String("authenticator", "", "the authenticator's ID (see `authbench status`)")
	var reason *string
	if name == "block" {
		reason = fs.String("reason", "", "why: lost or compromised")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *identity == "" || *aid == "" {
		return usageError{errors.New("--identity and --authenticator are required")}
	}
	if reason != nil && *reason != client.ReasonLost && *reason != client.ReasonCompromised {
		return usageError{errors.New("--reason must be lost or compromised")}
	}
	c, err := sf.client(nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, sf.timeout)
	defer cancel()
	var a *client.Authenticator
	if name == "block" {
		a, err = c.Block(ctx, *identity, *aid, *reason)
	} else {
		a, err = c.Reactivate(ctx, *identity, *aid)
	}
	if err != nil {
		switch {
		case errors.Is(err, client.ErrSelfServiceRefused):
			return fmt.Errorf("refused on self-service: log in with ANOTHER active authenticator of %s and use that session, or ask support\n  (%v)", *identity, err)
		case errors.Is(err, client.ErrBlocked):
			return fmt.Errorf("the authenticator is permanently blocked already\n  (%v)", err)
		case errors.Is(err, client.ErrConflict):
			return fmt.Errorf("not possible in the authenticator's current state: see `authbench status`\n  (%v)", err)
		case errors.Is(err, client.ErrNotFound):
			return fmt.Errorf("the server knows no such identity or authenticator: see `authbench status`\n  (%v)", err)
		}
		return explainServer(&sf, *identity, err)
	}
	if name == "block" {
		fmt.Fprintf(e.stdout, "blocked %s %s for good (%s); its security element is deleted\n", a.Kind, a.ID, *reason)
		switch a.Kind {
		case client.KindChip:
			fmt.Fprintln(e.stdout, "the same chip can be added again: it then gets a new security element")
		case client.KindCodeDisplay, client.KindAudioCodeReader:
			fmt.Fprintln(e.stdout, "its serial number can never be added again: order a new authenticator")
		case client.KindApp:
			fmt.Fprintln(e.stdout, "register a new MitID app to replace it")
		case client.KindPassword:
			fmt.Fprintln(e.stdout, "create a new password to replace it")
		}
	} else {
		fmt.Fprintf(e.stdout, "reactivated %s %s: state %s\n", a.Kind, a.ID, a.State)
	}
	printAuthenticator(e.stdout, a)
	return nil
}

func runBlock(ctx context.Context, e *env, args []string) error {
	return runAuthenticatorChange(ctx, e, "block", args)
}

func runReactivate(ctx context.Context, e *env, args []string) error {
	return runAuthenticatorChange(ctx, e, "reactivate", args)
}

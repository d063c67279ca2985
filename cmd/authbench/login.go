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
		summary: "log in as MitID does (the password and a chip or code device, or the app alone) and print the two-factor session",
		usage:   "--server URL --identity ID (--password-stdin (--device SELECTOR | --code CODE) [--authenticator AID] | --authenticator AID --app-seed HEX --pin PIN) [--session-file FILE]",
		run:     runLogin,
	})
	register(&command{
		name:    "logout",
		summary: "end a session (its token from --token-file, --token or $AUTHBENCH_TOKEN)",
		usage:   "--server URL [--token TOKEN | --token-file FILE]",
		run:     runLogout,
	})
	register(&command{
		name:    "block",
		summary: "block an authenticator permanently (lost or compromised); its security element is deleted",
		usage:   "--server URL --identity ID --authenticator AID --reason lost|compromised [--token TOKEN | --token-file FILE]",
		run:     runBlock,
	})
	register(&command{
		name:    "reactivate",
		summary: "reactivate a suspended authenticator (support token, or a two-factor session proven with other authenticators)",
		usage:   "--server URL --identity ID --authenticator AID [--token TOKEN | --token-file FILE]",
		run:     runReactivate,
	})
	register(&command{
		name:    "cancel",
		summary: "withdraw a pending authenticator (added, never activated); nothing is revoked",
		usage:   "--server URL --identity ID --authenticator AID [--token TOKEN | --token-file FILE]",
		run:     runCancel,
	})
}

// stdin is what --password-stdin reads; tests replace it.
var stdin io.Reader = os.Stdin

func runLogin(ctx context.Context, e *env, args []string) error {
	fs := newFlags(commands["login"], e)
	var sf serverFlags
	sf.register(fs, false)
	identity := fs.String("identity", "", "the identity (person)")
	aid := fs.String("authenticator", "", "the app's authenticator ID; with a password, the chip or code device to use when the identity has several (see `authbench status`)")
	sel := fs.String("device", "", "the `SELECTOR` of the chip or code device that is the second factor (see authbench help check)")
	code := fs.String("code", "", "a one-time `CODE` read from a code display or audio code reader, the second factor")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	var appSeed hexFlag
	fs.Var(&appSeed, "app-seed", "`HEX` seed of a simulated MitID app (sim/app); use with --authenticator and --pin")
	pin := fs.String("pin", "", "the app's six-digit `PIN`")
	sessionFile := fs.String("session-file", "", "write the session token to `FILE` (mode 0600) for --token-file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *identity == "" {
		return usageError{errors.New("--identity is required")}
	}
	useApp := appSeed != nil
	switch {
	case useApp && (*pwStdin || *sel != "" || *code != ""):
		return usageError{errors.New("the app logs in alone: give --app-seed, --pin and --authenticator, without --password-stdin, --device or --code")}
	case useApp && (*pin == "" || *aid == ""):
		return usageError{errors.New("--app-seed goes with --pin and --authenticator (the app's ID)")}
	case !useApp && *pin != "":
		return usageError{errors.New("--pin goes with --app-seed")}
	case !useApp && !*pwStdin:
		return usageError{errors.New("MitID logs in with the password and a second factor (--password-stdin with --device or --code), or with the app (--app-seed, --pin, --authenticator)")}
	case !useApp && (*sel == "") == (*code == ""):
		return usageError{errors.New("after the password, give one second factor: --device SELECTOR (a chip or code device) or --code CODE")}
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
	case useApp:
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
		line, rerr := bufio.NewReader(stdin).ReadString('\n')
		if rerr != nil && (rerr != io.EOF || line == "") {
			return fmt.Errorf("reading the password from standard input: %w", rerr)
		}
		password := strings.TrimRight(line, "\r\n")
		if *code != "" {
			s, err = client.LoginPasswordCode(ctx, c, *identity, password, *aid, *code)
			break
		}
		t, oerr := openDevice(ctx, *sel)
		if oerr != nil {
			return oerr
		}
		defer t.close()
		switch d := t.target.(type) {
		case device.Chip:
			s, err = client.LoginPasswordChip(ctx, c, *identity, password, *aid, d)
			prompt.done()
		case device.CodeDevice:
			s, err = client.LoginPasswordCodeDevice(ctx, c, *identity, password, d)
		default:
			return usageError{fmt.Errorf("--device %s is neither a chip nor a code device", *sel)}
		}
	}
	if err != nil {
		return explainLogin(&sf, *identity, *sel, err)
	}
	fmt.Fprintf(e.stdout, "logged in to %s with two factors (%s); the session %s ends at %s\n", *identity,
		strings.Join(s.Authenticators, " and "), s.ID, s.ExpiresAt.Local().Format(time.DateTime))
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

func runLogout(ctx context.Context, e *env, args []string) error {
	fs := newFlags(commands["logout"], e)
	var sf serverFlags
	sf.register(fs, true)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	c, err := sf.client(nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, sf.timeout)
	defer cancel()
	if err := c.Logout(ctx); err != nil {
		if errors.Is(err, client.ErrUnauthorized) {
			return fmt.Errorf("no such session: it ended already (logout, expiry, or an authenticator that proved it is no longer active)\n  (%v)", err)
		}
		return explainServer(&sf, "", err)
	}
	fmt.Fprintln(e.stdout, "logged out: the session has ended")
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
		return fmt.Errorf("refused, and the authenticator is now temporarily blocked: %s\n  to reactivate it, log in with two other factors (or the app) and run `authbench reactivate --token-file SESSION`, or ask support", ae.Message)
	case errors.Is(err, client.ErrFailedAttempt) && ae != nil && ae.State() == client.StateBlocked:
		return fmt.Errorf("refused, and the authenticator is now permanently blocked: %s", ae.Message)
	case errors.Is(err, client.ErrSignCount):
		return fmt.Errorf("refused: the chip's signature counter did not increase, so it may be a clone; this was recorded%s\n  (%v)", left, err)
	case errors.Is(err, client.ErrFailedAttempt):
		return fmt.Errorf("refused%s\n  (%v)", left, err)
	case errors.Is(err, client.ErrCodeReplayed):
		return fmt.Errorf("that code was already used: wait for the next one\n  (%v)", err)
	case errors.Is(err, client.ErrSuspended):
		return fmt.Errorf("the authenticator is temporarily blocked: reactivate it with a session of two other factors (authbench reactivate) or ask support\n  (%v)", err)
	case errors.Is(err, client.ErrSecondFactor):
		return fmt.Errorf("the password was right, but there is no second factor to log in with here: log in with the MitID app, or give the right --device/--code\n  (%v)", err)
	case errors.Is(err, client.ErrAttemptsInFlight), errors.Is(err, client.ErrRateLimited):
		return fmt.Errorf("too many attempts right now: nothing was checked; try again in a moment\n  (%v)", err)
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
	switch name {
	case "block":
		a, err = c.Block(ctx, *identity, *aid, *reason)
	case "cancel":
		err = c.Cancel(ctx, *identity, *aid)
	default:
		a, err = c.Reactivate(ctx, *identity, *aid)
	}
	if err != nil {
		switch {
		case errors.Is(err, client.ErrSelfServiceRefused):
			return fmt.Errorf("refused on self-service: log in with ANOTHER active authenticator of %s and use that session, or ask support\n  (%v)", *identity, err)
		case errors.Is(err, client.ErrBlocked):
			return fmt.Errorf("the authenticator is permanently blocked already\n  (%v)", err)
		case errors.Is(err, client.ErrConflict) && name == "cancel":
			return fmt.Errorf("only a pending authenticator can be cancelled; block an active one instead\n  (%v)", err)
		case errors.Is(err, client.ErrConflict):
			return fmt.Errorf("not possible in the authenticator's current state: see `authbench status`\n  (%v)", err)
		case errors.Is(err, client.ErrNotFound):
			return fmt.Errorf("the server knows no such identity or authenticator: see `authbench status`\n  (%v)", err)
		}
		return explainServer(&sf, *identity, err)
	}
	if name == "cancel" {
		fmt.Fprintf(e.stdout, "cancelled %s: the pending add is withdrawn and nothing is revoked\n", *aid)
		return nil
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

func runCancel(ctx context.Context, e *env, args []string) error {
	return runAuthenticatorChange(ctx, e, "cancel", args)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/sim/app"
)

// loginCmd is `authbench login`: MitID's combinations only, the password
// and a second factor (a chip or code device, or a code read from one), or
// the app alone (docs/login.md).
type loginCmd struct {
	serverFlags
	Identity      string `required:"" placeholder:"ID" help:"The identity (person)."`
	PasswordStdin bool   `help:"Read the password from the first line of standard input; the second factor is --device or --code."`
	Device        string `placeholder:"SELECTOR" help:"The chip or code device that is the second factor, after the password (see authbench help check)."`
	Code          string `placeholder:"CODE" help:"A one-time code read from a code display or audio code reader: the second factor, after the password."`
	Authenticator string `placeholder:"AID" help:"With the app, its ID; after the password, the chip or code device to use when the identity has several (see authbench status)."`
	AppSeedFile   string `name:"app-seed-file" placeholder:"FILE" type:"existingfile" help:"File holding, in hex, the seed of a simulated MitID app (sim/app) from which its device key is derived; the app logs in alone (its key and its PIN are two factors), the PIN from the first line of standard input or $AUTHBENCH_PIN. Without --password-stdin, $AUTHBENCH_APP_SEED may hold the hex instead."`
	SessionFile   string `placeholder:"FILE" type:"path" help:"Write the session token to FILE (mode 0600), for --token-file of later commands."`
	ShowToken     bool   `help:"Print the session token (it is a secret: by default it is only written to --session-file)."`
	JSON          bool   `help:"Print the session as JSON (the token only with --show-token)."`
}

// loginJSON is what `authbench login --json` prints.
type loginJSON struct {
	Identity       string                `json:"identity"`
	SessionID      string                `json:"session_id"`
	Level          string                `json:"level"`
	Authenticators []string              `json:"authenticators"`
	Authenticator  *client.Authenticator `json:"authenticator"`
	ExpiresAt      time.Time             `json:"expires_at"`
	SessionFile    string                `json:"session_file,omitempty"`
	Token          string                `json:"session,omitempty"`
}

// appSeedEnv holds the seed of the simulated app, in hex, when no
// --app-seed-file is given: the seed is the app's key, so it never goes on
// the command line.
const appSeedEnv = "AUTHBENCH_APP_SEED"

// useApp reports whether the app logs in: --app-seed-file is given, or
// $AUTHBENCH_APP_SEED is set and the password is not (a seed left in the
// environment does not turn a password login into an app login).
func (c *loginCmd) useApp() bool {
	return c.AppSeedFile != "" || (!c.PasswordStdin && os.Getenv(appSeedEnv) != "")
}

// check refuses the combinations MitID does not log in with.
func (c *loginCmd) check() error {
	useApp := c.useApp()
	switch {
	case useApp && (c.PasswordStdin || c.Device != "" || c.Code != ""):
		return usageError{errors.New("the app logs in alone: give --app-seed-file (or $AUTHBENCH_APP_SEED) and --authenticator, without --password-stdin, --device or --code")}
	case useApp && c.Authenticator == "":
		return usageError{errors.New("the app (--app-seed-file or $AUTHBENCH_APP_SEED) goes with --authenticator (the app's ID)")}
	case !useApp && !c.PasswordStdin:
		return usageError{errors.New("MitID logs in with the password and a second factor (--password-stdin with --device or --code), or with the app (--app-seed-file or $AUTHBENCH_APP_SEED, with --authenticator)")}
	case !useApp && (c.Device == "") == (c.Code == ""):
		return usageError{errors.New("after the password, give one second factor: --device SELECTOR (a chip or code device) or --code CODE")}
	}
	return nil
}

func (c *loginCmd) Run(ctx context.Context, e *env) error {
	if err := c.check(); err != nil {
		return err
	}
	out := e.stdout
	if c.JSON {
		out = e.stderr
	}
	prompt := &touchPrompt{w: out}
	cl, err := c.client("", prompt.keepalive)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()

	var s *client.Session
	switch {
	case c.useApp():
		seed, serr := readHexSecret(c.AppSeedFile, appSeedEnv)
		if serr != nil {
			return serr
		}
		pin := os.Getenv("AUTHBENCH_PIN")
		if pin == "" {
			if pin, err = readLine(e.in(), "the PIN"); err != nil || pin == "" {
				return usageError{errors.New("the app's PIN goes on the first line of standard input, or in $AUTHBENCH_PIN")}
			}
		}
		a, aerr := app.New(app.Options{Seed: seed, PIN: pin})
		if aerr != nil {
			// The PIN is checked by the server; a malformed one still goes
			// there, so that it counts as the attempt it is.
			a, aerr = app.New(app.Options{Seed: seed})
			if aerr != nil {
				return aerr
			}
		}
		s, err = client.LoginApp(ctx, cl, c.Identity, c.Authenticator, a, pin)
	default:
		pw, rerr := readLine(e.in(), "the password")
		if rerr != nil {
			return rerr
		}
		if c.Code != "" {
			s, err = client.LoginPasswordCode(ctx, cl, c.Identity, pw, c.Authenticator, c.Code)
			break
		}
		t, oerr := openDevice(ctx, c.Device, targetOptions{})
		if oerr != nil {
			return oerr
		}
		defer t.close()
		switch d := t.target.(type) {
		case device.Chip:
			s, err = client.LoginPasswordChip(ctx, cl, c.Identity, pw, c.Authenticator, d)
			prompt.done()
		case device.CodeDevice:
			s, err = client.LoginPasswordCodeDevice(ctx, cl, c.Identity, pw, d)
		default:
			return usageError{fmt.Errorf("--device %s is neither a chip nor a code device", c.Device)}
		}
	}
	if err != nil {
		return explainLogin(&c.serverFlags, c.Identity, c.Device, err)
	}
	if c.SessionFile != "" {
		if err := os.WriteFile(c.SessionFile, []byte(s.Token+"\n"), 0o600); err != nil {
			return fmt.Errorf("session file: %w", err)
		}
	}
	if c.JSON {
		j := loginJSON{Identity: c.Identity, SessionID: s.ID, Level: s.Level, Authenticators: s.Authenticators,
			Authenticator: &s.Authenticator, ExpiresAt: s.ExpiresAt, SessionFile: c.SessionFile}
		if c.ShowToken {
			j.Token = s.Token
		}
		return printJSON(e.stdout, j)
	}
	fmt.Fprintf(e.stdout, "logged in to %s with two factors (%s); the session %s ends at %s\n", c.Identity,
		strings.Join(s.Authenticators, " and "), s.ID, s.ExpiresAt.Local().Format(time.DateTime))
	switch {
	case c.ShowToken:
		fmt.Fprintf(e.stdout, "session token: %s\n", s.Token)
	case c.SessionFile != "":
		fmt.Fprintf(e.stdout, "session token written to %s (use --token-file %s)\n", c.SessionFile, c.SessionFile)
	default:
		fmt.Fprintln(e.stdout, "the session token is not shown: give --session-file FILE to keep it (or --show-token to print it)")
	}
	return nil
}

// logoutCmd is `authbench logout`.
type logoutCmd struct {
	serverFlags
	tokenFlags
}

func (c *logoutCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.authedClient(&c.tokenFlags, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	if err := cl.Logout(ctx); err != nil {
		if errors.Is(err, client.ErrUnauthorized) {
			return fmt.Errorf("no such session: it ended already (logout, expiry, or an authenticator that proved it is no longer active)\n  (%v)", err)
		}
		return explainServer(&c.serverFlags, "", err)
	}
	fmt.Fprintln(e.stdout, "logged out: the session has ended")
	return nil
}

// explainLogin turns a login error into what to do.
func explainLogin(sf *serverFlags, identity, sel string, err error) error {
	if werr := sf.wrongServer(err); werr != nil {
		return werr
	}
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

// blockCmd is `authbench block`.
type blockCmd struct {
	serverFlags
	tokenFlags
	Identity      string `required:"" placeholder:"ID" help:"The identity (person)."`
	Authenticator string `required:"" placeholder:"AID" help:"The authenticator's ID (see authbench status)."`
	Reason        string `required:"" enum:"lost,compromised" placeholder:"REASON" help:"Why: lost or compromised."`
	JSON          bool   `help:"Print the blocked authenticator as JSON."`
}

// reactivateCmd is `authbench reactivate`.
type reactivateCmd struct {
	serverFlags
	tokenFlags
	Identity      string `required:"" placeholder:"ID" help:"The identity (person)."`
	Authenticator string `required:"" placeholder:"AID" help:"The authenticator's ID (see authbench status)."`
	JSON          bool   `help:"Print the reactivated authenticator as JSON."`
}

// cancelCmd is `authbench cancel`.
type cancelCmd struct {
	serverFlags
	tokenFlags
	Identity      string `required:"" placeholder:"ID" help:"The identity (person)."`
	Authenticator string `required:"" placeholder:"AID" help:"The pending authenticator's ID (see authbench status)."`
	JSON          bool   `help:"Print the outcome as JSON."`
}

func (c *blockCmd) Run(ctx context.Context, e *env) error {
	return changeAuthenticator(ctx, e, &c.serverFlags, &c.tokenFlags, c.Identity, c.Authenticator, "block", c.Reason, c.JSON)
}

func (c *reactivateCmd) Run(ctx context.Context, e *env) error {
	return changeAuthenticator(ctx, e, &c.serverFlags, &c.tokenFlags, c.Identity, c.Authenticator, "reactivate", "", c.JSON)
}

func (c *cancelCmd) Run(ctx context.Context, e *env) error {
	return changeAuthenticator(ctx, e, &c.serverFlags, &c.tokenFlags, c.Identity, c.Authenticator, "cancel", "", c.JSON)
}

// changeAuthenticator blocks an authenticator for reason (op "block"),
// reactivates it ("reactivate") or cancels its pending add ("cancel").
func changeAuthenticator(ctx context.Context, e *env, sf *serverFlags, tf *tokenFlags, identity, aid, op, reason string, jsonOut bool) error {
	c, err := sf.authedClient(tf, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, sf.Timeout)
	defer cancel()
	var a *client.Authenticator
	switch op {
	case "block":
		a, err = c.Block(ctx, identity, aid, reason)
	case "cancel":
		err = c.Cancel(ctx, identity, aid)
	default:
		a, err = c.Reactivate(ctx, identity, aid)
	}
	if err != nil {
		if werr := sf.wrongServer(err); werr != nil {
			return werr
		}
		switch {
		case errors.Is(err, client.ErrSelfServiceRefused):
			return fmt.Errorf("refused on self-service: log in with ANOTHER active authenticator of %s and use that session, or ask support\n  (%v)", identity, err)
		case errors.Is(err, client.ErrBlocked):
			return fmt.Errorf("the authenticator is permanently blocked already\n  (%v)", err)
		case errors.Is(err, client.ErrConflict) && op == "cancel":
			return fmt.Errorf("only a pending authenticator can be cancelled; block an active one instead\n  (%v)", err)
		case errors.Is(err, client.ErrConflict):
			return fmt.Errorf("not possible in the authenticator's current state: see `authbench status`\n  (%v)", err)
		case errors.Is(err, client.ErrNotFound):
			return fmt.Errorf("the server knows no such identity or authenticator: see `authbench status`\n  (%v)", err)
		}
		return explainServer(sf, identity, err)
	}
	if op == "cancel" {
		if jsonOut {
			return printJSON(e.stdout, struct {
				ID        string `json:"id"`
				Cancelled bool   `json:"cancelled"`
			}{aid, true})
		}
		fmt.Fprintf(e.stdout, "cancelled %s: the pending add is withdrawn and nothing is revoked\n", aid)
		return nil
	}
	if jsonOut {
		return printJSON(e.stdout, a)
	}
	if op == "block" {
		fmt.Fprintf(e.stdout, "blocked %s %s for good (%s); its security element is deleted\n", a.Kind, a.ID, reason)
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

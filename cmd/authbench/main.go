// Command authbench is the one binary of the authbench toolkit: it runs the
// demo, simulated devices, conformance checks against real or simulated
// devices, the server, and the developer's enrolment of a physical chip.
//
// The command line is declared with github.com/alecthomas/kong: the cli
// struct below has one field per command, and each command is a struct in
// its own file whose fields are its flags and whose Run method does the
// work. Help, shell completion (completion.go) and man pages (man.go) are
// all generated from those declarations.
//
// Run "authbench help" for the list of commands and "authbench help COMMAND"
// (or "authbench COMMAND --help") for the flags of one.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/secrets"
)

// cli is the whole command line: one field per command. To add a command,
// add a field here and a file with its struct and Run method.
type cli struct {
	ShowVersion versionFlag `name:"version" help:"Print the version of authbench and exit."`

	Demo        demoCmd        `cmd:"" help:"Tell the MitID authenticator story end to end: an embedded server, simulated devices, every step over HTTP."`
	Sim         simCmd         `cmd:"" help:"Run simulated chips, code displays and audio code readers until interrupted, or while a command runs."`
	Devices     devicesCmd     `cmd:"" help:"List chips on PC/SC and USB, and CDP/1 code devices on serial ports; --watch shows them come and go."`
	Check       checkCmd       `cmd:"" help:"Run the conformance checks against one device and write reports."`
	Voice       voiceCmd       `cmd:"" help:"Learn an audio code reader's voice from the reader, and decode recordings with it."`
	Info        infoCmd        `cmd:"" help:"Show what a device says about itself: getInfo (AAGUID, firmware, options) or IDENTIFY and STATUS, ATR, serial, profile."`
	Credentials credentialsCmd `cmd:"" help:"List the discoverable credentials of a chip for a relying party (delete needs credential management, which MitID chips lack)."`
	Reset       resetCmd       `cmd:"" help:"Erase every credential on a chip (CTAP reset: within 10 s of power-up, with a touch); asks unless --yes."`
	APDU        apduCmd        `cmd:"" name:"apdu" help:"Send raw APDUs to a card on a PC/SC reader and show the answers, status words in words."`
	Serve       serveCmd       `cmd:"" help:"Run the authbench server: the HTTP JSON API and the pages (self-service at /, support at /support) over an SQLite or PostgreSQL store."`
	Identity    identityCmd    `cmd:"" help:"Manage identities (persons) on a running server."`
	Enroll      enrollCmd      `cmd:"" help:"Enrol a chip (physical or simulated) as a MitID chip of an identity on a running server."`
	Login       loginCmd       `cmd:"" help:"Log in as MitID does (the password and a chip or code device, or the app alone) and keep the two-factor session."`
	App         appCmd         `cmd:"" help:"The simulated MitID app as a phone: answer the transfer code of a login on the pages."`
	Logout      logoutCmd      `cmd:"" help:"End a session (its token from --token-file or $AUTHBENCH_TOKEN)."`
	Sessions    sessionsCmd    `cmd:"" help:"List or end the sessions of an identity."`
	PSKC        pskcCmd        `cmd:"" name:"pskc" help:"Code device secrets in PSKC documents (RFC 6030): export them from devices in factory mode, import them into a server."`
	Block       blockCmd       `cmd:"" help:"Block an authenticator permanently (lost or compromised); its security element is deleted."`
	Reactivate  reactivateCmd  `cmd:"" help:"Reactivate a suspended authenticator (support token, or a two-factor session proven with other authenticators)."`
	Cancel      cancelCmd      `cmd:"" help:"Withdraw a pending authenticator (added, never activated); nothing is revoked."`
	Status      statusCmd      `cmd:"" help:"Show an identity's authenticators: kind, state, failures, suspensions, security element."`
	Audit       auditCmd       `cmd:"" help:"Check the tamper-evident audit log of a server's database."`
	Load        loadCmd        `cmd:"" help:"Measure the server at full scale against its performance targets, as ratios to anchors measured in the same run; exit 1 when a target is missed."`
	Version     versionCmd     `cmd:"" help:"Print the version of authbench and of Go it was built with."`
	Completion  completionCmd  `cmd:"" help:"Print a shell completion script (bash, zsh or fish)."`
	Man         manCmd         `cmd:"" help:"Print the manual page, or write one page per command into a directory."`
	Help        helpCmd        `cmd:"" help:"Show the help of authbench or of one command."`
}

const description = "authbench — drivers, simulators and a server for MitID-style authenticators"

// Exit statuses, the same for every command (README "Exit codes").
const (
	exitOK          = 0   // all good
	exitFailed      = 1   // checks failed, targets missed, the server refused
	exitUsage       = 2   // a wrong command line
	exitUnreachable = 3   // the device or server could not be reached: an error, not a failure
	exitInterrupted = 130 // SIGINT or SIGTERM (after cleanup)
)

// env is what a command may touch besides its flags.
type env struct {
	stdout io.Writer
	stderr io.Writer
	stdin  io.Reader // nil means os.Stdin
	// wrapAPI wraps the API handler of a server the command starts
	// in-process (serve, demo, load): nil, except in tests, which check
	// every exchange with it against the OpenAPI document.
	wrapAPI func(http.Handler) http.Handler
}

func (e *env) in() io.Reader {
	if e.stdin == nil {
		return os.Stdin
	}
	return e.stdin
}

// usageError marks an error caused by a wrong command line: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// unreachableError marks an error reaching a device or a server: exit
// status 3. Its message already says what to check.
type unreachableError struct{ err error }

func (e unreachableError) Error() string { return e.err.Error() }
func (e unreachableError) Unwrap() error { return e.err }

// exitError carries an exit status without a message of its own (the
// command has already said what went wrong).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// errInterrupted is the cause of the context of a command that was
// interrupted by SIGINT or SIGTERM.
var errInterrupted = errors.New("interrupted")

// untilInterrupted is implemented by the commands whose normal end is an
// interruption (serve, sim): they exit 0 after a clean shutdown.
type untilInterrupted interface{ runsUntilInterrupted() }

// interruptedAsEnd is implemented by commands whose normal end is an
// interruption with some flags only (devices --watch).
type interruptedAsEnd interface{ endsOnInterrupt() bool }

// endsOnInterrupt reports whether the command's normal end is an
// interruption.
func endsOnInterrupt(cmd any) bool {
	if _, ok := cmd.(untilInterrupted); ok {
		return true
	}
	w, ok := cmd.(interruptedAsEnd)
	return ok && w.endsOnInterrupt()
}

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sigs; ok {
			// A second Ctrl-C kills at once.
			signal.Stop(sigs)
			cancel(errInterrupted)
		}
	}()
	code := run(ctx, &env{stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	cancel(nil)
	os.Exit(code)
}

// helpOptions shape every help text.
var helpOptions = kong.HelpOptions{NoExpandSubcommands: true, WrapUpperBound: 100, ValueFormatter: helpValue}

// kongExit is what the parser's exit function panics with (after --help or
// --version), for run to recover.
type kongExit int

// newParser returns the parser of the command line, writing to e.
func newParser(c *cli, e *env) (*kong.Kong, error) {
	return kong.New(c,
		kong.Name("authbench"),
		kong.Description(description),
		kong.Writers(e.stdout, e.stderr),
		kong.Exit(func(code int) { panic(kongExit(code)) }),
		kong.Help(helpPrinter),
		kong.ValueFormatter(helpValue),
		kong.ConfigureHelp(helpOptions),
		kong.PostBuild(namePlaceholders),
		kong.Configuration(strictJSON),
		kong.Vars{"version": versionString(), "default_server": defaultServer,
			"argon2_budget": strconv.FormatUint(secrets.DefaultBudget()>>10, 10), "argon2_wait": secrets.DefaultWait.String(),
			"gc_headroom_help": gcHeadroomHelp,
			"argon2_params":    secrets.DefaultParams().String(),
			"checkpoint_every": embedded.DefaultCheckpointEvery.String()},
		kong.Bind(e),
	)
}

// namePlaceholders gives every flag with a default and no placeholder of
// its own a placeholder made of its name ("--otp-alg=ALG"). Without it kong
// shows the default as the placeholder ("--otp-alg=\"sha1\"") while
// helpValue says it again ("default: sha1"): each is said once, in words.
func namePlaceholders(k *kong.Kong) error {
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			if f.PlaceHolder == "" && f.HasDefault && !f.IsBool() && !f.IsCounter() {
				name := f.Name
				if i := strings.LastIndexByte(name, '-'); i >= 0 {
					name = name[i+1:]
				}
				f.PlaceHolder = strings.ToUpper(name)
			}
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(k.Model.Node)
	return nil
}

// run executes one command line and returns the process exit status.
func run(ctx context.Context, e *env, args []string) (code int) {
	var c cli
	p, err := newParser(&c, e)
	if err != nil {
		// The declarations are wrong: a bug, caught by every test.
		fmt.Fprintf(e.stderr, "authbench: %v\n", err)
		return exitFailed
	}
	defer func() {
		if r := recover(); r != nil {
			k, ok := r.(kongExit)
			if !ok {
				panic(r)
			}
			code = int(k)
			if code == 80 || code == 1 { // kong's own usage and parse errors
				code = exitUsage
			}
		}
	}()
	if len(args) == 0 {
		kctx, _ := kong.Trace(p, nil)
		kctx.Stdout = e.stderr
		_ = helpPrinter(helpOptions, kctx)
		return exitUsage
	}
	kctx, err := p.Parse(args)
	if err != nil {
		fmt.Fprintf(e.stderr, "authbench: %v%s\n", err, dashHint(args))
		var pe *kong.ParseError
		if errors.As(err, &pe) && pe.Context != nil && pe.Context.Selected() != nil {
			fmt.Fprintf(e.stderr, "run \"authbench help %s\" for its flags\n", pe.Context.Selected().Path())
		} else {
			fmt.Fprintln(e.stderr, `run "authbench help" for the list of commands`)
		}
		return exitUsage
	}
	kctx.BindTo(ctx, (*context.Context)(nil))
	err = kctx.Run()
	name := kctx.Command()
	if sel := kctx.Selected(); sel != nil {
		name = sel.Path()
	}
	code = exitCode(err)
	if code != exitOK && code != exitInterrupted {
		var xe exitError
		if !errors.As(err, &xe) {
			fmt.Fprintf(e.stderr, "authbench %s: %v\n", name, err)
		}
		if code == exitUsage && !errors.As(err, &xe) {
			fmt.Fprintf(e.stderr, "run \"authbench help %s\" for its flags\n", name)
		}
	}
	if errors.Is(context.Cause(ctx), errInterrupted) {
		if endsOnInterrupt(kctx.Selected().Target.Addr().Interface()) && (err == nil || code == exitInterrupted) {
			return exitOK
		}
		fmt.Fprintf(e.stderr, "authbench %s: interrupted\n", name)
		return exitInterrupted
	}
	return code
}

// exitCode maps what a command returned to the process exit status.
func exitCode(err error) int {
	var (
		xe exitError
		ue usageError
		ne unreachableError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &xe):
		return xe.code
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ne):
		return exitUnreachable
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	}
	return exitFailed
}

// dashHint explains an unknown flag written with one dash, as the
// command line of authbench before kong accepted it ("-device").
func dashHint(args []string) string {
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(a, "=")
		if len(name) > 2 && name[0] == '-' && name[1] != '-' {
			return fmt.Sprintf(" (long flags take two dashes: -%s)", name)
		}
	}
	return ""
}

// printJSON writes v as indented JSON: the --json output of every command.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

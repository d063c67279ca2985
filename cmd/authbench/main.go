// Command authbench is the one binary of the authbench toolkit: it runs the
// demo, simulated devices, conformance checks against real or simulated
// devices, the server, and the developer's enrolment of a physical chip.
//
// Run "authbench help" for the list of commands and "authbench help COMMAND"
// (or "authbench COMMAND -h") for the flags of one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand of authbench.
type command struct {
	name    string
	summary string
	usage   string // the line after "authbench NAME"
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what a command may touch: its arguments come separately.
type env struct {
	stdout io.Writer
	stderr io.Writer
}

// usageError marks an error caused by a wrong command line; main prints the
// command's usage after it and exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitError carries an exit status without a message of its own (the command
// has already said what went wrong).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &env{stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit status.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		printHelp(e.stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				// Each command prints its own flags on -h.
				_ = c.run(ctx, &env{stdout: e.stdout, stderr: e.stdout}, []string{"-h"})
				return 0
			}
			fmt.Fprintf(e.stderr, "authbench: unknown command %q\n", args[1])
			return 2
		}
		printHelp(e.stdout)
		return 0
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(e.stderr, "authbench: unknown command %q; run \"authbench help\" for the list\n", name)
		return 2
	}
	err := c.run(ctx, e, args[1:])
	var ue usageError
	var xe exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &xe):
		return xe.code
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "authbench %s: %v\n", name, err)
		fmt.Fprintf(e.stderr, "usage: authbench %s %s\n", c.name, c.usage)
		return 2
	default:
		fmt.Fprintf(e.stderr, "authbench %s: %v\n", name, err)
		return 1
	}
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "authbench — drivers, simulators and a server for MitID-style authenticators")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "usage: authbench COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "authbench help COMMAND" for the flags of one command.`)
}

// newFlags returns a flag set for c that prints c's usage on -h.
func newFlags(c *command, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("authbench "+c.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: authbench %s %s\n\n%s\n\nflags:\n", c.name, c.usage, c.summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args into fs, turning a bad command line into a usageError.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitError{2}
	}
	return nil
}

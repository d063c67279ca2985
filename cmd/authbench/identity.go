package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/authbench/authbench/server/client"
)

func init() {
	register(&command{
		name:    "identity",
		summary: "create an identity (a person) on a running server, optionally with a password (support token needed)",
		usage:   "create --identity ID [--password-stdin] [--server URL] [--token-file FILE]",
		run:     runIdentity,
	})
}

func runIdentity(ctx context.Context, e *env, args []string) error {
	c := commands["identity"]
	if len(args) == 0 || args[0] != "create" {
		if len(args) > 0 && strings.TrimLeft(args[0], "-") == "h" || len(args) > 0 && strings.TrimLeft(args[0], "-") == "help" {
			fmt.Fprintf(e.stderr, "usage: authbench identity %s\n\n%s\n", c.usage, c.summary)
			return nil
		}
		return usageError{errors.New(`the only subcommand is "create"`)}
	}
	fs := newFlags(c, e)
	var sf serverFlags
	sf.register(fs, true)
	identity := fs.String("identity", "", "the new identity's `ID` (default: the server picks one)")
	pwStdin := fs.Bool("password-stdin", false, "read an initial password from the first line of standard input")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	req := client.CreateIdentityRequest{ID: *identity}
	if *pwStdin {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("reading the password from standard input: %w", err)
		}
		req.Password = strings.TrimRight(line, "\r\n")
	}
	cl, err := sf.client(nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, sf.timeout)
	defer cancel()
	id, err := cl.CreateIdentity(ctx, req)
	if err != nil {
		return explainServer(&sf, *identity, err)
	}
	printIdentity(e.stdout, id)
	return nil
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/authbench/authbench/server/client"
)

// identityCmd is `authbench identity`: one subcommand per action.
type identityCmd struct {
	Create  identityCreateCmd  `cmd:"" help:"Create an identity (a person), optionally with a password (support token needed)."`
	Show    identityShowCmd    `cmd:"" help:"Show an identity: its state and its authenticators (support token, or a session of the identity)."`
	Block   identityBlockCmd   `cmd:"" help:"Block an identity on suspected misuse: its sessions end, nothing but support works until unblocked (support token)."`
	Unblock identityUnblockCmd `cmd:"" help:"Lift the block of an identity (support token)."`
}

// identityCreateCmd is `authbench identity create`.
type identityCreateCmd struct {
	serverFlags
	tokenFlags
	// A pointer: an empty --identity "" is an error, not "let the server
	// pick".
	Identity      *string `placeholder:"ID" help:"The new identity's ID (default: the server picks one)."`
	PasswordStdin bool    `help:"Read an initial password from the first line of standard input."`
	JSON          bool    `help:"Print the new identity as JSON."`
}

func (c *identityCreateCmd) Run(ctx context.Context, e *env) error {
	var req client.CreateIdentityRequest
	if c.Identity != nil {
		if *c.Identity == "" {
			return usageError{errors.New("--identity: an empty ID; leave the flag out to let the server pick one")}
		}
		req.ID = *c.Identity
	}
	if c.PasswordStdin {
		pw, err := readLine(e.in(), "the password")
		if err != nil {
			return err
		}
		req.Password = pw
	}
	cl, err := c.authedClient(&c.tokenFlags, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	id, err := cl.CreateIdentity(ctx, req)
	if err != nil {
		if errors.Is(err, client.ErrIdentityTaken) {
			return fmt.Errorf("the identity %q exists already: choose another ID, or leave --identity out to let the server pick one\n  (%v)", req.ID, err)
		}
		return explainServer(&c.serverFlags, req.ID, err)
	}
	if c.JSON {
		return printJSON(e.stdout, id)
	}
	printIdentity(e.stdout, id)
	return nil
}

// readLine reads the first line of r (a secret typed or piped in), without
// its line end.
func readLine(r io.Reader, what string) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", fmt.Errorf("reading %s from standard input: %w", what, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

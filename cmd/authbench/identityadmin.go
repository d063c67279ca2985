package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/authbench/authbench/server/client"
)

// identityBlockCmd is `authbench identity block`: support blocks a person
// on suspected misuse.
type identityBlockCmd struct {
	serverFlags
	tokenFlags
	Identity string `required:"" placeholder:"ID" help:"The identity (person)."`
	Reason   string `required:"" placeholder:"TEXT" help:"Why, for the audit trail (at most 256 bytes)."`
	JSON     bool   `help:"Print the identity as JSON."`
}

// identityUnblockCmd is `authbench identity unblock`.
type identityUnblockCmd struct {
	serverFlags
	tokenFlags
	Identity string `required:"" placeholder:"ID" help:"The identity (person)."`
	Note     string `placeholder:"TEXT" help:"A note for the audit trail."`
	JSON     bool   `help:"Print the identity as JSON."`
}

// identityShowCmd is `authbench identity show` (authbench status is its
// short form).
type identityShowCmd statusCmd

func (c *identityBlockCmd) Run(ctx context.Context, e *env) error {
	if strings.TrimSpace(c.Reason) == "" {
		return usageError{errors.New("--reason: say why the identity is blocked")}
	}
	return changeIdentity(ctx, e, &c.serverFlags, &c.tokenFlags, c.Identity, c.JSON,
		"blocked: every session of it ended, and nothing but support works until `authbench identity unblock`",
		func(ctx context.Context, cl *client.Client) (*client.Identity, error) {
			return cl.BlockIdentity(ctx, c.Identity, c.Reason)
		})
}

func (c *identityUnblockCmd) Run(ctx context.Context, e *env) error {
	return changeIdentity(ctx, e, &c.serverFlags, &c.tokenFlags, c.Identity, c.JSON, "active again: its owner can log in",
		func(ctx context.Context, cl *client.Client) (*client.Identity, error) {
			return cl.UnblockIdentity(ctx, c.Identity, c.Note)
		})
}

func (c *identityShowCmd) Run(ctx context.Context, e *env) error { return (*statusCmd)(c).Run(ctx, e) }

// changeIdentity runs change, a support change of identity id, with the
// server and token of sf and tf, and prints outcome and the identity.
func changeIdentity(ctx context.Context, e *env, sf *serverFlags, tf *tokenFlags, id string, asJSON bool, outcome string,
	change func(context.Context, *client.Client) (*client.Identity, error)) error {
	cl, err := sf.authedClient(tf, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, sf.Timeout)
	defer cancel()
	v, err := change(ctx, cl)
	if werr := sf.wrongServer(err); werr != nil {
		return werr
	}
	switch {
	case errors.Is(err, client.ErrIdentityBlocked):
		return fmt.Errorf("identity %s is blocked already (authbench identity show says why)\n  (%v)", id, err)
	case errors.Is(err, client.ErrConflict):
		return fmt.Errorf("identity %s is not blocked\n  (%v)", id, err)
	case errors.Is(err, client.ErrNotFound):
		return fmt.Errorf("the server has no identity %q\n  (%v)", id, err)
	case errors.Is(err, client.ErrForbidden):
		return fmt.Errorf("blocking and unblocking an identity needs a support token (the support token file of authbench serve), not a session\n  (%v)", err)
	case err != nil:
		return explainServer(sf, id, err)
	}
	if asJSON {
		return printJSON(e.stdout, v)
	}
	fmt.Fprintf(e.stdout, "identity %s %s\n", v.ID, outcome)
	printIdentity(e.stdout, v)
	return nil
}

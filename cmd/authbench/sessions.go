package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authbench/authbench/server/client"
)

// sessionsCmd is `authbench sessions`: a person's sessions, listed and
// ended (docs/login.md).
type sessionsCmd struct {
	List sessionsListCmd `cmd:"" help:"List the sessions of an identity that are still valid (support token, or a session of the identity)."`
	End  sessionsEndCmd  `cmd:"" help:"End one session of an identity (support token, or a session of the identity)."`
}

// sessionsListCmd is `authbench sessions list`.
type sessionsListCmd struct {
	serverFlags
	tokenFlags
	Identity string `required:"" placeholder:"ID" help:"The identity (person)."`
	JSON     bool   `help:"Print the sessions as JSON."`
}

// sessionsEndCmd is `authbench sessions end`.
type sessionsEndCmd struct {
	serverFlags
	tokenFlags
	Identity string `required:"" placeholder:"ID" help:"The identity (person)."`
	Session  string `required:"" placeholder:"SID" help:"The session's ID (see authbench sessions list)."`
	JSON     bool   `help:"Print the outcome as JSON."`
}

func (c *sessionsListCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.authedClient(&c.tokenFlags, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	list, err := cl.Sessions(ctx, c.Identity)
	if err != nil {
		return explainSessions(&c.serverFlags, c.Identity, err)
	}
	if c.JSON {
		if list == nil {
			list = []client.SessionInfo{}
		}
		return printJSON(e.stdout, list)
	}
	if len(list) == 0 {
		fmt.Fprintf(e.stdout, "%s has no session\n", c.Identity)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tLEVEL\tPROVEN WITH\tSTARTED\tENDS")
	for _, s := range list {
		id := s.ID
		if s.Current {
			id += " (this one)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, s.Level, strings.Join(s.Authenticators, " + "),
			s.CreatedAt.Local().Format(time.DateTime), s.ExpiresAt.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

func (c *sessionsEndCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.authedClient(&c.tokenFlags, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	if err := cl.EndSession(ctx, c.Identity, c.Session); err != nil {
		return explainSessions(&c.serverFlags, c.Identity, err)
	}
	if c.JSON {
		return printJSON(e.stdout, struct {
			ID    string `json:"id"`
			Ended bool   `json:"ended"`
		}{c.Session, true})
	}
	fmt.Fprintf(e.stdout, "ended session %s of %s\n", c.Session, c.Identity)
	return nil
}

// explainSessions turns an error of the sessions commands into what to do.
func explainSessions(sf *serverFlags, identity string, err error) error {
	if werr := sf.wrongServer(err); werr != nil {
		return werr
	}
	switch {
	case errors.Is(err, client.ErrNotFound):
		return fmt.Errorf("no such session of %s: it ended already, or the ID is wrong (see `authbench sessions list`)\n  (%v)", identity, err)
	case errors.Is(err, client.ErrUnauthorized):
		return fmt.Errorf("the token is not a valid session any more (logout, expiry, or an authenticator that proved it stopped being active): log in again\n  (%v)", err)
	}
	return explainServer(sf, identity, err)
}

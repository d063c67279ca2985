package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/authbench/authbench/server/client"
)

// statusCmd is `authbench status`.
type statusCmd struct {
	serverFlags
	tokenFlags
	Identity string `required:"" placeholder:"ID" help:"The identity (person)."`
	JSON     bool   `help:"Print the identity as JSON."`
}

func (c *statusCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.authedClient(&c.tokenFlags, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	id, err := cl.Identity(ctx, c.Identity)
	if err != nil {
		return explainServer(&c.serverFlags, c.Identity, err)
	}
	if c.JSON {
		return printJSON(e.stdout, id)
	}
	printIdentity(e.stdout, id)
	return nil
}

// printIdentity prints an identity and a table of its authenticators.
func printIdentity(w io.Writer, id *client.Identity) {
	state := id.State
	if id.BlockedReason != "" {
		state += " (" + id.BlockedReason + ")"
	}
	fmt.Fprintf(w, "identity %s: %s, %d authenticator(s)\n", id.ID, state, len(id.Authenticators))
	if len(id.Authenticators) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSTATE\tFAILURES\tSUSPENSIONS\tLABEL\tSECURITY ELEMENT")
	for _, a := range id.Authenticators {
		st := a.State
		switch {
		case a.State == client.StateSuspended && a.SuspendReason != "":
			st += " (" + a.SuspendReason + ")"
		case a.State == client.StateBlocked && a.BlockReason != "":
			st += " (" + a.BlockReason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", a.ID, a.Kind, st, a.Failures, a.Suspensions, a.Label, elementSummary(&a))
	}
	tw.Flush()
}

// elementSummary says in one line what the server holds for a.
func elementSummary(a *client.Authenticator) string {
	el := a.Element
	var parts []string
	add := func(s string) {
		if s != "" {
			parts = append(parts, s)
		}
	}
	switch {
	case el.Wiped:
		add("deleted")
		if a.Serial != "" && a.Kind != client.KindChip {
			add("serial " + a.Serial + " revoked")
		}
		if a.CredentialID != "" {
			add("credential " + short(a.CredentialID) + " revoked")
		}
	case a.Kind == client.KindChip:
		if a.CredentialID != "" {
			add("credential " + short(a.CredentialID))
		}
		add(el.AAGUID)
		if el.AttestationFormat != "" {
			t := el.AttestationFormat
			if el.AttestationTrusted != nil && *el.AttestationTrusted {
				t += " trusted"
			} else {
				t += " untrusted"
			}
			add(t)
		}
		if a.State != client.StatePending {
			add("sign count " + strconv.FormatUint(uint64(el.SignCount), 10))
		}
		if el.ChipSerial != "" {
			add("chip " + el.ChipSerial)
		}
	case a.Kind == client.KindCodeDisplay || a.Kind == client.KindAudioCodeReader:
		add("serial " + a.Serial)
		if el.Digits > 0 {
			add(fmt.Sprintf("%d digits/%ds %s", el.Digits, el.PeriodSeconds, el.Algorithm))
			add(fmt.Sprintf("drift %+d", el.DriftSteps))
			if el.LastStep > 0 {
				add("last step " + strconv.FormatUint(el.LastStep, 10))
			}
		}
	case a.Kind == client.KindApp:
		add(el.PublicKeyAlg)
	case a.Kind == client.KindPassword:
		add("argon2id verifier")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// short shortens a long identifier for a table.
func short(s string) string {
	if len(s) <= 12 {
		return s
	}
	return s[:12] + "…"
}

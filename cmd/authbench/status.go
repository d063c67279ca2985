package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/authbench/authbench/server/client"
)

func init() {
	register(&command{
		name:    "status",
		summary: "show an identity's authenticators: kind, state, failures, suspensions, security element",
		usage:   "--server URL --identity ID [--token TOKEN | --token-file FILE] [--json]",
		run:     runStatus,
	})
}

func runStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlags(commands["status"], e)
	var sf serverFlags
	sf.register(fs, true)
	identity := fs.String("identity", "", "the identity (person)")
	jsonOut := fs.Bool("json", false, "print the identity as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *identity == "" {
		return usageError{errors.New("--identity is required")}
	}
	c, err := sf.client(nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, sf.timeout)
	defer cancel()
	id, err := c.Identity(ctx, *identity)
	if err != nil {
		return explainServer(&sf, *identity, err)
	}
	if *jsonOut {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(id)
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

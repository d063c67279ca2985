package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authbench/authbench/server/audit"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/domain"
)

// auditListCmd is `authbench audit list`: an identity's audit trail
// through the API, each event's hash recomputed from the event.
type auditListCmd struct {
	serverFlags
	tokenFlags
	Identity string `required:"" placeholder:"ID" help:"The identity (person)."`
	After    uint64 `placeholder:"SEQ" help:"Only the events after this sequence number."`
	Limit    int    `placeholder:"N" help:"At most N events, one page (1 to 1000; default: every event, page after page)."`
	JSON     bool   `help:"Print the events as JSON."`
}

// auditList is what --json prints.
type auditList struct {
	Identity string         `json:"identity"`
	Events   []client.Event `json:"events"`
	// Next is the after of the next page, when --limit cut the list.
	Next *uint64 `json:"next,omitempty"`
	// Mismatched lists the seq of events whose hash does not recompute
	// from their fields.
	Mismatched []uint64 `json:"mismatched"`
	// Unlinked lists the seq of events whose prev_hash is not the hash of
	// the event listed before them in the identity's chain.
	Unlinked []uint64 `json:"unlinked"`
}

func (c *auditListCmd) Run(ctx context.Context, e *env) error {
	if c.Limit < 0 || c.Limit > 1000 {
		return usageError{fmt.Errorf("--limit %d: give 1 to 1000", c.Limit)}
	}
	cl, err := c.authedClient(&c.tokenFlags, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	out := auditList{Identity: c.Identity, Mismatched: []uint64{}, Unlinked: []uint64{}}
	after := c.After
	for {
		p, err := cl.Audit(ctx, c.Identity, after, c.Limit)
		if werr := c.wrongServer(err); werr != nil {
			return werr
		}
		if errors.Is(err, client.ErrNotFound) {
			return fmt.Errorf("the server has no identity %q\n  (%v)", c.Identity, err)
		}
		if err != nil {
			return explainServer(&c.serverFlags, c.Identity, err)
		}
		out.Events = append(out.Events, p.Events...)
		if p.Next == nil || len(p.Events) == 0 {
			break
		}
		if c.Limit > 0 {
			out.Next = p.Next
			break
		}
		if *p.Next <= after {
			return fmt.Errorf("the server's next page (after %d) does not move past %d: is --server an authbench server?", *p.Next, after)
		}
		after = *p.Next
	}
	if out.Events == nil {
		out.Events = []client.Event{}
	}
	for i, ev := range out.Events {
		if !hashMatches(ev) {
			out.Mismatched = append(out.Mismatched, ev.Seq)
		}
		// Events of the identity's own chain (version 2) follow each
		// other: each carries the hash of the one before.
		if i > 0 {
			p := out.Events[i-1]
			if ev.Version >= 2 && p.Version >= 2 && ev.Seq == p.Seq+1 && !strings.EqualFold(ev.PrevHash, p.Hash) {
				out.Unlinked = append(out.Unlinked, ev.Seq)
			}
		}
	}
	if c.JSON {
		if err := printJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		printEvents(e, &out, c.After)
	}
	if len(out.Mismatched) > 0 || len(out.Unlinked) > 0 {
		return exitError{exitFailed}
	}
	return nil
}

// printEvents prints the events as a table and what the hashes say.
func printEvents(e *env, l *auditList, after uint64) {
	if len(l.Events) == 0 {
		fmt.Fprintf(e.stdout, "no audit events of %s after seq %d\n", l.Identity, after)
		return
	}
	bad, unlinked := map[uint64]bool{}, map[uint64]bool{}
	for _, s := range l.Mismatched {
		bad[s] = true
	}
	for _, s := range l.Unlinked {
		unlinked[s] = true
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tTYPE\tAUTHENTICATOR\tACTOR\tREASON\tDETAILS")
	for _, ev := range l.Events {
		actor := ev.Actor.Kind + ":" + ev.Actor.ID
		if ev.Actor.Via != "" {
			actor += " via " + ev.Actor.Via
		}
		seq := fmt.Sprint(ev.Seq)
		if bad[ev.Seq] {
			seq += " HASH MISMATCH"
		}
		if unlinked[ev.Seq] {
			seq += " NOT LINKED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", seq, ev.Time.Local().Format(time.DateTime), ev.Type,
			orDash(ev.AuthenticatorID), actor, orDash(ev.Reason), details(ev.Details))
	}
	tw.Flush()
	switch {
	case len(l.Mismatched) > 0 || len(l.Unlinked) > 0:
		if len(l.Mismatched) > 0 {
			fmt.Fprintf(e.stdout, "%d of %d events do NOT hash to their hash: the record was changed after it was written\n", len(l.Mismatched), len(l.Events))
		}
		if len(l.Unlinked) > 0 {
			fmt.Fprintf(e.stdout, "%d of %d events do NOT carry the hash of the event before them: the chain was cut or rewritten\n", len(l.Unlinked), len(l.Events))
		}
		fmt.Fprintln(e.stdout, "run authbench audit verify on the server's database")
	default:
		fmt.Fprintf(e.stdout, "%d events; each hash recomputes from its event and links to the one before (SHA-256 over prev_hash and the record, /v1/openapi.json Event.hash)\n", len(l.Events))
	}
	if l.Next != nil {
		fmt.Fprintf(e.stdout, "more with --after %d\n", *l.Next)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// details prints an event's details as key=value pairs in key order.
func details(d map[string]any) string {
	if len(d) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(d))
	for _, k := range slices.Sorted(maps.Keys(d)) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, d[k]))
	}
	return strings.Join(parts, " ")
}

// hashMatches recomputes an event's hash from its fields and prev_hash, as
// the contract says (Event.hash): the audit package's own computation.
func hashMatches(ev client.Event) bool {
	r := audit.Record{
		Version:         uint8(ev.Version),
		Seq:             ev.Seq,
		Time:            ev.Time,
		Type:            domain.EventType(ev.Type),
		IdentityID:      ev.IdentityID,
		AuthenticatorID: ev.AuthenticatorID,
		Actor:           domain.Actor{Kind: domain.ActorKind(ev.Actor.Kind), ID: ev.Actor.ID, Via: ev.Actor.Via},
		Reason:          ev.Reason,
	}
	if len(ev.Details) > 0 {
		r.Details = make(map[string]string, len(ev.Details))
		for k, v := range ev.Details {
			s, ok := v.(string)
			if !ok {
				return false // the contract has text values only
			}
			r.Details[k] = s
		}
	}
	prev, err1 := hex.DecodeString(ev.PrevHash)
	want, err2 := hex.DecodeString(ev.Hash)
	if err1 != nil || err2 != nil || len(prev) != len(r.PrevHash) || len(want) != len(r.Hash) {
		return false
	}
	copy(r.PrevHash[:], prev)
	got := r.ComputeHash()
	return bytes.Equal(got[:], want)
}

package client_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/authbench/authbench/server/client"
)

// TestAuditHashFromOutside checks every event the API serves the way an
// outside auditor would, with nothing but the OpenAPI description of the
// event's hash (this code does not use server/audit): each hash is the
// SHA-256 of prev_hash and the canonical form of the other fields, each
// prev_hash the hash of the event before in the identity's chain, and seq
// counts the chain from 1.
func TestAuditHashFromOutside(t *testing.T) {
	w := newWorld(t, filepath.Join(t.TempDir(), "authbench.db"))
	ctx := context.Background()
	const id = "alice"
	w.person(id) // an identity, its password and app, a login
	if _, err := w.support.BlockIdentity(ctx, id, "misuse"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.support.UnblockIdentity(ctx, id, "checked by phone ✓"); err != nil {
		t.Fatal(err)
	}
	var events []client.Event
	for after := uint64(0); ; {
		page, err := w.support.Audit(ctx, id, after, 2)
		fatal(t, err)
		events = append(events, page.Events...)
		if page.Next == nil {
			break
		}
		after = *page.Next
	}
	if len(events) < 5 {
		t.Fatalf("only %d events", len(events))
	}
	prev := make([]byte, 32)
	for i, e := range events {
		if e.Version != 2 || e.Seq != uint64(i+1) {
			t.Fatalf("event %d: version %d, seq %d", i, e.Version, e.Seq)
		}
		if e.PrevHash != hex.EncodeToString(prev) {
			t.Errorf("event %d: prev_hash %s, want the previous event's hash", e.Seq, e.PrevHash)
		}
		got := outsideHash(t, &e)
		if e.Hash != got {
			t.Errorf("event %d (%s): hash %s, recomputed %s", e.Seq, e.Type, e.Hash, got)
		}
		prev, _ = hex.DecodeString(e.Hash)
	}
}

// outsideHash computes an event's hash from its JSON fields as the OpenAPI
// document describes it.
func outsideHash(t *testing.T, e *client.Event) string {
	t.Helper()
	str := func(b []byte, s string) []byte {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		return append(b, s...)
	}
	b, err := hex.DecodeString(e.PrevHash)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, byte(e.Version))
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixMicro()))
	for _, s := range []string{e.Type, e.IdentityID, e.AuthenticatorID, e.Actor.Kind, e.Actor.ID, e.Actor.Via, e.Reason} {
		b = str(b, s)
	}
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.BigEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		b = str(str(b, k), fmt.Sprint(e.Details[k]))
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

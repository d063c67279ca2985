package scaletest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"testing"
	"time"

	"github.com/authbench/authbench/server/client"
)

// TestSessionTokenForms, against real servers on both backends: a login
// hands out a timed session token (its creation milliseconds, then random
// bytes); whoever alters the time in it holds a token that every replica
// refuses, also for a logout, and the real one keeps working. A session
// an earlier version issued (an untimed token, stored under SHA-256 of
// its text) keeps working on every replica, is marked as the current one
// in the session list, and ends at its logout and at the identity's block.
func TestSessionTokenForms(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testContext(t)
		db := b.open(t)
		c := newCluster(t, b.name, db, b.replicas)
		v := newVictim(t, ctx, c, false)
		before := time.Now()
		s := v.appSession(t, ctx, c, 0)
		raw, err := base64.RawURLEncoding.DecodeString(s.Token)
		if err != nil || len(raw) != 38 {
			t.Fatalf("the session token %q is not 38 bytes of base64url (%v)", s.Token, err)
		}
		var ms [8]byte
		copy(ms[2:], raw[:6])
		created := time.UnixMilli(int64(binary.BigEndian.Uint64(ms[:])))
		if created.Before(before.Add(-time.Minute)) || created.After(time.Now().Add(time.Minute)) {
			t.Fatalf("the token carries the time %v, not that of the login", created)
		}
		works(t, ctx, c, s.Token, v.id, "the new session")

		// The time moved by a millisecond, an hour, or to zero: refused.
		for _, move := range []func(uint64) uint64{
			func(m uint64) uint64 { return m + 1 },
			func(m uint64) uint64 { return m - 1 },
			func(m uint64) uint64 { return m + uint64(time.Hour/time.Millisecond) },
			func(uint64) uint64 { return 0 },
		} {
			altered := append([]byte(nil), raw...)
			binary.BigEndian.PutUint64(ms[:], move(binary.BigEndian.Uint64(ms[:])))
			copy(altered[:6], ms[2:])
			copy(ms[2:], raw[:6])
			tok := base64.RawURLEncoding.EncodeToString(altered)
			everywhere(t, ctx, c, tok, v.id, "a token whose time was altered")
			if err := c.client(1, tok).Logout(ctx); err == nil {
				t.Error("a token whose time was altered logged out")
			}
		}
		works(t, ctx, c, s.Token, v.id, "the session whose token was altered by someone else")

		// A session of an earlier version: its row keyed by SHA-256 of an
		// untimed token, as those versions stored it.
		untimed := func() (string, *client.Session) {
			s := v.appSession(t, ctx, c, 1)
			tok := base64.RawURLEncoding.EncodeToString(random(t, 32))
			key := sha256.Sum256([]byte(tok))
			openRaw(t, b.name, db).exec(ctx, `UPDATE sessions SET token_hash = ? WHERE id = ?`, key[:], s.ID)
			return tok, s
		}
		old, oldSes := untimed()
		works(t, ctx, c, old, v.id, "the session of an untimed token")
		for i := range c.replicas() {
			list, err := c.client(i, old).Sessions(ctx, v.id)
			fatal(t, err)
			current := 0
			for _, se := range list {
				if se.Current {
					current++
					if se.ID != oldSes.ID {
						t.Errorf("replica %d marks session %s current, want %s", i, se.ID, oldSes.ID)
					}
				}
			}
			if current != 1 {
				t.Errorf("replica %d marks %d sessions current, want 1", i, current)
			}
		}
		fatal(t, c.client(2, old).Logout(ctx))
		everywhere(t, ctx, c, old, v.id, "an untimed token after its logout")
		works(t, ctx, c, s.Token, v.id, "another session after the untimed one's logout")

		old, _ = untimed()
		works(t, ctx, c, old, v.id, "the second session of an untimed token")
		_, err = c.support(0).BlockIdentity(ctx, v.id, "suspected misuse")
		fatal(t, err)
		everywhere(t, ctx, c, old, v.id, "an untimed token after the identity's block")
		everywhere(t, ctx, c, s.Token, v.id, "a timed token after the identity's block")
	})
}

// works checks that token is a session of identity id on every replica.
func works(t *testing.T, ctx context.Context, c *cluster, token, id, what string) {
	t.Helper()
	for i := range c.replicas() {
		if _, err := c.client(i, token).Identity(ctx, id); err != nil {
			t.Errorf("%s: replica %d answers %v, want the identity", what, i, err)
		}
	}
}

package chip

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"testing"
	"time"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/u2f"
)

func TestU2F(t *testing.T) {
	forEachTransport(t, Options{}, func(t *testing.T, c *Chip, l link) {
		ctx := testCtx(t)
		u := l.u2f
		if v, err := u.Version(ctx); err != nil || v != "U2F_V2" {
			t.Fatalf("version %q, %v", v, err)
		}
		app, chal := hash("https://example.dk"), hash("challenge")
		reg, err := u.Register(ctx, chal, app)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := reg.Verify(app, chal)
		if err != nil {
			t.Fatal(err)
		}
		if !cert.Equal(c.Certificate()) || len(reg.KeyHandle) != 32 {
			t.Errorf("certificate or key handle (%d bytes) wrong", len(reg.KeyHandle))
		}
		pub, err := reg.Key()
		if err != nil {
			t.Fatal(err)
		}
		for i, tc := range []struct {
			control byte
			up      byte
		}{{u2f.ControlEnforcePresence, 1}, {u2f.ControlDontEnforcePresence, 0}, {u2f.ControlEnforcePresence, 1}} {
			resp, err := u.Authenticate(ctx, tc.control, chal, app, reg.KeyHandle)
			if err != nil {
				t.Fatal(err)
			}
			if err := resp.Verify(pub, app, chal); err != nil {
				t.Error(err)
			}
			if resp.UserPresence != tc.up || resp.Counter != uint32(i+1) {
				t.Errorf("control %02X: presence %d, counter %d", tc.control, resp.UserPresence, resp.Counter)
			}
		}
		for _, tc := range []struct {
			name string
			app  [32]byte
			kh   []byte
			want bool
		}{
			{"ours", app, reg.KeyHandle, true},
			{"other app", hash("https://other.example"), reg.KeyHandle, false},
			{"unknown", app, bytes.Repeat([]byte{7}, 32), false},
			{"empty", app, []byte{}, false},
		} {
			ok, err := u.CheckKeyHandle(ctx, tc.app, tc.kh)
			if err != nil || ok != tc.want {
				t.Errorf("check-only %s: %v, %v; want %v", tc.name, ok, err, tc.want)
			}
		}
		if _, err := u.Authenticate(ctx, u2f.ControlEnforcePresence, chal, hash("x"), reg.KeyHandle); !errors.Is(err, u2f.ErrBadKeyHandle) {
			t.Errorf("other app: %v", err)
		}
	})
}

// TestU2FSharing: a U2F credential answers CTAP2 getAssertion with an
// allowList (rpIdHash = application), and a CTAP2 credential answers U2F,
// with one counter.
func TestU2FSharing(t *testing.T) {
	forEachTransport(t, Options{}, func(t *testing.T, c *Chip, l link) {
		ctx := testCtx(t)
		app, chal := hash("example.dk"), hash("challenge")
		reg, err := l.u2f.Register(ctx, chal, app)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.u2f.Authenticate(ctx, u2f.ControlEnforcePresence, chal, app, reg.KeyHandle); err != nil {
			t.Fatal(err)
		}
		pub, _ := reg.Key()
		cose := ctap2.EncodeES256PublicKey(pub)
		as, ad := mustAssert(t, l.ctap, getReq("example.dk", reg.KeyHandle), cose)
		if ad.SignCount != 2 || as.User != nil || !bytes.Equal(as.Credential.ID, reg.KeyHandle) {
			t.Errorf("CTAP2 over U2F credential: count %d, user %v", ad.SignCount, as.User)
		}
		// Not discoverable.
		if _, err := l.ctap.GetAssertion(ctx, getReq("example.dk")); !errors.Is(err, ctap2.ErrNoCredentials) {
			t.Errorf("U2F credential discovered: %v", err)
		}
		// Excluded like any other.
		r := makeReq("example.dk", "alice", false)
		r.ExcludeList = []ctap2.CredentialDescriptor{{Type: "public-key", ID: reg.KeyHandle}}
		if _, err := l.ctap.MakeCredential(ctx, r); !errors.Is(err, ctap2.ErrCredentialExcluded) {
			t.Errorf("excludeList with a U2F key handle: %v", err)
		}

		m := mustMake(t, l.ctap, makeReq("example.dk", "bob", false))
		resp, err := l.u2f.Authenticate(ctx, u2f.ControlEnforcePresence, chal, app, m.id)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ctap2.ParsePublicKey(m.pub)
		if err != nil {
			t.Fatal(err)
		}
		if err := resp.Verify(k.(*ecdsa.PublicKey), app, chal); err != nil {
			t.Error(err)
		}
		if resp.Counter != 1 {
			t.Errorf("counter %d", resp.Counter)
		}
	})
}

func TestU2FPresence(t *testing.T) {
	clk, pol := newClock(), newPolicy(Deny)
	opts := Options{Now: clk.Now}
	pol.install(&opts)
	c := testChip(t, opts)
	ctx := testCtx(t)
	req := &u2f.RegisterRequest{Challenge: hash("c"), Application: hash("a")}
	for _, p := range []Presence{Deny, Never, Manual} {
		pol.Set(p)
		if _, err := c.Register(ctx, req); !errors.Is(err, u2f.ErrPresenceRequired) {
			t.Errorf("%v: %v, want ErrPresenceRequired", p, err)
		}
	}
	// Manual: a touch is good for one request within 10 s.
	pol.Set(Manual)
	c.Touch()
	reg, err := c.Register(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, req); !errors.Is(err, u2f.ErrPresenceRequired) {
		t.Errorf("touch used twice: %v", err)
	}
	c.Touch()
	clk.Add(touchWindow)
	auth := &u2f.AuthenticateRequest{Control: u2f.ControlEnforcePresence, Challenge: hash("c"), Application: hash("a"), KeyHandle: reg.KeyHandle}
	if _, err := c.Authenticate(ctx, auth); !errors.Is(err, u2f.ErrPresenceRequired) {
		t.Errorf("stale touch: %v", err)
	}
	// Without presence the dont-enforce variant still signs.
	auth.Control = u2f.ControlDontEnforcePresence
	if resp, err := c.Authenticate(ctx, auth); err != nil || resp.UserPresence != 0 {
		t.Errorf("dont-enforce: %v", err)
	}
	// Delay waits, then signs.
	pol.Set(Delay(time.Millisecond))
	auth.Control = u2f.ControlEnforcePresence
	if resp, err := c.Authenticate(ctx, auth); err != nil || resp.UserPresence != 1 {
		t.Errorf("delay: %v", err)
	}
}

// TestU2FHostGivesUp: the host polls while the chip says 6985, reporting
// UPNEEDED, and stops when its context ends.
func TestU2FHostGivesUp(t *testing.T) {
	forEachTransport(t, Options{Presence: Never}, func(t *testing.T, c *Chip, l link) {
		ctx, cancel := context.WithCancel(testCtx(t))
		defer cancel()
		polls := 0
		ctx = ctap2.WithKeepalive(ctx, func(s ctap2.KeepaliveStatus) {
			if polls++; polls == 3 {
				cancel()
			}
		})
		_, err := l.u2f.Register(ctx, hash("c"), hash("a"))
		if !errors.Is(err, context.Canceled) || !errors.Is(err, u2f.ErrPresenceRequired) {
			t.Errorf("%v", err)
		}
	})
}

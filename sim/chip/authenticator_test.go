package chip

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
)

func TestInfo(t *testing.T) {
	forEachTransport(t, Options{}, func(t *testing.T, c *Chip, l link) {
		info, err := l.ctap.Info(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		aaguid := c.AAGUID()
		if !slices.Equal(info.Versions, []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1"}) {
			t.Errorf("versions %q", info.Versions)
		}
		if !bytes.Equal(info.AAGUID, aaguid[:]) {
			t.Errorf("aaguid %x, want %x", info.AAGUID, aaguid)
		}
		for opt, want := range map[string]bool{"rk": true, "up": true, "plat": false} {
			if v, ok := info.Options[opt]; !ok || v != want {
				t.Errorf("option %s = %v,%v; want %v", opt, v, ok, want)
			}
		}
		for _, opt := range []string{"uv", "clientPin"} {
			if _, ok := info.Options[opt]; ok {
				t.Errorf("option %s present", opt)
			}
		}
		if info.MaxMsgSize != 1200 || len(info.Algorithms) != 1 || info.Algorithms[0].Alg != ctap2.AlgES256 {
			t.Errorf("maxMsgSize %d, algorithms %v", info.MaxMsgSize, info.Algorithms)
		}
		if !slices.Equal(info.Transports, []string{"nfc", "usb"}) || len(info.Extensions) != 0 {
			t.Errorf("transports %q, extensions %q", info.Transports, info.Extensions)
		}
	})
}

// TestMakeCredentialPacked checks the packed attestation statement the way a
// relying party does (WebAuthn §8.2.1 and its verification procedure): x5c
// chains to the test CA, the signature verifies, and the certificate meets
// the requirements, with the AAGUID extension matching authData.
func TestMakeCredentialPacked(t *testing.T) {
	ca, err := TestCA()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(TestCACertPEM()) {
		t.Fatal("CA PEM does not parse")
	}
	forEachTransport(t, Options{}, func(t *testing.T, c *Chip, l link) {
		req := makeReq("example.dk", "alice", false)
		m := mustMake(t, l.ctap, req)
		if m.att.Format != "packed" {
			t.Fatalf("format %q", m.att.Format)
		}
		ad := m.ad
		if ad.RPIDHash != hash("example.dk") || ad.Flags != ctap2.FlagUP|ctap2.FlagAT || ad.SignCount != 0 {
			t.Errorf("authData: rpIdHash %x flags %02x count %d", ad.RPIDHash, ad.Flags, ad.SignCount)
		}
		if ad.AttestedCredential.AAGUID != c.AAGUID() || len(m.id) != 32 {
			t.Errorf("aaguid %x, credential ID of %d bytes", ad.AttestedCredential.AAGUID, len(m.id))
		}
		if _, err := ctap2.ParsePublicKey(m.pub); err != nil {
			t.Error(err)
		}
		st := m.att.Statement
		if st.Alg != ctap2.AlgES256 || len(st.X5C) != 1 {
			t.Fatalf("statement alg %d, %d certificates", st.Alg, len(st.X5C))
		}
		cert, err := x509.ParseCertificate(st.X5C[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: time.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("chain: %v", err)
		}
		if err := cert.CheckSignatureFrom(ca.Cert); err != nil {
			t.Error(err)
		}
		if err := ctap2.VerifySignature(cert.PublicKey, m.att.AuthData, req.ClientDataHash, st.Sig); err != nil {
			t.Errorf("attestation signature: %v", err)
		}
		// WebAuthn §8.2.1 certificate requirements.
		s := cert.Subject
		if cert.Version != 3 || cert.IsCA || !cert.BasicConstraintsValid ||
			!slices.Equal(s.Country, []string{"DK"}) || len(s.Organization) != 1 ||
			!slices.Equal(s.OrganizationalUnit, []string{"Authenticator Attestation"}) ||
			s.CommonName != ProfileFIDO2.Model() || s.SerialNumber != "" {
			t.Errorf("certificate: version %d, CA %v, subject %v", cert.Version, cert.IsCA, s)
		}
		got, ok, err := certificateAAGUID(cert)
		if err != nil || !ok || got != ad.AttestedCredential.AAGUID {
			t.Errorf("AAGUID extension %x, %v, %v", got, ok, err)
		}
		if !cert.Equal(c.Certificate()) {
			t.Error("x5c is not the chip's certificate")
		}
		if got != ProfileFIDO2.AAGUID() {
			t.Errorf("AAGUID %x is not the model's %x", got, ProfileFIDO2.AAGUID())
		}
	})
}

func TestAttestationNone(t *testing.T) {
	forEachTransport(t, Options{Attestation: AttestationNone}, func(t *testing.T, c *Chip, l link) {
		m := mustMake(t, l.ctap, makeReq("example.dk", "alice", false))
		if m.att.Format != "none" || m.att.Statement.Sig != nil || m.att.Statement.X5C != nil {
			t.Errorf("attestation %+v", m.att)
		}
		if m.ad.AttestedCredential.AAGUID != c.AAGUID() {
			t.Error("AAGUID missing from authData")
		}
	})
}

// TestStatus runs the error paths of every command, on every transport.
func TestStatus(t *testing.T) {
	type env struct {
		c     *Chip
		a     authenticator
		clock *clock
		pol   *policy
		ids   [][]byte // credentials made by setup
	}
	withOpts := func(f func(*ctap2.MakeCredentialRequest)) func(context.Context, *env) error {
		return func(ctx context.Context, e *env) error {
			r := makeReq("example.dk", "bob", false)
			f(r)
			_, err := e.a.MakeCredential(ctx, r)
			return err
		}
	}
	getWith := func(f func(*ctap2.GetAssertionRequest)) func(context.Context, *env) error {
		return func(ctx context.Context, e *env) error {
			r := getReq("example.dk", e.ids...)
			f(r)
			_, err := e.a.GetAssertion(ctx, r)
			return err
		}
	}
	oneResident := func(t *testing.T, e *env) {
		m := mustMake(t, e.a, makeReq("example.dk", "alice", true))
		e.ids = append(e.ids, m.id)
	}
	cases := []struct {
		name     string
		slots    int
		setup    func(t *testing.T, e *env)
		presence Presence // after setup
		call     func(ctx context.Context, e *env) error
		want     error
	}{
		{name: "makeCredential ok", call: withOpts(func(r *ctap2.MakeCredentialRequest) {})},
		{name: "RS256 only", want: ctap2.ErrUnsupportedAlgorithm, call: withOpts(func(r *ctap2.MakeCredentialRequest) {
			r.PubKeyCredParams = []ctap2.CredentialParameters{{Type: "public-key", Alg: -257}}
		})},
		{name: "empty pubKeyCredParams", want: ctap2.ErrUnsupportedAlgorithm, call: withOpts(func(r *ctap2.MakeCredentialRequest) {
			r.PubKeyCredParams = []ctap2.CredentialParameters{}
		})},
		{name: "ES256 of another type", want: ctap2.ErrUnsupportedAlgorithm, call: withOpts(func(r *ctap2.MakeCredentialRequest) {
			r.PubKeyCredParams = []ctap2.CredentialParameters{{Type: "other", Alg: -7}}
		})},
		{name: "ES256 after an unknown algorithm", call: withOpts(func(r *ctap2.MakeCredentialRequest) {
			r.PubKeyCredParams = append([]ctap2.CredentialParameters{{Type: "public-key", Alg: -8}}, es256()...)
		})},
		{name: "makeCredential uv", want: ctap2.ErrInvalidOption, call: withOpts(func(r *ctap2.MakeCredentialRequest) {
			r.Options = map[string]bool{"uv": true}
		})},
		{name: "makeCredential uv false", call: withOpts(func(r *ctap2.MakeCredentialRequest) {
			r.Options = map[string]bool{"uv": false}
		})},
		{name: "makeCredential up false", want: ctap2.ErrInvalidOption, call: withOpts(func(r *ctap2.MakeCredentialRequest) {
			r.Options = map[string]bool{"up": false}
		})},
		{name: "pinUvAuthParam without protocol", want: ctap2.ErrMissingParameter, call: withOpts(func(r *ctap2.MakeCredentialRequest) {
			r.PINUVAuthParam = make([]byte, 16)
		})},
		{name: "pinUvAuthProtocol 1", want: ctap2.ErrInvalidParameter, call: withOpts(func(r *ctap2.MakeCredentialRequest) {
			r.PINUVAuthParam, r.PINUVAuthProtocol = make([]byte, 16), protocol(1)
		})},
		{name: "makeCredential denied", presence: Deny, want: ctap2.ErrOperationDenied, call: withOpts(func(r *ctap2.MakeCredentialRequest) {})},
		{name: "excluded", setup: oneResident, want: ctap2.ErrCredentialExcluded, call: func(ctx context.Context, e *env) error {
			r := makeReq("example.dk", "carol", false)
			r.ExcludeList = []ctap2.CredentialDescriptor{{Type: "public-key", ID: []byte("unknown")}, {Type: "public-key", ID: e.ids[0]}}
			_, err := e.a.MakeCredential(ctx, r)
			return err
		}},
		{name: "excluded and denied", setup: oneResident, presence: Deny, want: ctap2.ErrCredentialExcluded, call: func(ctx context.Context, e *env) error {
			r := makeReq("example.dk", "carol", false)
			r.ExcludeList = []ctap2.CredentialDescriptor{{Type: "public-key", ID: e.ids[0]}}
			_, err := e.a.MakeCredential(ctx, r)
			return err
		}},
		{name: "excludeList of another RP", setup: oneResident, call: func(ctx context.Context, e *env) error {
			r := makeReq("other.example", "carol", false)
			r.ExcludeList = []ctap2.CredentialDescriptor{{Type: "public-key", ID: e.ids[0]}}
			_, err := e.a.MakeCredential(ctx, r)
			return err
		}},
		{name: "key store full", slots: 1, setup: oneResident, want: ctap2.ErrKeyStoreFull, call: func(ctx context.Context, e *env) error {
			_, err := e.a.MakeCredential(ctx, makeReq("example.dk", "carol", true))
			return err
		}},
		{name: "full but replacing", slots: 1, setup: oneResident, call: func(ctx context.Context, e *env) error {
			_, err := e.a.MakeCredential(ctx, makeReq("example.dk", "alice", true))
			return err
		}},
		{name: "full but not resident", slots: 1, setup: oneResident, call: func(ctx context.Context, e *env) error {
			_, err := e.a.MakeCredential(ctx, makeReq("example.dk", "carol", false))
			return err
		}},
		{name: "getAssertion ok", setup: oneResident, call: getWith(func(r *ctap2.GetAssertionRequest) {})},
		{name: "no credentials", want: ctap2.ErrNoCredentials, call: getWith(func(r *ctap2.GetAssertionRequest) {})},
		{name: "unknown in allowList", setup: oneResident, want: ctap2.ErrNoCredentials, call: getWith(func(r *ctap2.GetAssertionRequest) {
			r.AllowList = []ctap2.CredentialDescriptor{{Type: "public-key", ID: []byte("unknown")}}
		})},
		{name: "allowList of another RP", setup: oneResident, want: ctap2.ErrNoCredentials, call: getWith(func(r *ctap2.GetAssertionRequest) {
			r.RPID = "other.example"
		})},
		{name: "getAssertion uv", setup: oneResident, want: ctap2.ErrInvalidOption, call: getWith(func(r *ctap2.GetAssertionRequest) {
			r.Options = map[string]bool{"uv": true}
		})},
		{name: "getAssertion rk", setup: oneResident, want: ctap2.ErrUnsupportedOption, call: getWith(func(r *ctap2.GetAssertionRequest) {
			r.Options = map[string]bool{"rk": true}
		})},
		{name: "getAssertion pinUvAuthProtocol 2", setup: oneResident, want: ctap2.ErrInvalidParameter, call: getWith(func(r *ctap2.GetAssertionRequest) {
			r.PINUVAuthParam, r.PINUVAuthProtocol = make([]byte, 32), protocol(2)
		})},
		{name: "getAssertion denied", setup: oneResident, presence: Deny, want: ctap2.ErrOperationDenied, call: getWith(func(r *ctap2.GetAssertionRequest) {})},
		{name: "getAssertion up false denied", setup: oneResident, presence: Deny, call: getWith(func(r *ctap2.GetAssertionRequest) {
			r.Options = map[string]bool{"up": false}
		})},
		{name: "next without assertion", want: ctap2.ErrNotAllowed, call: func(ctx context.Context, e *env) error {
			_, err := e.a.GetNextAssertion(ctx)
			return err
		}},
		{name: "next after single credential", setup: oneResident, want: ctap2.ErrNotAllowed, call: func(ctx context.Context, e *env) error {
			if _, err := e.a.GetAssertion(ctx, getReq("example.dk")); err != nil {
				return err
			}
			_, err := e.a.GetNextAssertion(ctx)
			return err
		}},
		{name: "reset", setup: oneResident, call: func(ctx context.Context, e *env) error { return e.a.Reset(ctx) }},
		{name: "reset at 10 s", call: func(ctx context.Context, e *env) error {
			e.clock.Add(ResetWindow)
			return e.a.Reset(ctx)
		}},
		{name: "reset too late", want: ctap2.ErrNotAllowed, call: func(ctx context.Context, e *env) error {
			e.clock.Add(ResetWindow + time.Millisecond)
			return e.a.Reset(ctx)
		}},
		{name: "reset after power cycle", call: func(ctx context.Context, e *env) error {
			e.clock.Add(time.Minute)
			e.c.PowerCycle()
			e.clock.Add(9 * time.Second)
			return e.a.Reset(ctx)
		}},
		{name: "reset denied", presence: Deny, want: ctap2.ErrOperationDenied, call: func(ctx context.Context, e *env) error { return e.a.Reset(ctx) }},
		{name: "selection", call: func(ctx context.Context, e *env) error { return e.a.Selection(ctx) }},
		{name: "selection delayed", presence: Delay(time.Millisecond), call: func(ctx context.Context, e *env) error { return e.a.Selection(ctx) }},
		{name: "selection denied", presence: Deny, want: ctap2.ErrOperationDenied, call: func(ctx context.Context, e *env) error { return e.a.Selection(ctx) }},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					clk, pol := newClock(), newPolicy(Auto)
					opts := Options{Now: clk.Now, Slots: tc.slots}
					pol.install(&opts)
					c := testChip(t, opts)
					e := &env{c: c, a: tr.connect(t, c).ctap, clock: clk, pol: pol}
					if tc.setup != nil {
						tc.setup(t, e)
					}
					pol.Set(tc.presence)
					err := tc.call(testCtx(t), e)
					if tc.want == nil && err != nil || !errors.Is(err, tc.want) {
						t.Fatalf("got %v, want %v", err, tc.want)
					}
					if tc.want != nil && ctap2.StatusCode(err) != ctap2.StatusCode(tc.want) {
						t.Errorf("status %02X, want %02X", ctap2.StatusCode(err), ctap2.StatusCode(tc.want))
					}
				})
			}
		})
	}
}

func TestResidentReplacement(t *testing.T) {
	forEachTransport(t, Options{}, func(t *testing.T, c *Chip, l link) {
		old := mustMake(t, l.ctap, makeReq("example.dk", "alice", true))
		mustMake(t, l.ctap, makeReq("example.dk", "bob", true))
		repl := mustMake(t, l.ctap, makeReq("example.dk", "alice", true))
		if bytes.Equal(old.id, repl.id) {
			t.Fatal("replacement kept the credential ID")
		}
		if _, err := l.ctap.GetAssertion(testCtx(t), getReq("example.dk", old.id)); !errors.Is(err, ctap2.ErrNoCredentials) {
			t.Errorf("old credential: %v, want NO_CREDENTIALS", err)
		}
		as, _ := mustAssert(t, l.ctap, getReq("example.dk"), repl.pub)
		if !bytes.Equal(as.Credential.ID, repl.id) || as.NumberOfCredentials != 2 {
			t.Errorf("first discovered %x (%d in all), want the replacement of 2", as.Credential.ID, as.NumberOfCredentials)
		}
		if as.User == nil || !bytes.Equal(as.User.ID, userID("alice")) || as.User.Name != "" {
			t.Errorf("user %+v: want alice's ID only", as.User)
		}
	})
}

func TestCountersAndNextAssertion(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			clk := newClock()
			c := testChip(t, Options{Now: clk.Now})
			a := tr.connect(t, c).ctap
			var creds []made
			for _, u := range []string{"u1", "u2", "u3"} {
				creds = append(creds, mustMake(t, a, makeReq("example.dk", u, true)))
			}
			other := mustMake(t, a, makeReq("other.example", "u1", true))
			_ = other

			// Newest first, with numberOfCredentials on the first.
			req := getReq("example.dk")
			as, ad := mustAssert(t, a, req, creds[2].pub)
			if as.NumberOfCredentials != 3 || !bytes.Equal(as.Credential.ID, creds[2].id) || ad.SignCount != 1 || ad.Flags != ctap2.FlagUP {
				t.Fatalf("first: n=%d id=%x count=%d flags=%02x", as.NumberOfCredentials, as.Credential.ID, ad.SignCount, ad.Flags)
			}
			for i := 1; i >= 0; i-- {
				clk.Add(29 * time.Second)
				as, err := a.GetNextAssertion(testCtx(t))
				if err != nil {
					t.Fatal(err)
				}
				ad, _ := ctap2.ParseAuthData(as.AuthData)
				if !bytes.Equal(as.Credential.ID, creds[i].id) || as.NumberOfCredentials != 0 || ad.SignCount != 1 {
					t.Errorf("next: id %x, n %d, count %d", as.Credential.ID, as.NumberOfCredentials, ad.SignCount)
				}
				if !bytes.Equal(as.User.ID, userID([]string{"u1", "u2"}[i])) {
					t.Errorf("next: user %x", as.User.ID)
				}
				if err := ctap2.VerifyAssertion(creds[i].pub, as.AuthData, req.ClientDataHash, as.Signature); err != nil {
					t.Error(err)
				}
			}
			if _, err := a.GetNextAssertion(testCtx(t)); !errors.Is(err, ctap2.ErrNotAllowed) {
				t.Errorf("after the last: %v", err)
			}

			// The window closes 30 s after the previous assertion.
			mustAssert(t, a, req, nil)
			clk.Add(NextAssertionWindow + time.Second)
			if _, err := a.GetNextAssertion(testCtx(t)); !errors.Is(err, ctap2.ErrNotAllowed) {
				t.Errorf("after 31 s: %v", err)
			}
			// Another command drops the state.
			mustAssert(t, a, req, nil)
			if _, err := a.Info(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if _, err := a.GetNextAssertion(testCtx(t)); !errors.Is(err, ctap2.ErrNotAllowed) {
				t.Errorf("after getInfo: %v", err)
			}

			// Counters are per credential and grow by one per assertion.
			for want := uint32(2); want <= 5; want++ {
				_, ad := mustAssert(t, a, getReq("example.dk", creds[0].id), creds[0].pub)
				if ad.SignCount != want {
					t.Fatalf("counter %d, want %d", ad.SignCount, want)
				}
			}
			_, ad = mustAssert(t, a, getReq("example.dk", creds[1].id), creds[1].pub)
			if ad.SignCount != 2 {
				t.Errorf("second credential's counter %d, want 2", ad.SignCount)
			}
			// up=false: no touch, UP clear, the counter still moves.
			r := getReq("example.dk", creds[1].id)
			r.Options = map[string]bool{"up": false}
			_, ad = mustAssert(t, a, r, creds[1].pub)
			if ad.Flags&ctap2.FlagUP != 0 || ad.SignCount != 3 {
				t.Errorf("up=false: flags %02x count %d", ad.Flags, ad.SignCount)
			}
		})
	}
}

func TestReset(t *testing.T) {
	forEachTransport(t, Options{}, func(t *testing.T, c *Chip, l link) {
		rk := mustMake(t, l.ctap, makeReq("example.dk", "alice", true))
		nrk := mustMake(t, l.ctap, makeReq("example.dk", "bob", false))
		if err := l.ctap.Reset(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		for _, id := range [][]byte{rk.id, nrk.id, nil} {
			req := getReq("example.dk")
			if id != nil {
				req = getReq("example.dk", id)
			}
			if _, err := l.ctap.GetAssertion(testCtx(t), req); !errors.Is(err, ctap2.ErrNoCredentials) {
				t.Errorf("after reset: %v", err)
			}
		}
		again := mustMake(t, l.ctap, makeReq("example.dk", "alice", true))
		if bytes.Equal(again.id, rk.id) || bytes.Equal(again.pub, rk.pub) {
			t.Error("a reset chip handed out an old credential")
		}
		if again.ad.AttestedCredential.AAGUID != c.AAGUID() {
			t.Error("AAGUID changed")
		}
	})
}

// TestPresenceNever: the chip waits, the host sees UPNEEDED and gives up.
func TestPresenceNever(t *testing.T) {
	ops := []struct {
		name string
		call func(ctx context.Context, a authenticator) error
	}{
		{"makeCredential", func(ctx context.Context, a authenticator) error {
			_, err := a.MakeCredential(ctx, makeReq("example.dk", "alice", false))
			return err
		}},
		{"selection", func(ctx context.Context, a authenticator) error { return a.Selection(ctx) }},
		{"reset", func(ctx context.Context, a authenticator) error { return a.Reset(ctx) }},
	}
	forEachTransport(t, Options{Presence: Never}, func(t *testing.T, c *Chip, l link) {
		for _, op := range ops {
			ctx, cancel := context.WithCancel(testCtx(t))
			var seen []ctap2.KeepaliveStatus
			var mu sync.Mutex
			ctx = ctap2.WithKeepalive(ctx, func(s ctap2.KeepaliveStatus) {
				mu.Lock()
				seen = append(seen, s)
				mu.Unlock()
				if s == ctap2.StatusUPNeeded {
					cancel() // the host gives up once it knows the chip waits
				}
			})
			err := op.call(ctx, l.ctap)
			cancel()
			// The direct handler has no transport to notice the host's
			// cancel, so the host gets the chip's own answer.
			if !errors.Is(err, context.Canceled) && !errors.Is(err, ctap2.ErrKeepaliveCancel) {
				t.Errorf("%s: %v, want context.Canceled or KEEPALIVE_CANCEL", op.name, err)
			}
			mu.Lock()
			if !slices.Contains(seen, ctap2.StatusUPNeeded) {
				t.Errorf("%s: keepalives %v, want UPNEEDED", op.name, seen)
			}
			mu.Unlock()
		}
		// The chip is free again.
		if _, err := l.ctap.Info(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPresenceCancelInProcess(t *testing.T) {
	c := testChip(t, Options{Presence: Never})
	ctx, cancel := context.WithCancel(testCtx(t))
	ctx = ctap2.WithKeepalive(ctx, func(s ctap2.KeepaliveStatus) { cancel() })
	_, err := c.MakeCredential(ctx, makeReq("example.dk", "alice", false))
	var se *ctap2.StatusError
	if !errors.As(err, &se) || se.Code != ctap2.CodeKeepaliveCancel || !errors.Is(err, context.Canceled) {
		t.Fatalf("%v: want KEEPALIVE_CANCEL wrapping context.Canceled", err)
	}
	if got := c.ServeCTAP2(ctx, []byte{ctap2.CmdSelection}); !bytes.Equal(got, []byte{ctap2.CodeKeepaliveCancel}) {
		t.Errorf("wire answer % X", got)
	}
}

func TestPresenceDelay(t *testing.T) {
	forEachTransport(t, Options{Presence: Delay(30 * time.Millisecond)}, func(t *testing.T, c *Chip, l link) {
		var mu sync.Mutex
		var seen []ctap2.KeepaliveStatus
		ctx := ctap2.WithKeepalive(testCtx(t), func(s ctap2.KeepaliveStatus) {
			mu.Lock()
			seen = append(seen, s)
			mu.Unlock()
		})
		m := mustMake(t, l.ctap, makeReq("example.dk", "alice", false))
		if _, err := l.ctap.GetAssertion(ctx, getReq("example.dk", m.id)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		// Over CTAPHID the keepalive is sent at once; over APDUs only when
		// the card answers before the chip does, which timing decides.
		if t.Name() != "TestPresenceDelay/apdu" && !slices.Contains(seen, ctap2.StatusUPNeeded) {
			t.Errorf("keepalives %v, want UPNEEDED", seen)
		}
	})
}

func TestPresenceManual(t *testing.T) {
	c := testChip(t, Options{Presence: Manual})
	if c.Touch() {
		t.Error("Touch reported a waiting request")
	}
	waiting := make(chan struct{})
	ctx := ctap2.WithKeepalive(testCtx(t), func(ctap2.KeepaliveStatus) { close(waiting) })
	done := make(chan error, 1)
	go func() {
		_, err := c.MakeCredential(ctx, makeReq("example.dk", "alice", false))
		done <- err
	}()
	<-waiting
	if !c.Touch() {
		t.Error("Touch found nobody waiting")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPresenceScript(t *testing.T) {
	var mu sync.Mutex
	var ops []Op
	c := testChip(t, Options{PresenceFunc: func(op Op) Presence {
		mu.Lock()
		defer mu.Unlock()
		ops = append(ops, op)
		if len(ops) == 2 {
			return Deny
		}
		return Auto
	}})
	ctx := testCtx(t)
	m := mustMake(t, c, makeReq("example.dk", "alice", false))
	if _, err := c.GetAssertion(ctx, getReq("example.dk", m.id)); !errors.Is(err, ctap2.ErrOperationDenied) || !errors.Is(err, device.ErrPresenceDenied) {
		t.Errorf("second touch: %v", err)
	}
	if _, err := c.GetAssertion(ctx, getReq("example.dk", m.id)); err != nil {
		t.Error(err)
	}
	if err := c.Selection(ctx); err != nil {
		t.Error(err)
	}
	want := []Op{OpMakeCredential, OpGetAssertion, OpGetAssertion, OpSelection}
	if !slices.Equal(ops, want) {
		t.Errorf("ops %v, want %v", ops, want)
	}
}

func TestDeterminism(t *testing.T) {
	seed := testSeed("determinism")
	run := func() (string, *ctap2.Info, []made, []byte) {
		c := testChip(t, Options{Seed: seed})
		info, err := c.Info(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		var ms []made
		for _, u := range []string{"a", "b", "c"} {
			ms = append(ms, mustMake(t, c, makeReq("example.dk", u, u == "b")))
		}
		pub, _ := c.Certificate().PublicKey.(*ecdsa.PublicKey)
		return c.Serial(), info, ms, rawPublicKey(pub)
	}
	s1, i1, m1, k1 := run()
	s2, i2, m2, k2 := run()
	if s1 != s2 || !bytes.Equal(i1.AAGUID, i2.AAGUID) || !bytes.Equal(k1, k2) {
		t.Errorf("serial %s/%s, aaguid %x/%x", s1, s2, i1.AAGUID, i2.AAGUID)
	}
	b1, _ := ctap2.EncodeInfo(i1)
	b2, _ := ctap2.EncodeInfo(i2)
	if !bytes.Equal(b1, b2) {
		t.Error("getInfo differs")
	}
	for i := range m1 {
		if !bytes.Equal(m1[i].id, m2[i].id) || !bytes.Equal(m1[i].pub, m2[i].pub) {
			t.Errorf("credential %d differs", i)
		}
	}
	if len(s1) != 13 || s1[:3] != "AB-" {
		t.Errorf("serial %q", s1)
	}
	other := testChip(t, Options{Seed: testSeed("another")})
	if other.Serial() == s1 {
		t.Error("another seed gave the same chip")
	}
	// The AAGUID and the batch certificate name the model, not the chip.
	if other.AAGUID() != [16]byte(i1.AAGUID) || !other.Certificate().Equal(testChip(t, Options{Seed: seed}).Certificate()) {
		t.Error("two chips of one model differ in AAGUID or batch certificate")
	}
	if random := testChip(t, Options{Seed: nil, Serial: "AB-0000000001"}); random.Serial() != "AB-0000000001" {
		t.Errorf("serial option ignored: %s", random.Serial())
	}
}

func TestRandomSeed(t *testing.T) {
	a, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Serial() == b.Serial() {
		t.Error("two random chips are the same")
	}
	a.Close()
	b.Close()
}

func TestFaults(t *testing.T) {
	ctx := testCtx(t)
	t.Run("IgnoreExcludeList", func(t *testing.T) {
		c := testChip(t, Options{Faults: Faults{IgnoreExcludeList: true}})
		m := mustMake(t, c, makeReq("example.dk", "alice", false))
		r := makeReq("example.dk", "alice", false)
		r.ExcludeList = []ctap2.CredentialDescriptor{{Type: "public-key", ID: m.id}}
		if _, err := c.MakeCredential(ctx, r); err != nil {
			t.Errorf("excluded credential refused: %v", err)
		}
	})
	t.Run("CounterStuck", func(t *testing.T) {
		c := testChip(t, Options{Faults: Faults{CounterStuck: true}})
		m := mustMake(t, c, makeReq("example.dk", "alice", false))
		for range 3 {
			if _, ad := mustAssert(t, c, getReq("example.dk", m.id), m.pub); ad.SignCount != 1 {
				t.Errorf("counter %d, want 1 every time", ad.SignCount)
			}
		}
	})
	t.Run("CounterOffset", func(t *testing.T) {
		c := testChip(t, Options{Faults: Faults{CounterOffset: 1000}})
		m := mustMake(t, c, makeReq("example.dk", "alice", false))
		if m.ad.SignCount != 1000 {
			t.Errorf("makeCredential counter %d", m.ad.SignCount)
		}
		if _, ad := mustAssert(t, c, getReq("example.dk", m.id), m.pub); ad.SignCount != 1001 {
			t.Errorf("counter %d, want 1001", ad.SignCount)
		}
	})
	t.Run("WrongRPIDHash", func(t *testing.T) {
		c := testChip(t, Options{Faults: Faults{WrongRPIDHash: true}})
		m := mustMake(t, c, makeReq("example.dk", "alice", false))
		_, ad := mustAssert(t, c, getReq("example.dk", m.id), m.pub)
		if m.ad.RPIDHash == hash("example.dk") || ad.RPIDHash == hash("example.dk") {
			t.Error("right RP ID hash")
		}
	})
	t.Run("BadSignature", func(t *testing.T) {
		c := testChip(t, Options{Faults: Faults{BadSignature: true}})
		req := makeReq("example.dk", "alice", false)
		m := mustMake(t, c, req)
		cert, _ := x509.ParseCertificate(m.att.Statement.X5C[0])
		if err := ctap2.VerifySignature(cert.PublicKey, m.att.AuthData, req.ClientDataHash, m.att.Statement.Sig); !errors.Is(err, ctap2.ErrInvalidSignature) {
			t.Errorf("attestation: %v", err)
		}
		g := getReq("example.dk", m.id)
		as, _ := mustAssert(t, c, g, nil)
		if err := ctap2.VerifyAssertion(m.pub, as.AuthData, g.ClientDataHash, as.Signature); !errors.Is(err, ctap2.ErrInvalidSignature) {
			t.Errorf("assertion: %v", err)
		}
	})
}

func TestConcurrentAssertions(t *testing.T) {
	c := testChip(t, Options{Presence: Delay(time.Millisecond)})
	m := mustMake(t, c, makeReq("example.dk", "alice", true))
	const n = 16
	var wg sync.WaitGroup
	counts := make(chan uint32, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			as, err := c.GetAssertion(testCtx(t), getReq("example.dk", m.id))
			if err != nil {
				t.Error(err)
				return
			}
			ad, _ := ctap2.ParseAuthData(as.AuthData)
			counts <- ad.SignCount
		}()
	}
	wg.Wait()
	close(counts)
	var got []uint32
	for v := range counts {
		got = append(got, v)
	}
	slices.Sort(got)
	for i, v := range got {
		if v != uint32(i+1) {
			t.Fatalf("counters %v: want 1..%d, each once", got, n)
		}
	}
}

// TestCloseWithWaiter: Close ends a request waiting for a touch, and says so.
func TestCloseWithWaiter(t *testing.T) {
	noLeaks(t)
	c, err := New(Options{Seed: testSeed("close"), Presence: Never})
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{})
	ctx := ctap2.WithKeepalive(context.Background(), func(ctap2.KeepaliveStatus) { close(waiting) })
	done := make(chan error, 1)
	go func() {
		done <- c.Selection(ctx)
	}()
	<-waiting
	if err := c.Close(); err == nil {
		t.Error("Close did not report the waiting request")
	}
	if err := <-done; !errors.Is(err, device.ErrClosed) {
		t.Errorf("waiting request: %v", err)
	}
	if _, err := c.Info(context.Background()); !errors.Is(err, device.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestPowerCycleCancelsWaiter(t *testing.T) {
	c := testChip(t, Options{Presence: Never})
	waiting := make(chan struct{})
	ctx := ctap2.WithKeepalive(testCtx(t), func(ctap2.KeepaliveStatus) { close(waiting) })
	done := make(chan error, 1)
	go func() { done <- c.Selection(ctx) }()
	<-waiting
	c.PowerCycle()
	if err := <-done; !errors.Is(err, ctap2.ErrKeepaliveCancel) {
		t.Errorf("%v, want KEEPALIVE_CANCEL", err)
	}
}

func TestDeviceInfo(t *testing.T) {
	c := testChip(t, Options{})
	di := c.DeviceInfo()
	if di.Kind != device.KindChip || di.Serial != c.Serial() || di.Transport != "sim" {
		t.Errorf("%+v", di)
	}
}

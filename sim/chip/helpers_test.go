package chip

import (
	"context"
	"crypto/sha256"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/u2f"
)

// The chip is the device-side handler of both transports.
var (
	_ ctaphid.Handler = (*Chip)(nil)
	_ ctaphid.Winker  = (*Chip)(nil)
	_ apdu.Handler    = (*Chip)(nil)
)

// guard bounds every test operation; it only catches hangs.
const guard = 20 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	t.Cleanup(cancel)
	return ctx
}

// clock is a virtual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// policy is a presence policy a test can switch while the chip runs.
type policy struct{ p atomic.Value }

func newPolicy(p Presence) *policy {
	pol := &policy{}
	pol.p.Store(p)
	return pol
}
func (p *policy) Set(v Presence)     { p.p.Store(v) }
func (p *policy) Func(Op) Presence   { return p.p.Load().(Presence) }
func (p *policy) install(o *Options) { o.PresenceFunc = p.Func }
func testSeed(s string) []byte       { h := sha256.Sum256([]byte(s)); return h[:] }
func hash(s string) [32]byte         { return sha256.Sum256([]byte(s)) }
func cdh(s string) []byte            { h := hash("client data " + s); return h[:] }
func userID(s string) []byte         { h := hash("user " + s); return h[:16] }
func es256() []ctap2.CredentialParameters {
	return []ctap2.CredentialParameters{{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgES256}}
}

// testChip makes a chip with a fixed seed (unless opts has one) and a
// virtual clock (unless opts has one); the test fails if Close reports an
// error or goroutines are left over.
func testChip(t testing.TB, opts Options) *Chip {
	t.Helper()
	noLeaks(t)
	if opts.Seed == nil {
		opts.Seed = testSeed(t.Name())
	}
	if opts.Now == nil {
		opts.Now = newClock().Now
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// noLeaks fails the test if, after its cleanups, more goroutines run than
// before it.
func noLeaks(t testing.TB) {
	n := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > n {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("%d goroutines left over (had %d):\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// authenticator is what the tests drive: the chip in-process, or a
// ctap2.Client reaching it over a transport.
type authenticator interface {
	device.Chip
	device.NextAssertioner
	device.Resetter
	device.Selector
}

// link is one way to reach a chip.
type link struct {
	ctap authenticator
	u2f  *u2f.Client
	caps ctaphid.Capabilities // CTAPHID only: the INIT capabilities
}

type transport struct {
	name    string
	connect func(t testing.TB, c *Chip) link
}

// transports: the chip's own methods, its wire handlers called directly,
// CTAPHID over an in-memory report pipe, and ISO 7816 APDUs to an
// in-process card.
var transports = []transport{
	{"inprocess", connectInProcess},
	{"handler", connectHandler},
	{"ctaphid", connectHID},
	{"apdu", connectAPDU},
}

var fastPoll = &u2f.Options{PollInterval: time.Millisecond}

type cborFunc func(ctx context.Context, req []byte) []byte

func (f cborFunc) CBOR(ctx context.Context, req []byte) ([]byte, error) { return f(ctx, req), nil }

type apduFunc func(ctx context.Context, req []byte) []byte

func (f apduFunc) APDU(ctx context.Context, req []byte) ([]byte, error) { return f(ctx, req), nil }

func connectInProcess(t testing.TB, c *Chip) link {
	return link{ctap: c, u2f: u2f.NewClient(apduFunc(c.ServeU2F), fastPoll)}
}

func connectHandler(t testing.TB, c *Chip) link {
	return link{ctap: ctap2.NewClient(cborFunc(c.ServeCTAP2)), u2f: u2f.NewClient(apduFunc(c.ServeU2F), fastPoll)}
}

func connectHID(t testing.TB, c *Chip) link {
	t.Helper()
	dev, host := ctaphid.NewPipe()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ctaphid.Serve(ctx, dev, c, ctaphid.ServeOptions{}) }()
	octx, ocancel := context.WithTimeout(ctx, guard)
	defer ocancel()
	conn, err := ctaphid.Open(octx, host, ctaphid.Options{})
	if err != nil {
		cancel()
		<-served
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-served
		host.Close()
	})
	return link{ctap: ctap2.NewClient(conn), u2f: u2f.NewClient(conn, fastPoll), caps: conn.DeviceInfo().Capabilities}
}

func connectAPDU(t testing.TB, c *Chip) link {
	t.Helper()
	card := apdu.NewCard(c, apdu.CardOptions{StatusAfter: 20 * time.Millisecond})
	cl := apdu.NewClient(card, apdu.ClientOptions{PollInterval: -1})
	t.Cleanup(func() {
		if err := card.Close(); err != nil {
			t.Errorf("card Close: %v", err)
		}
	})
	if _, err := cl.Select(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	return link{ctap: ctap2.NewClient(cl), u2f: u2f.NewClient(cl, fastPoll)}
}

// forEachTransport runs f once per transport, each with a fresh chip.
func forEachTransport(t *testing.T, opts Options, f func(t *testing.T, c *Chip, l link)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := testChip(t, opts)
			f(t, c, tr.connect(t, c))
		})
	}
}

func makeReq(rp, user string, rk bool) *ctap2.MakeCredentialRequest {
	r := &ctap2.MakeCredentialRequest{
		ClientDataHash:   cdh("make " + rp + user),
		RP:               ctap2.RPEntity{ID: rp, Name: rp},
		User:             ctap2.UserEntity{ID: userID(user), Name: user, DisplayName: "User " + user},
		PubKeyCredParams: es256(),
	}
	if rk {
		r.Options = map[string]bool{"rk": true}
	}
	return r
}

func getReq(rp string, allow ...[]byte) *ctap2.GetAssertionRequest {
	r := &ctap2.GetAssertionRequest{RPID: rp, ClientDataHash: cdh("get " + rp)}
	for _, id := range allow {
		r.AllowList = append(r.AllowList, ctap2.CredentialDescriptor{Type: ctap2.CredentialTypePublicKey, ID: id})
	}
	return r
}

// made is a credential as the host sees it after makeCredential.
type made struct {
	att *ctap2.Attestation
	ad  *ctap2.AuthData
	id  []byte
	pub []byte // COSE_Key
}

func mustMake(t testing.TB, a authenticator, req *ctap2.MakeCredentialRequest) made {
	t.Helper()
	att, err := a.MakeCredential(testCtx(t), req)
	if err != nil {
		t.Fatalf("MakeCredential: %v", err)
	}
	ad, err := ctap2.ParseAuthData(att.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	if ad.AttestedCredential == nil {
		t.Fatal("no attested credential data")
	}
	return made{att: att, ad: ad, id: ad.AttestedCredential.CredentialID, pub: ad.AttestedCredential.PublicKey}
}

// mustAssert runs getAssertion and checks the signature with pub.
func mustAssert(t testing.TB, a authenticator, req *ctap2.GetAssertionRequest, pub []byte) (*ctap2.Assertion, *ctap2.AuthData) {
	t.Helper()
	as, err := a.GetAssertion(testCtx(t), req)
	if err != nil {
		t.Fatalf("GetAssertion: %v", err)
	}
	ad, err := ctap2.ParseAuthData(as.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	if pub != nil {
		if err := ctap2.VerifyAssertion(pub, as.AuthData, req.ClientDataHash, as.Signature); err != nil {
			t.Fatalf("assertion signature: %v", err)
		}
	}
	return as, ad
}

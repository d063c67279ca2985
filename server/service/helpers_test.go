package service_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/sqlite"
	"github.com/authbench/authbench/sim/chip"
)

const origin = "https://localhost"

var (
	support = domain.Support("op-1")
	b64     = base64.RawURLEncoding
	pskcKey = []byte("0123456789abcdef0123456789abcdef")
)

// clock is a virtual clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a service on a fresh SQLite store with a virtual clock.
type env struct {
	t     *testing.T
	ctx   context.Context
	svc   *service.Service
	st    *sqlite.Store
	clk   *clock
	path  string
	roots *x509.CertPool
	// appPub holds the public key (base64url SPKI) of each app added.
	appPub map[string]string
	// owners holds the app each identity's owner logs in with.
	owners  map[string]ownerApp
	metrics *countMetrics
}

type envOption func(*service.Options)

func withPolicy(p domain.Policy) envOption { return func(o *service.Options) { o.Policy = p } }
func allowNone() envOption                 { return func(o *service.Options) { o.AllowNoneAttestation = true } }
func noRoots() envOption                   { return func(o *service.Options) { o.AttestationRoots = nil } }

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	clk := newClock()
	path := filepath.Join(t.TempDir(), "authbench.db")
	st, err := sqlite.Open(t.Context(), path, sqlite.Options{Chain: service.Chain{}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, err := secrets.NewKeyring("k1", []byte("test master key, 32 bytes long!!"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(chip.TestCACertPEM()) {
		t.Fatal("test CA unreadable")
	}
	m := &countMetrics{checks: map[string]int{}}
	o := service.Options{
		Store:            st,
		Keyring:          keys,
		AttestationRoots: roots,
		Now:              clk.Now,
		Hasher:           secrets.FastParams(),
		PSKCKey:          pskcKey,
		Metrics:          m,
		LoginLimit:       service.Rate{Every: -1},
	}
	for _, f := range opts {
		f(&o)
	}
	svc, err := service.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: t.Context(), svc: svc, st: st, clk: clk, path: path, roots: roots, appPub: map[string]string{},
		owners: map[string]ownerApp{}, metrics: m}
}

// countMetrics counts the evaluations of secrets (service.Metrics).
type countMetrics struct {
	mu     sync.Mutex
	checks map[string]int
}

func (m *countMetrics) StoreCall(string, time.Duration, error) {}
func (m *countMetrics) Events([]domain.Event)                  {}
func (m *countMetrics) Checked(kind string) {
	m.mu.Lock()
	m.checks[kind]++
	m.mu.Unlock()
}

// checked returns how many secrets of kind were evaluated.
func (m *countMetrics) checked(kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.checks[kind]
}

func withLimit(r service.Rate) envOption { return func(o *service.Options) { o.LoginLimit = r } }

// thePassword is the password of every identity the tests create.
const thePassword = "correct horse"

// appPIN is the PIN of the apps the tests add.
const appPIN = "428613"

// identity creates an identity with a password (thePassword).
func (e *env) identity(id string) service.IdentityView {
	e.t.Helper()
	v, err := e.svc.CreateIdentity(e.ctx, support, service.CreateIdentityRequest{ID: id, Password: thePassword})
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// password returns the ID of the identity's password authenticator.
func password(v service.IdentityView) string {
	for _, a := range v.Authenticators {
		if a.Kind == "password" {
			return a.ID
		}
	}
	return ""
}

// loginPassword sends password pw for identity id: the first step of a
// password login (no session).
func (e *env) loginPassword(id, pw string) (service.PasswordLoginResult, error) {
	e.t.Helper()
	return e.svc.LoginPassword(e.ctx, id, service.PasswordLoginRequest{Password: pw})
}

// loginCode logs in with the password and a code of code device aid.
func (e *env) loginCode(id, aid, code string) (service.LoginResult, error) {
	e.t.Helper()
	pr, err := e.svc.LoginPassword(e.ctx, id, service.PasswordLoginRequest{Password: thePassword, Second: aid})
	if err != nil {
		return service.LoginResult{}, err
	}
	return e.svc.FinishLogin(e.ctx, id, service.FinishLoginRequest{Ceremony: pr.Next.Ceremony, Code: code})
}

// loginApp logs in with app aid alone.
func (e *env) loginApp(id, aid string, key *ecdsa.PrivateKey, pin string) (service.LoginResult, error) {
	e.t.Helper()
	b, err := e.svc.BeginApp(e.ctx, id, service.AppLoginRequest{Authenticator: aid})
	if err != nil {
		return service.LoginResult{}, err
	}
	sig, err := servicetest.SignChallenge(key, b.Challenge)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.svc.FinishLogin(e.ctx, id, service.FinishLoginRequest{Ceremony: b.Ceremony, PIN: pin, Signature: sig})
}

// loginChip logs in with the password and chip c (authenticator aid).
func (e *env) loginChip(id, aid string, c *chip.Chip) (service.LoginResult, error) {
	e.t.Helper()
	pr, err := e.svc.LoginPassword(e.ctx, id, service.PasswordLoginRequest{Password: thePassword, Second: aid})
	if err != nil {
		return service.LoginResult{}, err
	}
	resp, err := servicetest.Assert(e.ctx, c, origin, pr.Next.PublicKey)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.svc.FinishLogin(e.ctx, id, service.FinishLoginRequest{Ceremony: pr.Next.Ceremony, Credential: resp})
}

// owner gives identity id an app (added by support, the first time) and
// logs in with it: a two-factor session and its actor.
func (e *env) owner(id string) (service.LoginResult, domain.Actor) {
	e.t.Helper()
	o, ok := e.owners[id]
	if !ok {
		v, key, err := e.addApp(id, support, appPIN)
		if err != nil {
			e.t.Fatal(err)
		}
		o = ownerApp{aid: v.ID, key: key}
		e.owners[id] = o
	}
	r, err := e.loginApp(id, o.aid, o.key, appPIN)
	if err != nil {
		e.t.Fatal(err)
	}
	by, err := e.svc.Authenticate(e.ctx, r.Session)
	if err != nil {
		e.t.Fatal(err)
	}
	return r, by
}

// ownerApp is the app owner logs in with.
type ownerApp struct {
	aid string
	key *ecdsa.PrivateKey
}

// newChip returns a simulated chip made from seed.
func newChip(t *testing.T, seed string, opts chip.Options) *chip.Chip {
	t.Helper()
	opts.Seed = []byte(seed)
	c, err := chip.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// addChip adds and activates chip c for identity id, with edit applied to
// the attestation.
func (e *env) addChip(id string, by domain.Actor, c *chip.Chip, edit func(*ctap2.Attestation)) (service.AuthenticatorView, error) {
	e.t.Helper()
	res, err := e.svc.AddAuthenticator(e.ctx, by, id, service.AddRequest{Kind: "chip", Label: "key ring"})
	if err != nil {
		return service.AuthenticatorView{}, err
	}
	act := res.Activation.(service.ChipActivation)
	reg, err := servicetest.Register(e.ctx, c, origin, act.PublicKey, edit)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.svc.Activate(e.ctx, by, id, res.Authenticator.ID, service.ActivateRequest{Ceremony: act.Ceremony, Credential: reg})
}

// appKey returns a new P-256 key and its SubjectPublicKeyInfo, base64url.
func appKey(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return k, b64.EncodeToString(der)
}

// addApp adds and activates an app with PIN pin.
func (e *env) addApp(id string, by domain.Actor, pin string) (service.AuthenticatorView, *ecdsa.PrivateKey, error) {
	e.t.Helper()
	key, pub := appKey(e.t)
	res, err := e.svc.AddAuthenticator(e.ctx, by, id, service.AddRequest{Kind: "app", PublicKey: pub, PIN: pin})
	if err != nil {
		return service.AuthenticatorView{}, nil, err
	}
	e.appPub[res.Authenticator.ID] = pub
	act := res.Activation.(service.AppActivation)
	sig, err := servicetest.SignChallenge(key, act.Challenge)
	if err != nil {
		e.t.Fatal(err)
	}
	v, err := e.svc.Activate(e.ctx, by, id, res.Authenticator.ID, service.ActivateRequest{Ceremony: act.Ceremony, Signature: sig})
	return v, key, err
}

// session returns the session of token as the store has it.
func (e *env) storedSession(token string) (store.Session, error) {
	return e.st.Session(e.ctx, secrets.TokenHash(token), e.clk.Now())
}

// codeDevice returns a code device whose secret derives from serial.
func codeDevice(serial string) servicetest.CodeDevice {
	return servicetest.CodeDevice{Serial: serial, Secret: []byte("secret of " + serial + "!!!!")}
}

// importCode imports devs with a PSKC document.
func (e *env) importCode(devs ...servicetest.CodeDevice) {
	e.t.Helper()
	doc, err := servicetest.PSKC(pskcKey, devs...)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.ImportPSKC(e.ctx, support, doc); err != nil {
		e.t.Fatal(err)
	}
}

// addCode imports, adds and activates code device d (kind code-display).
func (e *env) addCode(id string, by domain.Actor, d servicetest.CodeDevice) (service.AuthenticatorView, error) {
	e.t.Helper()
	e.importCode(d)
	res, err := e.svc.AddAuthenticator(e.ctx, by, id, service.AddRequest{Kind: "code-display", Serial: d.Serial})
	if err != nil {
		return service.AuthenticatorView{}, err
	}
	return e.svc.Activate(e.ctx, by, id, res.Authenticator.ID, service.ActivateRequest{Code: d.Code(e.clk.Now())})
}

// failure returns err as a *service.FailureError, failing the test if it
// is not one.
func failure(t *testing.T, err error) *service.FailureError {
	t.Helper()
	var fe *service.FailureError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *service.FailureError", err)
	}
	return fe
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// authState returns the stored state of authenticator aid.
func (e *env) auth(aid string) service.AuthenticatorView {
	e.t.Helper()
	a, err := e.st.Authenticator(e.ctx, aid)
	if err != nil {
		e.t.Fatal(err)
	}
	id, err := e.svc.Identity(e.ctx, support, a.IdentityID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, v := range id.Authenticators {
		if v.ID == aid {
			return v
		}
	}
	e.t.Fatalf("authenticator %s not in its identity", aid)
	return service.AuthenticatorView{}
}

func chipOpts() chip.Options { return chip.Options{} }

// tamper changes the body of the next-to-last audit record in the SQLite
// file at path, as an attacker with database access would.
func tamper(t *testing.T, path string, edit func([]byte)) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TRIGGER audit_append_only_update`); err != nil {
		t.Fatal(err)
	}
	var seq int64
	var body []byte
	if err := db.QueryRow(`SELECT seq, body FROM audit ORDER BY seq DESC LIMIT 1 OFFSET 1`).Scan(&seq, &body); err != nil {
		t.Fatal(err)
	}
	edit(body)
	if _, err := db.Exec(`UPDATE audit SET body = ? WHERE seq = ?`, body, seq); err != nil {
		t.Fatal(err)
	}
}

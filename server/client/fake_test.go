package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/sim/chip"
)

// fake is a small in-memory stand-in for the authbench server, written to
// the API contract: enough to check what the client sends (client data,
// attestation objects, signatures, codes) and to answer like the server
// does. The lifecycle rules themselves are the real server's; the end to
// end tests of cmd/authbench run against it.
type fake struct {
	t       *testing.T
	srv     *httptest.Server
	rpID    string
	origin  string
	rp      *webauthn.RelyingParty // the server's WebAuthn checks
	support string
	secrets map[string]otp.TOTP // serial -> code device secret (as a PSKC import would give)

	mu         sync.Mutex
	n          int
	identities map[string]*fakeIdentity
	ceremonies map[string]*fakeCeremony
	sessions   map[string]string // token -> identity
	sessionIDs map[string]string // token -> session ID
	bodies     [][]byte
}

type fakeIdentity struct {
	id    string
	auths []*fakeAuth
}

type fakeAuth struct {
	Authenticator
	pub      any // chip: COSE public key bytes; app: *ecdsa.PublicKey
	pin      string
	password string
	totp     otp.TOTP
	highest  uint64
}

type fakeCeremony struct {
	identity, auth string
	kind           string
	challenge      []byte
	login          bool
	password       string // the password proven (a password ceremony, or a factor after it)
	stage          string // "password" or "factor" for logins
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{
		t: t, rpID: "mitid.test", origin: "https://mitid.test", support: "support-token",
		secrets:    map[string]otp.TOTP{},
		identities: map[string]*fakeIdentity{},
		ceremonies: map[string]*fakeCeremony{},
		sessions:   map[string]string{},
		sessionIDs: map[string]string{},
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(chip.TestCACertPEM())
	rp, err := webauthn.New(webauthn.Config{ID: f.rpID, Name: "MitID test", Origins: []string{f.origin}, Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	f.rp = rp
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// client returns a Client of the fake with the support token.
func (f *fake) client(t *testing.T, opts Options) *Client {
	t.Helper()
	if opts.Token == "" {
		opts.Token = f.support
	}
	c, err := New(f.srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fake) next(prefix string) string {
	f.n++
	return fmt.Sprintf("%s-%d", prefix, f.n)
}

type apiErr struct {
	status  int
	code    string
	details map[string]any
}

func (e *apiErr) Error() string { return e.code }

func errf(status int, code string) *apiErr { return &apiErr{status: status, code: code} }

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies = append(f.bodies, body)
	out, err := f.route(r, body)
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		ae, ok := err.(*apiErr)
		if !ok {
			ae = &apiErr{status: 400, code: "bad_request", details: map[string]any{"why": err.Error()}}
		}
		w.WriteHeader(ae.status)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": ae.code, "message": "fake: " + ae.code, "details": ae.details}})
		return
	}
	status := http.StatusOK
	if r.Method == http.MethodPost && (r.URL.Path == "/v1/identities" || strings.HasSuffix(r.URL.Path, "/authenticators")) {
		status = http.StatusCreated
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(out)
}

// decodeStrict decodes a request body, refusing unknown fields as the
// contract says the server does.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

func (f *fake) auth(r *http.Request, identity string) error {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if tok == f.support {
		return nil
	}
	if id, ok := f.sessions[tok]; ok {
		if identity != "" && id == identity {
			return nil
		}
		return errf(403, "forbidden")
	}
	return errf(401, "unauthorized")
}

func (f *fake) route(r *http.Request, body []byte) (any, error) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/healthz":
		return map[string]string{"status": "ok"}, nil
	case r.Method == "POST" && r.URL.Path == "/v1/identities":
		if err := f.auth(r, ""); err != nil {
			return nil, err
		}
		var req CreateIdentityRequest
		if err := decodeStrict(body, &req); err != nil {
			return nil, err
		}
		if req.ID == "" {
			req.ID = f.next("person")
		}
		id := &fakeIdentity{id: req.ID}
		f.identities[req.ID] = id
		if req.Password != "" {
			id.auths = append(id.auths, &fakeAuth{Authenticator: Authenticator{ID: f.next("pw"), IdentityID: req.ID, Kind: KindPassword, State: StateActive}, password: req.Password})
		}
		return f.identityJSON(id), nil
	case r.Method == "POST" && r.URL.Path == "/v1/logout":
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if _, ok := f.sessions[tok]; !ok {
			return nil, errf(401, "unauthorized")
		}
		sid := f.sessionIDs[tok]
		delete(f.sessions, tok)
		return map[string]string{"ended": sid}, nil
	case len(parts) < 3 || parts[0] != "v1" || parts[1] != "identities":
		return nil, errf(404, "not_found")
	}
	id, ok := f.identities[parts[2]]
	if !ok {
		return nil, errf(404, "not_found")
	}
	if len(parts) == 3 && r.Method == "GET" {
		if err := f.auth(r, id.id); err != nil {
			return nil, err
		}
		return f.identityJSON(id), nil
	}
	if len(parts) == 4 && parts[3] == "authenticators" && r.Method == "POST" {
		if err := f.auth(r, id.id); err != nil {
			return nil, err
		}
		var req AddRequest
		if err := decodeStrict(body, &req); err != nil {
			return nil, err
		}
		return f.add(id, req)
	}
	if len(parts) == 5 && parts[3] == "login" && r.Method == "POST" {
		return f.login(id, parts[4], body)
	}
	if parts[3] == "sessions" {
		if err := f.auth(r, id.id); err != nil {
			return nil, err
		}
		return f.sessionOps(r, id, parts)
	}
	if len(parts) < 6 || parts[3] != "authenticators" {
		return nil, errf(404, "not_found")
	}
	var a *fakeAuth
	for _, x := range id.auths {
		if x.ID == parts[4] {
			a = x
		}
	}
	if a == nil {
		return nil, errf(404, "not_found")
	}
	switch strings.Join(parts[5:], "/") {
	case "activate":
		if err := f.auth(r, id.id); err != nil {
			return nil, err
		}
		var req ActivateRequest
		if err := decodeStrict(body, &req); err != nil {
			return nil, err
		}
		if err := f.activate(a, req); err != nil {
			return nil, err
		}
		return a.Authenticator, nil
	case "cancel":
		if err := f.auth(r, id.id); err != nil {
			return nil, err
		}
		if a.State != StatePending {
			return nil, errf(409, "conflict")
		}
		for i, x := range id.auths {
			if x == a {
				id.auths = append(id.auths[:i], id.auths[i+1:]...)
				break
			}
		}
		return map[string]any{"id": a.ID, "cancelled": true}, nil
	case "block":
		if err := f.auth(r, id.id); err != nil {
			return nil, err
		}
		a.State = StateBlocked
		a.Element = Element{Wiped: true}
		return a.Authenticator, nil
	}
	return nil, errf(404, "not_found")
}

func (f *fake) identityJSON(id *fakeIdentity) Identity {
	out := Identity{ID: id.id, State: "active", Authenticators: []Authenticator{}}
	for _, a := range id.auths {
		out.Authenticators = append(out.Authenticators, a.Authenticator)
	}
	return out
}

func (f *fake) add(id *fakeIdentity, req AddRequest) (any, error) {
	a := &fakeAuth{Authenticator: Authenticator{ID: f.next("auth"), IdentityID: id.id, Kind: req.Kind, State: StatePending, Label: req.Label, Serial: req.Serial}}
	out := Added{}
	switch req.Kind {
	case KindChip:
		cer := f.next("cer")
		challenge := []byte("chip challenge " + cer)
		f.ceremonies[cer] = &fakeCeremony{identity: id.id, auth: a.ID, kind: KindChip, challenge: challenge}
		var exclude []webauthn.CredentialDescriptor
		for _, x := range id.auths {
			if x.Kind == KindChip && x.CredentialID != "" {
				exclude = append(exclude, webauthn.CredentialDescriptor{Type: webauthn.TypePublicKey, ID: x.CredentialID})
			}
		}
		o := f.rp.CreationOptions(challenge, webauthn.UserEntity{ID: webauthn.Encode([]byte(id.id)), Name: id.id, DisplayName: id.id}, exclude, time.Minute)
		opts := &o
		out.Activation = Activation{Ceremony: cer, PublicKey: opts}
	case KindCodeDisplay, KindAudioCodeReader:
		s, ok := f.secrets[req.Serial]
		if !ok {
			return nil, errf(404, "not_found")
		}
		a.totp = s
		out.Activation = Activation{Needs: "code"}
	case KindApp:
		pub, err := x509.ParsePKIXPublicKey(req.PublicKey)
		if err != nil {
			return nil, err
		}
		if len(req.PIN) != 6 {
			return nil, errf(400, "bad_request")
		}
		a.pub, a.pin = pub, req.PIN
		cer := f.next("cer")
		challenge := []byte("app challenge " + cer)
		f.ceremonies[cer] = &fakeCeremony{identity: id.id, auth: a.ID, kind: KindApp, challenge: challenge}
		out.Activation = Activation{Ceremony: cer, Challenge: challenge}
	case KindPassword:
		a.password, a.State = req.Password, StateActive
	default:
		return nil, errf(400, "bad_request")
	}
	id.auths = append(id.auths, a)
	out.Authenticator = a.Authenticator
	return out, nil
}

// ceremony takes (uses up) ceremony name for a.
func (f *fake) ceremony(name string, a *fakeAuth, login bool) (*fakeCeremony, error) {
	c, ok := f.ceremonies[name]
	if !ok || c.auth != a.ID || c.login != login {
		return nil, errf(410, "ceremony_expired")
	}
	delete(f.ceremonies, name)
	return c, nil
}

// checkEncoding checks that the client serialised the client data as
// WebAuthn §5.8.1.1 asks, and (for a registration) the attestation object
// in the CTAP2 canonical form; the WebAuthn checks themselves are f.rp's.
func (f *fake) checkEncoding(clientData, attObj, typ string, challenge []byte) error {
	if want := webauthn.Encode(webauthn.NewClientData(typ, challenge, f.origin)); clientData != want {
		return fmt.Errorf("client data %s, want %s", clientData, want)
	}
	if attObj == "" {
		return nil
	}
	raw, err := webauthn.Decode("attestationObject", attObj)
	if err != nil {
		return err
	}
	ao, err := webauthn.ParseAttestationObject(raw)
	if err != nil {
		return err
	}
	again, err := ao.Encode()
	if err != nil || !bytes.Equal(again, raw) {
		return fmt.Errorf("attestation object not canonical: %v", err)
	}
	return nil
}

func (f *fake) activate(a *fakeAuth, req ActivateRequest) error {
	if a.State != StatePending {
		return errf(409, "conflict")
	}
	switch a.Kind {
	case KindChip:
		c, err := f.ceremony(req.Ceremony, a, false)
		if err != nil {
			return err
		}
		cred := req.Credential
		if cred == nil || cred.ClientExtensionResults == nil {
			return fmt.Errorf("credential %+v", cred)
		}
		if err := f.checkEncoding(cred.Response.ClientDataJSON, cred.Response.AttestationObject, webauthn.TypeCreate, c.challenge); err != nil {
			return err
		}
		reg, err := f.rp.VerifyRegistration(context.Background(), cred, c.challenge)
		switch {
		case errors.Is(err, webauthn.ErrUntrusted):
			return errf(400, "attestation_untrusted")
		case err != nil:
			return err
		}
		a.pub = reg.PublicKey
		a.CredentialID = cred.ID
		a.Element = Element{AAGUID: fmt.Sprintf("%x", reg.AAGUID), SignCount: reg.SignCount, AttestationFormat: reg.Format, AttestationTrusted: &reg.Trusted}
	case KindCodeDisplay, KindAudioCodeReader:
		m, err := a.totp.Verify(req.Code, time.Now(), 1, a.highest)
		if err != nil {
			return errf(401, "wrong_code")
		}
		a.highest = m.Step
	case KindApp:
		c, err := f.ceremony(req.Ceremony, a, false)
		if err != nil {
			return err
		}
		h := sha256.Sum256(c.challenge)
		if !ecdsa.VerifyASN1(a.pub.(*ecdsa.PublicKey), h[:], req.Signature) {
			return errf(401, "bad_signature")
		}
	}
	a.State = StateActive
	return nil
}

// login serves the login endpoints: password, second, app, finish.
func (f *fake) login(id *fakeIdentity, step string, body []byte) (any, error) {
	find := func(aid string) *fakeAuth {
		for _, x := range id.auths {
			if x.ID == aid {
				return x
			}
		}
		return nil
	}
	switch step {
	case "password":
		var req struct {
			Password string `json:"password"`
			Second   string `json:"second,omitempty"`
		}
		if err := decodeStrict(body, &req); err != nil {
			return nil, err
		}
		var pw *fakeAuth
		for _, x := range id.auths {
			if x.Kind == KindPassword {
				pw = x
			}
		}
		if pw == nil {
			return nil, errf(404, "not_found")
		}
		if err := refusal(pw); err != nil {
			return nil, err
		}
		if req.Password != pw.password {
			return nil, f.failed(pw, "wrong_password")
		}
		pw.Failures = 0
		cer := f.next("pwcer")
		f.ceremonies[cer] = &fakeCeremony{identity: id.id, auth: pw.ID, kind: KindPassword, login: true, stage: "password", password: pw.ID}
		out := PasswordStep{Ceremony: cer, ExpiresAt: time.Now().Add(time.Minute).UTC(), SecondFactors: []SecondFactor{}}
		for _, x := range id.auths {
			if (x.Kind == KindChip || x.Kind == KindCodeDisplay || x.Kind == KindAudioCodeReader) && (x.State == StateActive || x.State == StateSuspended) {
				out.SecondFactors = append(out.SecondFactors, SecondFactor{ID: x.ID, Kind: x.Kind, State: x.State, Serial: x.Serial})
			}
		}
		if req.Second != "" {
			a := find(req.Second)
			if a == nil {
				return nil, errf(404, "not_found")
			}
			next, err := f.beginFactor(id, a, pw.ID)
			if err != nil {
				return nil, err
			}
			out.Next = next
		}
		return out, nil
	case "second":
		var req struct {
			Ceremony      string `json:"ceremony"`
			Authenticator string `json:"authenticator"`
		}
		if err := decodeStrict(body, &req); err != nil {
			return nil, err
		}
		c, ok := f.ceremonies[req.Ceremony]
		if !ok || c.stage != "password" || c.identity != id.id {
			return nil, errf(410, "ceremony_expired")
		}
		a := find(req.Authenticator)
		if a == nil {
			return nil, errf(404, "not_found")
		}
		return f.beginFactor(id, a, c.password)
	case "app":
		var req struct {
			Authenticator string `json:"authenticator"`
		}
		if err := decodeStrict(body, &req); err != nil {
			return nil, err
		}
		a := find(req.Authenticator)
		if a == nil || a.Kind != KindApp {
			return nil, errf(404, "not_found")
		}
		return f.beginFactor(id, a, "")
	case "finish":
		var req FinishLoginRequest
		if err := decodeStrict(body, &req); err != nil {
			return nil, err
		}
		c, ok := f.ceremonies[req.Ceremony]
		if !ok || c.stage != "factor" || c.identity != id.id {
			return nil, errf(410, "ceremony_expired")
		}
		return f.finish(find(c.auth), c.password, req)
	}
	return nil, errf(404, "not_found")
}

// refusal is the answer for an authenticator that takes no attempts.
func refusal(a *fakeAuth) error {
	switch a.State {
	case StateSuspended:
		return errf(403, "authenticator_suspended")
	case StateBlocked:
		return errf(403, "authenticator_blocked")
	case StatePending:
		return errf(403, "authenticator_pending")
	}
	return nil
}

// beginFactor starts the check of factor a (after password pw, "" for an
// app).
func (f *fake) beginFactor(id *fakeIdentity, a *fakeAuth, pw string) (*FactorChallenge, error) {
	if err := refusal(a); err != nil {
		return nil, err
	}
	cer := f.next("cer")
	challenge := []byte("login challenge " + cer)
	f.ceremonies[cer] = &fakeCeremony{identity: id.id, auth: a.ID, kind: a.Kind, challenge: challenge, login: true, stage: "factor", password: pw}
	out := &FactorChallenge{Ceremony: cer, ExpiresAt: time.Now().Add(time.Minute).UTC(), Authenticator: a.ID, Kind: a.Kind}
	switch a.Kind {
	case KindChip:
		o := f.rp.RequestOptions(challenge, []webauthn.CredentialDescriptor{{Type: webauthn.TypePublicKey, ID: a.CredentialID}}, time.Minute)
		out.PublicKey = &o
	case KindApp:
		out.Challenge = challenge
	}
	return out, nil
}

// sessionOps serves GET .../sessions and DELETE .../sessions/{sid}.
func (f *fake) sessionOps(r *http.Request, id *fakeIdentity, parts []string) (any, error) {
	switch {
	case len(parts) == 4 && r.Method == "GET":
		out := struct {
			Sessions []SessionInfo `json:"sessions"`
		}{Sessions: []SessionInfo{}}
		for tok, who := range f.sessions {
			if who == id.id {
				out.Sessions = append(out.Sessions, SessionInfo{ID: f.sessionIDs[tok], Level: LevelTwoFactor})
			}
		}
		return out, nil
	case len(parts) == 5 && r.Method == "DELETE":
		for tok, sid := range f.sessionIDs {
			if sid == parts[4] && f.sessions[tok] == id.id {
				delete(f.sessions, tok)
				return map[string]string{"ended": sid}, nil
			}
		}
	}
	return nil, errf(404, "not_found")
}

// failed records a failed attempt as the contract describes it.
func (f *fake) failed(a *fakeAuth, code string) error {
	a.Failures++
	if a.Failures >= 3 {
		a.State, a.Failures = StateSuspended, 0
		a.Suspensions++
	}
	return &apiErr{status: 401, code: code, details: map[string]any{"failures": a.Failures, "state": a.State}}
}

func (f *fake) finish(a *fakeAuth, pw string, req FinishLoginRequest) (any, error) {
	if a == nil {
		return nil, errf(404, "not_found")
	}
	c, err := f.ceremony(req.Ceremony, a, true)
	if err != nil {
		return nil, err
	}
	if err := refusal(a); err != nil {
		return nil, err
	}
	switch a.Kind {
	case KindChip:
		cred := req.Credential
		if cred == nil {
			return nil, errf(400, "bad_request")
		}
		if err := f.checkEncoding(cred.Response.ClientDataJSON, "", webauthn.TypeGet, c.challenge); err != nil {
			return nil, err
		}
		id, _ := webauthn.Decode("id", a.CredentialID)
		ad, err := f.rp.VerifyAssertion(cred, c.challenge, webauthn.Credential{ID: id, PublicKey: a.pub.([]byte)})
		switch {
		case errors.Is(err, webauthn.ErrMismatch):
			return nil, f.failed(a, "bad_signature")
		case err != nil:
			return nil, errf(400, "bad_request")
		}
		if ad.SignCount != 0 && ad.SignCount <= a.Element.SignCount {
			return nil, f.failed(a, "sign_count")
		}
		a.Element.SignCount = ad.SignCount
	case KindCodeDisplay, KindAudioCodeReader:
		m, err := a.totp.Verify(req.Code, time.Now(), 1, a.highest)
		if errors.Is(err, otp.ErrReplayed) {
			return nil, errf(401, "code_replayed")
		}
		if err != nil {
			return nil, f.failed(a, "wrong_code")
		}
		a.highest = m.Step
	case KindApp:
		h := sha256.Sum256(c.challenge)
		if !ecdsa.VerifyASN1(a.pub.(*ecdsa.PublicKey), h[:], req.Signature) {
			return nil, errf(401, "bad_signature") // not counted
		}
		if req.PIN != a.pin {
			return nil, f.failed(a, "wrong_pin")
		}
	}
	a.Failures = 0
	tok := f.next("session")
	sid := f.next("ses")
	f.sessions[tok] = a.IdentityID
	f.sessionIDs[tok] = sid
	proofs := []string{a.ID}
	if pw != "" {
		proofs = []string{pw, a.ID}
	}
	return Session{Token: tok, ID: sid, Level: LevelTwoFactor, ExpiresAt: time.Now().Add(15 * time.Minute).UTC(),
		Authenticators: proofs, Authenticator: a.Authenticator}, nil
}

package webauthn_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/sim/chip"
)

// A whole ceremony with a simulated chip, as a browser on
// http://localhost:8080 runs it: the options, Create, the registration,
// Get, the assertions.
func TestCeremony(t *testing.T) {
	rp := newRP(t, webauthn.Config{Roots: testRoots(t)})
	c := newChip(t, "chip-1", chip.Options{})
	opts := rp.CreationOptions(regChallenge, user, []webauthn.CredentialDescriptor{{Type: "public-key", ID: "AAAA"}}, 0)
	if opts.RP.ID != rpID || opts.Attestation != "direct" || opts.AuthenticatorSelection.UserVerification != "discouraged" ||
		len(opts.PubKeyCredParams) != 2 || opts.PubKeyCredParams[0].Alg != webauthn.AlgES256 || len(opts.ExcludeCredentials) != 1 {
		t.Fatalf("%+v", opts)
	}
	resp, err := webauthn.Create(t.Context(), c, &opts, origin)
	if err != nil {
		t.Fatal(err)
	}
	resp.Response.Transports = []string{"usb", "nfc"} // what a browser adds
	reg, err := rp.VerifyRegistration(t.Context(), resp, regChallenge)
	if err != nil {
		t.Fatal(err)
	}
	if reg.Format != "packed" || reg.AttestationType != "basic_full" || !reg.Trusted || len(reg.Chain) != 1 ||
		reg.Algorithm != webauthn.AlgES256 || reg.BackupEligible || webauthn.Encode(reg.CredentialID) != resp.RawID ||
		strings.Join(reg.Transports, ",") != "usb,nfc" {
		t.Fatalf("%+v", reg)
	}
	cred := webauthn.Credential{ID: reg.CredentialID, PublicKey: reg.PublicKey}
	last := reg.SignCount
	for i := range 3 {
		ro := rp.RequestOptions(loginChallenge, []webauthn.CredentialDescriptor{{Type: "public-key", ID: resp.RawID}}, 0)
		as, err := webauthn.Get(t.Context(), c, &ro, origin)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rp.VerifyAssertion(as, loginChallenge, cred)
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		if got.SignCount <= last || got.UserVerified || got.BackupEligible {
			t.Fatalf("login %d: %+v after %d", i, got, last)
		}
		last = got.SignCount
	}
	// The chip refuses to register again for the same user: Create passes
	// the exclude list on.
	opts = rp.CreationOptions(regChallenge, user, []webauthn.CredentialDescriptor{{Type: "public-key", ID: resp.RawID}}, 0)
	if _, err := webauthn.Create(t.Context(), c, &opts, origin); !errorIs(err, ctap2.ErrCredentialExcluded) {
		t.Fatalf("excluded credential: %v", err)
	}
}

// What a browser adds that the relying party must take: extra members in
// the client data, the convenience members of the response, an
// attachment, client extension results, a user handle.
func TestBrowserResponse(t *testing.T) {
	rp := newRP(t, webauthn.Config{Roots: testRoots(t)})
	c := newChip(t, "chip-1", chip.Options{})
	// Chromium adds a member that reminds relying parties not to compare
	// client data as a string.
	cd := []byte(`{"type":"webauthn.create","challenge":"` + webauthn.Encode(regChallenge) + `","origin":"` + origin +
		`","crossOrigin":false,"other_keys_can_be_added_here":"do not compare clientDataJSON against a template. See https://goo.gl/yabPex"}`)
	resp := register(t, c, cd, nil)
	resp.AuthenticatorAttachment = "cross-platform"
	resp.ClientExtensionResults = map[string]json.RawMessage{"credProps": json.RawMessage(`{"rk":false}`)}
	resp.Response.PublicKeyAlgorithm = -7
	resp.Response.PublicKey = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"
	resp.Response.AuthenticatorData = "AAAA"
	reg, err := rp.VerifyRegistration(t.Context(), resp, regChallenge)
	if err != nil {
		t.Fatal(err)
	}
	as := assert(t, c, reg.CredentialID, nil, nil)
	as.AuthenticatorAttachment = "cross-platform"
	as.Response.UserHandle = webauthn.Encode([]byte("user-1"))
	got, err := rp.VerifyAssertion(as, loginChallenge, webauthn.Credential{ID: reg.CredentialID, PublicKey: reg.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.UserHandle, []byte("user-1")) {
		t.Fatalf("%+v", got)
	}
}

// Every check of a registration, with the error a caller branches on and
// the name of the failed check.
func TestRegistrationChecks(t *testing.T) {
	with := clientDataWith(webauthn.TypeCreate, regChallenge)
	tests := []struct {
		name   string
		cfg    webauthn.Config
		chip   chip.Options
		cd     []byte
		edit   func(*ctap2.Attestation)
		mutate func(*webauthn.RegistrationResponse)
		err    error
		check  string
	}{
		{name: "type", cd: with(func(c *webauthn.ClientData) { c.Type = webauthn.TypeGet }), err: webauthn.ErrMismatch, check: webauthn.CheckType},
		{name: "challenge", cd: with(func(c *webauthn.ClientData) { c.Challenge = webauthn.Encode([]byte("another")) }), err: webauthn.ErrMismatch, check: webauthn.CheckChallenge},
		{name: "padded challenge", cd: with(func(c *webauthn.ClientData) { c.Challenge += "=" }), err: webauthn.ErrMismatch, check: webauthn.CheckChallenge},
		{name: "challenge of the same length", cd: with(func(c *webauthn.ClientData) { c.Challenge = webauthn.Encode(loginChallenge) }), err: webauthn.ErrMismatch, check: webauthn.CheckChallenge},
		{name: "origin", cd: with(func(c *webauthn.ClientData) { c.Origin = "https://evil.example" }), err: webauthn.ErrMismatch, check: webauthn.CheckOrigin},
		{name: "origin port", cd: with(func(c *webauthn.ClientData) { c.Origin = "http://localhost:8081" }), err: webauthn.ErrMismatch, check: webauthn.CheckOrigin},
		{name: "cross origin", cd: with(func(c *webauthn.ClientData) { c.CrossOrigin = true }), err: webauthn.ErrMismatch, check: webauthn.CheckCrossOrigin},
		{name: "top origin", cd: with(func(c *webauthn.ClientData) { c.TopOrigin = "https://evil.example" }), err: webauthn.ErrMismatch, check: webauthn.CheckTopOrigin},
		{name: "rp id", chip: chip.Options{Faults: chip.Faults{WrongRPIDHash: true}}, err: webauthn.ErrMismatch, check: webauthn.CheckRPID},
		{name: "no user presence", edit: func(a *ctap2.Attestation) { a.AuthData[32] &^= ctap2.FlagUP }, err: webauthn.ErrMismatch, check: webauthn.CheckUserPresence},
		{name: "backup state without eligibility", edit: func(a *ctap2.Attestation) { a.AuthData[32] |= ctap2.FlagBS }, err: webauthn.ErrMismatch, check: webauthn.CheckBackupState},
		{name: "backup eligible", edit: beFlag, err: webauthn.ErrUntrusted},
		{name: "backup eligible allowed, then the signature", cfg: webauthn.Config{AllowBackupEligible: true}, edit: beFlag, err: webauthn.ErrUntrusted},
		{name: "backup eligible allowed", cfg: webauthn.Config{AllowBackupEligible: true, AllowUntrusted: true}, chip: chip.Options{Attestation: chip.AttestationNone}, edit: beFlag},
		{name: "forged attestation signature", chip: chip.Options{Faults: chip.Faults{BadSignature: true}}, err: webauthn.ErrUntrusted},
		{name: "forged signature, untrusted allowed", cfg: webauthn.Config{AllowUntrusted: true}, chip: chip.Options{Faults: chip.Faults{BadSignature: true}}, err: webauthn.ErrUntrusted},
		{name: "format tpm", edit: func(a *ctap2.Attestation) { a.Format = "tpm" }, err: webauthn.ErrUntrusted},
		{name: "none", chip: chip.Options{Attestation: chip.AttestationNone}, err: webauthn.ErrUntrusted},
		{name: "self attestation", chip: chip.Options{Attestation: chip.AttestationSelf}, err: webauthn.ErrUntrusted},
		{name: "self attestation allowed", cfg: webauthn.Config{AllowUntrusted: true}, chip: chip.Options{Attestation: chip.AttestationSelf}},
		{name: "serial attestation", chip: chip.Options{Attestation: chip.AttestationSerial}},
		{name: "none allowed", cfg: webauthn.Config{AllowUntrusted: true}, chip: chip.Options{Attestation: chip.AttestationNone}},
		{name: "none with a statement", cfg: webauthn.Config{AllowUntrusted: true}, chip: chip.Options{Attestation: chip.AttestationNone},
			edit: func(a *ctap2.Attestation) { a.Statement.Sig = []byte{1} }, err: webauthn.ErrUntrusted},
		{name: "no roots", cfg: webauthn.Config{Roots: nil}, err: webauthn.ErrUntrusted},
		{name: "no roots, untrusted allowed", cfg: webauthn.Config{AllowUntrusted: true}},
		{name: "self attestation, bad signature", cfg: webauthn.Config{AllowUntrusted: true}, chip: chip.Options{Attestation: chip.AttestationNone}, edit: func(a *ctap2.Attestation) {
			a.Format, a.Statement = "packed", ctap2.AttestationStatement{Alg: -7, Sig: []byte{0x30, 0x00}}
		}, err: webauthn.ErrUntrusted},
		{name: "packed without alg", edit: func(a *ctap2.Attestation) { a.Statement.Alg = 0 }, err: webauthn.ErrUntrusted},
		{name: "algorithm not offered", cfg: webauthn.Config{Algorithms: []int64{webauthn.AlgEdDSA}}, err: webauthn.ErrInvalid},
		{name: "ids differ", mutate: func(r *webauthn.RegistrationResponse) { r.ID = "AAAA" }, err: webauthn.ErrInvalid},
		{name: "other rawId", mutate: func(r *webauthn.RegistrationResponse) { r.ID, r.RawID = "AAAA", "AAAA" }, err: webauthn.ErrInvalid},
		{name: "type password", mutate: func(r *webauthn.RegistrationResponse) { r.Type = "password" }, err: webauthn.ErrInvalid},
		{name: "padded base64", mutate: func(r *webauthn.RegistrationResponse) { r.Response.ClientDataJSON += "==" }, err: webauthn.ErrInvalid},
		{name: "base64 with a newline", mutate: func(r *webauthn.RegistrationResponse) { r.Response.ClientDataJSON = "\n" + r.Response.ClientDataJSON }, err: webauthn.ErrInvalid},
		{name: "client data not JSON", cd: []byte("{{{"), err: webauthn.ErrInvalid},
		{name: "client data array", cd: []byte("[1,2]"), err: webauthn.ErrInvalid},
		{name: "client data empty", cd: []byte("{}"), err: webauthn.ErrInvalid},
		{name: "attestation object missing", mutate: func(r *webauthn.RegistrationResponse) { r.Response.AttestationObject = "" }, err: webauthn.ErrInvalid},
		{name: "attestation object junk", mutate: func(r *webauthn.RegistrationResponse) { r.Response.AttestationObject = "AAAA" }, err: webauthn.ErrInvalid},
		{name: "x5c junk", edit: func(a *ctap2.Attestation) { a.Statement.X5C = [][]byte{{0x30, 0x00}} }, err: webauthn.ErrInvalid},
		{name: "x5c too long", edit: func(a *ctap2.Attestation) {
			a.Statement.X5C = [][]byte{a.Statement.X5C[0], a.Statement.X5C[0], a.Statement.X5C[0], a.Statement.X5C[0], a.Statement.X5C[0]}
		}, err: webauthn.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if !strings.HasPrefix(tt.name, "no roots") {
				cfg.Roots = testRoots(t)
			}
			rp := newRP(t, cfg)
			c := newChip(t, "chip-1", tt.chip)
			resp := register(t, c, tt.cd, tt.edit)
			if tt.mutate != nil {
				tt.mutate(resp)
			}
			reg, err := rp.VerifyRegistration(t.Context(), resp, regChallenge)
			wantErr(t, err, tt.err, tt.check)
			if err != nil && reg != nil {
				t.Fatal("a registration with an error")
			}
			want := cfg.Roots != nil && tt.chip.Attestation != chip.AttestationNone && tt.chip.Attestation != chip.AttestationSelf
			if err == nil && reg.Trusted != want {
				t.Fatalf("trusted %v", reg.Trusted)
			}
		})
	}
}

// Every check of an authentication. A failed check is ErrMismatch (the
// caller counts it as a failed attempt); a malformed response, or one for
// another credential, is ErrInvalid (nothing to count).
func TestAssertionChecks(t *testing.T) {
	rp := newRP(t, webauthn.Config{Roots: testRoots(t)})
	c := newChip(t, "chip-1", chip.Options{})
	reg, err := rp.VerifyRegistration(t.Context(), register(t, c, nil, nil), regChallenge)
	if err != nil {
		t.Fatal(err)
	}
	cred := webauthn.Credential{ID: reg.CredentialID, PublicKey: reg.PublicKey}
	with := clientDataWith(webauthn.TypeGet, loginChallenge)
	tests := []struct {
		name   string
		cd     []byte
		edit   func(*ctap2.Assertion)
		mutate func(*webauthn.AuthenticationResponse)
		cred   func(*webauthn.Credential)
		err    error
		check  string
	}{
		{name: "good"},
		{name: "type", cd: with(func(c *webauthn.ClientData) { c.Type = webauthn.TypeCreate }), err: webauthn.ErrMismatch, check: webauthn.CheckType},
		{name: "challenge", cd: with(func(c *webauthn.ClientData) { c.Challenge = webauthn.Encode(regChallenge) }), err: webauthn.ErrMismatch, check: webauthn.CheckChallenge},
		{name: "origin", cd: with(func(c *webauthn.ClientData) { c.Origin = "http://localhost" }), err: webauthn.ErrMismatch, check: webauthn.CheckOrigin},
		{name: "cross origin", cd: with(func(c *webauthn.ClientData) { c.CrossOrigin = true }), err: webauthn.ErrMismatch, check: webauthn.CheckCrossOrigin},
		{name: "rp id", edit: func(a *ctap2.Assertion) { a.AuthData[0] ^= 1 }, err: webauthn.ErrMismatch, check: webauthn.CheckRPID},
		{name: "no user presence", edit: func(a *ctap2.Assertion) { a.AuthData[32] &^= ctap2.FlagUP }, err: webauthn.ErrMismatch, check: webauthn.CheckUserPresence},
		{name: "backup eligible now", edit: func(a *ctap2.Assertion) { a.AuthData[32] |= ctap2.FlagBE }, err: webauthn.ErrMismatch, check: webauthn.CheckBackupEligible},
		{name: "backup eligible no more", cred: func(c *webauthn.Credential) { c.BackupEligible = true }, err: webauthn.ErrMismatch, check: webauthn.CheckBackupEligible},
		{name: "backup state", edit: func(a *ctap2.Assertion) { a.AuthData[32] |= ctap2.FlagBS }, err: webauthn.ErrMismatch, check: webauthn.CheckBackupState},
		{name: "signature", edit: func(a *ctap2.Assertion) { a.Signature[len(a.Signature)-1] ^= 1 }, err: webauthn.ErrMismatch, check: webauthn.CheckSignature},
		{name: "signature not DER", edit: func(a *ctap2.Assertion) { a.Signature = []byte{0x30, 0x02, 0x02, 0x00} }, err: webauthn.ErrMismatch, check: webauthn.CheckSignature},
		{name: "counter changed after signing", edit: func(a *ctap2.Assertion) { a.AuthData[36]++ }, err: webauthn.ErrMismatch, check: webauthn.CheckSignature},
		{name: "other credential", mutate: func(r *webauthn.AuthenticationResponse) { r.ID, r.RawID = "AAAA", "AAAA" }, err: webauthn.ErrInvalid},
		{name: "ids differ", mutate: func(r *webauthn.AuthenticationResponse) { r.ID = "AAAA" }, err: webauthn.ErrInvalid},
		{name: "authenticator data short", mutate: func(r *webauthn.AuthenticationResponse) { r.Response.AuthenticatorData = "AQID" }, err: webauthn.ErrInvalid},
		{name: "authenticator data extra", mutate: func(r *webauthn.AuthenticationResponse) { r.Response.AuthenticatorData += "AAAA" }, err: webauthn.ErrInvalid},
		{name: "client data junk", cd: []byte("{{{"), err: webauthn.ErrInvalid},
		{name: "signature base64", mutate: func(r *webauthn.AuthenticationResponse) { r.Response.Signature = "!!" }, err: webauthn.ErrInvalid},
		{name: "huge signature", mutate: func(r *webauthn.AuthenticationResponse) { r.Response.Signature = webauthn.Encode(make([]byte, 4096)) }, err: webauthn.ErrInvalid},
		{name: "user handle base64", mutate: func(r *webauthn.AuthenticationResponse) { r.Response.UserHandle = "***" }, err: webauthn.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := assert(t, c, cred.ID, tt.cd, tt.edit)
			if tt.mutate != nil {
				tt.mutate(resp)
			}
			cr := cred
			if tt.cred != nil {
				tt.cred(&cr)
			}
			as, err := rp.VerifyAssertion(resp, loginChallenge, cr)
			wantErr(t, err, tt.err, tt.check)
			if err != nil && as != nil {
				t.Fatal("an assertion with an error")
			}
		})
	}
	// A stored key that does not parse is the server's problem, not a
	// failed attempt: no *Error.
	_, err = rp.VerifyAssertion(assert(t, c, cred.ID, nil, nil), loginChallenge, webauthn.Credential{ID: cred.ID, PublicKey: []byte{0xa0}})
	if err == nil || errorIs(err, webauthn.ErrMismatch) || errorIs(err, webauthn.ErrInvalid) {
		t.Fatalf("corrupt stored key: %v", err)
	}
}

func TestNewConfig(t *testing.T) {
	for _, o := range []string{"localhost", "https://", "https://x/path", "https://x?q=1", "::"} {
		if _, err := webauthn.New(webauthn.Config{ID: "x", Origins: []string{o}}); !errorIs(err, webauthn.ErrInvalid) {
			t.Errorf("origin %q: %v", o, err)
		}
	}
	if _, err := webauthn.New(webauthn.Config{}); !errorIs(err, webauthn.ErrInvalid) {
		t.Errorf("no RP ID: %v", err)
	}
	rp, err := webauthn.New(webauthn.Config{ID: "mitid.example", Origins: []string{"https://mitid.example/"}})
	if err != nil || rp.ID() != "mitid.example" {
		t.Fatal(err)
	}
	// The default origin is https://ID; a trailing slash is dropped.
	o := rp.CreationOptions(nil, user, nil, 0)
	if o.RP.Name != "mitid.example" || o.ExcludeCredentials == nil {
		t.Errorf("%+v", o)
	}
}

// beFlag sets the BE flag of the attestation's authenticator data.
func beFlag(a *ctap2.Attestation) { a.AuthData[32] |= ctap2.FlagBE }

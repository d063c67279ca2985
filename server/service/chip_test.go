package service_test

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/metadata/providers/memory"
	"github.com/google/uuid"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
	"github.com/authbench/authbench/sim/chip"
)

func TestChipRegistrationAndLogin(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	c := newChip(t, "chip-1", chipOpts())
	res := must[service.AddResult](t)(e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "chip", Label: "keys"}))
	act := res.Activation.(service.ChipActivation)
	if res.Authenticator.State != domain.StatePending || act.PublicKey.RP.ID != "localhost" ||
		act.PublicKey.Attestation != "direct" || act.PublicKey.AuthenticatorSelection.UserVerification != "discouraged" {
		t.Fatalf("%+v", res)
	}
	reg, err := servicetest.Register(e.ctx, c, origin, act.PublicKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.svc.Activate(e.ctx, support, "alice", res.Authenticator.ID, service.ActivateRequest{Ceremony: act.Ceremony, Credential: reg})
	if err != nil {
		t.Fatal(err)
	}
	sum, ok := v.Element.(service.ChipSummary)
	if v.State != domain.StateActive || !ok || !sum.AttestationTrusted || sum.AttestationFormat != "packed" ||
		sum.ChipSerial != "" || v.CredentialID != reg.ID || v.Label != "keys" {
		t.Fatalf("%+v", v)
	}
	for i := 1; i <= 3; i++ {
		r, err := e.loginChip("alice", v.ID, c)
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		if got := r.Authenticator.Element.(service.ChipSummary).SignCount; got != uint32(i) {
			t.Fatalf("login %d: sign count %d", i, got)
		}
	}
}

// DESIGN §1: a non-zero sign counter that does not increase is a failure,
// audited; the login is refused.
func TestChipCloneSignal(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	c := newChip(t, "stuck", chip.Options{Faults: chip.Faults{CounterStuck: true}})
	v := must[service.AuthenticatorView](t)(e.addChip("alice", support, c, nil))
	if _, err := e.loginChip("alice", v.ID, c); err != nil {
		t.Fatal(err)
	}
	_, err := e.loginChip("alice", v.ID, c)
	fe := failure(t, err)
	if !errors.Is(err, domain.ErrCloneSuspected) || fe.Cause != domain.CauseSignCount || fe.Failures != 1 {
		t.Fatalf("%v", err)
	}
	p := must[service.AuditPage](t)(e.svc.ListAudit(e.ctx, support, "alice", 0, 1000))
	last := p.Events[len(p.Events)-1]
	if last.Type != string(domain.EventLoginFailed) || last.Details["cause"] != "sign-count" ||
		last.Details["stored_count"] != "1" || last.Details["received_count"] != "1" {
		t.Fatalf("%+v", last)
	}
}

// A chip restored from an old copy (a clone) reports counters that go
// backwards.
func TestChipRestoredCopyIsRefused(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	c := newChip(t, "orig", chipOpts())
	v := must[service.AuthenticatorView](t)(e.addChip("alice", support, c, nil))
	var saved bytes.Buffer
	if err := c.Save(&saved); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		must[service.LoginResult](t)(e.loginChip("alice", v.ID, c))
	}
	clone, err := chip.Load(&saved, chip.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer clone.Close()
	_, err = e.loginChip("alice", v.ID, clone)
	if !errors.Is(err, domain.ErrCloneSuspected) {
		t.Fatalf("clone: %v", err)
	}
}

// DESIGN §1: a blocked chip's element is wiped; the same chip can be added
// again with a new credential; the old credential ID is refused forever.
func TestChipBlockAndReAdd(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	c := newChip(t, "chip-1", chipOpts())
	old := must[service.AuthenticatorView](t)(e.addChip("alice", support, c, nil))
	_, owner := e.owner("alice")
	if _, err := e.svc.Block(e.ctx, owner, "alice", old.ID, service.BlockRequest{Reason: "misuse"}); !errors.Is(err, service.ErrInvalid) {
		t.Fatalf("owner reason misuse: %v", err)
	}
	b := must[service.AuthenticatorView](t)(e.svc.Block(e.ctx, owner, "alice", old.ID, service.BlockRequest{Reason: "lost"}))
	if b.State != domain.StateBlocked || b.Element != (service.WipedSummary{Wiped: true}) {
		t.Fatalf("%+v", b)
	}
	if _, err := e.svc.LoginPassword(e.ctx, "alice", service.PasswordLoginRequest{Password: thePassword, Second: old.ID}); !errors.Is(err, domain.ErrBlocked) {
		t.Fatalf("login with blocked chip: %v", err)
	}
	// The same physical chip: a new credential, a new element.
	again, err := e.addChip("alice", owner, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.CredentialID == old.CredentialID || again.Serial != old.Serial {
		t.Fatalf("re-added %+v, old %+v", again, old)
	}
	must[service.LoginResult](t)(e.loginChip("alice", again.ID, c))
	// A chip reset to the state that made the old credential makes it
	// again: refused.
	must[service.AuthenticatorView](t)(e.svc.Block(e.ctx, support, "alice", again.ID, service.BlockRequest{Reason: "compromised"}))
	twin := newChip(t, "chip-1", chipOpts())
	if _, err := e.addChip("alice", support, twin, nil); !errors.Is(err, domain.ErrCredentialRevoked) {
		t.Fatalf("old credential again: %v", err)
	}
}

func TestChipAttestationTrust(t *testing.T) {
	tests := []struct {
		name        string
		opts        []envOption
		chip        chip.Options
		edit        func(*ctap2.Attestation)
		wantErr     error
		wantTrusted bool
		wantFormat  string
	}{
		{name: "packed, trusted", wantTrusted: true, wantFormat: "packed"},
		{name: "packed, no roots", opts: []envOption{noRoots()}, wantErr: service.ErrAttestationUntrusted},
		{name: "packed, no roots, none allowed", opts: []envOption{noRoots(), allowNone()}, wantFormat: "packed"},
		{name: "none refused", chip: chip.Options{AttestationNone: true}, wantErr: service.ErrAttestationUntrusted},
		{name: "none allowed", opts: []envOption{allowNone()}, chip: chip.Options{AttestationNone: true}, wantFormat: "none"},
		{name: "forged signature", edit: func(a *ctap2.Attestation) { a.Statement.Sig[len(a.Statement.Sig)-1] ^= 1 }, wantErr: service.ErrAttestationUntrusted},
		{name: "unknown format", edit: func(a *ctap2.Attestation) { a.Format = "tpm" }, wantErr: service.ErrAttestationUntrusted},
		{name: "backup eligible", opts: []envOption{allowNone()}, chip: chip.Options{AttestationNone: true},
			edit: setFlags(ctap2.FlagBE | ctap2.FlagBS), wantErr: service.ErrAttestationUntrusted},
		{name: "no user presence", opts: []envOption{allowNone()}, chip: chip.Options{AttestationNone: true},
			edit: clearFlags(ctap2.FlagUP), wantErr: service.ErrInvalid},
		{name: "self attestation", opts: []envOption{allowNone()}, chip: chip.Options{AttestationNone: true},
			edit: selfAttest, wantErr: service.ErrAttestationUntrusted},
		{name: "wrong RP", chip: chip.Options{Faults: chip.Faults{WrongRPIDHash: true}}, wantErr: service.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			e.identity("alice")
			c := newChip(t, "chip-1", tt.chip)
			v, err := e.addChip("alice", support, c, tt.edit)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := v.Element.(service.ChipSummary)
			if s.AttestationTrusted != tt.wantTrusted || s.AttestationFormat != tt.wantFormat {
				t.Fatalf("%+v", s)
			}
		})
	}
}

func setFlags(f byte) func(*ctap2.Attestation) {
	return func(a *ctap2.Attestation) { a.AuthData[32] |= f }
}

func clearFlags(f byte) func(*ctap2.Attestation) {
	return func(a *ctap2.Attestation) { a.AuthData[32] &^= f }
}

// selfAttest turns a none attestation into a packed one with a bogus
// signature and no x5c.
func selfAttest(a *ctap2.Attestation) {
	a.Format = "packed"
	a.Statement = ctap2.AttestationStatement{Alg: ctap2.AlgES256, Sig: []byte{0x30, 0x00}}
}

// The client data must belong to this ceremony, this origin, this type.
func TestChipRegistrationClientData(t *testing.T) {
	tests := []struct {
		name string
		edit func(cd *webauthn.ClientData)
	}{
		{"origin", func(cd *webauthn.ClientData) { cd.Origin = "https://evil.example" }},
		{"type", func(cd *webauthn.ClientData) { cd.Type = "webauthn.get" }},
		{"challenge", func(cd *webauthn.ClientData) { cd.Challenge = b64.EncodeToString([]byte("another challenge")) }},
		{"cross origin", func(cd *webauthn.ClientData) { cd.CrossOrigin = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.identity("alice")
			c := newChip(t, "chip-1", chipOpts())
			res := must[service.AddResult](t)(e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "chip"}))
			act := res.Activation.(service.ChipActivation)
			o := act.PublicKey
			cd := webauthn.ClientData{Type: "webauthn.create", Challenge: o.Challenge, Origin: origin}
			tt.edit(&cd)
			// Register with the edited client data: sign its hash.
			reg := registerWithClientData(t, e, c, o, cd)
			_, err := e.svc.Activate(e.ctx, support, "alice", res.Authenticator.ID, service.ActivateRequest{Ceremony: act.Ceremony, Credential: reg})
			if !errors.Is(err, service.ErrInvalid) {
				t.Fatalf("%v", err)
			}
		})
	}
}

func registerWithClientData(t *testing.T, e *env, c *chip.Chip, o service.CreationOptions, cd webauthn.ClientData) *service.RegistrationResponse {
	t.Helper()
	raw, _ := json.Marshal(cd)
	reg, err := servicetest.Register(e.ctx, c, origin, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The attestation signs the original client data hash; the server
	// checks the client data first, so the mismatch is found there.
	reg.Response.ClientDataJSON = b64.EncodeToString(raw)
	return reg
}

func TestChipAssertionFailuresCount(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	c := newChip(t, "chip-1", chipOpts())
	v := must[service.AuthenticatorView](t)(e.addChip("alice", support, c, nil))
	for i := 1; i <= 3; i++ {
		b := e.factor("alice", v.ID)
		resp, err := servicetest.Assert(e.ctx, c, origin, b.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := b64.DecodeString(resp.Response.Signature)
		sig[len(sig)-1] ^= 0x55
		resp.Response.Signature = b64.EncodeToString(sig)
		_, err = e.svc.FinishLogin(e.ctx, "alice", service.FinishLoginRequest{Ceremony: b.Ceremony, Credential: resp})
		fe := failure(t, err)
		if fe.Cause != domain.CauseBadSignature || fe.Failures != i {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if e.auth(v.ID).State != domain.StateSuspended {
		t.Fatal("not suspended")
	}
	// Malformed input is refused without counting.
	e2 := newEnv(t)
	e2.identity("bob")
	c2 := newChip(t, "chip-2", chipOpts())
	v2 := must[service.AuthenticatorView](t)(e2.addChip("bob", support, c2, nil))
	b := e2.factor("bob", v2.ID)
	resp, _ := servicetest.Assert(e2.ctx, c2, origin, b.PublicKey)
	resp.Response.AuthenticatorData = "@@@"
	if _, err := e2.svc.FinishLogin(e2.ctx, "bob", service.FinishLoginRequest{Ceremony: b.Ceremony, Credential: resp}); !errors.Is(err, service.ErrInvalid) {
		t.Fatalf("%v", err)
	}
	if e2.auth(v2.ID).Failures != 0 {
		t.Fatal("malformed input counted")
	}
}

// Options.AttestationMetadata (FIDO MDS3, as go-webauthn's providers give
// it) makes a chip whose model's entry holds its CA trusted without
// AttestationRoots, and refuses a model whose entry reports it revoked.
func TestChipAttestationMetadata(t *testing.T) {
	block, _ := pem.Decode(chip.TestCACertPEM())
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		status metadata.AuthenticatorStatus
		err    error
	}{{metadata.FidoCertifiedL1, nil}, {metadata.Revoked, service.ErrAttestationUntrusted}} {
		t.Run(string(tt.status), func(t *testing.T) {
			c := newChip(t, "chip-1", chipOpts())
			info, err := c.Info(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			aaguid := uuid.UUID(info.AAGUID)
			p, err := memory.New(memory.WithMetadata(map[uuid.UUID]*metadata.Entry{aaguid: {
				AaGUID: aaguid,
				MetadataStatement: metadata.Statement{AaGUID: aaguid, AttestationTypes: metadata.AuthenticatorAttestationTypes{metadata.BasicFull},
					AttestationRootCertificates: []*x509.Certificate{ca}},
				StatusReports: []metadata.StatusReport{{Status: tt.status}},
			}}))
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, noRoots(), func(o *service.Options) { o.AttestationMetadata = p })
			e.identity("alice")
			v, err := e.addChip("alice", support, c, nil)
			if !errors.Is(err, tt.err) {
				t.Fatalf("got %v, want %v", err, tt.err)
			}
			if err == nil && !v.Element.(service.ChipSummary).AttestationTrusted {
				t.Fatalf("%+v", v)
			}
		})
	}
}

// A browser on a local server sends its own origin (scheme, host and
// port): the service takes what Options.RPOrigins lists, and nothing else.
func TestChipBrowserOrigin(t *testing.T) {
	e := newEnv(t, func(o *service.Options) { o.RPOrigins = []string{"http://localhost:8080"} })
	e.identity("alice")
	c := newChip(t, "chip-1", chipOpts())
	for _, tt := range []struct {
		origin string
		err    error
	}{{"https://localhost", service.ErrInvalid}, {"http://localhost:8081", service.ErrInvalid}, {"http://localhost:8080", nil}} {
		res := must[service.AddResult](t)(e.svc.AddAuthenticator(e.ctx, support, "alice", service.AddRequest{Kind: "chip"}))
		act := res.Activation.(service.ChipActivation)
		reg, err := servicetest.Register(e.ctx, c, tt.origin, act.PublicKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Activate(e.ctx, support, "alice", res.Authenticator.ID, service.ActivateRequest{Ceremony: act.Ceremony, Credential: reg})
		if !errors.Is(err, tt.err) {
			t.Fatalf("%s: %v, want %v", tt.origin, err, tt.err)
		}
	}
}

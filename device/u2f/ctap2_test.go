package u2f_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/u2f"
	"github.com/authbench/authbench/sim/chip"
)

// recorder is a Messenger to an authenticator's ServeU2F that keeps the
// instructions and control bytes it carried.
type recorder struct {
	serve func(context.Context, []byte) []byte
	mu    sync.Mutex
	sent  []string
}

func (r *recorder) APDU(ctx context.Context, req []byte) ([]byte, error) {
	name := map[byte]string{u2f.InsRegister: "register", u2f.InsAuthenticate: "authenticate", u2f.InsVersion: "version"}[req[1]]
	if req[1] == u2f.InsAuthenticate {
		name += map[byte]string{u2f.ControlCheckOnly: "/check", u2f.ControlEnforcePresence: "/enforce", u2f.ControlDontEnforcePresence: "/dont-enforce"}[req[2]]
	}
	r.mu.Lock()
	r.sent = append(r.sent, name)
	r.mu.Unlock()
	return r.serve(ctx, req), nil
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sent
	r.sent = nil
	return s
}

func cdh(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func es256() []ctap2.CredentialParameters {
	return []ctap2.CredentialParameters{{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgES256}}
}

func makeReq(rp string) *ctap2.MakeCredentialRequest {
	return &ctap2.MakeCredentialRequest{
		ClientDataHash:   cdh("make " + rp),
		RP:               ctap2.RPEntity{ID: rp},
		User:             ctap2.UserEntity{ID: []byte("user")},
		PubKeyCredParams: es256(),
	}
}

func allow(ids ...[]byte) []ctap2.CredentialDescriptor {
	var l []ctap2.CredentialDescriptor
	for _, id := range ids {
		l = append(l, ctap2.CredentialDescriptor{Type: ctap2.CredentialTypePublicKey, ID: id})
	}
	return l
}

// TestChipOverU2FOnlySim drives a U2F-only simulated chip through the CTAP
// 2.1 §10 translation and checks each mapping: makeCredential becomes
// U2F_REGISTER with a "fido-u2f" attestation (§10.2), an excludeList hit
// becomes a check-only authenticate, a dummy registration (for the touch)
// and CTAP2_ERR_CREDENTIAL_EXCLUDED, getAssertion becomes a check-only then
// an enforce-presence authenticate whose signature verifies as a WebAuthn
// assertion (§10.3); what U2F cannot do is refused before anything is sent.
func TestChipOverU2FOnlySim(t *testing.T) {
	sim, err := chip.New(chip.Options{Profile: chip.ProfileU2F, Seed: []byte("translation")})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	rec := &recorder{serve: sim.ServeU2F}
	c := u2f.NewChip(u2f.NewClient(rec, &u2f.Options{PollInterval: time.Millisecond}))
	ctx := context.Background()
	var _ device.Chip = c
	if c.Protocols() != device.ProfileU2FOnly || c.U2F() == nil {
		t.Fatal("Protocols or U2F")
	}

	info, err := c.Info(ctx)
	if err != nil || device.ProtocolsOf(info.Versions) != device.ProfileU2FOnly || info.Options["rk"] || !info.Options["up"] || len(info.AAGUID) != 16 {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	if sent := rec.take(); len(sent) != 0 {
		t.Fatalf("Info sent %v", sent)
	}

	req := makeReq("example.dk")
	att, err := c.MakeCredential(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if sent := rec.take(); len(sent) != 1 || sent[0] != "register" {
		t.Errorf("makeCredential sent %v", sent)
	}
	ad, err := ctap2.ParseAuthData(att.AuthData)
	if err != nil || att.Format != ctap2.FormatFIDOU2F || ad.Flags != ctap2.FlagUP|ctap2.FlagAT ||
		ad.RPIDHash != ctap2.RPIDHash("example.dk") || ad.SignCount != 0 || ad.AttestedCredential.AAGUID != [16]byte{} {
		t.Fatalf("attestation %s, authData %+v, %v", att.Format, ad, err)
	}
	id, pub := ad.AttestedCredential.CredentialID, ad.AttestedCredential.PublicKey
	// The fido-u2f statement verifies (WebAuthn §8.6): the U2F signed data
	// rebuilt from the authenticator data.
	key, _ := ctap2.ParsePublicKey(pub)
	point, _ := key.(interface{ Bytes() ([]byte, error) }).Bytes()
	reg := &u2f.RegisterResponse{KeyHandle: id, AttestationCert: att.Statement.X5C[0], Signature: att.Statement.Sig}
	copy(reg.PublicKey[:], point)
	var challenge [32]byte
	copy(challenge[:], req.ClientDataHash)
	cert, err := reg.Verify(ad.RPIDHash, challenge)
	if err != nil || !cert.Equal(sim.Certificate()) {
		t.Fatalf("fido-u2f statement: %v", err)
	}

	// Excluded: check-only finds it, a dummy registration waits for the
	// touch, and the answer is CREDENTIAL_EXCLUDED.
	ex := makeReq("example.dk")
	ex.ExcludeList = allow([]byte("not ours"), make([]byte, 300), id)
	if _, err := c.MakeCredential(ctx, ex); !errors.Is(err, ctap2.ErrCredentialExcluded) {
		t.Fatalf("excluded: %v", err)
	}
	if sent := rec.take(); !equal(sent, "authenticate/check", "authenticate/check", "register") {
		t.Errorf("excluded makeCredential sent %v", sent)
	}

	// getAssertion: the unknown key handle is skipped, the known one signs.
	get := &ctap2.GetAssertionRequest{RPID: "example.dk", ClientDataHash: cdh("get"), AllowList: allow([]byte("unknown"), id)}
	as, err := c.GetAssertion(ctx, get)
	if err != nil {
		t.Fatal(err)
	}
	if sent := rec.take(); !equal(sent, "authenticate/check", "authenticate/check", "authenticate/enforce") {
		t.Errorf("getAssertion sent %v", sent)
	}
	if err := ctap2.VerifyAssertion(pub, as.AuthData, get.ClientDataHash, as.Signature); err != nil {
		t.Fatalf("assertion signature: %v", err)
	}
	gad, _ := ctap2.ParseAuthData(as.AuthData)
	if !bytes.Equal(as.Credential.ID, id) || gad.Flags != ctap2.FlagUP || gad.SignCount != 1 {
		t.Errorf("assertion of %x, flags %02x, count %d", as.Credential.ID, gad.Flags, gad.SignCount)
	}
	get.Options = map[string]bool{"up": false}
	as, err = c.GetAssertion(ctx, get)
	if err != nil {
		t.Fatal(err)
	}
	rec.take()
	if gad, _ := ctap2.ParseAuthData(as.AuthData); gad.Flags != 0 || gad.SignCount != 2 {
		t.Errorf("up=false: flags %02x count %d", gad.Flags, gad.SignCount)
	}

	// Refused, most before anything is sent.
	otherAlg := makeReq("example.dk")
	otherAlg.PubKeyCredParams = []ctap2.CredentialParameters{{Type: ctap2.CredentialTypePublicKey, Alg: -257}}
	rk := makeReq("example.dk")
	rk.Options = map[string]bool{"rk": true}
	pin := makeReq("example.dk")
	pin.PINUVAuthParam = []byte{}
	rec.take()
	for _, tt := range []struct {
		name string
		call func() error
		want error
		sent int
	}{
		{"RS256 only", func() error { return errOf(c.MakeCredential(ctx, otherAlg)) }, ctap2.ErrUnsupportedAlgorithm, 0},
		{"resident", func() error { return errOf(c.MakeCredential(ctx, rk)) }, ctap2.ErrUnsupportedOption, 0},
		{"zero-length pinUvAuthParam", func() error { return errOf(c.MakeCredential(ctx, pin)) }, ctap2.ErrUnsupportedOption, 0},
		{"uv", func() error {
			return errOf(c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.dk", ClientDataHash: cdh("x"), AllowList: allow(id), Options: map[string]bool{"uv": true}}))
		}, ctap2.ErrUnsupportedOption, 0},
		{"no allowList", func() error {
			return errOf(c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.dk", ClientDataHash: cdh("x")}))
		}, ctap2.ErrNoCredentials, 0},
		{"another RP", func() error {
			return errOf(c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "other.example", ClientDataHash: cdh("x"), AllowList: allow(id)}))
		}, ctap2.ErrNoCredentials, 1},
		{"bad request", func() error { return errOf(c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.dk"})) }, ctap2.ErrMissingParameter, 0},
	} {
		err := tt.call()
		sent := rec.take()
		if !errors.Is(err, tt.want) || len(sent) != tt.sent {
			t.Errorf("%s: %v after %v, want %v after %d requests", tt.name, err, sent, tt.want, tt.sent)
		}
	}
}

// TestChipPresence: a registration waits for a touch, polling, and gives
// up with ctx's error when none comes. The context ends at the third
// request for a touch, so the test does not depend on the machine's speed.
func TestChipPresence(t *testing.T) {
	sim, err := chip.New(chip.Options{Profile: chip.ProfileU2F, Seed: []byte("presence"), Presence: chip.Never})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	var ups int
	base, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	ctx = ctap2.WithKeepalive(ctx, func(s ctap2.KeepaliveStatus) {
		if s == ctap2.StatusUPNeeded {
			if ups++; ups == 3 {
				cancel()
			}
		}
	})
	c := u2f.NewChip(u2f.NewClient(&recorder{serve: sim.ServeU2F}, &u2f.Options{PollInterval: 5 * time.Millisecond}))
	_, err = c.MakeCredential(ctx, makeReq("example.dk"))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, u2f.ErrPresenceRequired) || ups != 3 {
		t.Fatalf("MakeCredential without a touch: %v after %d UPNEEDED", err, ups)
	}
}

func errOf[T any](_ T, err error) error { return err }

func equal(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

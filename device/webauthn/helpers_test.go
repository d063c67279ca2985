package webauthn_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"testing"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/sim/chip"
)

// The relying party of the tests: a local server as a browser sees it.
const (
	rpID   = "localhost"
	origin = "http://localhost:8080"
)

// testRoots is the simulated chips' attestation CA.
func testRoots(t testing.TB) *x509.CertPool {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(chip.TestCACertPEM()) {
		t.Fatal("test CA unreadable")
	}
	return roots
}

func newRP(t testing.TB, c webauthn.Config) *webauthn.RelyingParty {
	t.Helper()
	if c.ID == "" {
		c.ID = rpID
	}
	if c.Origins == nil {
		c.Origins = []string{origin}
	}
	rp, err := webauthn.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

func newChip(t testing.TB, seed string, opts chip.Options) *chip.Chip {
	t.Helper()
	opts.Seed = []byte(seed)
	c, err := chip.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var (
	regChallenge   = []byte("a registration challenge, 32 B..")
	loginChallenge = []byte("a login challenge, 32 bytes long")
	user           = webauthn.UserEntity{ID: webauthn.Encode([]byte("user-1")), Name: "alice", DisplayName: "Alice"}
)

// register makes a registration response as a browser at origin would,
// with the client data raw (nil: the right one) and edit applied to the
// chip's attestation before it is encoded.
func register(t testing.TB, c *chip.Chip, raw []byte, edit func(*ctap2.Attestation)) *webauthn.RegistrationResponse {
	t.Helper()
	if raw == nil {
		raw = webauthn.NewClientData(webauthn.TypeCreate, regChallenge, origin)
	}
	h := sha256.Sum256(raw)
	att, err := c.MakeCredential(t.Context(), &ctap2.MakeCredentialRequest{
		ClientDataHash:   h[:],
		RP:               ctap2.RPEntity{ID: rpID, Name: rpID},
		User:             ctap2.UserEntity{ID: []byte("user-1"), Name: "alice", DisplayName: "Alice"},
		PubKeyCredParams: []ctap2.CredentialParameters{{Type: "public-key", Alg: ctap2.AlgES256}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ad, err := ctap2.ParseAuthData(att.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(att)
	}
	obj, err := webauthn.EncodeAttestationObject(att)
	if err != nil {
		t.Fatal(err)
	}
	id := webauthn.Encode(ad.AttestedCredential.CredentialID)
	return &webauthn.RegistrationResponse{ID: id, RawID: id, Type: "public-key",
		Response:               webauthn.AttestationResponse{ClientDataJSON: webauthn.Encode(raw), AttestationObject: webauthn.Encode(obj), Transports: []string{"usb"}},
		ClientExtensionResults: map[string]json.RawMessage{}}
}

// assert makes an authentication response for credential cred, with the
// client data raw (nil: the right one) and edit applied to the assertion.
func assert(t testing.TB, c *chip.Chip, cred []byte, raw []byte, edit func(*ctap2.Assertion)) *webauthn.AuthenticationResponse {
	t.Helper()
	if raw == nil {
		raw = webauthn.NewClientData(webauthn.TypeGet, loginChallenge, origin)
	}
	h := sha256.Sum256(raw)
	as, err := c.GetAssertion(t.Context(), &ctap2.GetAssertionRequest{RPID: rpID, ClientDataHash: h[:],
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: cred}}})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(as)
	}
	id := webauthn.Encode(cred)
	return &webauthn.AuthenticationResponse{ID: id, RawID: id, Type: "public-key",
		Response: webauthn.AssertionResponse{ClientDataJSON: webauthn.Encode(raw), AuthenticatorData: webauthn.Encode(as.AuthData),
			Signature: webauthn.Encode(as.Signature)},
		ClientExtensionResults: map[string]json.RawMessage{}}
}

// wantErr fails unless err is an *Error of kind (nil: no error) with check.
func wantErr(t testing.TB, err, kind error, check string) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var we *webauthn.Error
	if !errors.As(err, &we) || !errors.Is(err, kind) || we.Check != check {
		t.Fatalf("got %v, want %v with check %q", err, kind, check)
	}
	if we.Reason == "" {
		t.Fatalf("%v: no reason", err)
	}
}

// clientDataWith returns a function that makes the client data of a
// ceremony of type typ with challenge from origin, changed by f.
func clientDataWith(typ string, challenge []byte) func(f func(*webauthn.ClientData)) []byte {
	return func(f func(*webauthn.ClientData)) []byte {
		cd := webauthn.ClientData{Type: typ, Challenge: webauthn.Encode(challenge), Origin: origin}
		f(&cd)
		b, err := json.Marshal(cd)
		if err != nil {
			panic(err)
		}
		return b
	}
}

func errorIs(err, target error) bool { return errors.Is(err, target) }

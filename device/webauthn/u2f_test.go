package webauthn_test

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/u2f"
	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/sim/chip"
)

// A browser drives a U2F-only key with U2F messages and builds the
// WebAuthn response itself (CTAP 2.1 §10.2, §10.3; WebAuthn §8.6): a
// "fido-u2f" attestation object with a zero AAGUID and the key as COSE,
// and for a login authenticator data made of the application parameter,
// the user presence byte and the counter. The relying party takes both.
func TestBrowserU2FConversion(t *testing.T) {
	rp := newRP(t, webauthn.Config{Roots: testRoots(t)})
	c := newChip(t, "u2f", chip.Options{})
	app := ctap2.RPIDHash(rpID)

	cd := webauthn.NewClientData(webauthn.TypeCreate, regChallenge, origin)
	reg, err := c.Register(t.Context(), &u2f.RegisterRequest{Challenge: sha256.Sum256(cd), Application: app})
	if err != nil {
		t.Fatal(err)
	}
	key, err := reg.Key()
	if err != nil {
		t.Fatal(err)
	}
	ad := &ctap2.AuthData{RPIDHash: app, Flags: ctap2.FlagUP | ctap2.FlagAT,
		AttestedCredential: &ctap2.AttestedCredentialData{CredentialID: reg.KeyHandle, PublicKey: ctap2.EncodeES256PublicKey(key)}}
	adRaw, err := ad.Encode()
	if err != nil {
		t.Fatal(err)
	}
	obj, err := webauthn.EncodeAttestationObject(&ctap2.Attestation{Format: "fido-u2f", AuthData: adRaw,
		Statement: ctap2.AttestationStatement{Sig: reg.Signature, X5C: [][]byte{reg.AttestationCert}}})
	if err != nil {
		t.Fatal(err)
	}
	id := webauthn.Encode(reg.KeyHandle)
	got, err := rp.VerifyRegistration(t.Context(), &webauthn.RegistrationResponse{ID: id, RawID: id, Type: "public-key",
		Response: webauthn.AttestationResponse{ClientDataJSON: webauthn.Encode(cd), AttestationObject: webauthn.Encode(obj), Transports: []string{"usb"}}},
		regChallenge)
	if err != nil {
		t.Fatal(err)
	}
	if got.Format != "fido-u2f" || !got.Trusted || got.AAGUID != ([16]byte{}) || got.SignCount != 0 {
		t.Fatalf("%+v", got)
	}

	cd = webauthn.NewClientData(webauthn.TypeGet, loginChallenge, origin)
	as, err := c.Authenticate(t.Context(), &u2f.AuthenticateRequest{Control: u2f.ControlEnforcePresence,
		Challenge: sha256.Sum256(cd), Application: app, KeyHandle: reg.KeyHandle})
	if err != nil {
		t.Fatal(err)
	}
	adRaw = append(app[:], as.UserPresence)
	adRaw = binary.BigEndian.AppendUint32(adRaw, as.Counter)
	a, err := rp.VerifyAssertion(&webauthn.AuthenticationResponse{ID: id, RawID: id, Type: "public-key",
		Response: webauthn.AssertionResponse{ClientDataJSON: webauthn.Encode(cd), AuthenticatorData: webauthn.Encode(adRaw),
			Signature: webauthn.Encode(as.Signature)}}, loginChallenge, webauthn.Credential{ID: got.CredentialID, PublicKey: got.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	if a.SignCount != as.Counter || a.SignCount == 0 {
		t.Fatalf("%+v", a)
	}
}

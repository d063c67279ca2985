package webauthn_test

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/webauthn"
)

// specVectors are the test vectors of WebAuthn Level 3 §16, as
// testdata/webauthn/spec-vectors.json holds them (hex).
type specVectors struct {
	RPID          string       `json:"rpId"`
	Origin        string       `json:"origin"`
	AttestationCA string       `json:"attestationCA"`
	Vectors       []specVector `json:"vectors"`
}

type specVector struct {
	Name         string `json:"name"`
	Title        string `json:"title"`
	Registration struct {
		Challenge         string `json:"challenge"`
		CredentialID      string `json:"credential_id"`
		AAGUID            string `json:"aaguid"`
		ClientDataJSON    string `json:"clientDataJSON"`
		AttestationObject string `json:"attestationObject"`
	} `json:"registration"`
	Authentication struct {
		Challenge         string `json:"challenge"`
		ClientDataJSON    string `json:"clientDataJSON"`
		AuthenticatorData string `json:"authenticatorData"`
		Signature         string `json:"signature"`
	} `json:"authentication"`
}

func readVectors(t testing.TB) *specVectors {
	t.Helper()
	b, err := os.ReadFile("../../testdata/webauthn/spec-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v specVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	return &v
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// registration and authentication return the responses of a vector, as a
// browser would send them.
func (v *specVector) registration(t testing.TB) *webauthn.RegistrationResponse {
	id := webauthn.Encode(unhex(t, v.Registration.CredentialID))
	return &webauthn.RegistrationResponse{ID: id, RawID: id, Type: webauthn.TypePublicKey,
		Response: webauthn.AttestationResponse{ClientDataJSON: webauthn.Encode(unhex(t, v.Registration.ClientDataJSON)),
			AttestationObject: webauthn.Encode(unhex(t, v.Registration.AttestationObject))}}
}

func (v *specVector) authentication(t testing.TB) *webauthn.AuthenticationResponse {
	id := webauthn.Encode(unhex(t, v.Registration.CredentialID))
	return &webauthn.AuthenticationResponse{ID: id, RawID: id, Type: webauthn.TypePublicKey,
		Response: webauthn.AssertionResponse{ClientDataJSON: webauthn.Encode(unhex(t, v.Authentication.ClientDataJSON)),
			AuthenticatorData: webauthn.Encode(unhex(t, v.Authentication.AuthenticatorData)),
			Signature:         webauthn.Encode(unhex(t, v.Authentication.Signature))}}
}

// credential returns the credential of a vector's registration, read from
// its attestation object whether or not the relying party accepts it.
func (v *specVector) credential(t testing.TB) webauthn.Credential {
	ao, err := webauthn.ParseAttestationObject(unhex(t, v.Registration.AttestationObject))
	if err != nil {
		t.Fatal(err)
	}
	ad, err := ctap2.ParseAuthData(ao.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	return webauthn.Credential{ID: ad.AttestedCredential.CredentialID, PublicKey: ad.AttestedCredential.PublicKey,
		BackupEligible: ad.Flags&ctap2.FlagBE != 0}
}

// TestSpecVectors runs every registration and authentication of WebAuthn
// Level 3 §16 through the relying party, once with a policy that lets
// every verifiable vector through (all of go-webauthn's algorithms, the
// §16.1 root, synced and untrusted credentials allowed) and once with the
// policy of a MitID chip (ES256 and EdDSA, attestation required, no
// backup-eligible credentials).
func TestSpecVectors(t *testing.T) {
	vs := readVectors(t)
	ca, err := x509.ParseCertificate(unhex(t, vs.AttestationCA))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	open := newRP(t, webauthn.Config{ID: vs.RPID, Origins: []string{vs.Origin}, Roots: roots, AllowUntrusted: true,
		AllowBackupEligible: true, Algorithms: []int64{-7, -35, -36, -257, -8, -19}})
	chipPolicy := newRP(t, webauthn.Config{ID: vs.RPID, Origins: []string{vs.Origin}, Roots: roots})

	type want struct {
		err     error  // kind; nil for success
		check   string // of an ErrMismatch
		format  string
		typ     string // attestation type
		trusted bool
	}
	tests := map[string]struct {
		open, chip want // registration under each policy
		login      want // authentication (same under both)
	}{
		"none-es256": {open: want{format: "none", typ: "none"}, chip: want{err: webauthn.ErrUntrusted}},
		"packed-self-es256": {open: want{format: "packed", typ: "basic_surrogate"},
			chip: want{err: webauthn.ErrUntrusted}},
		"none-es256-crossOrigin": {open: want{err: webauthn.ErrMismatch, check: webauthn.CheckCrossOrigin},
			chip: want{err: webauthn.ErrMismatch, check: webauthn.CheckCrossOrigin}, login: want{err: webauthn.ErrMismatch, check: webauthn.CheckCrossOrigin}},
		"none-es256-topOrigin": {open: want{err: webauthn.ErrMismatch, check: webauthn.CheckCrossOrigin},
			chip: want{err: webauthn.ErrMismatch, check: webauthn.CheckCrossOrigin}, login: want{err: webauthn.ErrMismatch, check: webauthn.CheckCrossOrigin}},
		"none-es256-long-credential-id": {open: want{format: "none", typ: "none"}, chip: want{err: webauthn.ErrUntrusted}},
		"packed-es256":                  {open: want{format: "packed", typ: "basic_full", trusted: true}, chip: want{err: webauthn.ErrUntrusted}}, // BE set
		"packed-es384":                  {open: want{format: "packed", typ: "basic_full", trusted: true}, chip: want{err: webauthn.ErrUntrusted}},
		"packed-es512":                  {open: want{format: "packed", typ: "basic_full", trusted: true}, chip: want{err: webauthn.ErrUntrusted}},
		"packed-rs256":                  {open: want{format: "packed", typ: "basic_full", trusted: true}, chip: want{err: webauthn.ErrUntrusted}},
		// Ed25519 without BE: the one packed vector a MitID policy takes.
		"packed-eddsa": {open: want{format: "packed", typ: "basic_full", trusted: true}, chip: want{format: "packed", typ: "basic_full", trusted: true}},
		// Ed448 (COSE -53) is not implemented by go-webauthn.
		"packed-ed448": {open: want{err: webauthn.ErrInvalid}, chip: want{err: webauthn.ErrUntrusted}, login: want{err: errStoredKey}},
		// Formats a chip does not use: refused, whatever the policy.
		"tpm-es256":         {open: want{err: webauthn.ErrUntrusted}, chip: want{err: webauthn.ErrUntrusted}},
		"android-key-es256": {open: want{err: webauthn.ErrUntrusted}, chip: want{err: webauthn.ErrUntrusted}},
		"apple-es256":       {open: want{err: webauthn.ErrUntrusted}, chip: want{err: webauthn.ErrUntrusted}},
		// What a browser sends for a U2F key.
		"fido-u2f-es256": {open: want{format: "fido-u2f", typ: "basic_full", trusted: true}, chip: want{format: "fido-u2f", typ: "basic_full", trusted: true}},
	}
	for _, v := range vs.Vectors {
		tt, ok := tests[v.Name]
		if !ok {
			t.Errorf("%s (%s): no expectation", v.Name, v.Title)
			continue
		}
		delete(tests, v.Name)
		t.Run(v.Name, func(t *testing.T) {
			for _, p := range []struct {
				name string
				rp   *webauthn.RelyingParty
				want want
			}{{"open", open, tt.open}, {"chip", chipPolicy, tt.chip}} {
				reg, err := p.rp.VerifyRegistration(t.Context(), v.registration(t), unhex(t, v.Registration.Challenge))
				if p.want.err != nil {
					wantErr(t, err, p.want.err, p.want.check)
					continue
				}
				if err != nil {
					t.Fatalf("%s policy: %v", p.name, err)
				}
				if reg.Format != p.want.format || reg.AttestationType != p.want.typ || reg.Trusted != p.want.trusted ||
					!bytes.Equal(reg.CredentialID, unhex(t, v.Registration.CredentialID)) ||
					!bytes.Equal(reg.AAGUID[:], unhex(t, v.Registration.AAGUID)) {
					t.Errorf("%s policy: %+v", p.name, reg)
				}
			}
			_, err := open.VerifyAssertion(v.authentication(t), unhex(t, v.Authentication.Challenge), v.credential(t))
			switch {
			case tt.login.err == errStoredKey:
				var we *webauthn.Error
				if err == nil || errors.As(err, &we) {
					t.Errorf("login with a key go-webauthn cannot parse: %v, want a stored key error", err)
				}
			default:
				wantErr(t, err, tt.login.err, tt.login.check)
			}
			// The same authentication with a flipped signature bit fails
			// its signature check.
			if tt.login.err == nil {
				bad := v.authentication(t)
				sig := unhex(t, v.Authentication.Signature)
				sig[len(sig)-1] ^= 1
				bad.Response.Signature = webauthn.Encode(sig)
				_, err := open.VerifyAssertion(bad, unhex(t, v.Authentication.Challenge), v.credential(t))
				wantErr(t, err, webauthn.ErrMismatch, webauthn.CheckSignature)
			}
		})
	}
	for name := range tests {
		t.Errorf("vector %s is missing from testdata", name)
	}
}

// errStoredKey marks an expected error that is not a refusal of the
// response but of the stored key.
var errStoredKey = errors.New("stored key")

// TestClientDataVectors: NewClientData reproduces byte for byte the
// clientDataJSON of every §16 ceremony a plain same-origin page makes (no
// extraData, not cross-origin), and ParseClientData reads all of them.
func TestClientDataVectors(t *testing.T) {
	n := 0
	for _, v := range readVectors(t).Vectors {
		for _, c := range []struct{ typ, cd, challenge string }{
			{webauthn.TypeCreate, v.Registration.ClientDataJSON, v.Registration.Challenge},
			{webauthn.TypeGet, v.Authentication.ClientDataJSON, v.Authentication.Challenge},
		} {
			raw := unhex(t, c.cd)
			cd, err := webauthn.ParseClientData(raw)
			if err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			if cd.Type != c.typ || cd.Challenge != webauthn.Encode(unhex(t, c.challenge)) || cd.Origin != "https://example.org" {
				t.Errorf("%s: %+v", v.Name, cd)
			}
			if cd.CrossOrigin || strings.Contains(string(raw), "extraData") {
				continue
			}
			if got := webauthn.NewClientData(c.typ, unhex(t, c.challenge), cd.Origin); !bytes.Equal(got, raw) {
				t.Errorf("%s %s:\n got %s\nwant %s", v.Name, c.typ, got, raw)
			}
			n++
		}
	}
	if n < 5 {
		t.Fatalf("only %d plain client data vectors", n)
	}
}

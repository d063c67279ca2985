package webauthn_test

import (
	"testing"

	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/sim/chip"
)

// A browser drives a U2F-only key with U2F messages and builds the
// WebAuthn response itself (CTAP 2.1 §10; WebAuthn §8.6): a "fido-u2f"
// attestation object with a zero AAGUID and the key as COSE, and for a
// login authenticator data made of the application parameter, the user
// presence byte and the counter. The tree's one translation (u2f.Chip,
// behind a U2F-only chip's Host) does the same; the relying party takes
// it, with a batch certificate (trusted), a self-signed one (self
// attestation: not trusted) or the chip's own (trusted).
func TestU2FOnlyChip(t *testing.T) {
	for _, tt := range []struct {
		name        string
		attestation chip.Attestation
		trusted     bool
	}{
		{"batch", chip.AttestationBatch, true},
		{"serial", chip.AttestationSerial, true},
		{"self", chip.AttestationSelf, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rp := newRP(t, webauthn.Config{Roots: testRoots(t), AllowUntrusted: true})
			c := newChip(t, "u2f", chip.Options{Profile: chip.ProfileU2F, Attestation: tt.attestation})
			host := c.Host()
			opts := rp.CreationOptions(regChallenge, user, nil, 0)
			resp, err := webauthn.Create(t.Context(), host, &opts, origin)
			if err != nil {
				t.Fatal(err)
			}
			reg, err := rp.VerifyRegistration(t.Context(), resp, regChallenge)
			if err != nil {
				t.Fatal(err)
			}
			if reg.Format != "fido-u2f" || reg.Trusted != tt.trusted || reg.AAGUID != ([16]byte{}) || reg.Algorithm != webauthn.AlgES256 {
				t.Fatalf("%+v", reg)
			}
			ro := rp.RequestOptions(loginChallenge, []webauthn.CredentialDescriptor{{Type: "public-key", ID: resp.RawID}}, 0)
			as, err := webauthn.Get(t.Context(), host, &ro, origin)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rp.VerifyAssertion(as, loginChallenge, webauthn.Credential{ID: reg.CredentialID, PublicKey: reg.PublicKey})
			if err != nil {
				t.Fatal(err)
			}
			if got.SignCount == 0 {
				t.Fatalf("%+v", got)
			}
			// Without AllowUntrusted, self attestation is refused.
			strict := newRP(t, webauthn.Config{Roots: testRoots(t)})
			resp, err = webauthn.Create(t.Context(), host, &opts, origin)
			if err != nil {
				t.Fatal(err)
			}
			_, err = strict.VerifyRegistration(t.Context(), resp, regChallenge)
			if (err == nil) != tt.trusted {
				t.Fatalf("strict: %v", err)
			}
		})
	}
}

package webauthn

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/internal/cputime"
	"github.com/authbench/authbench/sim/chip"
)

// benchCeremony is a registration and an assertion of a simulated chip
// (packed attestation chained to the test CA, ES256).
type benchCeremony struct {
	rp    *RelyingParty
	reg   *RegistrationResponse
	regCh []byte
	as    *AuthenticationResponse
	asCh  []byte
	cred  Credential
	key   *ecdsa.PublicKey
}

func newBenchCeremony(b *testing.B) *benchCeremony {
	c, err := chip.New(chip.Options{Seed: []byte("bench")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(chip.TestCACertPEM())
	rp, err := New(Config{ID: "localhost", Origins: []string{"http://localhost:8080"}, Roots: roots})
	if err != nil {
		b.Fatal(err)
	}
	bc := &benchCeremony{rp: rp, regCh: []byte("a registration challenge, 32 B.."), asCh: []byte("a login challenge, 32 bytes long")}
	opts := rp.CreationOptions(bc.regCh, UserEntity{ID: Encode([]byte("user")), Name: "alice", DisplayName: "alice"}, nil, 0)
	if bc.reg, err = Create(b.Context(), c, &opts, "http://localhost:8080"); err != nil {
		b.Fatal(err)
	}
	r, err := rp.VerifyRegistration(b.Context(), bc.reg, bc.regCh)
	if err != nil {
		b.Fatal(err)
	}
	bc.cred = Credential{ID: r.CredentialID, PublicKey: r.PublicKey}
	ro := rp.RequestOptions(bc.asCh, []CredentialDescriptor{{Type: TypePublicKey, ID: bc.reg.RawID}}, 0)
	if bc.as, err = Get(b.Context(), c, &ro, "http://localhost:8080"); err != nil {
		b.Fatal(err)
	}
	k, err := ctap2.ParsePublicKey(r.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	bc.key = k.(*ecdsa.PublicKey)
	return bc
}

// BenchmarkRelyingParty measures the verification of a chip registration
// and of a chip assertion, and takes the assertion apart: this package's
// own checks, go-webauthn's parse and verify, the signature check of
// device/ctap2 (COSE key parse + ECDSA), and one raw ECDSA P-256
// verification, the floor. Compare "cpu-ns/op"
// (internal/cputime) on a shared machine.
//
//	go test -run '^$' -bench RelyingParty -count 10 ./device/webauthn
func BenchmarkRelyingParty(b *testing.B) {
	bc := newBenchCeremony(b)
	run := func(name string, op func() error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			cputime.Measure(b, func() {
				if err := op(); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	run("registration", func() error {
		_, err := bc.rp.VerifyRegistration(b.Context(), bc.reg, bc.regCh)
		return err
	})
	run("registration/uncached-chain", func() error {
		// Every registration with a chain of its own: what each one cost
		// before the chain cache.
		bc.rp.trust.chains = newChainCache(maxCachedChains)
		_, err := bc.rp.VerifyRegistration(b.Context(), bc.reg, bc.regCh)
		return err
	})
	run("assertion", func() error {
		_, err := bc.rp.VerifyAssertion(bc.as, bc.asCh, bc.cred)
		return err
	})
	cdRaw, _ := Decode("", bc.as.Response.ClientDataJSON)
	adRaw, _ := Decode("", bc.as.Response.AuthenticatorData)
	sig, _ := Decode("", bc.as.Response.Signature)
	run("assertion/own-checks", func() error {
		ad, err := ctap2.ParseAuthData(adRaw)
		if err != nil {
			return err
		}
		cd, err := ParseClientData(cdRaw)
		if err != nil {
			return err
		}
		if err := bc.rp.checkClientData(cd, TypeGet, Encode(bc.asCh)); err != nil {
			return err
		}
		return bc.rp.checkAuthData(ad)
	})
	run("assertion/go-webauthn", func() error {
		car := protocol.CredentialAssertionResponse{
			PublicKeyCredential: protocol.PublicKeyCredential{Credential: protocol.Credential{ID: bc.as.ID, Type: bc.as.Type}, RawID: bc.cred.ID},
			AssertionResponse: protocol.AuthenticatorAssertionResponse{AuthenticatorResponse: protocol.AuthenticatorResponse{ClientDataJSON: cdRaw},
				AuthenticatorData: adRaw, Signature: sig},
		}
		par, err := car.Parse()
		if err != nil {
			return err
		}
		return par.Verify(Encode(bc.asCh), bc.rp.id, "", bc.rp.origins, nil, nil, protocol.TopOriginExplicitVerificationMode,
			false, false, true, bc.cred.PublicKey, protocol.SignaturePolicy{})
	})
	run("assertion/ctap2-signature", func() error {
		h := sha256.Sum256(cdRaw)
		return ctap2.VerifyAssertion(bc.cred.PublicKey, adRaw, h[:], sig)
	})
	h := sha256.Sum256(adRaw)
	run("ecdsa-p256-verify", func() error {
		ecdsa.VerifyASN1(bc.key, h[:], sig)
		return nil
	})
}

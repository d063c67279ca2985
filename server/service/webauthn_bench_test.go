package service_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"path/filepath"
	"testing"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/internal/cputime"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
	"github.com/authbench/authbench/server/store/sqlite"
	"github.com/authbench/authbench/sim/chip"
)

// BenchmarkVerify measures the server's WebAuthn checks alone (no store,
// no HTTP): a chip registration with a packed attestation chained to the
// test CA, and a chip assertion, next to one raw ECDSA P-256 verification
// in the same run, which is what an assertion cannot be cheaper than
// (DESIGN §7). "cpu-ns/op" is the CPU time per check (internal/cputime),
// steadier than ns/op on a shared machine; "x-ecdsa" is it in raw
// verifications.
//
//	go test -run '^$' -bench Verify -count 10 ./server/service
func BenchmarkVerify(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := sha256.Sum256([]byte("authenticator data and client data hash"))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, h[:])
	var raw float64
	measure := func(b *testing.B, op func()) {
		b.ReportAllocs()
		if per := cputime.Measure(b, op); raw > 0 {
			b.ReportMetric(per/raw, "x-ecdsa")
		}
	}
	b.Run("ecdsa-p256-verify", func(b *testing.B) {
		raw = cputime.Measure(b, func() {
			if !ecdsa.VerifyASN1(&k.PublicKey, h[:], sig) {
				b.Fatal("verify")
			}
		})
	})

	svc := benchService(b)
	c, err := chip.New(chip.Options{Seed: []byte("bench")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	challenge := []byte("a registration challenge, 32 B..")
	opts := service.CreationOptions{
		Challenge:        b64.EncodeToString(challenge),
		RP:               webauthn.RPEntity{ID: "localhost", Name: "authbench"},
		User:             webauthn.UserEntity{ID: b64.EncodeToString([]byte("user")), Name: "alice", DisplayName: "alice"},
		PubKeyCredParams: []webauthn.CredentialParameter{{Type: "public-key", Alg: ctap2.AlgES256}},
	}
	reg, err := servicetest.Register(b.Context(), c, origin, opts, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("registration", func(b *testing.B) {
		measure(b, func() {
			if err := service.VerifyRegistration(svc, reg, challenge); err != nil {
				b.Fatal(err)
			}
		})
	})

	ao, _ := b64.DecodeString(reg.Response.AttestationObject)
	att, err := webauthn.ParseAttestationObject(ao)
	if err != nil {
		b.Fatal(err)
	}
	ad, _ := ctap2.ParseAuthData(att.AuthData)
	challenge = []byte("a login challenge, 32 bytes long")
	as, err := servicetest.Assert(b.Context(), c, origin, &service.RequestOptions{
		Challenge:        b64.EncodeToString(challenge),
		RPID:             "localhost",
		AllowCredentials: []service.CredentialDescriptor{{Type: "public-key", ID: reg.RawID}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("assertion", func(b *testing.B) {
		measure(b, func() {
			if err := service.VerifyAssertion(svc, as, challenge, reg.RawID, ad.AttestedCredential.PublicKey); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// benchService is a service with the test CA as its attestation root.
func benchService(b *testing.B) *service.Service {
	st, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{Chain: service.Chain{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	keys, err := secrets.NewKeyring("k1", []byte("test master key, 32 bytes long!!"))
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(chip.TestCACertPEM())
	svc, err := service.New(service.Options{Store: st, Keyring: keys, AttestationRoots: roots, RPOrigins: []string{origin}})
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

package webauthn_test

import (
	"context"
	"crypto/x509"
	"fmt"

	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/sim/chip"
)

// A registration and a login with a simulated chip: the relying party's
// options, the browser's part (Create, Get) and the relying party's checks.
func Example() {
	ctx := context.Background()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(chip.TestCACertPEM())
	rp, err := webauthn.New(webauthn.Config{ID: "localhost", Origins: []string{"http://localhost:8080"}, Roots: roots})
	if err != nil {
		panic(err)
	}
	c, err := chip.New(chip.Options{Seed: []byte("example")})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	challenge := []byte("a fresh random challenge, 32 B..")
	opts := rp.CreationOptions(challenge, webauthn.UserEntity{ID: webauthn.Encode([]byte{1}), Name: "anna", DisplayName: "Anna"}, nil, 0)
	resp, err := webauthn.Create(ctx, c, &opts, "http://localhost:8080")
	if err != nil {
		panic(err)
	}
	reg, err := rp.VerifyRegistration(ctx, resp, challenge)
	if err != nil {
		panic(err)
	}
	fmt.Println("registered:", reg.Format, reg.AttestationType, "trusted:", reg.Trusted)

	challenge = []byte("another fresh random challenge..")
	ro := rp.RequestOptions(challenge, []webauthn.CredentialDescriptor{{Type: webauthn.TypePublicKey, ID: resp.RawID}}, 0)
	login, err := webauthn.Get(ctx, c, &ro, "http://localhost:8080")
	if err != nil {
		panic(err)
	}
	as, err := rp.VerifyAssertion(login, challenge, webauthn.Credential{ID: reg.CredentialID, PublicKey: reg.PublicKey})
	if err != nil {
		panic(err)
	}
	fmt.Println("logged in; the counter went up:", as.SignCount > reg.SignCount)

	// The same response again, for the next login (a replay), is refused.
	_, err = rp.VerifyAssertion(login, []byte("the next challenge, 32 bytes...."), webauthn.Credential{ID: reg.CredentialID, PublicKey: reg.PublicKey})
	fmt.Println(err)
	// Output:
	// registered: packed basic_full trusted: true
	// logged in; the counter went up: true
	// webauthn: the WebAuthn response does not match the ceremony (challenge): the client data is for another challenge
}

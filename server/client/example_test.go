package client_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log"

	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/sim/chip"
)

// Enrol a (simulated) chip for a person and log in with it, through a
// server started in-process.
func ExampleEnrollChip() {
	ctx := context.Background()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(chip.TestCACertPEM()) // trust the simulators' attestation CA
	srv, err := embedded.Start(ctx, embedded.Options{AttestationRoots: roots, Hasher: secrets.FastParams()})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	c, err := client.New(srv.URL, client.Options{Token: srv.SupportToken})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.CreateIdentity(ctx, client.CreateIdentityRequest{ID: "anna", Password: "anna's long password"}); err != nil {
		log.Fatal(err)
	}
	key, err := chip.New(chip.Options{Seed: []byte("example")})
	if err != nil {
		log.Fatal(err)
	}
	defer key.Close()

	a, err := client.EnrollChip(ctx, c, "anna", "key ring", key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Kind, a.State, a.Element.AttestationFormat, *a.Element.AttestationTrusted)

	// MitID's login: the password, then the chip.
	s, err := client.LoginPasswordChip(ctx, c.WithToken(""), "anna", "anna's long password", a.ID, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Level, len(s.Authenticators), "factors; sign count", s.Authenticator.Element.SignCount)
	// Output:
	// chip active packed true
	// two-factor 2 factors; sign count 1
}

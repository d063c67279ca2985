package chip_test

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/sim/chip"
)

// A deterministic chip registers a credential and signs with it.
func Example() {
	c, err := chip.New(chip.Options{Seed: []byte("example seed")})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()
	clientData := sha256.Sum256([]byte(`{"type":"webauthn.create"}`))
	att, err := c.MakeCredential(ctx, &ctap2.MakeCredentialRequest{
		ClientDataHash:   clientData[:],
		RP:               ctap2.RPEntity{ID: "mitid.example"},
		User:             ctap2.UserEntity{ID: []byte("user-1")},
		PubKeyCredParams: []ctap2.CredentialParameters{{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgES256}},
	})
	if err != nil {
		panic(err)
	}
	ad, _ := ctap2.ParseAuthData(att.AuthData)
	cred := ad.AttestedCredential

	clientData = sha256.Sum256([]byte(`{"type":"webauthn.get"}`))
	as, err := c.GetAssertion(ctx, &ctap2.GetAssertionRequest{
		RPID:           "mitid.example",
		ClientDataHash: clientData[:],
		AllowList:      []ctap2.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: cred.CredentialID}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("format:", att.Format)
	fmt.Println("signature ok:", ctap2.VerifyAssertion(cred.PublicKey, as.AuthData, clientData[:], as.Signature) == nil)
	// Output:
	// format: packed
	// signature ok: true
}

package devicetest

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/authbench/authbench/device/webauthn"
)

// checkAttestation verifies the shared credential's attestation statement
// with device/webauthn (go-webauthn underneath: WebAuthn §8.2 packed with
// the certificate requirements of §8.2.1, §8.6 fido-u2f, §8.7 none) and
// its certificate chain against the configured roots.
func checkAttestation(ctx context.Context, c *chipRun) error {
	cred, err := c.fixture(ctx)
	if err != nil {
		return err
	}
	raw, err := webauthn.EncodeAttestationObject(cred.att)
	if err != nil {
		return fmt.Errorf("the attestation cannot be encoded as an attestation object: %v", err)
	}
	obj, err := webauthn.ParseAttestationObject(raw)
	if err != nil {
		return fmt.Errorf("the attestation object does not parse: %v", err)
	}
	a, err := webauthn.VerifyAttestation(ctx, obj, cred.clientDataHash, webauthn.Trust{Roots: c.o.Roots, Now: c.o.Now})
	var we *webauthn.Error
	if errors.As(err, &we) {
		return fmt.Errorf("%q attestation: %s", cred.att.Format, we.Reason)
	}
	if err != nil {
		return err
	}
	switch {
	case a.Format == webauthn.FormatNone:
		if c.o.RequireAttestation {
			return errors.New(`the chip returned no attestation (format "none") and attestation is required`)
		}
		c.Logf(`format "none": nothing to verify`)
		return nil
	case len(a.Chain) == 0:
		c.Logf("self attestation (no x5c): the chip model is not attested")
		if c.o.RequireAttestation {
			return errors.New("the chip returned self attestation only, and attestation is required")
		}
		return nil
	}
	leaf := a.Chain[0]
	c.Logf("%s attestation (%s) by %q, issued by %q", a.Format, a.Type, leaf.Subject, leaf.Issuer)
	return c.verifyChain(a.Chain)
}

// verifyChain checks that chain (leaf first) leads to the configured
// roots. Without roots it only notes the issuer.
func (c *chipRun) verifyChain(chain []*x509.Certificate) error {
	leaf := chain[0]
	if c.o.Roots == nil {
		c.Logf("no attestation roots configured: the chain of %q (issuer %q) was not checked", leaf.Subject, leaf.Issuer)
		return nil
	}
	if err := webauthn.VerifyChain(chain, c.o.Roots, c.o.Now()); err != nil {
		return fmt.Errorf("attestation certificate %q does not chain to the configured attestation roots: %v", leaf.Subject, err)
	}
	return nil
}

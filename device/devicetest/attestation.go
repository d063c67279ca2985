package devicetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/authbench/authbench/device/ctap2"
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
	if a.Format == webauthn.FormatFIDOU2F {
		// A U2F-only chip may attest with a self-signed certificate of
		// the credential key (self attestation) rather than a chain.
		key, err := ctap2.ParsePublicKey(cred.pub)
		ek, ok := key.(*ecdsa.PublicKey)
		if err != nil || !ok {
			return fmt.Errorf("fido-u2f attestation of a credential key that is not P-256: %v", err)
		}
		return c.u2fCertificate(leaf, ek)
	}
	if err := c.verifyChain(leaf, a.Chain[1:]); err != nil {
		return fmt.Errorf("attestation certificate %q %v", leaf.Subject, err)
	}
	return nil
}

// verifyChain checks that cert chains to the configured roots at
// ChipOptions.Now, through intermediates. Without roots it only notes the
// issuer. (go-webauthn has checked the validity period of an attestation
// certificate against the real time already.)
func (c *chipRun) verifyChain(cert *x509.Certificate, intermediates []*x509.Certificate) error {
	if c.o.Roots == nil {
		c.NotChecked(fmt.Sprintf("no attestation roots given (--roots FILE): the certificate chain of %q (issuer %q) was not checked", cert.Subject, cert.Issuer))
		return nil
	}
	if err := webauthn.VerifyChain(append([]*x509.Certificate{cert}, intermediates...), c.o.Roots, c.o.Now()); err != nil {
		return fmt.Errorf("does not chain to the configured attestation roots: %v", err)
	}
	return nil
}

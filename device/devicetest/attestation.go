package devicetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/u2f"
)

// oidFIDOAAGUID is id-fido-gen-ce-aaguid, the certificate extension that
// carries the AAGUID (WebAuthn §8.2.1).
var oidFIDOAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}

func checkAttestation(ctx context.Context, c *chipRun) error {
	cred, err := c.fixture(ctx)
	if err != nil {
		return err
	}
	att := cred.att
	switch att.Format {
	case ctap2.FormatNone:
		if c.o.RequireAttestation {
			return errors.New(`the chip returned no attestation (format "none") and attestation is required`)
		}
		st := att.Statement
		if st.Alg != 0 || len(st.Sig) != 0 || len(st.X5C) != 0 {
			return errors.New(`attestation format "none" with a non-empty statement`)
		}
		c.Logf(`format "none": nothing to verify`)
		return nil
	case ctap2.FormatPacked:
		return c.verifyPacked(cred)
	case ctap2.FormatFIDOU2F:
		return c.verifyFIDOU2F(cred)
	}
	return fmt.Errorf("attestation format %q is not one this suite can verify (packed, fido-u2f, none)", att.Format)
}

// verifyPacked checks a "packed" attestation statement (WebAuthn §8.2).
func (c *chipRun) verifyPacked(cred *credential) error {
	st := cred.att.Statement
	if len(st.Sig) == 0 {
		return errors.New("packed attestation without a signature")
	}
	if len(st.X5C) == 0 {
		// Self attestation: signed by the credential key itself.
		c.Logf("self attestation (no x5c): the chip model is not attested")
		if c.o.RequireAttestation {
			return errors.New("the chip returned self attestation only, and attestation is required")
		}
		if st.Alg != ctap2.AlgES256 {
			return fmt.Errorf("self attestation alg %d does not match the ES256 credential", st.Alg)
		}
		if err := ctap2.VerifyAssertion(cred.pub, cred.att.AuthData, cred.clientDataHash, st.Sig); err != nil {
			return fmt.Errorf("self attestation signature does not verify with the credential key: %v", err)
		}
		return nil
	}
	certs, err := parseCerts(st.X5C)
	if err != nil {
		return err
	}
	leaf := certs[0]
	if err := algMatchesKey(st.Alg, leaf); err != nil {
		return err
	}
	if err := ctap2.VerifySignature(leaf.PublicKey, cred.att.AuthData, cred.clientDataHash, st.Sig); err != nil {
		return fmt.Errorf("packed attestation signature over authData||clientDataHash does not verify with the x5c leaf certificate (%s): %v", leaf.Subject, err)
	}
	var problems []string
	problems = append(problems, packedCertProblems(leaf, cred.authData.AttestedCredential.AAGUID[:])...)
	if err := c.verifyChain(leaf, certs[1:]); err != nil {
		problems = append(problems, "attestation certificate "+err.Error())
	}
	c.Logf("packed attestation by %q, issued by %q", leaf.Subject, leaf.Issuer)
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func parseCerts(der [][]byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for i, b := range der {
		cert, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, fmt.Errorf("x5c certificate %d does not parse: %v", i, err)
		}
		certs = append(certs, cert)
	}
	return certs, nil
}

// algMatchesKey checks that a COSE algorithm fits a certificate's key.
func algMatchesKey(alg int64, cert *x509.Certificate) error {
	switch k := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if alg == ctap2.AlgES256 && k.Curve == elliptic.P256() {
			return nil
		}
	case ed25519.PublicKey:
		if alg == ctap2.AlgEdDSA {
			return nil
		}
	}
	return fmt.Errorf("attestation alg %d does not fit the x5c leaf certificate's %T key", alg, cert.PublicKey)
}

// packedCertProblems checks the attestation certificate requirements of
// WebAuthn §8.2.1.
func packedCertProblems(cert *x509.Certificate, aaguid []byte) []string {
	var p []string
	if cert.Version != 3 {
		p = append(p, fmt.Sprintf("attestation certificate is version %d, want 3", cert.Version))
	}
	s := cert.Subject
	if len(s.Country) == 0 || len(s.Organization) == 0 || s.CommonName == "" {
		p = append(p, fmt.Sprintf("attestation certificate subject %q lacks C, O or CN", s))
	}
	if !slices.Equal(s.OrganizationalUnit, []string{"Authenticator Attestation"}) {
		p = append(p, fmt.Sprintf("attestation certificate subject OU is %q, want \"Authenticator Attestation\"", s.OrganizationalUnit))
	}
	if cert.IsCA {
		p = append(p, "attestation certificate is a CA certificate (basic constraints CA true)")
	}
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidFIDOAAGUID) {
			continue
		}
		var v []byte
		rest, err := asn1.Unmarshal(ext.Value, &v)
		switch {
		case err != nil || len(rest) != 0 || len(v) != 16:
			p = append(p, "the certificate's AAGUID extension is not a 16-byte OCTET STRING")
		case ext.Critical:
			p = append(p, "the certificate's AAGUID extension is marked critical")
		case !bytes.Equal(v, aaguid):
			p = append(p, fmt.Sprintf("the certificate's AAGUID %x differs from the authenticator data's %x", v, aaguid))
		}
	}
	return p
}

// verifyChain checks that cert chains to the configured roots, through
// intermediates. Without roots it only notes the issuer.
func (c *chipRun) verifyChain(cert *x509.Certificate, intermediates []*x509.Certificate) error {
	if c.o.Roots == nil {
		c.NotChecked(fmt.Sprintf("no attestation roots given (--roots FILE): the certificate chain of %q (issuer %q) was not checked", cert.Subject, cert.Issuer))
		return nil
	}
	pool := x509.NewCertPool()
	for _, ic := range intermediates {
		pool.AddCert(ic)
	}
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:         c.o.Roots,
		Intermediates: pool,
		CurrentTime:   c.o.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("does not chain to the configured attestation roots: %v", err)
	}
	return nil
}

// verifyFIDOU2F checks a "fido-u2f" attestation statement (WebAuthn §8.6).
func (c *chipRun) verifyFIDOU2F(cred *credential) error {
	st := cred.att.Statement
	if len(st.X5C) != 1 || len(st.Sig) == 0 {
		return fmt.Errorf("fido-u2f attestation with %d certificates and a %d-byte signature, want one and a signature", len(st.X5C), len(st.Sig))
	}
	certs, err := parseCerts(st.X5C)
	if err != nil {
		return err
	}
	leaf, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || leaf.Curve != elliptic.P256() {
		return fmt.Errorf("fido-u2f attestation certificate holds a %T key, want P-256", certs[0].PublicKey)
	}
	key, err := ctap2.ParsePublicKey(cred.pub)
	if err != nil {
		return fmt.Errorf("credential public key: %v", err)
	}
	ek, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("fido-u2f attestation of a %T credential key, want P-256", key)
	}
	ecdhKey, err := ek.ECDH()
	if err != nil {
		return fmt.Errorf("credential public key: %v", err)
	}
	var point [u2f.PublicKeyLen]byte
	copy(point[:], ecdhKey.Bytes())
	var challenge [32]byte
	copy(challenge[:], cred.clientDataHash)
	digest := sha256.Sum256(u2f.RegisterSignedData(cred.authData.RPIDHash, challenge, cred.id, point))
	if !ecdsa.VerifyASN1(leaf, digest[:], st.Sig) {
		return errors.New("fido-u2f attestation signature does not verify with its certificate")
	}
	c.Logf("fido-u2f attestation by %q, issued by %q", certs[0].Subject, certs[0].Issuer)
	return c.u2fCertificate(certs[0], ek)
}

package webauthn

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/google/uuid"
)

// Trust says which attestations are trusted (WebAuthn Level 3 §7.1,
// "assess the attestation trustworthiness"): an attestation certificate
// chain (x5c) to Roots, or to the attestation roots of the
// authenticator's entry in Metadata. "none" and self attestation are
// never trusted.
type Trust struct {
	Roots    *x509.CertPool    // nil trusts no chain
	Metadata metadata.Provider // FIDO MDS3, optional (see Config.Metadata)
	Now      func() time.Time  // the time chains are verified at; nil means time.Now

	// A RelyingParty's own: its copy of Roots, and the cache of the
	// chains that verified (chainCache). The zero values verify every
	// chain afresh.
	roots  anchors
	chains *chainCache
}

// Attestation is a verified attestation statement and its trust.
type Attestation struct {
	Format string // FormatPacked, FormatFIDOU2F or FormatNone
	// Type is what the statement proves (go-webauthn's names, those of
	// the FIDO metadata): "basic_full" or "attca" for a certificate chain,
	// "basic_surrogate" for self attestation, "none".
	Type    string
	Chain   []*x509.Certificate // x5c, leaf first; nil for none and self attestation
	Trusted bool
	Why     string // why it is not trusted; "" when it is
}

// VerifyAttestation verifies the attestation statement of obj, made over
// clientDataHash (WebAuthn Level 3 §8.2 packed, §8.6 fido-u2f, §8.7 none),
// with go-webauthn, and assesses its trust. It checks the statement only,
// not the authenticator data against a relying party (VerifyRegistration
// does that): it is for whoever holds a chip's makeCredential answer
// without a browser's client data, such as a conformance suite.
//
// Errors: an *Error wrapping ErrInvalid (a statement or certificate that
// does not parse) or ErrUntrusted (a format other than packed, fido-u2f or
// none, or a statement that does not verify, with go-webauthn's reason).
// An attestation that verifies but is not trusted is no error:
// Attestation.Trusted and Why say so.
func VerifyAttestation(ctx context.Context, obj *AttestationObject, clientDataHash []byte, t Trust) (*Attestation, error) {
	ders, err := obj.x5c()
	if err != nil {
		return nil, err
	}
	chain, err := t.chainOf(ders)
	if err != nil {
		return nil, err
	}
	pao := protocol.AttestationObject{Format: obj.Format, RawAuthData: obj.AuthData}
	if err := webauthncbor.Unmarshal(obj.AttStmt, &pao.AttStatement); err != nil {
		return nil, invalidf("the attestation statement: %v", err)
	}
	if err := pao.AuthData.Unmarshal(obj.AuthData); err != nil {
		return nil, fromLibrary(err)
	}
	if err := pao.VerifyAttestation(clientDataHash, t.Metadata, protocol.AttestationPolicy{}, protocol.SignaturePolicy{}); err != nil {
		return nil, fromLibrary(err)
	}
	a := &Attestation{Format: obj.Format, Type: pao.Type, Chain: chain}
	var aaguid [16]byte
	copy(aaguid[:], pao.AuthData.AttData.AAGUID)
	t.assess(ctx, a, ders, aaguid)
	return a, nil
}

// VerifyChain verifies that chain (leaf first, then intermediates) leads
// to one of roots at now, for any key usage. It returns x509's error when
// it does not.
func VerifyChain(chain []*x509.Certificate, roots *x509.CertPool, now time.Time) error {
	_, err := verifyChains(chain, roots, now)
	return err
}

// verifyChains is VerifyChain returning the chains x509 built, each from
// the leaf to an anchor.
func verifyChains(chain []*x509.Certificate, roots *x509.CertPool, now time.Time) ([][]*x509.Certificate, error) {
	if len(chain) == 0 {
		return nil, fmt.Errorf("webauthn: no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	return chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
}

// anchors returns the anchors of Roots: the RelyingParty's own copy, or
// Roots itself outside a RelyingParty (where nothing is cached).
func (t Trust) anchors() anchors {
	if t.roots.pool != nil {
		return t.roots
	}
	return anchors{pool: t.Roots}
}

// chainOf returns the certificates of ders (x5c, leaf first), parsed, or
// as the cache holds them when the same bytes verified to Roots before.
// It returns an error wrapping ErrInvalid when one does not parse.
func (t Trust) chainOf(ders [][]byte) ([]*x509.Certificate, error) {
	if t.chains != nil && len(ders) > 0 {
		if c := t.chains.certs(t.roots.chainKey(ders)); c != nil {
			return c, nil
		}
	}
	return parseChain(ders)
}

// assess sets a.Trusted and a.Why for the attestation of the
// authenticator model aaguid, whose chain a.Chain was parsed from ders.
func (t Trust) assess(ctx context.Context, a *Attestation, ders [][]byte, aaguid [16]byte) {
	switch {
	case a.Format == FormatNone:
		a.Why = `the chip returned no attestation (format "none")`
		return
	case len(a.Chain) == 0:
		a.Why = "the chip attested its credential with the credential's own key (self attestation)"
		return
	}
	now := time.Now()
	if t.Now != nil {
		now = t.Now()
	}
	leaf := a.Chain[0]
	if t.Roots != nil && t.chains.verify(t.anchors(), ders, a.Chain, now) == nil {
		a.Trusted = true
		return
	}
	if e := t.entry(ctx, aaguid, leaf); e != nil && len(e.MetadataStatement.AttestationRootCertificates) > 0 {
		roots := certAnchors(e.MetadataStatement.AttestationRootCertificates)
		if t.chains.verify(roots, ders, a.Chain, now) == nil {
			a.Trusted = true
			return
		}
	}
	a.Why = fmt.Sprintf("the %s attestation certificate %q (issued by %q) does not chain to a trusted attestation root",
		a.Format, clip(leaf.Subject.String()), clip(leaf.Issuer.String()))
}

// entry returns the metadata entry of an authenticator: by AAGUID, or, for
// a U2F key (zero AAGUID), by its attestation certificate's key identifier
// when the provider can. Nil when there is none.
func (t Trust) entry(ctx context.Context, aaguid [16]byte, leaf *x509.Certificate) *metadata.Entry {
	if t.Metadata == nil {
		return nil
	}
	if e, err := t.Metadata.GetEntry(ctx, uuid.UUID(aaguid)); err == nil && e != nil {
		return e
	}
	if ext, ok := t.Metadata.(metadata.ExtendedProvider); ok && aaguid == ([16]byte{}) && len(leaf.SubjectKeyId) > 0 {
		if e, err := ext.GetEntryByKeyIdentifier(ctx, fmt.Sprintf("%x", leaf.SubjectKeyId)); err == nil && e != nil {
			return e
		}
	}
	return nil
}

// x5c checks the format and returns the x5c member of a packed or
// fido-u2f statement, leaf first, within the bounds of a chain; nil when
// there is none.
func (o *AttestationObject) x5c() ([][]byte, error) {
	switch o.Format {
	case FormatNone:
		return nil, nil
	case FormatPacked, FormatFIDOU2F:
	default:
		return nil, untrustedf("the attestation format %q is not accepted (packed, fido-u2f or none)", clip(o.Format))
	}
	st, err := o.statement()
	if err != nil {
		return nil, err
	}
	if len(st.X5C) > maxChain {
		return nil, invalidf("x5c holds %d certificates, at most %d are accepted", len(st.X5C), maxChain)
	}
	for i, der := range st.X5C {
		if len(der) > maxCertificate {
			return nil, invalidf("x5c[%d] is larger than %d bytes", i, maxCertificate)
		}
	}
	return st.X5C, nil
}

// parseChain parses the certificates of x5c, leaf first; nil when there is
// none. It returns an error wrapping ErrInvalid when one does not parse.
func parseChain(ders [][]byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for i, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, invalidf("x5c[%d] is not a certificate", i)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

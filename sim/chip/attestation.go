package chip

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"
)

// The test attestation CA, generated once by
//
//	go test ./sim/chip -run TestGenerateCA -update
//
// and committed twice: in testdata/attestation/ (the copy a server lists in
// its trust roots) and here in testca/ (the copy embedded in the simulator,
// since go:embed only reaches files below the package directory). A test
// checks that both copies are the same. The key is public: never trust this
// CA outside tests.
var (
	//go:embed testca/ca.pem
	testCACertPEM []byte
	//go:embed testca/ca-key.pem
	testCAKeyPEM []byte
)

// CA is an attestation certificate authority: it issues the per-chip
// attestation certificate when a chip is made (WebAuthn §8.2.1).
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

var (
	testCAOnce sync.Once
	testCA     *CA
	testCAErr  error
)

// TestCA returns the embedded authbench test attestation CA, the default of
// Options.CA. Its certificate is also in testdata/attestation/ca.pem for
// servers that trust simulated chips. It returns an error only if the
// embedded files are damaged.
func TestCA() (*CA, error) {
	testCAOnce.Do(func() {
		testCA, testCAErr = ParseCA(testCACertPEM, testCAKeyPEM)
	})
	return testCA, testCAErr
}

// TestCACertPEM returns the PEM of the embedded test CA certificate, for a
// server's trust roots.
func TestCACertPEM() []byte {
	return append([]byte(nil), testCACertPEM...)
}

// ParseCA parses a CA certificate and its private key (PKCS #8, SEC 1
// "EC PRIVATE KEY" or PKCS #1) from PEM. Text around the PEM blocks is
// ignored. It returns an error if either block is missing or malformed, or if
// the key does not belong to the certificate.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cb := findPEM(certPEM, "CERTIFICATE")
	if cb == nil {
		return nil, errors.New("chip: CA: no CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("chip: CA certificate: %w", err)
	}
	var key crypto.Signer
	switch kb := findPEM(keyPEM, "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"); {
	case kb == nil:
		return nil, errors.New("chip: CA: no private key block")
	case kb.Type == "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err != nil {
			return nil, fmt.Errorf("chip: CA key: %w", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("chip: CA key: %T cannot sign", k)
		}
		key = s
	case kb.Type == "EC PRIVATE KEY":
		if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
			return nil, fmt.Errorf("chip: CA key: %w", err)
		}
	default:
		if key, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
			return nil, fmt.Errorf("chip: CA key: %w", err)
		}
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("chip: CA: key does not match certificate")
	}
	return &CA{Cert: cert, Key: key}, nil
}

// findPEM returns the first PEM block in b whose type is one of types.
func findPEM(b []byte, types ...string) *pem.Block {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil
		}
		for _, t := range types {
			if blk.Type == t {
				return blk
			}
		}
	}
}

// Object identifiers of the FIDO certificate extensions.
var (
	// oidAAGUID is id-fido-gen-ce-aaguid (WebAuthn §8.2.1): an OCTET STRING
	// holding the authenticator's 16-byte AAGUID, never critical.
	oidAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}
	// oidTransports is id-fido-u2f-ce-transports (FIDO U2F Authenticator
	// Transports Extension v1.2): a BIT STRING of the transports.
	oidTransports = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 2, 1, 1}
)

// Subject of every simulated chip's attestation certificate (WebAuthn
// §8.2.1: C, O, OU "Authenticator Attestation", CN; we add serialNumber).
const (
	certCountry      = "DK"
	certOrganization = "authbench"
	certOrgUnit      = "Authenticator Attestation"
	certCommonName   = "authbench simulated MitID chip"
)

// issueCertificate makes the chip's attestation certificate, signed by ca,
// following the packed attestation certificate requirements of WebAuthn
// §8.2.1: version 3, the subject above with the chip serial as the
// serialNumber attribute, basic constraints CA=false, and the AAGUID
// extension. It also carries the U2F transports extension (USB and NFC).
// Its validity is that of the CA, so it does not depend on the clock.
func issueCertificate(ca *CA, seed []byte, serial string, aaguid [16]byte, pub *ecdsa.PublicKey) ([]byte, error) {
	aaguidExt, err := asn1.Marshal(aaguid[:])
	if err != nil {
		return nil, fmt.Errorf("chip: AAGUID extension: %w", err)
	}
	// Named bits: bluetoothRadio(0), bluetoothLowEnergyRadio(1), uSB(2),
	// nFC(3), uSBInternal(4).
	transports, err := asn1.Marshal(asn1.BitString{Bytes: []byte{0x30}, BitLength: 4})
	if err != nil {
		return nil, fmt.Errorf("chip: transports extension: %w", err)
	}
	sn := derive(seed, "certificate serial", 0, 16)
	sn[0] &= 0x7f
	sn[0] |= 0x01 // positive and never zero (RFC 5280 §4.1.2.2)
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(sn),
		Subject: pkix.Name{
			Country:            []string{certCountry},
			Organization:       []string{certOrganization},
			OrganizationalUnit: []string{certOrgUnit},
			CommonName:         certCommonName,
			SerialNumber:       serial,
		},
		NotBefore:             ca.Cert.NotBefore,
		NotAfter:              ca.Cert.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  false,
		ExtraExtensions: []pkix.Extension{
			{Id: oidAAGUID, Value: aaguidExt},
			{Id: oidTransports, Value: transports},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("chip: issue attestation certificate: %w", err)
	}
	return der, nil
}

// certificateAAGUID returns the AAGUID carried by an attestation certificate's
// id-fido-gen-ce-aaguid extension (WebAuthn §8.2.1). ok is false when the
// extension is absent; err is set when it is present but malformed or marked
// critical.
func certificateAAGUID(cert *x509.Certificate) (aaguid [16]byte, ok bool, err error) {
	for _, e := range cert.Extensions {
		if !e.Id.Equal(oidAAGUID) {
			continue
		}
		if e.Critical {
			return aaguid, true, errors.New("chip: AAGUID extension is critical")
		}
		var b []byte
		rest, err := asn1.Unmarshal(e.Value, &b)
		if err != nil || len(rest) != 0 || len(b) != 16 {
			return aaguid, true, errors.New("chip: AAGUID extension is not a 16-byte OCTET STRING")
		}
		copy(aaguid[:], b)
		return aaguid, true, nil
	}
	return aaguid, false, nil
}

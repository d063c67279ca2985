package chip

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"
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

// CA is an attestation certificate authority: it issues the batch
// certificate of a model, or a chip's own certificate when the chip is made
// with AttestationSerial (WebAuthn §8.2.1).
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
// §8.2.1: C, O, OU "Authenticator Attestation", CN the model; a serial
// certificate adds serialNumber).
const (
	certCountry      = "DK"
	certOrganization = "authbench"
	certOrgUnit      = "Authenticator Attestation"
)

// certSpec is what an attestation certificate says.
type certSpec struct {
	model  string    // CN
	serial string    // subject serialNumber; "" for a batch certificate
	sn     []byte    // X.509 serial number (positive, made non-zero)
	aaguid *[16]byte // id-fido-gen-ce-aaguid; nil for none (U2F)
}

// issueCertificate makes an attestation certificate for pub, signed by
// ca, following the packed attestation certificate requirements of
// WebAuthn §8.2.1: version 3, the subject above, basic constraints
// CA=false, the AAGUID extension when the model has an AAGUID, and the U2F
// transports extension (USB and NFC). Its validity is that of the CA, so it
// does not depend on the clock. The signature is deterministic where the
// CA's key allows (RFC 6979 for ECDSA), so that a batch certificate is the
// same bytes in every process.
func issueCertificate(ca *CA, spec certSpec, pub *ecdsa.PublicKey) ([]byte, error) {
	// Named bits: bluetoothRadio(0), bluetoothLowEnergyRadio(1), uSB(2),
	// nFC(3), uSBInternal(4).
	transports, err := asn1.Marshal(asn1.BitString{Bytes: []byte{0x30}, BitLength: 4})
	if err != nil {
		return nil, fmt.Errorf("chip: transports extension: %w", err)
	}
	exts := []pkix.Extension{{Id: oidTransports, Value: transports}}
	if spec.aaguid != nil {
		v, err := asn1.Marshal(spec.aaguid[:])
		if err != nil {
			return nil, fmt.Errorf("chip: AAGUID extension: %w", err)
		}
		exts = append([]pkix.Extension{{Id: oidAAGUID, Value: v}}, exts...)
	}
	sn := append([]byte(nil), spec.sn...)
	sn[0] &= 0x7f
	sn[0] |= 0x01 // positive and never zero (RFC 5280 §4.1.2.2)
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(sn),
		Subject: pkix.Name{
			Country:            []string{certCountry},
			Organization:       []string{certOrganization},
			OrganizationalUnit: []string{certOrgUnit},
			CommonName:         spec.model,
			SerialNumber:       spec.serial,
		},
		NotBefore:             ca.Cert.NotBefore,
		NotAfter:              ca.Cert.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  false,
		ExtraExtensions:       exts,
	}
	der, err := x509.CreateCertificate(nil, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		// A signer that needs randomness (RSA-PSS, a hardware key).
		der, err = x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	}
	if err != nil {
		return nil, fmt.Errorf("chip: issue attestation certificate: %w", err)
	}
	return der, nil
}

// batchSeed is what a model's batch attestation key is derived from: the
// model, never a chip, so that every chip of the model holds the same key.
func batchSeed(p Profile) []byte { return []byte("authbench batch attestation: " + p.Model()) }

// batch is a model's batch attestation key and certificate.
type batch struct {
	key  []byte // raw P-256 scalar
	cert []byte // DER
}

// batches caches the batch certificates per CA and profile.
var batches sync.Map // batchKey -> *batch

// parsedBatches holds the batch attestation keys and certificates parsed,
// by certificate (DER), so that the chips of a batch share one parsed key
// and certificate (a parsed certificate takes about 4 KiB: a load of
// 10,000 chips held 37 MiB of copies). Only batch certificates go in, so
// it holds one entry per CA and profile used.
var parsedBatches sync.Map // string(DER) -> *parsedBatch

// parsedBatch is a batch attestation key and certificate, parsed.
type parsedBatch struct {
	rawKey []byte
	key    *ecdsa.PrivateKey
	cert   *x509.Certificate
}

// parseAttestation parses a chip's attestation key (raw P-256 scalar) and
// certificate (DER) and checks that they belong together; a batch's are
// parsed once and shared by its chips.
func parseAttestation(rawKey, der []byte) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	if p, ok := parsedBatches.Load(string(der)); ok {
		if pb := p.(*parsedBatch); bytes.Equal(pb.rawKey, rawKey) {
			return pb.key, pb.cert, nil
		}
	}
	key, err := ecdsa.ParseRawPrivateKey(p256, rawKey)
	if err != nil {
		return nil, nil, fmt.Errorf("chip: attestation key: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("chip: attestation certificate: %w", err)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil, errors.New("chip: attestation certificate does not match the attestation key")
	}
	return key, cert, nil
}

type batchKey struct {
	ca      string // the CA certificate, DER
	profile Profile
}

// batchAttestation returns the batch attestation key and certificate of
// profile p's model under ca (AttestationBatch): a key derived from the
// model, and a certificate without a serial number whose X.509 serial and
// signature are the same for every chip of the model.
func batchAttestation(ca *CA, p Profile) (*batch, error) {
	k := batchKey{string(ca.Cert.Raw), p}
	if b, ok := batches.Load(k); ok {
		return b.(*batch), nil
	}
	seed := batchSeed(p)
	key, err := deriveKey(seed, "attestation key", 0)
	if err != nil {
		return nil, err
	}
	raw, err := key.Bytes()
	if err != nil {
		return nil, fmt.Errorf("chip: batch attestation key: %w", err)
	}
	spec := certSpec{model: p.Model(), sn: derive(seed, "certificate serial", 0, 16)}
	if a := p.AAGUID(); a != ([16]byte{}) {
		spec.aaguid = &a
	}
	cert, err := issueCertificate(ca, spec, &key.PublicKey)
	if err != nil {
		return nil, err
	}
	pkey, pcert, err := parseAttestation(raw, cert)
	if err != nil {
		return nil, err
	}
	b, loaded := batches.LoadOrStore(k, &batch{key: raw, cert: cert})
	if !loaded {
		parsedBatches.Store(string(cert), &parsedBatch{rawKey: raw, key: pkey, cert: pcert})
	}
	return b.(*batch), nil
}

// serialAttestation returns a chip's own attestation key and certificate
// (AttestationSerial): a key derived from the chip's seed, and a
// certificate carrying its serial number.
func serialAttestation(ca *CA, p Profile, seed []byte, serial string) (*batch, error) {
	key, err := deriveKey(seed, "attestation key", 0)
	if err != nil {
		return nil, err
	}
	raw, err := key.Bytes()
	if err != nil {
		return nil, fmt.Errorf("chip: attestation key: %w", err)
	}
	spec := certSpec{model: p.Model(), serial: serial, sn: derive(seed, "certificate serial", 0, 16)}
	if a := p.AAGUID(); a != ([16]byte{}) {
		spec.aaguid = &a
	}
	cert, err := issueCertificate(ca, spec, &key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &batch{key: raw, cert: cert}, nil
}

// selfSignedCertificate returns a certificate of key signed by itself, as
// U2F keys without an attestation CA send (AttestationSelf on U2F): it
// names the model and nothing else, and chains to nothing.
func selfSignedCertificate(model string, key *ecdsa.PrivateKey) ([]byte, error) {
	pub := rawPublicKey(&key.PublicKey)
	sn := sha256.Sum256(pub)
	sn[0] = sn[0]&0x7f | 0x01
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(sn[:16]),
		Subject:               pkix.Name{CommonName: model + " (self attestation)"},
		NotBefore:             selfNotBefore,
		NotAfter:              selfNotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("chip: self-signed attestation certificate: %w", err)
	}
	return der, nil
}

// The validity of self-signed certificates: fixed, so that they do not
// depend on the clock.
var (
	selfNotBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	selfNotAfter  = time.Date(2060, 1, 1, 0, 0, 0, 0, time.UTC)
)

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

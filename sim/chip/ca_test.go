package chip

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "regenerate the test attestation CA (TestGenerateCA)")

// Where the CA lives: the committed copy for servers, and the copy embedded
// in this package.
var (
	caDirs   = []string{"../../testdata/attestation", "testca"}
	caCertFn = "ca.pem"
	caKeyFn  = "ca-key.pem"
)

const caWarning = `# authbench TEST attestation CA — TEST KEY, public, never trust in production.
#
# This CA issues the attestation certificates of simulated MitID chips
# (package sim/chip). Its private key is published in the authbench
# repository, so anyone can issue certificates under it: list it as a trust
# root only in tests.
#
# Regenerate with: go test ./sim/chip -run TestGenerateCA -update
# (the copies in testdata/attestation/ and sim/chip/testca/ must stay equal)
`

// TestGenerateCA regenerates the test attestation CA with -update; without
// it, it checks that the committed copies agree and describe the CA that
// the simulated chips are issued from.
func TestGenerateCA(t *testing.T) {
	if *update && !strings.Contains(flag.Lookup("test.run").Value.String(), "TestGenerateCA") {
		// A blanket -update (to refresh other golden files) must not
		// replace the CA that servers and committed data trust.
		t.Log("the CA is regenerated only with -run TestGenerateCA -update")
	} else if *update {
		certPEM, keyPEM := generateCA(t)
		for _, dir := range caDirs {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, caCertFn), certPEM, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, caKeyFn), keyPEM, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Log("wrote a new test attestation CA; rebuild to embed it")
		return
	}
	for _, fn := range []string{caCertFn, caKeyFn} {
		a, err := os.ReadFile(filepath.Join(caDirs[0], fn))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(caDirs[1], fn))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between %s and %s; regenerate with -update", fn, caDirs[0], caDirs[1])
		}
		if !bytes.HasPrefix(a, []byte(caWarning)) {
			t.Errorf("%s lacks the TEST KEY warning", fn)
		}
	}
	ca, err := TestCA()
	if err != nil {
		t.Fatal(err)
	}
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid || c.Subject.CommonName != "authbench TEST attestation CA — not for production" {
		t.Errorf("CA certificate: IsCA=%v CN=%q", c.IsCA, c.Subject.CommonName)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if years := c.NotAfter.Sub(c.NotBefore).Hours() / 24 / 365; years < 19.9 {
		t.Errorf("CA valid for %.1f years, want 20", years)
	}
	if !bytes.Equal(TestCACertPEM(), testCACertPEM) {
		t.Error("TestCACertPEM differs from the embedded file")
	}
}

func generateCA(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkix8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ski := sha256.Sum256(pubDER)
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	// A fixed window that covers the virtual clocks tests like to use as
	// well as the real one, so chains verify either way.
	notBefore := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	tmpl := &x509.Certificate{
		SerialNumber: sn.Add(sn, big.NewInt(1)),
		Subject: pkix.Name{
			Country:            []string{"DK"},
			Organization:       []string{"authbench"},
			OrganizationalUnit: []string{"Authenticator Attestation"},
			CommonName:         "authbench TEST attestation CA — not for production",
		},
		NotBefore:             notBefore,
		NotAfter:              notBefore.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski[:20],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = append([]byte(caWarning+"\n"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	keyPEM = append([]byte(caWarning+"\n"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkix8})...)
	return certPEM, keyPEM
}

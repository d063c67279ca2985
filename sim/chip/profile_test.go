package chip

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/u2f"
)

func testRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(TestCACertPEM()) {
		t.Fatal("CA PEM does not parse")
	}
	return roots
}

func chains(cert *x509.Certificate, roots *x509.CertPool) error {
	_, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: time.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

// TestAttestationKinds: what each Options.Attestation gives over CTAP2, for
// two chips of one model. Batch: the same certificate for both, without a
// serial number, with the model's AAGUID, chained to the CA (FIDO's
// privacy rules: a certificate names a batch of at least many keys, never
// one). Serial: each chip's own certificate with its serial number. Self:
// packed without x5c, signed by the credential key (WebAuthn §8.2). None:
// format "none" (WebAuthn §8.7).
func TestAttestationKinds(t *testing.T) {
	roots := testRoots(t)
	for _, p := range []Profile{ProfileFIDO2, ProfileCTAP2Only} {
		for _, kind := range []Attestation{AttestationBatch, AttestationSerial, AttestationSelf, AttestationNone} {
			t.Run(p.String()+"/"+kind.String(), func(t *testing.T) {
				var certs [][]byte
				for _, seed := range []string{"one", "two"} {
					c := testChip(t, Options{Profile: p, Attestation: kind, Seed: testSeed(seed)})
					req := makeReq("example.dk", seed, false)
					m := mustMake(t, c, req)
					if m.ad.AttestedCredential.AAGUID != p.AAGUID() || c.AAGUID() != p.AAGUID() {
						t.Errorf("AAGUID %x, want the model's %x", m.ad.AttestedCredential.AAGUID, p.AAGUID())
					}
					st := m.att.Statement
					switch kind {
					case AttestationNone:
						if m.att.Format != ctap2.FormatNone || st.Sig != nil || st.X5C != nil {
							t.Fatalf("attestation %+v, want none", m.att)
						}
						continue
					case AttestationSelf:
						if m.att.Format != ctap2.FormatPacked || len(st.X5C) != 0 || st.Alg != ctap2.AlgES256 {
							t.Fatalf("attestation %s with %d certificates, want packed self", m.att.Format, len(st.X5C))
						}
						if err := ctap2.VerifyAssertion(m.pub, m.att.AuthData, req.ClientDataHash, st.Sig); err != nil {
							t.Fatalf("self attestation does not verify with the credential key: %v", err)
						}
						continue
					}
					if m.att.Format != ctap2.FormatPacked || len(st.X5C) != 1 {
						t.Fatalf("attestation %s with %d certificates", m.att.Format, len(st.X5C))
					}
					cert, err := x509.ParseCertificate(st.X5C[0])
					if err != nil {
						t.Fatal(err)
					}
					if err := ctap2.VerifySignature(cert.PublicKey, m.att.AuthData, req.ClientDataHash, st.Sig); err != nil {
						t.Fatal(err)
					}
					if err := chains(cert, roots); err != nil {
						t.Errorf("chain: %v", err)
					}
					if a, ok, err := certificateAAGUID(cert); !ok || err != nil || a != p.AAGUID() {
						t.Errorf("certificate AAGUID %x %v %v", a, ok, err)
					}
					want := ""
					if kind == AttestationSerial {
						want = c.Serial()
					}
					if cert.Subject.SerialNumber != want || cert.Subject.CommonName != p.Model() {
						t.Errorf("subject %v, want CN %q and serialNumber %q", cert.Subject, p.Model(), want)
					}
					certs = append(certs, st.X5C[0])
				}
				switch kind {
				case AttestationBatch:
					if !bytes.Equal(certs[0], certs[1]) {
						t.Error("two chips of one model have different batch certificates")
					}
				case AttestationSerial:
					if bytes.Equal(certs[0], certs[1]) {
						t.Error("two chips share a serial certificate")
					}
				}
			})
		}
	}
}

// TestU2FAttestationKinds: the certificate of a U2F registration, on a
// U2F-only chip and on the U2F side of a FIDO2 chip.
func TestU2FAttestationKinds(t *testing.T) {
	roots := testRoots(t)
	tests := []struct {
		p      Profile
		kind   Attestation
		serial bool // the certificate carries the chip's serial
		self   bool // self-signed certificate of the credential key
	}{
		{ProfileU2F, AttestationBatch, false, false},
		{ProfileU2F, AttestationSerial, true, false},
		{ProfileU2F, AttestationSelf, false, true},
		{ProfileFIDO2, AttestationBatch, false, false},
		{ProfileFIDO2, AttestationNone, false, false}, // U2F has no "none": the batch certificate
		{ProfileFIDO2, AttestationSelf, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.p.String()+"/"+tt.kind.String(), func(t *testing.T) {
			var certs [][]byte
			for _, seed := range []string{"one", "two"} {
				c := testChip(t, Options{Profile: tt.p, Attestation: tt.kind, Seed: testSeed(seed)})
				cl := u2f.NewClient(apduFunc(c.ServeU2F), fastPoll)
				challenge, app := hash("challenge "+seed), hash("example.dk")
				reg, err := cl.Register(testCtx(t), challenge, app)
				if err != nil {
					t.Fatal(err)
				}
				cert, err := reg.Verify(app, challenge)
				if err != nil {
					t.Fatal(err)
				}
				_, hasAAGUID, _ := certificateAAGUID(cert)
				switch {
				case tt.self:
					pub, _ := reg.Key()
					if !cert.PublicKey.(*ecdsa.PublicKey).Equal(pub) || cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) != nil {
						t.Error("not a self-signed certificate of the credential key")
					}
					if chains(cert, roots) == nil {
						t.Error("a self-signed certificate chains to the CA")
					}
				case tt.serial != (cert.Subject.SerialNumber == c.Serial()) || !tt.serial && cert.Subject.SerialNumber != "":
					t.Errorf("subject %v (chip serial %s)", cert.Subject, c.Serial())
				case chains(cert, roots) != nil:
					t.Errorf("does not chain: %v", chains(cert, roots))
				case hasAAGUID != (tt.p != ProfileU2F):
					t.Errorf("AAGUID extension present: %v", hasAAGUID)
				}
				certs = append(certs, reg.AttestationCert)
			}
			if same := bytes.Equal(certs[0], certs[1]); same != (!tt.serial && !tt.self) {
				t.Errorf("the two chips' certificates are the same: %v", same)
			}
		})
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []Options{
		{Profile: ProfileU2F, Attestation: AttestationNone},
		{Profile: ProfileU2F, AttestationNone: true},
		{Profile: Profile(7)},
		{Attestation: Attestation(-1)},
	} {
		if c, err := New(o); err == nil {
			c.Close()
			t.Errorf("New(%+v) made a chip", o)
		}
	}
	for _, s := range []string{"fido2", "u2f", "ctap2"} {
		if p, err := ParseProfile(s); err != nil || p.String() != s {
			t.Errorf("ParseProfile(%q) = %v, %v", s, p, err)
		}
	}
	for _, s := range []string{"batch", "serial", "self", "none"} {
		if a, err := ParseAttestation(s); err != nil || a.String() != s {
			t.Errorf("ParseAttestation(%q) = %v, %v", s, a, err)
		}
	}
	if _, err := ParseProfile("fido"); err == nil {
		t.Error("ParseProfile(fido)")
	}
	if _, err := ParseAttestation("basic"); err == nil {
		t.Error("ParseAttestation(basic)")
	}
}

// TestProfileOnTheWire: what each profile shows a host on each transport.
// U2F-only: SELECT "U2F_V2", NFCCTAP_MSG 6D00, no CBOR in CTAPHID_INIT,
// CTAPHID_CBOR ERR_INVALID_CMD, CTAP2 methods CTAP1_ERR_INVALID_COMMAND.
// FIDO2: SELECT "U2F_V2" (CTAP 2.1 §11.3.3: dual-mode answers U2F_V2) and
// both protocols. CTAP2-only: SELECT "FIDO_2_0", U2F refused (6D00, NMSG).
func TestProfileOnTheWire(t *testing.T) {
	tests := []struct {
		p          Profile
		selectResp string
		caps       ctaphid.Capabilities
		versions   []string
	}{
		{ProfileFIDO2, apdu.VersionU2F, ctaphid.CapCBOR, []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1"}},
		{ProfileU2F, apdu.VersionU2F, 0, nil},
		{ProfileCTAP2Only, apdu.VersionFIDO2, ctaphid.CapCBOR | ctaphid.CapNMSG, []string{"FIDO_2_0", "FIDO_2_1"}},
	}
	for _, tt := range tests {
		t.Run(tt.p.String(), func(t *testing.T) {
			c := testChip(t, Options{Profile: tt.p})
			ctx := testCtx(t)
			if c.Protocols() != tt.p.Protocols() || c.Profile() != tt.p {
				t.Errorf("Protocols %v", c.Protocols())
			}
			speaksCTAP2 := tt.p != ProfileU2F
			speaksU2F := tt.p != ProfileCTAP2Only

			// ISO 7816.
			card := apdu.NewCard(c, apdu.CardOptions{})
			defer card.Close()
			cl := apdu.NewClient(card, apdu.ClientOptions{})
			if v, err := cl.Select(ctx); err != nil || v != tt.selectResp {
				t.Errorf("SELECT answered %q, %v; want %q", v, err, tt.selectResp)
			}
			_, err := ctap2.NewClient(cl).Info(ctx)
			var se *apdu.StatusError
			if speaksCTAP2 && err != nil || !speaksCTAP2 && !(errors.As(err, &se) && se.SW == apdu.SWINSNotSupported) {
				t.Errorf("getInfo over NFCCTAP_MSG: %v", err)
			}
			v, err := u2f.NewClient(cl, nil).Version(ctx)
			if speaksU2F && (err != nil || v != u2f.Version) || !speaksU2F && !errors.Is(err, device.ErrNotSupported) {
				t.Errorf("U2F_VERSION over APDU: %q, %v", v, err)
			}

			// CTAPHID.
			l := connectHID(t, c)
			conn := l.u2f // a u2f.Client over the Conn
			info, err := l.ctap.Info(ctx)
			if speaksCTAP2 && (err != nil || !slices.Equal(info.Versions, tt.versions)) || !speaksCTAP2 && !errors.Is(err, device.ErrNotSupported) {
				t.Errorf("getInfo over CTAPHID_CBOR: %v, %v", info, err)
			}
			if v, err := conn.Version(ctx); speaksU2F && (err != nil || v != u2f.Version) || !speaksU2F && !errors.Is(err, device.ErrNotSupported) {
				t.Errorf("U2F_VERSION over CTAPHID_MSG: %q, %v", v, err)
			}
			if caps := l.caps &^ ctaphid.CapWink; caps != tt.caps {
				t.Errorf("CTAPHID_INIT capabilities %s, want %s", caps, tt.caps)
			}

			// In-process.
			if _, err := c.Info(ctx); speaksCTAP2 != (err == nil) || !speaksCTAP2 && !errors.Is(err, ctap2.ErrInvalidCommand) {
				t.Errorf("Info in-process: %v", err)
			}
			if _, err := c.MakeCredential(ctx, makeReq("example.dk", "a", false)); !speaksCTAP2 && !errors.Is(err, ctap2.ErrInvalidCommand) {
				t.Errorf("MakeCredential of a U2F-only chip: %v", err)
			}
			resp := c.ServeU2F(ctx, []byte{0, 3, 0, 0, 0})
			if got := resp[len(resp)-2:]; speaksU2F != bytes.Equal(got, []byte{0x90, 0}) {
				t.Errorf("ServeU2F(VERSION) status %x", got)
			}
		})
	}
}

// TestHost: in-process, a FIDO2 chip is its own host view; a U2F-only
// chip's goes through the CTAP 2.1 §10 translation and gives fido-u2f
// attestations.
func TestHost(t *testing.T) {
	c := testChip(t, Options{})
	if c.Host() != device.Chip(c) {
		t.Error("a FIDO2 chip's host view is not the chip")
	}
	u := testChip(t, Options{Profile: ProfileU2F})
	h := u.Host()
	m := mustMake(t, authenticatorOf(h), makeReq("example.dk", "alice", false))
	if m.att.Format != ctap2.FormatFIDOU2F {
		t.Fatalf("format %q", m.att.Format)
	}
	mustAssert(t, authenticatorOf(h), getReq("example.dk", m.id), m.pub)
	if p, ok := h.(device.ProtocolReporter); !ok || p.Protocols() != device.ProfileU2FOnly {
		t.Error("the host view does not report U2F-only")
	}
	if s, ok := h.(interface {
		ServeU2F(context.Context, []byte) []byte
	}); !ok || len(s.ServeU2F(testCtx(t), []byte{0, 3, 0, 0, 0})) != 8 {
		t.Error("the host view does not offer ServeU2F")
	}
}

// authenticatorOf gives a device.Chip the optional methods the test
// helpers want, refusing them.
func authenticatorOf(c device.Chip) authenticator { return hostOnly{c} }

type hostOnly struct{ device.Chip }

func (hostOnly) GetNextAssertion(context.Context) (*ctap2.Assertion, error) {
	return nil, device.ErrNotSupported
}
func (hostOnly) Reset(context.Context) error     { return device.ErrNotSupported }
func (hostOnly) Selection(context.Context) error { return device.ErrNotSupported }

package webauthn_test

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/metadata/providers/memory"
	"github.com/google/uuid"

	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/sim/chip"
)

// The metadata hook (Config.Metadata) with a provider as an MDS3 BLOB
// gives it: an entry for the chip model's AAGUID whose attestation root
// is the chip's CA. Without Roots, the entry makes the attestation
// trusted; a status report of a compromised model refuses it; a model the
// provider does not know is refused when the provider requires entries.
func TestMetadata(t *testing.T) {
	c := newChip(t, "chip-1", chip.Options{})
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(chip.TestCACertPEM())
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	aaguid := uuid.UUID(info.AAGUID)
	provider := func(status metadata.AuthenticatorStatus, known bool) metadata.Provider {
		entries := map[uuid.UUID]*metadata.Entry{}
		if known {
			entries[aaguid] = &metadata.Entry{
				AaGUID: aaguid,
				MetadataStatement: metadata.Statement{
					AaGUID:                      aaguid,
					AttestationTypes:            metadata.AuthenticatorAttestationTypes{metadata.BasicFull},
					AttestationRootCertificates: []*x509.Certificate{ca},
				},
				StatusReports: []metadata.StatusReport{{Status: status}},
			}
		} else {
			entries[uuid.New()] = &metadata.Entry{}
		}
		p, err := memory.New(memory.WithMetadata(entries))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		mds     metadata.Provider
		err     error
		reason  string
		trusted bool
	}{
		{"certified model", provider(metadata.FidoCertifiedL1, true), nil, "", true},
		{"revoked model", provider(metadata.Revoked, true), webauthn.ErrUntrusted, "REVOKED", false},
		{"compromised attestation key", provider(metadata.AttestationKeyCompromise, true), webauthn.ErrUntrusted, "ATTESTATION_KEY_COMPROMISE", false},
		{"unknown model", provider("", false), webauthn.ErrUntrusted, "no registered metadata", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := newRP(t, webauthn.Config{Metadata: tt.mds})
			reg, err := rp.VerifyRegistration(t.Context(), register(t, c, nil, nil), regChallenge)
			wantErr(t, err, tt.err, "")
			if err != nil && !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("%v: does not say %q", err, tt.reason)
			}
			if err == nil && reg.Trusted != tt.trusted {
				t.Fatalf("trusted %v", reg.Trusted)
			}
		})
	}
}

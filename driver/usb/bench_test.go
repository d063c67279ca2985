package usb_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/driver/usb"
	"github.com/authbench/authbench/sim/chip"
)

// benchGetAssertion measures one getAssertion (one credential in the allow
// list, presence Auto) through a usb.Chip made by NewChip, over tr, to a
// simulated chip served by ctaphid.Serve.
func benchGetAssertion(b *testing.B, tr transport) {
	s := startSim(b, tr, chip.Options{}, usb.Options{})
	ctx := context.Background()
	att, err := s.chip.MakeCredential(ctx, makeCredentialRequest())
	if err != nil {
		b.Fatal(err)
	}
	ad, err := ctap2.ParseAuthData(att.AuthData)
	if err != nil {
		b.Fatal(err)
	}
	cdh := sha256.Sum256([]byte("bench"))
	req := &ctap2.GetAssertionRequest{
		RPID:           rpID,
		ClientDataHash: cdh[:],
		AllowList:      []ctap2.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: ad.AttestedCredential.CredentialID}},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.chip.GetAssertion(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetAssertionUDPHID: CTAPHID reports in UDP datagrams on
// 127.0.0.1, the stand-in for USB on machines without it.
func BenchmarkGetAssertionUDPHID(b *testing.B) { benchGetAssertion(b, transports[1]) }

// BenchmarkGetAssertionPipe: CTAPHID reports over the in-memory pipe.
func BenchmarkGetAssertionPipe(b *testing.B) { benchGetAssertion(b, transports[0]) }

// BenchmarkGetAssertionEmulated: through gousb, libusb, umockdev's preload
// and the emulated bus's handler (a Python process) to the simulated chip
// on UDP. It measures the emulation, not USB: a full-speed key answers a
// report per 1 ms frame at best.
func BenchmarkGetAssertionEmulated(b *testing.B) { benchGetAssertion(b, transports[2]) }

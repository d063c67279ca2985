package usb_test

import (
	"crypto/x509"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/devicetest"
	"github.com/authbench/authbench/driver/usb"
	"github.com/authbench/authbench/sim/chip"
)

// TestChipSuiteEmulated runs the chip conformance suite against a usb.Chip
// that usb.Open found through libusb on the emulated bus: the same checks
// as for a key on a bench, every byte through gousb, libusb and usbdevfs.
func TestChipSuiteEmulated(t *testing.T) {
	for _, tc := range []struct {
		profile chip.Profile
		min     int // checks that must pass: those of the profile
	}{
		{chip.ProfileFIDO2, 20},
		{chip.ProfileU2F, 10},
	} {
		t.Run(tc.profile.String(), func(t *testing.T) {
			var hold atomic.Bool
			sc, err := chip.New(chip.Options{
				Seed:    []byte("driver/usb suite " + tc.profile.String()),
				Profile: tc.profile,
				PresenceFunc: func(chip.Op) chip.Presence {
					if hold.Load() {
						return chip.Never
					}
					return chip.Auto
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			s := startEmulated(t, sc, ctaphid.ServeOptions{}, usb.Options{U2FPollInterval: 5 * time.Millisecond})
			if s.chip.U2FOnly() != (tc.profile == chip.ProfileU2F) {
				t.Fatalf("U2FOnly = %v for a %v chip (CTAPHID capabilities %v)", s.chip.U2FOnly(), tc.profile, s.chip.HIDInfo().Capabilities)
			}
			rep := devicetest.RunT(t, devicetest.ChipSuite(devicetest.ChipOptions{
				Roots:            testRoots(t),
				Destructive:      true,
				WithholdPresence: hold.Store,
			}), s.chip, devicetest.RunOptions{})
			p, f, k := rep.Counts()
			t.Logf("%s against %s: %d passed, %d failed, %d skipped", rep.Suite, rep.Target, p, f, k)
			if p < tc.min {
				t.Errorf("only %d checks passed, want at least %d", p, tc.min)
			}
		})
	}
}

// testRoots returns the simulator's test attestation CA as a root pool.
func testRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile("../../testdata/attestation/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in testdata/attestation/ca.pem")
	}
	return pool
}

package service_test

import (
	"errors"
	"testing"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
	"github.com/authbench/authbench/sim/chip"
)

// enrollHost adds and activates the chip h (a host's view of a chip, such
// as a U2F-only chip through the CTAP 2.1 §10 translation) for identity id.
func (e *env) enrollHost(id string, h device.Chip) (service.AuthenticatorView, error) {
	e.t.Helper()
	res, err := e.svc.AddAuthenticator(e.ctx, support, id, service.AddRequest{Kind: "chip"})
	if err != nil {
		return service.AuthenticatorView{}, err
	}
	act := res.Activation.(service.ChipActivation)
	reg, err := servicetest.Register(e.ctx, h, origin, act.PublicKey, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.svc.Activate(e.ctx, support, id, res.Authenticator.ID, service.ActivateRequest{Ceremony: act.Ceremony, Credential: reg})
}

// TestChipsToldApartByCredentialID: the server tells chips apart by their
// credential IDs, not by what their attestation certificates say. Two
// chips of one model share the model's AAGUID and, by default, one batch
// certificate (FIDO's privacy rules): both are enrolled, for two people.
// So are two chips whose certificates carry the same serial number (a
// batch or lot number). Each kind of attestation works: batch and serial
// certificates are trusted through the roots; self and none only with
// AllowNoneAttestation, and recorded as untrusted. U2F-only chips give
// fido-u2f attestations.
func TestChipsToldApartByCredentialID(t *testing.T) {
	tests := []struct {
		profile  chip.Profile
		kind     chip.Attestation
		serial   string // printed serial of both chips; "" for their own
		trusted  bool
		format   string
		sameCert bool // the two chips send the same certificate
	}{
		{chip.ProfileFIDO2, chip.AttestationBatch, "", true, "packed", true},
		{chip.ProfileFIDO2, chip.AttestationSerial, "", true, "packed", false},
		{chip.ProfileFIDO2, chip.AttestationSerial, "LOT-0042", true, "packed", false},
		{chip.ProfileFIDO2, chip.AttestationSelf, "", false, "packed", false},
		{chip.ProfileFIDO2, chip.AttestationNone, "", false, "none", false},
		{chip.ProfileU2F, chip.AttestationBatch, "", true, "fido-u2f", true},
		{chip.ProfileU2F, chip.AttestationSerial, "LOT-0042", true, "fido-u2f", false},
		{chip.ProfileU2F, chip.AttestationSelf, "", false, "fido-u2f", false},
	}
	for _, tt := range tests {
		name := tt.profile.String() + "/" + tt.kind.String()
		if tt.serial != "" {
			name += "/same serial"
		}
		t.Run(name, func(t *testing.T) {
			var opts []envOption
			if !tt.trusted {
				// Without it, such a chip is refused.
				e := newEnv(t)
				e.identity("carol")
				c := newChip(t, "refused", chip.Options{Profile: tt.profile, Attestation: tt.kind})
				if _, err := e.enrollHost("carol", c.Host()); !errors.Is(err, service.ErrAttestationUntrusted) {
					t.Fatalf("a chip with %s attestation without AllowNoneAttestation: %v", tt.kind, err)
				}
				opts = append(opts, allowNone())
			}
			e := newEnv(t, opts...)
			var views []service.AuthenticatorView
			var chips []*chip.Chip
			for _, who := range []string{"alice", "bob"} {
				e.identity(who)
				c := newChip(t, "chip of "+who, chip.Options{Profile: tt.profile, Attestation: tt.kind, Serial: tt.serial})
				v, err := e.enrollHost(who, c.Host())
				if err != nil {
					t.Fatalf("enrolling %s's chip: %v", who, err)
				}
				s := v.Element.(service.ChipSummary)
				if v.State != "active" || s.AttestationTrusted != tt.trusted || s.AttestationFormat != tt.format || s.ChipSerial != "" {
					t.Fatalf("%s's chip: %+v", who, v)
				}
				if want := tt.profile.AAGUID(); s.AAGUID != aaguidText(want) {
					t.Errorf("AAGUID %s, want the model's %x", s.AAGUID, want)
				}
				views, chips = append(views, v), append(chips, c)
			}
			if views[0].CredentialID == views[1].CredentialID || views[0].ID == views[1].ID {
				t.Fatal("two chips share a credential ID")
			}
			if same := chips[0].Certificate().Equal(chips[1].Certificate()); same != (tt.sameCert || tt.kind == chip.AttestationSelf || tt.kind == chip.AttestationNone) {
				t.Errorf("the chips hold the same certificate: %v", same)
			}
		})
	}
}

func aaguidText(a [16]byte) string {
	const hex = "0123456789abcdef"
	var b []byte
	for i, c := range a {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hex[c>>4], hex[c&15])
	}
	return string(b)
}

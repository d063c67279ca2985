package devicetest_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/devicetest"
	"github.com/authbench/authbench/sim/chip"
)

// profileChip is a simulated chip of a profile with a switch for the
// cancel check.
func profileChip(t *testing.T, seed string, p chip.Profile) (*chip.Chip, devicetest.ChipOptions) {
	t.Helper()
	var hold atomic.Bool
	c, err := chip.New(chip.Options{Seed: []byte(seed), Profile: p, PresenceFunc: func(chip.Op) chip.Presence {
		if hold.Load() {
			return chip.Never
		}
		return chip.Auto
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("chip.Close: %v", err)
		}
	})
	return c, devicetest.ChipOptions{Roots: testRoots(t), RequireAttestation: true, Destructive: true, WithholdPresence: hold.Store}
}

// hidTarget serves c over CTAPHID with opts and returns a raw target over
// the connection, which also shows the INIT capabilities.
type hidTarget struct {
	*devicetest.MessengerChip
	conn *ctaphid.Conn
}

func (h hidTarget) HIDInfo() ctaphid.DeviceInfo { return h.conn.DeviceInfo() }

func serveHID(t *testing.T, c *chip.Chip, opts ctaphid.ServeOptions) hidTarget {
	t.Helper()
	host, dev := ctaphid.NewPipe()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ctaphid.Serve(ctx, dev, c, opts) }()
	conn, err := ctaphid.Open(ctx, host, ctaphid.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); cancel(); <-served; host.Close() })
	return hidTarget{devicetest.NewMessengerChip(conn), conn}
}

// cardTarget serves c as an ISO 7816 card with opts and returns a raw
// target over an APDU client, which also shows the answer to SELECT.
type cardTarget struct {
	*devicetest.MessengerChip
	version string
}

func (c cardTarget) Version() string { return c.version }

func serveCard(t *testing.T, c *chip.Chip, opts apdu.CardOptions) cardTarget {
	t.Helper()
	card := apdu.NewCard(c, opts)
	t.Cleanup(func() { card.Close() })
	cl := apdu.NewClient(card, apdu.ClientOptions{})
	v, err := cl.Select(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cardTarget{devicetest.NewMessengerChip(cl), v}
}

// TestChipSuiteProfiles: a chip of each profile passes the suite on each
// transport, in its profile: the report says which, the checks of the
// other profiles are skipped saying so, and a FIDO2 chip runs both the
// CTAP2 and the U2F checks. A U2F-only chip reached raw (getInfo refused)
// is driven through the CTAP 2.1 §10 translation.
func TestChipSuiteProfiles(t *testing.T) {
	ctap2Only := []string{"info.fields", "info.canonical", "makecredential.unsupported-algorithm", "makecredential.long-message",
		"error.client-data-hash-length", "error.missing-parameter", "error.pin-uv-auth-param", "error.wrong-type",
		"error.invalid-command", "error.next-without-assertion", "resident.replace", "getassertion.next", "selection", "reset"}
	u2fOnly := []string{"u2f.version", "u2f.register-authenticate", "u2f.check-only", "u2f.errors"}
	targets := []struct {
		name string
		open func(t *testing.T, c *chip.Chip) any
	}{
		{"in-process", func(t *testing.T, c *chip.Chip) any { return c }},
		{"ctaphid", func(t *testing.T, c *chip.Chip) any { return serveHID(t, c, ctaphid.ServeOptions{}) }},
		{"apdu", func(t *testing.T, c *chip.Chip) any { return serveCard(t, c, apdu.CardOptions{}) }},
	}
	for _, p := range []chip.Profile{chip.ProfileFIDO2, chip.ProfileU2F, chip.ProfileCTAP2Only} {
		for _, tg := range targets {
			t.Run(p.String()+"/"+tg.name, func(t *testing.T) {
				c, opts := profileChip(t, "profile "+p.String()+tg.name, p)
				rep := devicetest.RunSuite(t.Context(), devicetest.ChipSuite(opts), tg.open(t, c), devicetest.RunOptions{})
				if f := rep.Failed(); len(f) != 0 {
					for _, name := range f {
						t.Errorf("%s: %s", name, rep.Result(name).Message)
					}
				}
				if want := p.Protocols().String(); rep.Profile != want {
					t.Errorf("report profile %q, want %q", rep.Profile, want)
				}
				var skipped []string // by profile
				for _, r := range rep.Results {
					if r.Status == devicetest.Skip && strings.HasPrefix(r.Message, "not part of the "+rep.Profile+" profile") {
						skipped = append(skipped, r.Name)
					}
				}
				var want []string
				switch p {
				case chip.ProfileU2F:
					want = ctap2Only
				case chip.ProfileCTAP2Only:
					want = u2fOnly
				}
				if !slices.Equal(skipped, want) {
					t.Errorf("skipped for the profile: %q, want %q", skipped, want)
				}
				for _, name := range append(slices.Clone(u2fOnly), "makecredential.attestation", "getassertion.counter", "makecredential.exclude-list", "cancel.presence") {
					if r := rep.Result(name); p != chip.ProfileCTAP2Only && r.Status != devicetest.Pass {
						t.Errorf("%s: %s %s", name, r.Status, r.Message)
					}
				}
				if tg.name != "in-process" {
					if r := rep.Result("transport.profile"); r.Status != devicetest.Pass {
						t.Errorf("transport.profile: %s %s", r.Status, r.Message)
					}
				}
			})
		}
	}
}

// TestChipSuiteCatchesWrongAnnouncement: a transport that announces the
// wrong profile fails transport.profile: a dual-mode chip whose SELECT
// answers FIDO_2_0 (CTAP 2.1 §11.3.3 asks for U2F_V2, or U2F-only hosts
// cannot use it), and a FIDO2 chip served with NMSG in its INIT
// capabilities.
func TestChipSuiteCatchesWrongAnnouncement(t *testing.T) {
	only := devicetest.RunOptions{Select: func(n string) bool { return n == "transport.profile" }}
	c, opts := profileChip(t, "wrong select", chip.ProfileFIDO2)
	rep := devicetest.RunSuite(t.Context(), devicetest.ChipSuite(opts), serveCard(t, c, apdu.CardOptions{Protocols: device.ProfileCTAP2Only}), only)
	if r := rep.Result("transport.profile"); r.Status != devicetest.Fail || !strings.Contains(r.Message, "§11.3.3") || rep.Profile != "FIDO2" {
		t.Errorf("FIDO_2_0 from a dual-mode chip: %s %q (profile %s)", r.Status, r.Message, rep.Profile)
	}
	c2, opts2 := profileChip(t, "wrong caps", chip.ProfileFIDO2)
	rep = devicetest.RunSuite(t.Context(), devicetest.ChipSuite(opts2), serveHID(t, c2, ctaphid.ServeOptions{NoMSG: true}), only)
	if r := rep.Result("transport.profile"); r.Status != devicetest.Fail || !strings.Contains(r.Message, "NMSG") {
		t.Errorf("NMSG from a FIDO2 chip: %s %q", r.Status, r.Message)
	}
}

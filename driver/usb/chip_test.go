package usb_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/u2f"
	"github.com/authbench/authbench/driver/usb"
	"github.com/authbench/authbench/sim/chip"
)

const rpID = "authbench.test"

// checkChip runs the checks every chip must pass: the simulator over the
// in-memory pipe and over UDP HID, and a real key with -hw. On a real key
// makeCredential, getAssertion and U2F register/authenticate each need a
// touch; the test logs when the key asks for one.
func checkChip(t *testing.T, ch *usb.Chip) {
	ctx := ctap2.WithKeepalive(context.Background(), func(s ctap2.KeepaliveStatus) {
		if s == ctap2.StatusUPNeeded {
			t.Log("touch the key")
		}
	})
	hi := ch.HIDInfo()

	u2fOnly := !hi.Capabilities.Has(ctaphid.CapCBOR)
	if ch.U2FOnly() != u2fOnly || (ch.Protocols() == device.ProfileU2FOnly) != u2fOnly {
		t.Errorf("U2FOnly %v, Protocols %v, capabilities %s", ch.U2FOnly(), ch.Protocols(), hi.Capabilities)
	}

	t.Run("getInfo", func(t *testing.T) {
		info, err := ch.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if u2fOnly {
			// What the CTAP 2.1 §10 translation says of a U2F-only key.
			if !slices.Equal(info.Versions, []string{"U2F_V2"}) || info.Options["rk"] {
				t.Errorf("getInfo of a U2F-only key: versions %v, options %v", info.Versions, info.Options)
			}
			return
		}
		if !slices.Contains(info.Versions, "FIDO_2_0") || len(info.AAGUID) != 16 {
			t.Errorf("getInfo: versions %v, AAGUID %x", info.Versions, info.AAGUID)
		}
	})

	// A U2F-only key makes credentials and signs through CTAP 2.1 §10, over
	// CTAPHID_MSG, with a fido-u2f attestation.
	t.Run("makeCredential and getAssertion", func(t *testing.T) {
		cdh := sha256.Sum256([]byte("driver/usb register"))
		att, err := ch.MakeCredential(ctx, &ctap2.MakeCredentialRequest{
			ClientDataHash:   cdh[:],
			RP:               ctap2.RPEntity{ID: rpID, Name: "authbench"},
			User:             ctap2.UserEntity{ID: []byte("usb-user"), Name: "usb"},
			PubKeyCredParams: []ctap2.CredentialParameters{{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgES256}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ad, err := ctap2.ParseAuthData(att.AuthData)
		if err != nil {
			t.Fatal(err)
		}
		if ad.AttestedCredential == nil || ad.RPIDHash != ctap2.RPIDHash(rpID) || ad.Flags&ctap2.FlagUP == 0 {
			t.Fatalf("authenticator data %+v", ad)
		}
		if u2fOnly != (att.Format == ctap2.FormatFIDOU2F) {
			t.Errorf("attestation format %q of a key with capabilities %s", att.Format, hi.Capabilities)
		}
		cred := ad.AttestedCredential
		last := ad.SignCount
		for i := range 2 {
			cdh := sha256.Sum256([]byte{'a', byte(i)})
			as, err := ch.GetAssertion(ctx, &ctap2.GetAssertionRequest{
				RPID:           rpID,
				ClientDataHash: cdh[:],
				AllowList:      []ctap2.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: cred.CredentialID}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := ctap2.VerifyAssertion(cred.PublicKey, as.AuthData, cdh[:], as.Signature); err != nil {
				t.Fatalf("assertion %d: %v", i, err)
			}
			aad, err := ctap2.ParseAuthData(as.AuthData)
			if err != nil {
				t.Fatal(err)
			}
			if aad.SignCount != 0 && aad.SignCount <= last {
				t.Errorf("assertion %d: sign count %d after %d", i, aad.SignCount, last)
			}
			last = aad.SignCount
		}
	})

	t.Run("getAssertion without credential", func(t *testing.T) {
		cdh := sha256.Sum256([]byte("nothing"))
		_, err := ch.GetAssertion(ctx, &ctap2.GetAssertionRequest{
			RPID:           "nothing-registered.authbench.test",
			ClientDataHash: cdh[:],
			Options:        map[string]bool{"up": false},
			AllowList:      []ctap2.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: cdh[:]}},
		})
		if !errors.Is(err, ctap2.ErrNoCredentials) {
			t.Fatalf("getAssertion = %v, want CTAP2_ERR_NO_CREDENTIALS", err)
		}
		var se *ctap2.StatusError
		if !errors.As(err, &se) || se.Code != ctap2.CodeNoCredentials {
			t.Errorf("error %v is not a *ctap2.StatusError", err)
		}
	})

	t.Run("U2F over CTAPHID_MSG", func(t *testing.T) {
		if hi.Capabilities.Has(ctaphid.CapNMSG) {
			t.Skip("CTAP2-only key")
		}
		c := ch.U2F()
		v, err := c.Version(ctx)
		if err != nil || v != "U2F_V2" {
			t.Fatalf("version = %q, %v", v, err)
		}
		app := sha256.Sum256([]byte("https://" + rpID))
		challenge := sha256.Sum256([]byte("u2f challenge"))
		reg, err := c.Register(ctx, challenge, app)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Verify(app, challenge); err != nil {
			t.Fatalf("register: %v", err)
		}
		pub, err := reg.Key()
		if err != nil {
			t.Fatal(err)
		}
		auth, err := c.Authenticate(ctx, u2f.ControlEnforcePresence, challenge, app, reg.KeyHandle)
		if err != nil {
			t.Fatal(err)
		}
		if err := auth.Verify(pub, app, challenge); err != nil || !auth.UserPresent() {
			t.Fatalf("authenticate: %v, presence %v", err, auth.UserPresent())
		}
	})

	t.Run("wink", func(t *testing.T) {
		if err := ch.Wink(ctx); err != nil && !errors.Is(err, device.ErrNotSupported) {
			t.Fatal(err)
		}
	})
}

// TestChip runs checkChip against a simulated chip of each profile on each
// transport: a U2F-only chip (no CBOR in its INIT capabilities) is driven
// over CTAPHID_MSG.
func TestChip(t *testing.T) {
	for _, tr := range transports {
		for _, p := range []chip.Profile{chip.ProfileFIDO2, chip.ProfileU2F} {
			t.Run(tr.name+"/"+p.String(), func(t *testing.T) {
				s := startSim(t, tr, chip.Options{Profile: p}, usb.Options{U2FPollInterval: 5 * time.Millisecond})
				info := s.chip.DeviceInfo()
				if info.Kind != device.KindChip || info.Transport != tr.name {
					t.Errorf("DeviceInfo = %+v", info)
				}
				if s.chip.Protocols() != p.Protocols() {
					t.Errorf("Protocols %v, want %v", s.chip.Protocols(), p.Protocols())
				}
				checkChip(t, s.chip)
				if p == chip.ProfileU2F {
					ctx := context.Background()
					for name, err := range map[string]error{
						"reset":     s.chip.Reset(ctx),
						"selection": s.chip.Selection(ctx),
					} {
						if !errors.Is(err, device.ErrNotSupported) {
							t.Errorf("%s of a U2F-only key: %v", name, err)
						}
					}
					if _, err := s.chip.GetNextAssertion(ctx); !errors.Is(err, device.ErrNotSupported) {
						t.Errorf("getNextAssertion of a U2F-only key: %v", err)
					}
				}
			})
		}
	}
}

// TestHardware runs checkChip against a real key when -hw names one.
func TestHardware(t *testing.T) {
	if *hw == "" {
		t.Skip("no -hw=usb:VID:PID given")
	}
	sel, err := usb.ParseSelector(*hw)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	ch, err := usb.Open(ctx, sel, usb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ch.Close(); err != nil {
			t.Error(err)
		}
	}()
	t.Logf("key %+v, CTAPHID %+v", ch.DeviceInfo(), ch.HIDInfo())
	checkChip(t, ch)
}

func TestCancelWhileWaitingForPresence(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := startSim(t, tr, chip.Options{Presence: chip.Never}, usb.Options{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var upNeeded atomic.Int32
			ctx = ctap2.WithKeepalive(ctx, func(st ctap2.KeepaliveStatus) {
				if st == ctap2.StatusUPNeeded && upNeeded.Add(1) == 1 {
					cancel() // the user gives up
				}
			})
			_, err := s.chip.MakeCredential(ctx, makeCredentialRequest())
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("makeCredential = %v, want context.Canceled", err)
			}
			if upNeeded.Load() == 0 {
				t.Error("no UPNEEDED keepalive seen")
			}
			// The channel is usable again.
			gctx, gcancel := context.WithTimeout(context.Background(), guard)
			defer gcancel()
			if _, err := s.chip.Info(gctx); err != nil {
				t.Fatalf("getInfo after cancel: %v", err)
			}
		})
	}
}

func TestTimeoutOption(t *testing.T) {
	s := startSim(t, transports[0], chip.Options{Presence: chip.Never}, usb.Options{Timeout: 50 * time.Millisecond})
	_, err := s.chip.MakeCredential(context.Background(), makeCredentialRequest())
	if !errors.Is(err, device.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("makeCredential = %v, want device.ErrTimeout and context.DeadlineExceeded", err)
	}
}

// TestRemovedMidCommand unplugs the simulated chip while it waits for a
// touch: over the pipe the transport fails and on the emulated USB bus
// libusb reports the device gone (device.ErrRemoved); over UDP nothing says
// so, and the call ends at its deadline (device.ErrTimeout).
func TestRemovedMidCommand(t *testing.T) {
	for _, tc := range []struct {
		tr   transport
		want error
	}{
		{transports[0], device.ErrRemoved},
		{transports[1], device.ErrTimeout},
		{transports[2], device.ErrRemoved},
	} {
		t.Run(tc.tr.name, func(t *testing.T) {
			s := startSim(t, tc.tr, chip.Options{Presence: chip.Never}, usb.Options{})
			timeout := guard
			if tc.want == device.ErrTimeout {
				timeout = 300 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			var once sync.Once
			ctx = ctap2.WithKeepalive(ctx, func(st ctap2.KeepaliveStatus) {
				if st == ctap2.StatusUPNeeded {
					once.Do(s.unplug)
				}
			})
			_, err := s.chip.MakeCredential(ctx, makeCredentialRequest())
			if !errors.Is(err, tc.want) {
				t.Fatalf("makeCredential = %v, want %v", err, tc.want)
			}
			if tc.want == device.ErrRemoved {
				// Every later call fails the same way, at once.
				if _, err := s.chip.Info(context.Background()); !errors.Is(err, device.ErrRemoved) {
					t.Errorf("getInfo after removal = %v", err)
				}
			}
		})
	}
}

func TestClose(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			base := runtime.NumGoroutine()
			s := startSim(t, tr, chip.Options{Presence: chip.Never}, usb.Options{})
			// A call waiting for a touch ends when the Chip is closed.
			done := make(chan error, 1)
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			waiting := make(chan struct{})
			var once sync.Once
			kctx := ctap2.WithKeepalive(ctx, func(ctap2.KeepaliveStatus) { once.Do(func() { close(waiting) }) })
			go func() {
				_, err := s.chip.MakeCredential(kctx, makeCredentialRequest())
				done <- err
			}()
			<-waiting
			if err := s.chip.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; !errors.Is(err, device.ErrClosed) {
				t.Errorf("call in progress at Close = %v, want device.ErrClosed", err)
			}
			if _, err := s.chip.Info(ctx); !errors.Is(err, device.ErrClosed) {
				t.Errorf("getInfo after Close = %v", err)
			}
			if err := s.chip.Close(); err != nil {
				t.Errorf("second Close = %v", err)
			}
			s.stop()
			settleGoroutines(t, base)
		})
	}
}

func TestNewChipNoAnswer(t *testing.T) {
	base := runtime.NumGoroutine()
	dev, host := ctaphid.NewPipe()
	defer dev.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ch, err := usb.NewChip(ctx, host, device.Info{}, usb.Options{})
	if ch != nil || !errors.Is(err, device.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NewChip = %v, %v; want device.ErrTimeout", ch, err)
	}
	dev.Close()
	settleGoroutines(t, base)
}

// TestErrorsNameTheTransport: errors name the transport the chip is on, a
// USB key or, for a chip on UDP, "udp", so that nobody goes looking for a
// USB key that is not there.
func TestErrorsNameTheTransport(t *testing.T) {
	for _, tc := range []struct {
		info device.Info
		want string
	}{
		{device.Info{Transport: "udp", Path: "127.0.0.1:1"}, "udp: 127.0.0.1:1: open: "},
		{device.Info{Transport: "usb", Path: "1-2"}, "usb: 1-2: open: "},
		{device.Info{}, "usb: chip: open: "},
	} {
		dev, host := ctaphid.NewPipe()
		dev.Close()
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		_, err := usb.NewChip(ctx, host, tc.info, usb.Options{})
		cancel()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("NewChip(%+v) = %v, want an error starting %q", tc.info, err, tc.want)
		}
	}
}

func TestNewChipRemoved(t *testing.T) {
	dev, host := ctaphid.NewPipe()
	dev.Close()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	ch, err := usb.NewChip(ctx, host, device.Info{}, usb.Options{})
	if ch != nil || !errors.Is(err, device.ErrRemoved) {
		t.Fatalf("NewChip = %v, %v; want device.ErrRemoved", ch, err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	s := startSim(t, transports[0], chip.Options{}, usb.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := s.chip.Info(ctx)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestMessengers(t *testing.T) {
	s := startSim(t, transports[0], chip.Options{}, usb.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	resp, err := s.chip.CBOR(ctx, []byte{ctap2.CmdGetInfo})
	if err != nil || len(resp) < 2 || resp[0] != ctap2.CodeOK {
		t.Fatalf("CBOR(getInfo) = %x, %v", resp, err)
	}
	// U2F_VERSION, extended length: 00 03 00 00 00 00 00.
	resp, err = s.chip.APDU(ctx, []byte{0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00})
	if err != nil || string(resp) != "U2F_V2\x90\x00" {
		t.Fatalf("APDU(version) = %q, %v", resp, err)
	}
}

func makeCredentialRequest() *ctap2.MakeCredentialRequest {
	cdh := sha256.Sum256([]byte("driver/usb wait"))
	return &ctap2.MakeCredentialRequest{
		ClientDataHash:   cdh[:],
		RP:               ctap2.RPEntity{ID: rpID},
		User:             ctap2.UserEntity{ID: []byte("waiting-user")},
		PubKeyCredParams: []ctap2.CredentialParameters{{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgES256}},
	}
}

package client

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/sim/app"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/code"
)

func newChip(t *testing.T, opts chip.Options) *chip.Chip {
	t.Helper()
	c, err := chip.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("chip close: %v", err)
		}
	})
	return c
}

func TestChipCeremonies(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	var ch *chip.Chip
	var keepalives atomic.Int32
	// The simulated person touches the chip when it asks (Manual presence,
	// touched from the keepalive callback): the callback must see UPNEEDED.
	touch := func(s ctap2.KeepaliveStatus) {
		if s == ctap2.StatusUPNeeded {
			keepalives.Add(1)
			ch.Touch()
		}
	}
	c := f.client(t, Options{Origin: f.origin, Keepalive: touch})
	ch = newChip(t, chip.Options{Seed: []byte("client test chip"), Presence: chip.Manual})
	if _, err := c.CreateIdentity(ctx, CreateIdentityRequest{ID: "p1", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	a, err := EnrollChip(ctx, c, "p1", "my chip", ch)
	if err != nil {
		t.Fatal(err)
	}
	if a.State != StateActive || a.CredentialID == "" || a.Element.AttestationFormat != "packed" || a.Element.AttestationTrusted == nil || !*a.Element.AttestationTrusted {
		t.Errorf("enrolled %+v", a)
	}
	if keepalives.Load() == 0 {
		t.Error("no UPNEEDED keepalive reached Options.Keepalive")
	}
	s1, err := LoginPasswordChip(ctx, c, "p1", testPassword, a.ID, ch)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := LoginPasswordChip(ctx, c, "p1", testPassword, a.ID, ch)
	if err != nil {
		t.Fatal(err)
	}
	if s1.Token == "" || s1.Token == s2.Token || s2.Authenticator.ID != a.ID || len(s2.Authenticators) != 2 || s2.Authenticators[1] != a.ID || s2.Level != LevelTwoFactor {
		t.Errorf("sessions %+v %+v", s1, s2)
	}

	// A second enrolment of the same chip: the server's excludeList names
	// the credential, the chip refuses (after a touch, CTAP 2.1 §6.1.2 step
	// 3), and the error says so.
	_, err = EnrollChip(ctx, c, "p1", "again", ch)
	var ce *CeremonyError
	if !errors.As(err, &ce) || ce.Step != "makeCredential" || ce.AuthenticatorID == "" || !errors.Is(err, ctap2.ErrCredentialExcluded) {
		t.Errorf("second enrolment: %v", err)
	}

	// Another chip does not hold the credential.
	other := newChip(t, chip.Options{Seed: []byte("another chip")})
	_, err = LoginPasswordChip(ctx, c, "p1", testPassword, a.ID, other)
	if !errors.As(err, &ce) || ce.Step != "getAssertion" || !errors.Is(err, ctap2.ErrNoCredentials) {
		t.Errorf("login with another chip: %v", err)
	}

	// A clone replays an old counter: the server says sign_count.
	var saved bytes.Buffer
	if err := ch.Save(&saved); err != nil {
		t.Fatal(err)
	}
	clone, err := chip.Load(&saved, chip.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer clone.Close()
	if _, err := LoginPasswordChip(ctx, c, "p1", testPassword, a.ID, ch); err != nil {
		t.Fatal(err)
	}
	_, err = LoginPasswordChip(ctx, c, "p1", testPassword, a.ID, clone)
	var ae *APIError
	if !errors.Is(err, ErrSignCount) || !errors.Is(err, ErrFailedAttempt) || !errors.As(err, &ae) || ae.State() != StateActive {
		t.Errorf("clone login: %v", err)
	}

	// A wrong origin is refused by the server's client data check.
	wrong := f.client(t, Options{Origin: "https://evil.example", Keepalive: touch})
	if _, err := LoginPasswordChip(ctx, wrong, "p1", testPassword, a.ID, ch); !errors.As(err, &ce) || ce.Step != "finish" {
		t.Errorf("wrong origin: %v", err)
	}
}

func TestChipDefaultOriginAndContextKeepalive(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	f.origin = "https://" + f.rpID // what Options.Origin "" gives
	c := f.client(t, Options{})
	ch := newChip(t, chip.Options{Seed: []byte("ctx keepalive"), Presence: chip.Manual})
	var seen atomic.Bool
	kctx := ctap2.WithKeepalive(ctx, func(s ctap2.KeepaliveStatus) {
		seen.Store(true)
		ch.Touch()
	})
	c.CreateIdentity(ctx, CreateIdentityRequest{ID: "p1", Password: testPassword})
	a, err := EnrollChip(kctx, c, "p1", "", ch)
	if err != nil {
		t.Fatal(err)
	}
	if !seen.Load() {
		t.Error("a keepalive function in the context was not called")
	}
	if _, err := LoginPasswordChip(kctx, c, "p1", testPassword, a.ID, ch); err != nil {
		t.Fatal(err)
	}
}

func TestChipErrors(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	c := f.client(t, Options{Origin: f.origin})
	c.CreateIdentity(ctx, CreateIdentityRequest{ID: "p1", Password: testPassword})
	tests := []struct {
		name string
		opts chip.Options
		want error
	}{
		{"touch refused", chip.Options{Presence: chip.Deny}, ctap2.ErrOperationDenied},
		{"attestation none", chip.Options{AttestationNone: true}, ErrAttestationUntrusted},
		{"forged attestation signature", chip.Options{Faults: chip.Faults{BadSignature: true}}, ErrAttestationUntrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Seed = []byte(tt.name)
			_, err := EnrollChip(ctx, c, "p1", "", newChip(t, tt.opts))
			if !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("nobody touches", func(t *testing.T) {
		ch := newChip(t, chip.Options{Seed: []byte("never"), Presence: chip.Never})
		cctx, cancel := context.WithCancel(ctx)
		kctx := ctap2.WithKeepalive(cctx, func(ctap2.KeepaliveStatus) { cancel() })
		_, err := EnrollChip(kctx, c, "p1", "", ch)
		if !errors.Is(err, ctap2.ErrKeepaliveCancel) {
			t.Errorf("err %v, want CTAP2_ERR_KEEPALIVE_CANCEL", err)
		}
	})
	t.Run("unknown identity", func(t *testing.T) {
		_, err := EnrollChip(ctx, c, "nobody", "", newChip(t, chip.Options{Seed: []byte{1}}))
		var ce *CeremonyError
		if !errors.As(err, &ce) || ce.Step != "add" || ce.AuthenticatorID != "" || !errors.Is(err, ErrNotFound) {
			t.Errorf("err %v", err)
		}
	})
}

func TestCodeDeviceCeremonies(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []device.Kind{device.KindCodeDisplay, device.KindAudioCodeReader} {
		t.Run(string(kind), func(t *testing.T) {
			f := newFake(t)
			c := f.client(t, Options{})
			dev, err := code.New(code.Options{Kind: kind, Seed: []byte(kind)})
			if err != nil {
				t.Fatal(err)
			}
			f.secrets[dev.Serial()] = dev.TOTP()
			c.CreateIdentity(ctx, CreateIdentityRequest{ID: "p1", Password: testPassword})
			a, err := EnrollCodeDevice(ctx, c, "p1", "on the desk", dev)
			if err != nil {
				t.Fatal(err)
			}
			if a.State != StateActive || a.Kind != string(kind) || a.Serial != dev.Serial() {
				t.Errorf("enrolled %+v", a)
			}
			// The code of the activation's time step is used up.
			_, err = LoginPasswordCodeDevice(ctx, c, "p1", testPassword, dev)
			if !errors.Is(err, ErrCodeReplayed) {
				t.Errorf("second code of the same step: %v", err)
			}
			for i := 1; i <= 3; i++ {
				_, err := LoginPasswordCode(ctx, c, "p1", testPassword, a.ID, "abcdef")
				var ae *APIError
				if !errors.As(err, &ae) || !errors.Is(err, ErrWrongCode) {
					t.Fatalf("wrong code %d: %v", i, err)
				}
				if n, _ := ae.Failures(); i < 3 && n != i {
					t.Errorf("failures %d after %d wrong codes", n, i)
				}
				if i == 3 && ae.State() != StateSuspended {
					t.Errorf("state %q after 3 wrong codes", ae.State())
				}
			}
			_, err = LoginPasswordCodeDevice(ctx, c, "p1", testPassword, dev)
			if !errors.Is(err, ErrSuspended) {
				t.Errorf("login while suspended: %v", err)
			}
		})
	}
	t.Run("unknown serial", func(t *testing.T) {
		f := newFake(t)
		c := f.client(t, Options{})
		dev, _ := code.New(code.Options{Seed: []byte("no pskc")})
		c.CreateIdentity(ctx, CreateIdentityRequest{ID: "p1", Password: testPassword})
		_, err := EnrollCodeDevice(ctx, c, "p1", "", dev)
		var ce *CeremonyError
		if !errors.As(err, &ce) || ce.Ceremony != "enroll code device" || ce.Step != "add" || !errors.Is(err, ErrNotFound) {
			t.Errorf("err %v", err)
		}
	})
}

func TestAppCeremonies(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	c := f.client(t, Options{})
	ap, err := app.New(app.Options{Seed: []byte("client test app")})
	if err != nil {
		t.Fatal(err)
	}
	c.CreateIdentity(ctx, CreateIdentityRequest{ID: "p1", Password: testPassword})
	a, err := EnrollApp(ctx, c, "p1", "phone", ap, ap.PIN())
	if err != nil {
		t.Fatal(err)
	}
	if a.State != StateActive {
		t.Errorf("enrolled %+v", a)
	}
	if _, err := LoginApp(ctx, c, "p1", a.ID, ap, ap.PIN()); err != nil {
		t.Fatal(err)
	}
	wrongPIN := "000000"
	if ap.PIN() == wrongPIN {
		wrongPIN = "111111"
	}
	if _, err := LoginApp(ctx, c, "p1", a.ID, ap, wrongPIN); !errors.Is(err, ErrWrongPIN) {
		t.Errorf("wrong PIN: %v", err)
	}
	other, _ := app.New(app.Options{Seed: []byte("another phone")})
	if _, err := LoginApp(ctx, c, "p1", a.ID, other, ap.PIN()); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another app's key: %v", err)
	}
	if _, err := EnrollApp(ctx, c, "p1", "", ap, "12"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("short PIN: %v", err)
	}
}

// testPassword is the password of the identities of these tests.
const testPassword = "correct horse"

func TestPasswordCeremonies(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	c := f.client(t, Options{})
	c.CreateIdentity(ctx, CreateIdentityRequest{ID: "p1"})
	a, err := AddPassword(ctx, c, "p1", "", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != StateActive {
		t.Errorf("password %+v", a)
	}
	// The password alone is no session: with no second factor the
	// ceremony says so.
	_, err = LoginPasswordCode(ctx, c, "p1", "correct horse", "", "123456")
	var ce *CeremonyError
	if !errors.Is(err, ErrSecondFactor) || !errors.As(err, &ce) || ce.Step != "second factor" {
		t.Errorf("password without a second factor: %v", err)
	}
	dev, err := code.New(code.Options{Seed: []byte("password test")})
	if err != nil {
		t.Fatal(err)
	}
	f.secrets[dev.Serial()] = dev.TOTP()
	if _, err := EnrollCodeDevice(ctx, c, "p1", "", dev); err != nil {
		t.Fatal(err)
	}
	_, err = LoginPasswordCodeDevice(ctx, c, "p1", "wrong", dev)
	if !errors.Is(err, ErrWrongPassword) || !errors.As(err, &ce) || ce.Step != "password" {
		t.Errorf("wrong password: %v", err)
	}
	if msg := err.Error(); msg != "client: log in with password and code device: password: POST /v1/identities/p1/login/password: fake: wrong_password (401 wrong_password)" {
		t.Errorf("message %q", msg)
	}
}

// A session acts for its identity only, and ends at logout.
func TestSessions(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	c := f.client(t, Options{})
	ap, err := app.New(app.Options{Seed: []byte("sessions app")})
	if err != nil {
		t.Fatal(err)
	}
	c.CreateIdentity(ctx, CreateIdentityRequest{ID: "p1"})
	c.CreateIdentity(ctx, CreateIdentityRequest{ID: "p2"})
	a, err := EnrollApp(ctx, c, "p1", "phone", ap, ap.PIN())
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoginApp(ctx, c, "p1", a.ID, ap, ap.PIN())
	if err != nil {
		t.Fatal(err)
	}
	if s.ID == "" || s.Level != LevelTwoFactor || len(s.Authenticators) != 1 {
		t.Fatalf("%+v", s)
	}
	self := c.WithToken(s.Token)
	if _, err := self.Identity(ctx, "p1"); err != nil {
		t.Errorf("session reads its identity: %v", err)
	}
	if _, err := self.Identity(ctx, "p2"); !errors.Is(err, ErrForbidden) {
		t.Errorf("session reads another identity: %v", err)
	}
	if _, err := c.WithToken("nonsense").Identity(ctx, "p1"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("wrong token: %v", err)
	}
	other, err := LoginApp(ctx, c, "p1", a.ID, ap, ap.PIN())
	if err != nil {
		t.Fatal(err)
	}
	list, err := self.Sessions(ctx, "p1")
	if err != nil || len(list) != 2 {
		t.Fatalf("sessions %+v %v", list, err)
	}
	if err := self.EndSession(ctx, "p1", other.ID); err != nil {
		t.Fatal(err)
	}
	if err := self.EndSession(ctx, "p1", other.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("ending it twice: %v", err)
	}
	if err := self.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := self.Identity(ctx, "p1"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("after logout: %v", err)
	}
	if err := self.Logout(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("logout twice: %v", err)
	}
}

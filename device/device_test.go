package device_test

import (
	"errors"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/otp"
)

// The host-side clients are the interfaces' first implementations.
var (
	_ device.Chip            = (*ctap2.Client)(nil)
	_ device.NextAssertioner = (*ctap2.Client)(nil)
	_ device.Resetter        = (*ctap2.Client)(nil)
	_ device.Selector        = (*ctap2.Client)(nil)
	_ device.CodeDevice      = (*frame.Host)(nil)
)

func TestParseKind(t *testing.T) {
	for _, k := range device.Kinds {
		got, err := device.ParseKind(string(k))
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	for _, s := range []string{"", "Chip", "kodeviser", "chip "} {
		if _, err := device.ParseKind(s); !errors.Is(err, device.ErrUnknownKind) {
			t.Errorf("ParseKind(%q) err = %v, want ErrUnknownKind", s, err)
		}
	}
}

func TestAudioDuration(t *testing.T) {
	tests := []struct {
		a    *device.Audio
		want time.Duration
	}{
		{nil, 0},
		{&device.Audio{SampleRate: 0, PCM: make([]byte, 100)}, 0},
		{&device.Audio{SampleRate: 8000, PCM: make([]byte, 16000)}, time.Second},
		{&device.Audio{SampleRate: 16000, PCM: make([]byte, 8000)}, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := tt.a.Duration(); got != tt.want {
			t.Errorf("Duration() = %v, want %v", got, tt.want)
		}
	}
}

func TestOTPAlgorithmText(t *testing.T) {
	for _, a := range []otp.Algorithm{otp.SHA1, otp.SHA256, otp.SHA512} {
		b, err := a.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back otp.Algorithm
		if err := back.UnmarshalText(b); err != nil || back != a {
			t.Errorf("round trip of %v: %v, %v", a, back, err)
		}
	}
	if _, err := otp.ParseAlgorithm("md5"); err == nil {
		t.Error("ParseAlgorithm(md5) succeeded")
	}
}

func TestProtocolsOf(t *testing.T) {
	for _, tt := range []struct {
		versions []string
		want     device.Protocols
		name     string
	}{
		{[]string{"U2F_V2"}, device.ProfileU2FOnly, "U2F-only"},
		{[]string{"U2F_V2", "FIDO_2_0", "FIDO_2_1"}, device.ProfileFIDO2, "FIDO2"},
		{[]string{"FIDO_2_1_PRE"}, device.ProfileCTAP2Only, "CTAP2-only"},
		{[]string{"FIDO_2"}, 0, "none"},
		{nil, 0, "none"},
	} {
		got := device.ProtocolsOf(tt.versions)
		if got != tt.want || got.String() != tt.name {
			t.Errorf("ProtocolsOf(%q) = %v (%s), want %v (%s)", tt.versions, uint8(got), got, uint8(tt.want), tt.name)
		}
	}
	if !device.ProfileFIDO2.Has(device.ProtocolU2F) || device.ProfileU2FOnly.Has(device.ProtocolCTAP2) {
		t.Error("Has")
	}
}

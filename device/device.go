package device

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/otp"
)

// Kind names a kind of MitID authenticator.
type Kind string

// The kinds of authenticator (MitID names in the comments).
const (
	KindChip            Kind = "chip"              // MitID chip: FIDO U2F / CTAP2 key
	KindCodeDisplay     Kind = "code-display"      // kodeviser: TOTP token with a display
	KindAudioCodeReader Kind = "audio-code-reader" // kodeoplæser: TOTP token that speaks
	KindApp             Kind = "app"               // MitID app: device key pair + PIN
	KindPassword        Kind = "password"          // MitID password
)

// Kinds lists every kind in a stable order.
var Kinds = []Kind{KindChip, KindCodeDisplay, KindAudioCodeReader, KindApp, KindPassword}

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// ParseKind returns the Kind named s, or an error wrapping ErrUnknownKind.
func ParseKind(s string) (Kind, error) {
	k := Kind(s)
	if !k.Valid() {
		return "", fmt.Errorf("device: %w: %q", ErrUnknownKind, s)
	}
	return k, nil
}

// Info describes a physical (or simulated) device as found by a driver or a
// simulator: what it is and where it can be reached.
type Info struct {
	Kind      Kind   `json:"kind"`
	Transport string `json:"transport"`          // "pcsc", "usb", "udp", "serial", "sim"
	Path      string `json:"path,omitempty"`     // reader name, /dev path, host:port
	Serial    string `json:"serial,omitempty"`   // device serial number when known
	Model     string `json:"model,omitempty"`    // product or model name
	Firmware  string `json:"firmware,omitempty"` // firmware version when known
	VendorID  uint16 `json:"vendor_id,omitempty"`
	ProductID uint16 `json:"product_id,omitempty"`
}

// Chip is a FIDO authenticator that holds security elements: a MitID chip
// reached over USB HID, PC/SC, or simulated in software.
//
// Errors from a chip are *ctap2.StatusError (or wrap one of the ctap2
// sentinels) when the authenticator answered with a CTAP2 status, wrap
// context.DeadlineExceeded or context.Canceled when ctx ended first, and wrap
// ErrRemoved, ErrTimeout or ErrProtocol for transport failures.
type Chip interface {
	// MakeCredential creates a new credential (CTAP 2.1 §6.1).
	MakeCredential(ctx context.Context, req *ctap2.MakeCredentialRequest) (*ctap2.Attestation, error)
	// GetAssertion signs with an existing credential (CTAP 2.1 §6.2).
	GetAssertion(ctx context.Context, req *ctap2.GetAssertionRequest) (*ctap2.Assertion, error)
	// Info returns the authenticator's getInfo answer (CTAP 2.1 §6.4).
	Info(ctx context.Context) (*ctap2.Info, error)
}

// NextAssertioner is implemented by chips that answer
// authenticatorGetNextAssertion (CTAP 2.1 §6.3).
type NextAssertioner interface {
	GetNextAssertion(ctx context.Context) (*ctap2.Assertion, error)
}

// Resetter is implemented by chips that can be factory reset
// (authenticatorReset, CTAP 2.1 §6.6). Reset destroys every credential.
type Resetter interface {
	Reset(ctx context.Context) error
}

// Selector is implemented by chips that answer authenticatorSelection
// (CTAP 2.1 §6.9): the chip waits for a touch and reports it.
type Selector interface {
	Selection(ctx context.Context) error
}

// CodeDevice is a code display (kodeviser) or an audio code reader
// (kodeoplæser): a TOTP token with a button.
type CodeDevice interface {
	// Identify returns what the device says about itself.
	Identify(ctx context.Context) (*CodeDeviceInfo, error)
	// Press presses the button and returns the code that appears (or is
	// spoken). Audio readers fill Code.Audio.
	Press(ctx context.Context) (*Code, error)
}

// CodeDeviceInfo is what a code device reports about itself (CDP/1 IDENTIFY).
type CodeDeviceInfo struct {
	Kind            Kind          `json:"kind"`
	Serial          string        `json:"serial"`
	Model           string        `json:"model,omitempty"`
	Firmware        string        `json:"firmware,omitempty"`
	ProtocolVersion int           `json:"protocol_version"`
	Digits          int           `json:"digits"`
	Period          time.Duration `json:"period"`
	Algorithm       otp.Algorithm `json:"algorithm"`
}

// Code is one one-time code as shown or spoken by a code device.
type Code struct {
	Digits   string        `json:"digits"`    // the code, ASCII digits
	Step     uint64        `json:"step"`      // the TOTP time step it belongs to
	ValidFor time.Duration `json:"valid_for"` // time left in its step when pressed
	Audio    *Audio        `json:"-"`         // what an audio code reader said
}

// Audio is a mono 16-bit little-endian PCM recording.
type Audio struct {
	SampleRate int    // samples per second
	PCM        []byte // s16le mono samples
}

// Duration returns the length of the recording.
func (a *Audio) Duration() time.Duration {
	if a == nil || a.SampleRate <= 0 {
		return 0
	}
	return time.Duration(len(a.PCM)/2) * time.Second / time.Duration(a.SampleRate)
}

// Sentinel errors shared by drivers, simulators and protocol packages. Callers
// branch on them with errors.Is; the errors returned wrap them with context.
var (
	ErrUnknownKind     = errors.New("unknown authenticator kind")
	ErrNotFound        = errors.New("device not found")
	ErrClosed          = errors.New("device closed")
	ErrRemoved         = errors.New("device removed")
	ErrTimeout         = errors.New("device did not answer in time")
	ErrBusy            = errors.New("device busy")
	ErrNotSupported    = errors.New("not supported by this device")
	ErrProtocol        = errors.New("protocol violation")
	ErrMessageTooLarge = errors.New("message too large")
	ErrPresenceDenied  = errors.New("user presence denied")
	ErrNoCode          = errors.New("no code to read")
)

// Sleep waits for d of wall-clock time, or until ctx ends, when it returns
// ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package code

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/sim/code/voice"
)

// LowBattery is the battery level, in percent, below which PRESS is refused
// with status 0x05 (battery low).
const LowBattery = 5

// Defaults for zero Options fields.
const (
	DefaultModelDisplay = "authbench sim code display"
	DefaultModelAudio   = "authbench sim audio code reader"
	DefaultFirmware     = "1.0.0-sim"
)

// maxClock is the latest second SET_CLOCK accepts: 9999-12-31T23:59:59Z.
const maxClock = 253402300799

// Drift makes the device clock wrong, as real token clocks are (RFC 6238
// §6): the device clock is Now + Offset and runs PPM parts per million fast
// (or slow, when negative).
type Drift struct {
	Offset time.Duration
	PPM    float64
}

// Faults make a device misbehave on purpose, for tests. They can be changed
// at any time with SetFaults.
type Faults struct {
	// WrongCode: PRESS shows the code of the next time step (one step off)
	// while it reports the true step. A verifier with a skew of one step
	// still accepts it (as drift +1); with no skew it is refused.
	WrongCode bool
	// CorruptAudio: the speech that AUDIO serves has its middle third
	// replaced by noise; PRESS still reports the correct length.
	CorruptAudio bool
	// Busy: PRESS answers 0x04 (busy) and consumes no code.
	Busy bool
}

// Options configure a Device. The zero value is a code display with a
// 6-digit, 30-second, SHA-1 TOTP whose serial and secret come from an
// empty seed, on the system clock, sealed (not in factory mode), with a
// full battery.
type Options struct {
	// Kind is device.KindCodeDisplay (the default) or
	// device.KindAudioCodeReader.
	Kind device.Kind

	// Seed determines the serial, secret, X25519 key and PROVISION nonces
	// where they are not given. Devices made from the same seed are the
	// same device; give each simulated device its own seed. nil is the
	// empty seed.
	Seed []byte

	Serial   string // printable ASCII, 1 to 255 bytes; default: 10 digits from Seed
	Model    string // UTF-8 text, up to 255 bytes; default DefaultModelDisplay or DefaultModelAudio
	Firmware string // UTF-8 text, up to 255 bytes; default DefaultFirmware

	// TOTP parameters (RFC 6238 §4). Secret defaults to bytes derived from
	// Seed (20 for SHA-1, 32 for SHA-256, 64 for SHA-512); Digits to 6
	// (6 to 8); Period to 30 s (a whole number of seconds up to 65535);
	// Algorithm to otp.SHA1.
	Secret    []byte
	Digits    int
	Period    time.Duration
	Algorithm otp.Algorithm

	// Now is the time source; nil means time.Now. The device clock is
	// derived from it (see Drift and SET_CLOCK).
	Now func() time.Time

	// Factory starts the device in factory mode, where PROVISION,
	// SET_CLOCK and SEAL work.
	Factory bool

	// Battery is the charge in percent, 1 to 100; 0 means 100.
	Battery int

	Drift  Drift
	Faults Faults

	// Speech of an audio code reader (SETTINGS changes them later):
	// Language "da" (default) or "en"; Speed 50 to 200 % (0 means 100);
	// Volume 1 to 100 % (0 means 100; SETTINGS can mute); Repeat, how many
	// times the code is said, 1 to 5 (0 means 1).
	Language string
	Speed    int
	Volume   int
	Repeat   int
	// Voice is how the audio code reader speaks; nil is its own voice
	// (voice.DefaultVoice). voice.Espeak speaks in any espeak-ng voice,
	// voice.NewPromptVoice with prompts from a folder.
	Voice voice.Voice
}

// Device is a simulated code display or audio code reader. Its methods are
// safe for concurrent use; commands are served one at a time.
type Device struct {
	kind     device.Kind
	serial   string
	model    string
	firmware string
	totp     otp.TOTP
	now      func() time.Time
	priv     *ecdh.PrivateKey
	nonceKey []byte
	identity []byte // the IDENTIFY answer

	mu       sync.Mutex
	ppm      float64   // clock rate error, parts per million
	base     time.Time // device clock at ref
	ref      time.Time // real time at which the device clock was base
	factory  bool
	sealed   bool
	battery  int
	faults   Faults
	presses  uint32
	shown    string // code on the display, valid while its step lasts
	shownAt  uint64 // the step of shown
	pcm      []byte // the last speech
	settings voice.Settings
	voice    voice.Voice
	nonces   uint64 // PROVISION answers given
}

// New returns a device made from opts. It returns an error when an option is
// out of range (see Options).
func New(opts Options) (*Device, error) {
	d := &Device{
		kind:     opts.Kind,
		serial:   opts.Serial,
		model:    opts.Model,
		firmware: opts.Firmware,
		now:      opts.Now,
		factory:  opts.Factory,
		battery:  opts.Battery,
		faults:   opts.Faults,
		settings: voice.DefaultSettings(),
	}
	switch d.kind {
	case "":
		d.kind = device.KindCodeDisplay
	case device.KindCodeDisplay, device.KindAudioCodeReader:
	default:
		return nil, fmt.Errorf("code: kind %q is not a code device", d.kind)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.serial == "" {
		d.serial = fmt.Sprintf("%010d", binary.BigEndian.Uint64(derive(opts.Seed, "serial", 8))%1e10)
	}
	if d.model == "" {
		d.model = DefaultModelDisplay
		if d.kind == device.KindAudioCodeReader {
			d.model = DefaultModelAudio
		}
	}
	if d.firmware == "" {
		d.firmware = DefaultFirmware
	}

	alg := opts.Algorithm
	if alg == 0 {
		alg = otp.SHA1
	}
	secret := opts.Secret
	if secret == nil {
		n := map[otp.Algorithm]int{otp.SHA1: 20, otp.SHA256: 32, otp.SHA512: 64}[alg]
		secret = derive(opts.Seed, "otp secret", max(n, 20))
	}
	if n := frame.MaxData - 32 - 12 - 16; len(secret) > n {
		return nil, fmt.Errorf("code: secret of %d bytes, at most %d can be provisioned", len(secret), n)
	}
	d.totp = otp.TOTP{Secret: append([]byte(nil), secret...), Digits: opts.Digits, Period: opts.Period, Algorithm: alg}
	if d.totp.Digits == 0 {
		d.totp.Digits = otp.DefaultDigits
	}
	if d.totp.Period == 0 {
		d.totp.Period = otp.DefaultPeriod
	}
	if err := d.totp.Validate(); err != nil {
		return nil, fmt.Errorf("code: %w", err)
	}
	if d.totp.Period > math.MaxUint16*time.Second {
		return nil, fmt.Errorf("code: period %v does not fit IDENTIFY (at most 65535 s)", d.totp.Period)
	}

	if d.battery == 0 {
		d.battery = 100
	}
	if d.battery < 1 || d.battery > 100 {
		return nil, fmt.Errorf("code: battery %d%% (want 1 to 100)", d.battery)
	}

	if opts.Language != "" {
		d.settings.Language = opts.Language
	}
	if opts.Speed != 0 {
		d.settings.Speed = opts.Speed
	}
	if opts.Volume != 0 {
		d.settings.Volume = opts.Volume
	}
	if opts.Repeat != 0 {
		d.settings.Repeat = opts.Repeat
	}
	err := d.settings.Validate()
	if err != nil {
		return nil, fmt.Errorf("code: %w", err)
	}
	if d.voice = opts.Voice; d.voice == nil {
		if d.voice, err = voice.DefaultVoice(); err != nil {
			return nil, fmt.Errorf("code: %w", err)
		}
	}
	if d.kind == device.KindAudioCodeReader && !d.voice.Speaks(d.settings.Language) {
		return nil, fmt.Errorf("code: the voice does not speak language %q: %w", d.settings.Language, device.ErrNotSupported)
	}

	if opts.Drift.PPM <= -1e6 || math.IsNaN(opts.Drift.PPM) || math.IsInf(opts.Drift.PPM, 0) {
		return nil, fmt.Errorf("code: drift of %v ppm", opts.Drift.PPM)
	}
	d.ppm = opts.Drift.PPM
	d.ref = d.now()
	d.base = d.ref.Add(opts.Drift.Offset)

	kind := frame.KindCodeDisplay
	if d.kind == device.KindAudioCodeReader {
		kind = frame.KindAudioReader
	}
	id := frame.Identity{
		Kind:            kind,
		Serial:          d.serial,
		Model:           d.model,
		Firmware:        d.firmware,
		ProtocolVersion: frame.ProtocolVersion,
		Digits:          uint8(d.totp.Digits),
		Period:          uint16(d.totp.Period / time.Second),
		Algorithm:       d.totp.Algorithm,
	}
	if d.identity, err = id.Encode(); err != nil {
		return nil, fmt.Errorf("code: IDENTIFY: %w", err)
	}

	priv, err := ecdh.X25519().NewPrivateKey(derive(opts.Seed, "x25519", 32))
	if err != nil {
		return nil, fmt.Errorf("code: %w", err)
	}
	d.priv = priv
	d.nonceKey = derive(opts.Seed, "provision nonce", 32)
	return d, nil
}

// derive returns n bytes for label from seed: HKDF-SHA256 with a fixed salt.
func derive(seed []byte, label string, n int) []byte {
	b, err := hkdf.Key(sha256.New, seed, []byte("authbench sim/code"), label, n)
	if err != nil {
		panic("code: hkdf: " + err.Error()) // only for n > 255*32, never asked for
	}
	return b
}

// Kind returns device.KindCodeDisplay or device.KindAudioCodeReader.
func (d *Device) Kind() device.Kind { return d.kind }

// Serial returns the serial number that IDENTIFY reports.
func (d *Device) Serial() string { return d.serial }

// TOTP returns the device's OTP parameters, including a copy of its secret.
// It is there for tests and for in-process enrolment; a real device only
// gives its secret away sealed, through PROVISION.
func (d *Device) TOTP() otp.TOTP {
	t := d.totp
	t.Secret = append([]byte(nil), t.Secret...)
	return t
}

// PublicKey returns the device's X25519 public key, the one PROVISION sends.
func (d *Device) PublicKey() []byte { return d.priv.PublicKey().Bytes() }

// Clock returns the device clock now.
func (d *Device) Clock() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.clock()
}

// clock returns the device clock; d.mu is held.
func (d *Device) clock() time.Time {
	el := d.now().Sub(d.ref)
	if d.ppm != 0 {
		el += time.Duration(math.Round(float64(el) * d.ppm / 1e6))
	}
	return d.base.Add(el)
}

// SetBattery sets the battery level in percent, clamped to 0..100.
func (d *Device) SetBattery(percent int) {
	d.mu.Lock()
	d.battery = max(0, min(100, percent))
	d.mu.Unlock()
}

// SetFaults replaces the injected faults.
func (d *Device) SetFaults(f Faults) {
	d.mu.Lock()
	d.faults = f
	d.mu.Unlock()
}

// Presses returns how many codes the device has given out.
func (d *Device) Presses() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.presses
}

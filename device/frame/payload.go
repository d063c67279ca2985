package frame

import (
	"encoding/binary"
	"time"
	"unicode/utf8"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/otp"
)

// Each payload type below has a ParseXxx function for bytes from the wire
// and an Encode method; Parse returns nil and a *PayloadError for bytes that
// do not follow docs/cdp1.md, Encode returns a *PayloadError for values that
// cannot be sent. Response payloads are what follows the status byte.
// Decoding is strict: a successful Parse re-encodes to exactly the same bytes,
// except that IDENTIFY drops unknown tags and empty strings and puts its tags
// in ascending order.

// Kind is the device kind an IDENTIFY response names (tag 0x01).
type Kind uint8

// Kinds.
const (
	KindCodeDisplay Kind = 1 // kodeviser
	KindAudioReader Kind = 2 // kodeoplæser
)

// DeviceKind returns the device vocabulary's name for k, or "" when k is
// not a CDP/1 kind.
func (k Kind) DeviceKind() device.Kind {
	switch k {
	case KindCodeDisplay:
		return device.KindCodeDisplay
	case KindAudioReader:
		return device.KindAudioCodeReader
	}
	return ""
}

// IDENTIFY response tags (CDP/1 §4.1).
const (
	TagKind      byte = 0x01 // u8: Kind
	TagSerial    byte = 0x02 // printable ASCII
	TagModel     byte = 0x03 // UTF-8, optional
	TagFirmware  byte = 0x04 // UTF-8, optional
	TagVersion   byte = 0x05 // u8: protocol version, 1 for CDP/1
	TagDigits    byte = 0x06 // u8: code length
	TagPeriod    byte = 0x07 // u16 BE: TOTP period in seconds
	TagAlgorithm byte = 0x08 // u8: otp.Algorithm (1 SHA1, 2 SHA256, 3 SHA512)
)

// ProtocolVersion is the CDP/1 version number sent in tag 0x05.
const ProtocolVersion = 1

// Identity is the IDENTIFY response (CMD 0x01): TLVs of tag (u8), length
// (u8) and value. Kind, Serial, ProtocolVersion, Digits, Period and
// Algorithm are required; Model and Firmware are optional. Unknown tags are
// skipped on decode so that later firmware can add some.
type Identity struct {
	Kind            Kind
	Serial          string // printable ASCII, 1..255 bytes
	Model           string // UTF-8 without control characters, ≤ 255 bytes
	Firmware        string // UTF-8 without control characters, ≤ 255 bytes
	ProtocolVersion uint8  // ≥ 1
	Digits          uint8  // 6..10 (RFC 4226 §5.3 asks for at least 6)
	Period          uint16 // seconds, ≥ 1 (RFC 6238 §4.1 X)
	Algorithm       otp.Algorithm
}

const (
	minDigits = 6
	maxDigits = 10
)

// ParseIdentity decodes an IDENTIFY response after its status byte.
// It returns nil and a *PayloadError for bytes that do not fit.
func ParseIdentity(b []byte) (*Identity, error) {
	const cmd = CmdIdentify | ResponseBit
	var id Identity
	var seen [TagAlgorithm + 1]bool
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, payloadErr(cmd, "truncated TLV header")
		}
		tag, n := b[0], int(b[1])
		if len(b) < 2+n {
			return nil, payloadErr(cmd, "tag 0x%02X: length %d, %d bytes left", tag, n, len(b)-2)
		}
		v := b[2 : 2+n]
		b = b[2+n:]
		if tag == 0 || tag > TagAlgorithm {
			continue // unknown: skip
		}
		if seen[tag] {
			return nil, payloadErr(cmd, "tag 0x%02X repeated", tag)
		}
		seen[tag] = true
		want := 0
		switch tag {
		case TagKind, TagVersion, TagDigits, TagAlgorithm:
			want = 1
		case TagPeriod:
			want = 2
		}
		if want != 0 && n != want {
			return nil, payloadErr(cmd, "tag 0x%02X: length %d, want %d", tag, n, want)
		}
		switch tag {
		case TagKind:
			id.Kind = Kind(v[0])
		case TagSerial:
			id.Serial = string(v)
		case TagModel:
			id.Model = string(v)
		case TagFirmware:
			id.Firmware = string(v)
		case TagVersion:
			id.ProtocolVersion = v[0]
		case TagDigits:
			id.Digits = v[0]
		case TagPeriod:
			id.Period = binary.BigEndian.Uint16(v)
		case TagAlgorithm:
			id.Algorithm = otp.Algorithm(v[0])
		}
	}
	for _, tag := range []byte{TagKind, TagSerial, TagVersion, TagDigits, TagPeriod, TagAlgorithm} {
		if !seen[tag] {
			return nil, payloadErr(cmd, "tag 0x%02X missing", tag)
		}
	}
	if err := id.check(cmd); err != nil {
		return nil, err
	}
	return &id, nil
}

func (id *Identity) check(cmd byte) error {
	switch {
	case id.Kind != KindCodeDisplay && id.Kind != KindAudioReader:
		return payloadErr(cmd, "kind %d is neither 1 (code display) nor 2 (audio reader)", id.Kind)
	case len(id.Serial) == 0 || len(id.Serial) > 255 || !printable(id.Serial):
		return payloadErr(cmd, "serial %q is not 1 to 255 printable ASCII characters", id.Serial)
	case len(id.Model) > 255 || !text(id.Model):
		return payloadErr(cmd, "model %q is not up to 255 bytes of UTF-8 text", id.Model)
	case len(id.Firmware) > 255 || !text(id.Firmware):
		return payloadErr(cmd, "firmware %q is not up to 255 bytes of UTF-8 text", id.Firmware)
	case id.ProtocolVersion == 0:
		return payloadErr(cmd, "protocol version 0")
	case id.Digits < minDigits || id.Digits > maxDigits:
		return payloadErr(cmd, "%d digits, want %d to %d", id.Digits, minDigits, maxDigits)
	case id.Period == 0:
		return payloadErr(cmd, "period 0")
	case !id.Algorithm.Valid():
		return payloadErr(cmd, "algorithm %d is not 1 (SHA1), 2 (SHA256) or 3 (SHA512)", uint8(id.Algorithm))
	}
	return nil
}

// Encode returns the TLVs in ascending tag order, without Model and
// Firmware when they are empty.
// It returns a *PayloadError for a value that cannot be sent.
func (id *Identity) Encode() ([]byte, error) {
	if err := id.check(CmdIdentify | ResponseBit); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 20+len(id.Serial)+len(id.Model)+len(id.Firmware))
	b = append(b, TagKind, 1, byte(id.Kind))
	b = append(b, TagSerial, byte(len(id.Serial)))
	b = append(b, id.Serial...)
	if id.Model != "" {
		b = append(b, TagModel, byte(len(id.Model)))
		b = append(b, id.Model...)
	}
	if id.Firmware != "" {
		b = append(b, TagFirmware, byte(len(id.Firmware)))
		b = append(b, id.Firmware...)
	}
	b = append(b, TagVersion, 1, id.ProtocolVersion)
	b = append(b, TagDigits, 1, id.Digits)
	b = append(b, TagPeriod, 2, byte(id.Period>>8), byte(id.Period))
	b = append(b, TagAlgorithm, 1, byte(id.Algorithm))
	return b, nil
}

// Info returns the identity in the device vocabulary.
func (id *Identity) Info() *device.CodeDeviceInfo {
	return &device.CodeDeviceInfo{
		Kind:            id.Kind.DeviceKind(),
		Serial:          id.Serial,
		Model:           id.Model,
		Firmware:        id.Firmware,
		ProtocolVersion: int(id.ProtocolVersion),
		Digits:          int(id.Digits),
		Period:          time.Duration(id.Period) * time.Second,
		Algorithm:       id.Algorithm,
	}
}

// PressResponse is the PRESS response (CMD 0x02): step (u64 BE), seconds
// left (u16 BE), the digits in ASCII, and for an audio reader the sample rate
// (u32 BE) and audio length in bytes (u32 BE).
//
// How the two forms are told apart: a code has 6 to 10 digits, so 6 to 10
// bytes after the seconds-left field are a code display's answer and 14 to 18
// bytes are an audio reader's, whose last 8 bytes are the audio suffix. Any
// other length is an error, as is a digit byte outside '0'..'9'.
type PressResponse struct {
	Step        uint64
	SecondsLeft uint16
	Digits      string       // 6..10 ASCII digits
	Audio       *AudioFormat // audio readers only; nil for a code display
}

// AudioFormat describes the PCM (s16le mono) an audio reader recorded for
// the code it spoke; fetch the bytes with AUDIO.
type AudioFormat struct {
	SampleRate uint32 // samples per second, ≥ 1
	Length     uint32 // bytes of PCM, even (whole 16-bit samples)
}

// ParsePress decodes a PRESS response after its status byte.
// It returns nil and a *PayloadError for bytes that do not fit.
func ParsePress(b []byte) (*PressResponse, error) {
	const cmd = CmdPress | ResponseBit
	if len(b) < 10+minDigits {
		return nil, payloadErr(cmd, "%d bytes, want at least %d", len(b), 10+minDigits)
	}
	r := &PressResponse{
		Step:        binary.BigEndian.Uint64(b),
		SecondsLeft: binary.BigEndian.Uint16(b[8:]),
	}
	rest := b[10:]
	switch n := len(rest); {
	case n <= maxDigits:
		r.Digits = string(rest)
	case n >= minDigits+8 && n <= maxDigits+8:
		r.Digits = string(rest[:n-8])
		r.Audio = &AudioFormat{
			SampleRate: binary.BigEndian.Uint32(rest[n-8:]),
			Length:     binary.BigEndian.Uint32(rest[n-4:]),
		}
	default:
		return nil, payloadErr(cmd, "%d bytes after seconds left: neither 6-10 digits nor 6-10 digits and an 8-byte audio suffix", n)
	}
	if err := r.check(cmd); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *PressResponse) check(cmd byte) error {
	if len(r.Digits) < minDigits || len(r.Digits) > maxDigits || !digits(r.Digits) {
		return payloadErr(cmd, "code %q is not %d to %d ASCII digits", r.Digits, minDigits, maxDigits)
	}
	if a := r.Audio; a != nil {
		if a.SampleRate == 0 {
			return payloadErr(cmd, "audio sample rate 0")
		}
		if a.Length%2 != 0 {
			return payloadErr(cmd, "audio length %d is odd; s16le samples are 2 bytes", a.Length)
		}
	}
	return nil
}

// Encode returns the response after its status byte.
// It returns a *PayloadError for a value that cannot be sent.
func (r *PressResponse) Encode() ([]byte, error) {
	if err := r.check(CmdPress | ResponseBit); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 10+len(r.Digits)+8)
	b = binary.BigEndian.AppendUint64(b, r.Step)
	b = binary.BigEndian.AppendUint16(b, r.SecondsLeft)
	b = append(b, r.Digits...)
	if r.Audio != nil {
		b = binary.BigEndian.AppendUint32(b, r.Audio.SampleRate)
		b = binary.BigEndian.AppendUint32(b, r.Audio.Length)
	}
	return b, nil
}

// Code returns the code in the device vocabulary, without audio.
func (r *PressResponse) Code() *device.Code {
	return &device.Code{
		Digits:   r.Digits,
		Step:     r.Step,
		ValidFor: time.Duration(r.SecondsLeft) * time.Second,
	}
}

// Display is the DISPLAY response (CMD 0x03): what the display shows now,
// printable ASCII, empty when the display is off.
type Display struct {
	Text string
}

// ParseDisplay decodes a DISPLAY response after its status byte.
// It returns nil and a *PayloadError for bytes that do not fit.
func ParseDisplay(b []byte) (*Display, error) {
	d := &Display{Text: string(b)}
	if err := d.check(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Display) check() error {
	if len(d.Text) > MaxData || !printable(d.Text) {
		return payloadErr(CmdDisplay|ResponseBit, "text %q is not up to %d printable ASCII characters", d.Text, MaxData)
	}
	return nil
}

// Encode returns the response after its status byte.
// It returns a *PayloadError for a value that cannot be sent.
func (d *Display) Encode() ([]byte, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return []byte(d.Text), nil
}

// AudioRequest is the AUDIO request (CMD 0x04): offset (u32 BE) and max
// (u16 BE ≥ 1) into the PCM of the last spoken code. The response holds the
// PCM bytes from Offset on, at most min(Max, MaxData) of them, and none when
// Offset is at or past the end.
type AudioRequest struct {
	Offset uint32
	Max    uint16
}

// ParseAudioRequest decodes an AUDIO request payload.
// It returns nil and a *PayloadError for bytes that do not fit.
func ParseAudioRequest(b []byte) (*AudioRequest, error) {
	if len(b) != 6 {
		return nil, payloadErr(CmdAudio, "%d bytes, want 6", len(b))
	}
	r := &AudioRequest{Offset: binary.BigEndian.Uint32(b), Max: binary.BigEndian.Uint16(b[4:])}
	if r.Max == 0 {
		return nil, payloadErr(CmdAudio, "max 0")
	}
	return r, nil
}

// Encode returns the request payload.
// It returns a *PayloadError for a value that cannot be sent.
func (r *AudioRequest) Encode() ([]byte, error) {
	if r.Max == 0 {
		return nil, payloadErr(CmdAudio, "max 0")
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 6), r.Offset)
	return binary.BigEndian.AppendUint16(b, r.Max), nil
}

// Settings is the SETTINGS request (CMD 0x05) of an audio reader:
// language (2 lowercase ASCII letters, "da" or "en"), speed (u8, percent of
// normal) and volume (u8, percent). The response has nothing after its
// status; a device answers StatusBadRequest to values it does not support.
type Settings struct {
	Language string
	Speed    uint8
	Volume   uint8
}

// ParseSettings decodes a SETTINGS request payload.
// It returns nil and a *PayloadError for bytes that do not fit.
func ParseSettings(b []byte) (*Settings, error) {
	if len(b) != 4 {
		return nil, payloadErr(CmdSettings, "%d bytes, want 4", len(b))
	}
	s := &Settings{Language: string(b[:2]), Speed: b[2], Volume: b[3]}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Settings) check() error {
	if len(s.Language) != 2 || !lower(s.Language[0]) || !lower(s.Language[1]) {
		return payloadErr(CmdSettings, "language %q is not two lowercase ASCII letters", s.Language)
	}
	return nil
}

// Encode returns the request payload.
// It returns a *PayloadError for a value that cannot be sent.
func (s *Settings) Encode() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return []byte{s.Language[0], s.Language[1], s.Speed, s.Volume}, nil
}

// DeviceStatus is the STATUS response (CMD 0x06): battery (u8, 0..100 %),
// clock (u64 BE, unix seconds), presses (u32 BE) and factory mode (u8, 0 or
// 1).
type DeviceStatus struct {
	Battery     uint8
	Clock       uint64
	Presses     uint32
	FactoryMode bool
}

// ParseStatus decodes a STATUS response after its status byte.
// It returns nil and a *PayloadError for bytes that do not fit.
func ParseStatus(b []byte) (*DeviceStatus, error) {
	const cmd = CmdStatus | ResponseBit
	if len(b) != 14 {
		return nil, payloadErr(cmd, "%d bytes, want 14", len(b))
	}
	if b[13] > 1 {
		return nil, payloadErr(cmd, "factory mode %d is neither 0 nor 1", b[13])
	}
	s := &DeviceStatus{
		Battery:     b[0],
		Clock:       binary.BigEndian.Uint64(b[1:]),
		Presses:     binary.BigEndian.Uint32(b[9:]),
		FactoryMode: b[13] == 1,
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *DeviceStatus) check() error {
	if s.Battery > 100 {
		return payloadErr(CmdStatus|ResponseBit, "battery %d%% exceeds 100%%", s.Battery)
	}
	return nil
}

// Encode returns the response after its status byte.
// It returns a *PayloadError for a value that cannot be sent.
func (s *DeviceStatus) Encode() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	b := append(make([]byte, 0, 14), s.Battery)
	b = binary.BigEndian.AppendUint64(b, s.Clock)
	b = binary.BigEndian.AppendUint32(b, s.Presses)
	if s.FactoryMode {
		return append(b, 1), nil
	}
	return append(b, 0), nil
}

// Time returns Clock as a time.Time.
func (s *DeviceStatus) Time() time.Time { return time.Unix(int64(s.Clock), 0) }

// ProvisionRequest is the PROVISION request (CMD 0x10): the provisioning
// station's X25519 public key.
type ProvisionRequest struct {
	StationKey [32]byte
}

// ParseProvisionRequest decodes a PROVISION request payload.
// It returns nil and a *PayloadError for bytes that do not fit.
func ParseProvisionRequest(b []byte) (*ProvisionRequest, error) {
	if len(b) != 32 {
		return nil, payloadErr(CmdProvision, "%d bytes, want a 32-byte X25519 key", len(b))
	}
	r := &ProvisionRequest{}
	copy(r.StationKey[:], b)
	return r, nil
}

// Encode returns the request payload. It never fails.
func (r *ProvisionRequest) Encode() ([]byte, error) { return append([]byte{}, r.StationKey[:]...), nil }

// ProvisionResponse is the PROVISION response (CMD 0x10): the device's
// X25519 public key (32), a nonce (12) and the OTP secret sealed with
// ChaCha20-Poly1305 (at least the 16-byte tag). See SealSecret and Open.
type ProvisionResponse struct {
	DeviceKey [32]byte
	Nonce     [12]byte
	Sealed    []byte
}

const (
	provisionFixed = 32 + 12
	tagSize        = 16 // Poly1305
)

// ParseProvisionResponse decodes a PROVISION response after its status
// byte. It returns nil and a *PayloadError for bytes that do not fit.
func ParseProvisionResponse(b []byte) (*ProvisionResponse, error) {
	if len(b) < provisionFixed+tagSize || len(b) > MaxData {
		return nil, payloadErr(CmdProvision|ResponseBit, "%d bytes, want %d to %d", len(b), provisionFixed+tagSize, MaxData)
	}
	r := &ProvisionResponse{Sealed: append([]byte{}, b[provisionFixed:]...)}
	copy(r.DeviceKey[:], b)
	copy(r.Nonce[:], b[32:])
	return r, nil
}

// Encode returns the response after its status byte.
// It returns a *PayloadError for a value that cannot be sent.
func (r *ProvisionResponse) Encode() ([]byte, error) {
	if n := len(r.Sealed); n < tagSize || n > MaxData-provisionFixed {
		return nil, payloadErr(CmdProvision|ResponseBit, "sealed secret of %d bytes, want %d to %d", n, tagSize, MaxData-provisionFixed)
	}
	b := make([]byte, 0, provisionFixed+len(r.Sealed))
	b = append(b, r.DeviceKey[:]...)
	b = append(b, r.Nonce[:]...)
	return append(b, r.Sealed...), nil
}

// SetClock is the SET_CLOCK request (CMD 0x11): unix seconds (u64 BE). The
// response has nothing after its status.
type SetClock struct {
	Unix uint64
}

// ParseSetClock decodes a SET_CLOCK request payload.
// It returns nil and a *PayloadError for bytes that do not fit.
func ParseSetClock(b []byte) (*SetClock, error) {
	if len(b) != 8 {
		return nil, payloadErr(CmdSetClock, "%d bytes, want 8", len(b))
	}
	return &SetClock{Unix: binary.BigEndian.Uint64(b)}, nil
}

// Encode returns the request payload. It never fails.
func (c *SetClock) Encode() ([]byte, error) {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), c.Unix), nil
}

// checkEmpty fails when a payload that CDP/1 defines as empty is not.
func checkEmpty(cmd byte, b []byte) error {
	if len(b) != 0 {
		return payloadErr(cmd, "%d unexpected bytes", len(b))
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

func text(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func lower(c byte) bool { return c >= 'a' && c <= 'z' }

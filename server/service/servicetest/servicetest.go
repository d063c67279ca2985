// Package servicetest builds what a client sends to the authbench server,
// for tests and benchmarks of server/service and server/api: WebAuthn
// registration and authentication responses made by a device.Chip (a
// simulated one, typically), app signatures, and PSKC documents.
//
// The browser's part of WebAuthn Level 3 (§5.1.3 and §5.1.4) is
// device/webauthn's Create and Get; Register adds a way to forge
// attestations.
package servicetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"strings"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/server/pskc"
	"github.com/authbench/authbench/server/service"
)

var b64 = base64.RawURLEncoding

// Register runs makeCredential on c for the server's creation options o
// and returns the registration response, as navigator.credentials.create()
// would from origin (webauthn.Create), with the transport "usb". edit, when
// not nil, may change the attestation before it is encoded (to forge bad
// ones).
func Register(ctx context.Context, c device.Chip, origin string, o service.CreationOptions, edit func(*ctap2.Attestation)) (*service.RegistrationResponse, error) {
	r, err := webauthn.Create(ctx, c, &o, origin)
	if err != nil {
		return nil, err
	}
	r.Response.Transports = []string{"usb"}
	if edit == nil {
		return r, nil
	}
	raw, err := b64.DecodeString(r.Response.AttestationObject)
	if err != nil {
		return nil, err
	}
	ao, err := webauthn.ParseAttestationObject(raw)
	if err != nil {
		return nil, err
	}
	att, err := ao.Attestation()
	if err != nil {
		return nil, err
	}
	edit(att)
	if raw, err = webauthn.EncodeAttestationObject(att); err != nil {
		return nil, err
	}
	r.Response.AttestationObject = b64.EncodeToString(raw)
	return r, nil
}

// Assert runs getAssertion on c for the server's request options o and
// returns the authentication response, as navigator.credentials.get()
// would from origin (webauthn.Get).
func Assert(ctx context.Context, c device.Chip, origin string, o *service.RequestOptions) (*service.AuthenticationResponse, error) {
	return webauthn.Get(ctx, c, o, origin)
}

// SignChallenge returns what a MitID app sends: an ECDSA P-256 signature
// (ASN.1 DER) over SHA-256 of the base64url challenge's bytes, base64url.
func SignChallenge(key *ecdsa.PrivateKey, challenge string) (string, error) {
	raw, err := b64.DecodeString(challenge)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(raw)
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		return "", err
	}
	return b64.EncodeToString(sig), nil
}

// CodeDevice is a TOTP code device as a provisioning station knows it.
type CodeDevice struct {
	Serial string
	Secret []byte
	Digits int
	Period time.Duration
}

// TOTP returns the device's generator.
func (d CodeDevice) TOTP() *otp.TOTP {
	return &otp.TOTP{Secret: d.Secret, Digits: d.Digits, Period: d.Period}
}

// Code returns the code the device shows at t.
func (d CodeDevice) Code(t time.Time) string {
	c, _, err := d.TOTP().At(t)
	if err != nil {
		panic(err) // the test's own parameters are bad
	}
	return c
}

// PSKC writes devs as one PSKC document (RFC 6030) protected by the
// pre-shared key key, as a provisioning station would.
func PSKC(key []byte, devs ...CodeDevice) ([]byte, error) {
	keys := make([]pskc.Key, 0, len(devs))
	for i, d := range devs {
		keys = append(keys, pskc.Key{
			Serial:       d.Serial,
			Manufacturer: "authbench",
			ID:           fmt.Sprintf("key-%d", i+1),
			Algorithm:    pskc.TOTP,
			Digits:       d.Digits,
			Period:       d.Period,
			Secret:       d.Secret,
		})
	}
	var buf bytes.Buffer
	if err := pskc.Write(&buf, keys, pskc.EncryptOptions{Key: key}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// PlainPSKC writes devs as one PSKC document (RFC 6030) whose secrets are
// in the clear (PlainValue, §4.2): what a server refuses unless it allows
// plaintext secrets (service.Options.PSKCAllowPlaintext).
func PlainPSKC(devs ...CodeDevice) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">` + "\n")
	for i, d := range devs {
		digits := d.Digits
		if digits == 0 {
			digits = 6
		}
		period := d.Period
		if period == 0 {
			period = 30 * time.Second
		}
		fmt.Fprintf(&b, `  <KeyPackage>
    <DeviceInfo><Manufacturer>authbench</Manufacturer><SerialNo>%s</SerialNo></DeviceInfo>
    <Key Id="key-%d" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp">
      <AlgorithmParameters><ResponseFormat Length="%d" Encoding="DECIMAL"/></AlgorithmParameters>
      <Data>
        <Secret><PlainValue>%s</PlainValue></Secret>
        <TimeInterval><PlainValue>%d</PlainValue></TimeInterval>
      </Data>
    </Key>
  </KeyPackage>
`, html.EscapeString(d.Serial), i+1, digits, base64.StdEncoding.EncodeToString(d.Secret), int(period/time.Second))
	}
	b.WriteString("</KeyContainer>\n")
	return []byte(b.String())
}

// Clock is a virtual clock that a test's server and its code devices
// share, so that a test moves to the next time step without waiting. It is
// safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that stands at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

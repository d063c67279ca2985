package code

import (
	"context"
	"crypto/ecdh"
	"fmt"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/frame"
)

var _ device.CodeDevice = (*Device)(nil)

// Identify returns what IDENTIFY reports, without a byte stream in between:
// the answer goes through the same handler and decoder as over the wire.
// Errors: ctx.Err() when ctx has ended, or a *frame.PayloadError if the
// answer does not decode (a bug).
func (d *Device) Identify(ctx context.Context) (*device.CodeDeviceInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("code: IDENTIFY: %w", err)
	}
	st, data := d.HandleFrame(ctx, frame.CmdIdentify, nil)
	if err := st.Err(frame.CmdIdentify); err != nil {
		return nil, err
	}
	id, err := frame.ParseIdentity(data)
	if err != nil {
		return nil, err
	}
	return id.Info(), nil
}

// Press presses the button, as PRESS does over the wire, and returns the
// code; an audio reader also returns what it said (Code.Audio), as a host
// would fetch it with AUDIO (including Faults.CorruptAudio). Errors:
// ctx.Err() when ctx has ended; a *frame.StatusError for StatusBusy (it
// unwraps to device.ErrBusy) or StatusBatteryLow, exactly as frame.Host
// returns them; or a *frame.PayloadError if the answer does not decode (a
// bug).
func (d *Device) Press(ctx context.Context) (*device.Code, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("code: PRESS: %w", err)
	}
	d.mu.Lock()
	st, data := d.handle(frame.CmdPress, nil)
	pcm := d.pcm
	d.mu.Unlock()
	if err := st.Err(frame.CmdPress); err != nil {
		return nil, err
	}
	r, err := frame.ParsePress(data)
	if err != nil {
		return nil, err
	}
	c := r.Code()
	if r.Audio != nil {
		// d.pcm is replaced, never modified, so pcm is safe to copy.
		c.Audio = &device.Audio{SampleRate: int(r.Audio.SampleRate), PCM: append([]byte(nil), pcm...)}
	}
	return c, nil
}

// OpenSealedSecret is the provisioning station's side of PROVISION
// (CDP/1 §4.2, docs/cdp1.md): it recovers the OTP secret from the device's X25519 public
// key, the device serial (as IDENTIFY reports it), the nonce and the sealed
// secret, with the station's X25519 private key. The cryptography is
// frame.ProvisionResponse.Open: HKDF-SHA256 over the X25519 shared secret
// with salt = serial and info "CDP/1 provision", then ChaCha20-Poly1305.
//
// It returns an error wrapping device.ErrProtocol when devicePub is not 32
// bytes or a usable X25519 key, nonce is not 12 bytes, or the box does not
// open (wrong key, serial or nonce, or altered bytes); and a plain error when
// stationPriv is not an X25519 key.
func OpenSealedSecret(stationPriv *ecdh.PrivateKey, devicePub []byte, serial string, nonce, sealed []byte) ([]byte, error) {
	if stationPriv == nil {
		return nil, fmt.Errorf("code: PROVISION: no station key")
	}
	r := frame.ProvisionResponse{Sealed: sealed}
	if len(devicePub) != len(r.DeviceKey) || len(nonce) != len(r.Nonce) {
		return nil, fmt.Errorf("code: PROVISION: device key of %d bytes and nonce of %d, want %d and %d: %w",
			len(devicePub), len(nonce), len(r.DeviceKey), len(r.Nonce), device.ErrProtocol)
	}
	copy(r.DeviceKey[:], devicePub)
	copy(r.Nonce[:], nonce)
	return r.Open(stationPriv, serial)
}

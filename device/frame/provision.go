package frame

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/authbench/authbench/device"
)

// ProvisionInfo is the HKDF info string of the PROVISION key derivation.
const ProvisionInfo = "CDP/1 provision"

// ProvisionKey derives the ChaCha20-Poly1305 key of a PROVISION exchange
// (CDP/1 §4.2, docs/cdp1.md): HKDF-SHA256 with the X25519 shared secret as input key
// material, the device serial as salt and ProvisionInfo as info. priv is one
// side's X25519 private key and peer the other side's public key.
//
// It fails when peer is not a valid X25519 public key or the shared secret is
// all zeros (a low-order point); the error wraps device.ErrProtocol.
func ProvisionKey(priv *ecdh.PrivateKey, peer [32]byte, serial string) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(peer[:])
	if err != nil {
		return nil, fmt.Errorf("frame: PROVISION: peer key: %v: %w", err, device.ErrProtocol)
	}
	shared, err := priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("frame: PROVISION: X25519: %v: %w", err, device.ErrProtocol)
	}
	key, err := hkdf.Key(sha256.New, shared, []byte(serial), ProvisionInfo, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("frame: PROVISION: HKDF: %w", err)
	}
	return key, nil
}

// SealSecret is the device side of PROVISION: it seals secret for the
// station whose request is req, with the device's X25519 key deviceKey and a
// nonce the caller chose (from its injected randomness), and returns the
// response. The AEAD has no associated data. Errors are those of
// ProvisionKey, and a *PayloadError when the sealed secret does not fit in a
// response.
func SealSecret(deviceKey *ecdh.PrivateKey, req *ProvisionRequest, serial string, nonce [12]byte, secret []byte) (*ProvisionResponse, error) {
	if deviceKey.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("frame: PROVISION: device key is not an X25519 key")
	}
	if n := len(secret) + tagSize; n > MaxData-provisionFixed {
		return nil, payloadErr(CmdProvision|ResponseBit, "secret of %d bytes does not fit", len(secret))
	}
	key, err := ProvisionKey(deviceKey, req.StationKey, serial)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, fmt.Errorf("frame: PROVISION: %w", err)
	}
	r := &ProvisionResponse{Nonce: nonce, Sealed: aead.Seal(nil, nonce[:], secret, nil)}
	copy(r.DeviceKey[:], deviceKey.PublicKey().Bytes())
	return r, nil
}

// Open is the station side of PROVISION: it opens the sealed secret with
// the station's X25519 key stationKey and the serial the device reported in
// IDENTIFY. It returns an error wrapping device.ErrProtocol when the key
// exchange fails or the secret does not authenticate (wrong serial, wrong
// key, or bytes altered on the way).
func (r *ProvisionResponse) Open(stationKey *ecdh.PrivateKey, serial string) ([]byte, error) {
	if stationKey.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("frame: PROVISION: station key is not an X25519 key")
	}
	key, err := ProvisionKey(stationKey, r.DeviceKey, serial)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, fmt.Errorf("frame: PROVISION: %w", err)
	}
	secret, err := aead.Open(nil, r.Nonce[:], r.Sealed, nil)
	if err != nil {
		return nil, fmt.Errorf("frame: PROVISION: sealed secret does not authenticate: %w", device.ErrProtocol)
	}
	return secret, nil
}

package secrets

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
)

// ErrMAC: a MAC does not match its message under the key it names: the
// message or the MAC was altered, or made with another key of the same ID.
var ErrMAC = errors.New("MAC does not match")

// macInfo starts the HKDF info of every derived MAC key; the purpose
// follows it.
const macInfo = "authbench/secrets mac key\x00"

// MACKey returns the key that MAC uses for purpose under master key id:
// HKDF-SHA256 (RFC 5869) with the master key as input keying material, no
// salt, and info "authbench/secrets mac key" | 0x00 | purpose; 32 bytes.
// Each purpose gets a key of its own, unrelated to the sealing key, so a
// MAC made for one purpose is worthless for another. The caller clears
// the key when done with it.
//
// It returns an error wrapping ErrUnknownKey when the keyring has no key
// id.
func (k *Keyring) MACKey(id, purpose string) ([]byte, error) {
	k.mu.RLock()
	mk := k.keys[id]
	k.mu.RUnlock()
	if mk == nil {
		return nil, fmt.Errorf("secrets: no master key %s to derive a MAC key from: %w (is the right key file loaded?)", strconv.Quote(id), ErrUnknownKey)
	}
	key, err := hkdf.Key(sha256.New, mk.key[:], nil, macInfo+purpose, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("secrets: deriving a MAC key: %w", err)
	}
	return key, nil
}

// MAC returns HMAC-SHA256 (RFC 2104) of msg under the key MACKey derives
// for purpose from master key id. Record id next to the MAC (and inside
// msg, if it must not be swapped) so that CheckMAC finds the key after a
// rotation: a MAC stays checkable as long as its master key is kept in the
// keyring, current or not.
//
// It returns an error wrapping ErrUnknownKey when the keyring has no key
// id.
func (k *Keyring) MAC(id, purpose string, msg []byte) ([]byte, error) {
	key, err := k.MACKey(id, purpose)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil), nil
}

// CheckMAC reports whether mac is the MAC of msg for purpose under master
// key id, comparing in constant time. It returns nil when it is, an error
// wrapping ErrUnknownKey when the keyring has no key id, and one wrapping
// ErrMAC when the MAC does not match.
func (k *Keyring) CheckMAC(id, purpose string, msg, mac []byte) error {
	want, err := k.MAC(id, purpose, msg)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, mac) {
		return fmt.Errorf("secrets: %w (key %s, purpose %s)", ErrMAC, strconv.Quote(id), strconv.Quote(purpose))
	}
	return nil
}

package chip

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
)

// Everything a chip creates is derived from its seed with HKDF-SHA256
// (RFC 5869), one label per purpose, so that two chips made from the same
// seed hold the same serial number, attestation key and the same sequence
// of credential keys and IDs. A model's batch attestation key is derived the
// same way from the model's name (batchSeed).
const hkdfSalt = "authbench sim/chip v1"

// Lengths of derived values.
const (
	credentialIDLen = 32 // bytes of a credential ID (= U2F key handle)
	seedLen         = 32 // bytes of a random seed when Options.Seed is nil
)

// derive returns n bytes of HKDF-SHA256 output for label and the optional
// 64-bit counter.
func derive(seed []byte, label string, counter uint64, n int) []byte {
	return extract(seed).expand(label, counter, n)
}

// prk is the HKDF pseudorandom key of a seed (RFC 5869 §2.2): extracted
// once, it is expanded into each value derived from the seed, so that a
// chip's credentials do not extract it again.
type prk []byte

// extract returns the pseudorandom key of seed.
func extract(seed []byte) prk {
	k, err := hkdf.Extract(sha256.New, seed, []byte(hkdfSalt))
	if err != nil {
		panic("chip: hkdf: " + err.Error()) // never for SHA-256
	}
	return k
}

// expand returns n bytes of HKDF-SHA256 output for label and the 64-bit
// counter: derive's, for the seed of k.
func (k prk) expand(label string, counter uint64, n int) []byte {
	info := make([]byte, 0, len(label)+8)
	info = append(info, label...)
	info = binary.BigEndian.AppendUint64(info, counter)
	out, err := hkdf.Expand(sha256.New, k, string(info), n)
	if err != nil {
		// Only possible for an output longer than 255*32 bytes.
		panic("chip: hkdf: " + err.Error())
	}
	return out
}

// deriveKey returns the P-256 key pair for label and counter. Forty bytes of
// HKDF output (64 bits more than the order) are reduced to a scalar in
// [1, n-1] (FIPS 186-5 §A.2.1, "extra random bits"), so the bias is
// negligible and every seed gives a valid key. The key is built from the
// scalar because crypto/ecdsa.GenerateKey no longer takes its randomness
// from the caller's reader.
func deriveKey(seed []byte, label string, counter uint64) (*ecdsa.PrivateKey, error) {
	return extract(seed).key(label, counter)
}

// key is deriveKey for the seed of k.
func (k prk) key(label string, counter uint64) (*ecdsa.PrivateKey, error) {
	n := elliptic.P256().Params().N
	d := new(big.Int).SetBytes(k.expand(label, counter, 40))
	nMinus1 := new(big.Int).Sub(n, big.NewInt(1))
	d.Mod(d, nMinus1)
	d.Add(d, big.NewInt(1))
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d.FillBytes(make([]byte, 32)))
	if err != nil {
		return nil, fmt.Errorf("chip: derive %s key: %w", label, err)
	}
	return key, nil
}

// deriveSerial returns the chip's printed serial number, "AB-" and ten
// digits.
func deriveSerial(seed []byte) string {
	v := binary.BigEndian.Uint64(derive(seed, "serial", 0, 8))
	return fmt.Sprintf("AB-%010d", v%10_000_000_000)
}

// credential returns the key pair and ID of the n-th credential the chip
// of seed k creates (n counts from 1 and never goes back, not even on
// reset, so a reset chip never hands out an old credential again).
func (k prk) credential(n uint64) (*ecdsa.PrivateKey, []byte, error) {
	key, err := k.key("credential key", n)
	if err != nil {
		return nil, nil, err
	}
	return key, k.expand("credential id", n, credentialIDLen), nil
}

// rawPublicKey returns the uncompressed SEC 1 point 04 || X || Y of a P-256
// public key (65 bytes), the form U2F uses.
func rawPublicKey(pub *ecdsa.PublicKey) []byte {
	b, err := pub.Bytes()
	if err != nil {
		panic("chip: public key: " + err.Error()) // only for keys not on a NIST curve
	}
	return b
}

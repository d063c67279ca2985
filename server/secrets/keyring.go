package secrets

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the size of a master key in bytes.
const KeySize = chacha20poly1305.KeySize

// MaxKeyIDLen is the longest key ID accepted.
const MaxKeyIDLen = 64

// blobVersion is the first byte of every blob Seal produces.
const blobVersion = 0x01

// blobOverhead is what a blob adds to its plaintext: the version byte, the
// nonce and the Poly1305 tag.
const blobOverhead = 1 + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// Sealed is a secret sealed under one key of a Keyring: the key's ID and
// the blob (version | nonce | ciphertext | tag, see the package doc). The
// store keeps both; neither is secret.
type Sealed struct {
	KeyID string `json:"key_id"`
	Blob  []byte `json:"blob"`
}

// String names the key and the blob's size, not its bytes.
func (s Sealed) String() string {
	return fmt.Sprintf("sealed(key %s, %d bytes)", s.KeyID, len(s.Blob))
}

// LogValue logs the key ID and the blob's size.
func (s Sealed) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key_id", s.KeyID), slog.Int("size", len(s.Blob)))
}

// masterKey is one key of a Keyring. The key bytes sit behind a pointer so
// that printing a structure that holds a Keyring shows an address at most.
type masterKey struct {
	key  *[KeySize]byte
	aead cipher.AEAD
}

// Keyring holds master keys by ID, one of them current. Seal uses the
// current key; Open uses the key the Sealed value names. A Keyring is safe
// for concurrent use; the zero Keyring holds no key and cannot seal.
//
// A Keyring never prints or logs key material (see the package doc).
type Keyring struct {
	// Rand is the source of nonces and of the keys Rotate makes; nil means
	// crypto/rand. Set it before the keyring is shared.
	Rand io.Reader

	mu      sync.RWMutex
	current string
	keys    map[string]*masterKey
}

var (
	_ fmt.Formatter  = (*Keyring)(nil)
	_ fmt.Stringer   = (*Keyring)(nil)
	_ fmt.GoStringer = (*Keyring)(nil)
	_ slog.LogValuer = (*Keyring)(nil)
)

// NewKeyring returns a keyring holding key under id, as the current key.
// It returns an error wrapping ErrKeyFile when id or key is unacceptable
// (see AddKey).
func NewKeyring(id string, key []byte) (*Keyring, error) {
	k := new(Keyring)
	if err := k.AddKey(id, key); err != nil {
		return nil, err
	}
	k.current = id
	return k, nil
}

// GenerateKeyring returns a keyring holding one new random key, named by
// its fingerprint (KeyID), as the current key. r is the randomness (nil
// means crypto/rand); an error reading it is returned.
func GenerateKeyring(r io.Reader) (*Keyring, error) {
	k := &Keyring{Rand: r}
	if _, err := k.Rotate(); err != nil {
		return nil, err
	}
	return k, nil
}

// KeyID returns the fingerprint name of key: "k-" and the first 4 bytes, in
// hex, of SHA-256("authbench/secrets key id" | 0x00 | key). It is the ID of
// a key given without one (a single-key file, GenerateKeyring, Rotate).
func KeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("authbench/secrets key id\x00"))
	h.Write(key)
	return "k-" + hex.EncodeToString(h.Sum(nil)[:4])
}

// checkKeyID returns an error when id is not 1 to MaxKeyIDLen characters
// from [A-Za-z0-9._-].
func checkKeyID(id string) error {
	if id == "" || len(id) > MaxKeyIDLen {
		return fmt.Errorf("a key ID has 1 to %d characters", MaxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("key ID %s: only letters, digits, '.', '_' and '-' are allowed", showID(id))
		}
	}
	return nil
}

// showID returns id quoted for an error message, unless it is too long or
// looks like key material (someone swapped IDs and keys in a key file).
func showID(id string) string {
	if len(id) > MaxKeyIDLen {
		return fmt.Sprintf("(%d bytes long)", len(id))
	}
	if key, ok := decodeKey([]byte(id)); ok {
		clear(key)
		return "(that looks like a key, not a key ID)"
	}
	return strconv.QuoteToASCII(id)
}

// newMasterKey checks key and returns its copy with its AEAD.
func newMasterKey(key []byte) (*masterKey, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("a master key is %d bytes, not %d", KeySize, len(key))
	}
	var zero [KeySize]byte
	if [KeySize]byte(key) == zero {
		return nil, errors.New("a master key of all zero bytes is a placeholder, not a key")
	}
	mk := &masterKey{key: new([KeySize]byte)}
	copy(mk.key[:], key)
	aead, err := chacha20poly1305.NewX(mk.key[:])
	if err != nil {
		return nil, err
	}
	mk.aead = aead
	return mk, nil
}

// AddKey adds key under id without making it current, so that values
// sealed under it open. The keyring keeps its own copy of key.
//
// It returns a *KeyFileError (wrapping ErrKeyFile) when id is not 1 to
// MaxKeyIDLen characters from [A-Za-z0-9._-], when key is not KeySize bytes
// or is all zeros, or when id is already taken by a different key. Adding
// the same key under the same ID again does nothing.
func (k *Keyring) AddKey(id string, key []byte) error {
	if err := checkKeyID(id); err != nil {
		return &KeyFileError{Source: "keyring", Detail: err.Error()}
	}
	mk, err := newMasterKey(key)
	if err != nil {
		return &KeyFileError{Source: "keyring", Detail: "key " + showID(id) + ": " + err.Error()}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if old, ok := k.keys[id]; ok {
		if *old.key != *mk.key {
			return &KeyFileError{Source: "keyring", Detail: "key ID " + showID(id) + " is already taken by another key"}
		}
		return nil
	}
	if k.keys == nil {
		k.keys = make(map[string]*masterKey)
	}
	k.keys[id] = mk
	return nil
}

// SetCurrent makes the key named id the one Seal uses. It returns an
// *OpenError wrapping ErrUnknownKey when the keyring has no such key.
func (k *Keyring) SetCurrent(id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.keys[id]; !ok {
		return &OpenError{KeyID: id, Err: ErrUnknownKey}
	}
	k.current = id
	return nil
}

// Rotate adds a new random key, named by its fingerprint (KeyID), and makes
// it current; the older keys stay and still open what they sealed. It
// returns the new key's ID, or an error when reading k.Rand fails. The
// caller saves the keyring (WriteFile) before sealing anything with it.
func (k *Keyring) Rotate() (string, error) {
	var key [KeySize]byte
	if _, err := io.ReadFull(k.rand(), key[:]); err != nil {
		return "", fmt.Errorf("secrets: generating a master key: %w", err)
	}
	id := KeyID(key[:])
	err := k.AddKey(id, key[:])
	clear(key[:])
	if err != nil {
		return "", err
	}
	return id, k.SetCurrent(id)
}

// RemoveKey drops the key named id, after every value sealed under it has
// been Resealed. It returns an error wrapping ErrUnknownKey when there is no
// such key, and one wrapping ErrKeyFile when id is the current key.
func (k *Keyring) RemoveKey(id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	mk, ok := k.keys[id]
	if !ok {
		return &OpenError{KeyID: id, Err: ErrUnknownKey}
	}
	if id == k.current {
		return &KeyFileError{Source: "keyring", Detail: "key " + id + " is current; make another key current first"}
	}
	clear(mk.key[:])
	delete(k.keys, id)
	return nil
}

// Current returns the ID of the current key, or "" for an empty keyring.
func (k *Keyring) Current() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

// IDs returns the IDs of all keys, sorted.
func (k *Keyring) IDs() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (k *Keyring) rand() io.Reader {
	if k.Rand != nil {
		return k.Rand
	}
	return rand.Reader
}

// Seal encrypts plaintext under the current key with XChaCha20-Poly1305
// and a random nonce, authenticating associatedData with it (build it with
// AssociatedData). Open must be given the same associated data.
//
// It returns an error when the keyring has no current key or reading
// k.Rand fails.
func (k *Keyring) Seal(plaintext, associatedData []byte) (Sealed, error) {
	k.mu.RLock()
	id, mk := k.current, k.keys[k.current]
	k.mu.RUnlock()
	if mk == nil {
		return Sealed{}, errors.New("secrets: the keyring has no current key")
	}
	return seal(id, mk, k.rand(), plaintext, associatedData)
}

func seal(id string, mk *masterKey, r io.Reader, plaintext, ad []byte) (Sealed, error) {
	blob := make([]byte, 1+chacha20poly1305.NonceSizeX, len(plaintext)+blobOverhead)
	blob[0] = blobVersion
	if _, err := io.ReadFull(r, blob[1:]); err != nil {
		return Sealed{}, fmt.Errorf("secrets: reading a nonce: %w", err)
	}
	blob = mk.aead.Seal(blob, blob[1:], plaintext, ad)
	return Sealed{KeyID: id, Blob: blob}, nil
}

// Open decrypts s with the key it names and checks associatedData.
//
// It returns an *OpenError that unwraps to ErrUnknownKey when the keyring
// has no key s.KeyID, and to ErrOpen when the blob is malformed, was
// altered, or was sealed with other associated data.
func (k *Keyring) Open(s Sealed, associatedData []byte) ([]byte, error) {
	k.mu.RLock()
	mk := k.keys[s.KeyID]
	k.mu.RUnlock()
	if mk == nil {
		return nil, &OpenError{KeyID: s.KeyID, Err: ErrUnknownKey}
	}
	b := s.Blob
	switch {
	case len(b) < blobOverhead:
		return nil, &OpenError{KeyID: s.KeyID, Err: fmt.Errorf("%w: blob of %d bytes is too short", ErrOpen, len(b))}
	case b[0] != blobVersion:
		return nil, &OpenError{KeyID: s.KeyID, Err: fmt.Errorf("%w: unknown blob version %d", ErrOpen, b[0])}
	}
	nonce, ct := b[1:1+chacha20poly1305.NonceSizeX], b[1+chacha20poly1305.NonceSizeX:]
	pt, err := mk.aead.Open(nil, nonce, ct, associatedData)
	if err != nil {
		return nil, &OpenError{KeyID: s.KeyID, Err: ErrOpen}
	}
	return pt, nil
}

// Reseal returns s sealed under the current key. When s already is, it
// returns s itself and changed false, without opening it.
//
// It returns the errors of Open and Seal.
func (k *Keyring) Reseal(s Sealed, associatedData []byte) (out Sealed, changed bool, err error) {
	if s.KeyID == k.Current() {
		return s, false, nil
	}
	pt, err := k.Open(s, associatedData)
	if err != nil {
		return Sealed{}, false, err
	}
	defer clear(pt)
	out, err = k.Seal(pt, associatedData)
	if err != nil {
		return Sealed{}, false, err
	}
	return out, true, nil
}

// AssociatedData joins parts into associated data for Seal and Open, each
// part preceded by its length (u32 big-endian), so that different parts
// never give the same bytes: AssociatedData("otp-secret", "a1") binds a
// blob to the OTP secret of authenticator a1.
func AssociatedData(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += 4 + len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

// String describes k by its key IDs: "secrets.Keyring{current: k2, keys: [k1 k2]}".
func (k *Keyring) String() string {
	if k == nil {
		return "secrets.Keyring(nil)"
	}
	return "secrets.Keyring{current: " + k.Current() + ", keys: [" + strings.Join(k.IDs(), " ") + "]}"
}

// GoString is String: %#v shows no key material either.
func (k *Keyring) GoString() string { return k.String() }

// Format prints String for every verb, so that no verb (%x, %#v, ...)
// reveals a key.
func (k *Keyring) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		io.WriteString(f, strconv.Quote(k.String()))
		return
	}
	io.WriteString(f, k.String())
}

// LogValue logs the current key ID and the key IDs.
func (k *Keyring) LogValue() slog.Value {
	if k == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("current", k.Current()), slog.Any("keys", k.IDs()))
}

// MarshalJSON refuses: key material is written only by MarshalKeyFile and
// WriteFile, on purpose.
func (k *Keyring) MarshalJSON() ([]byte, error) {
	return nil, errors.New("secrets: a Keyring is not JSON-encoded; use MarshalKeyFile")
}

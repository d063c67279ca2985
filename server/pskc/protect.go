package pskc

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"errors"
	"fmt"
	"hash"
	"strconv"
)

// This file holds key protection (RFC 6030 §6): the EncryptionKey, the MAC
// key, and the checking and decryption of encrypted values.

// setup reads EncryptionKey and MACMethod (RFC 6030 §6.1, §6.1.1, §6.2)
// and recovers the MAC key.
func (p *parser) setup(doc *xContainer) error {
	ek, err := one(doc.EncryptionKey, "EncryptionKey")
	if err != nil {
		return err
	}
	if ek != nil {
		if p.enc, err = p.encryptionKey(ek); err != nil {
			return err
		}
	}
	mm, err := one(doc.MACMethod, "MACMethod")
	if err != nil || mm == nil {
		return err
	}
	h, ok := hmacHash[trim(mm.Algorithm)]
	if !ok {
		return fieldErr("MACMethod/@Algorithm", ErrUnsupported, "unknown MAC algorithm %q", mm.Algorithm)
	}
	mk, err := one(mm.MACKey, "MACMethod/MACKey")
	if err != nil {
		return err
	}
	if mk == nil {
		// Drafts before RFC 6030 used the encryption key as MAC key;
		// RFC 6030 §6.1.1 sends a MACKey, and this package insists.
		return fieldErr("MACMethod/MACKey", ErrMAC, "missing")
	}
	if p.enc == nil {
		return fieldErr("MACMethod/MACKey", ErrFormat, "an encrypted MAC key but no EncryptionKey")
	}
	size, data, err := encrypted(mk, "MACMethod/MACKey")
	if err != nil {
		return err
	}
	key, err := p.enc.key(size, p.keys)
	if err != nil {
		return err
	}
	raw, err := cbcDecryptRaw(key, data)
	if err != nil {
		return &Error{Field: "MACMethod/MACKey", Err: err}
	}
	// The MACKey carries no MAC of its own. Telling bad padding apart from
	// a MAC mismatch would give a padding oracle on it, so a MAC key with
	// bad padding is used as it is: every ValueMAC then fails with ErrMAC,
	// which is also what a wrong pre-shared key or passphrase gives.
	p.macRaw, p.macKey = raw, raw
	if n := int(raw[len(raw)-1]); n >= 1 && n <= 16 && n < len(raw) {
		p.macKey = raw[:len(raw)-n]
	}
	p.macHash = h
	return nil
}

// encKey is the EncryptionKey of a document: a pre-shared key by name, or
// PBKDF2 parameters. Keys are fetched and derived on first use.
type encKey struct {
	name    string // ds:KeyName of a pre-shared key
	pbkdf2  bool
	salt    []byte
	iter    int
	keyLen  int // 0: not stated
	prf     func() hash.Hash
	psk     []byte
	derived map[int][]byte
}

func (p *parser) encryptionKey(ek *xEncryptionKey) (*encKey, error) {
	if len(ek.Other) > 0 {
		n := ek.Other[0].XMLName.Local
		return nil, fieldErr("EncryptionKey/"+n, ErrUnsupported, "only ds:KeyName (RFC 6030 §6.1) and PBKDF2 (§6.2) key protection are supported")
	}
	if len(ek.KeyName)+len(ek.DerivedKey) != 1 {
		return nil, fieldErr("EncryptionKey", ErrFormat, "want exactly one ds:KeyName or xenc11:DerivedKey")
	}
	if len(ek.KeyName) == 1 {
		return &encKey{name: trim(ek.KeyName[0])}, nil
	}
	const f = "EncryptionKey/DerivedKey/KeyDerivationMethod"
	m, err := one(ek.DerivedKey[0].Method, f)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fieldErr(f, ErrFormat, "missing")
	}
	if trim(m.Algorithm) != uriPBKDF2 {
		return nil, fieldErr(f+"/@Algorithm", ErrUnsupported, "key derivation %q, want PBKDF2", m.Algorithm)
	}
	const fp = f + "/PBKDF2-params"
	pp, err := one(m.Params, fp)
	if err != nil {
		return nil, err
	}
	if pp == nil {
		return nil, fieldErr(fp, ErrFormat, "missing")
	}
	k := &encKey{pbkdf2: true, prf: sha1.New, derived: map[int][]byte{}}
	salt, err := one(pp.Salt, fp+"/Salt")
	if err != nil {
		return nil, err
	}
	if salt == nil {
		return nil, fieldErr(fp+"/Salt", ErrFormat, "missing")
	}
	if len(salt.Other) > 0 {
		return nil, fieldErr(fp+"/Salt/"+salt.Other[0].XMLName.Local, ErrUnsupported, "only a Specified salt is supported")
	}
	s, ok, err := oneText(salt.Specified, fp+"/Salt/Specified")
	if err != nil {
		return nil, err
	}
	if k.salt, err = decodeBase64(s); !ok || err != nil || len(k.salt) == 0 {
		return nil, fieldErr(fp+"/Salt/Specified", ErrFormat, "want a non-empty base64 salt")
	}
	s, ok, err = oneText(pp.IterationCount, fp+"/IterationCount")
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(s)
	if !ok || err != nil || n < 1 {
		return nil, fieldErr(fp+"/IterationCount", ErrFormat, "want a positive integer, got %q", s)
	}
	if n > p.o.maxIterations() {
		return nil, fieldErr(fp+"/IterationCount", ErrUnsupported, "%d iterations, more than the limit of %d", n, p.o.maxIterations())
	}
	k.iter = n
	s, ok, err = oneText(pp.KeyLength, fp+"/KeyLength")
	if err != nil {
		return nil, err
	}
	if ok {
		n, err := strconv.Atoi(s)
		if err != nil || (n != 16 && n != 24 && n != 32) {
			return nil, fieldErr(fp+"/KeyLength", ErrUnsupported, "key length %q, want 16, 24 or 32", s)
		}
		k.keyLen = n
	}
	prf, err := one(pp.PRF, fp+"/PRF")
	if err != nil {
		return nil, err
	}
	if prf != nil && trim(prf.Algorithm) != "" {
		h, ok := hmacHash[trim(prf.Algorithm)]
		if !ok {
			return nil, fieldErr(fp+"/PRF/@Algorithm", ErrUnsupported, "unknown PRF %q", prf.Algorithm)
		}
		k.prf = h
	}
	return k, nil
}

// key returns the AES key of the given size, fetching or deriving it.
func (k *encKey) key(size int, src KeySource) ([]byte, error) {
	if !k.pbkdf2 {
		if k.psk == nil {
			if src == nil {
				return nil, fieldErr("EncryptionKey/KeyName", ErrNoKey, "the document needs pre-shared key %q and no KeySource was given", k.name)
			}
			psk, err := src.PreSharedKey(k.name)
			if err != nil {
				return nil, noKey("EncryptionKey/KeyName", err)
			}
			k.psk = psk
		}
		if len(k.psk) != size {
			return nil, fieldErr("EncryptionKey/KeyName", ErrDecrypt, "pre-shared key %q has %d bytes, the algorithm needs %d", k.name, len(k.psk), size)
		}
		return k.psk, nil
	}
	if k.keyLen != 0 && k.keyLen != size {
		return nil, fieldErr("EncryptionKey/DerivedKey", ErrFormat, "KeyLength %d, but an encryption algorithm needs %d", k.keyLen, size)
	}
	if dk, ok := k.derived[size]; ok {
		return dk, nil
	}
	if src == nil {
		return nil, fieldErr("EncryptionKey/DerivedKey", ErrNoKey, "the document needs a passphrase and no KeySource was given")
	}
	pass, err := src.Passphrase()
	if err != nil {
		return nil, noKey("EncryptionKey/DerivedKey", err)
	}
	dk, err := pbkdf2.Key(k.prf, string(pass), k.salt, k.iter, size)
	if err != nil {
		return nil, fieldErr("EncryptionKey/DerivedKey", ErrDecrypt, "PBKDF2: %v", err)
	}
	k.derived[size] = dk
	return dk, nil
}

func noKey(field string, err error) error {
	if errors.Is(err, ErrNoKey) {
		return &Error{Field: field, Err: err}
	}
	return &Error{Field: field, Err: fmt.Errorf("%w: %w", ErrNoKey, err)}
}

// encrypted checks an EncryptedValue or MACKey and returns the key size of
// its algorithm and its CipherValue (IV||ciphertext).
func encrypted(ev *xEncrypted, field string) (int, []byte, error) {
	m, err := one(ev.Method, field+"/EncryptionMethod")
	if err != nil {
		return 0, nil, err
	}
	if m == nil {
		return 0, nil, fieldErr(field+"/EncryptionMethod", ErrFormat, "missing")
	}
	size, ok := cbcKeySize[trim(m.Algorithm)]
	if !ok {
		return 0, nil, fieldErr(field+"/EncryptionMethod/@Algorithm", ErrUnsupported, "encryption %q, want AES-CBC", m.Algorithm)
	}
	cd, err := one(ev.CipherData, field+"/CipherData")
	if err != nil {
		return 0, nil, err
	}
	if cd == nil {
		return 0, nil, fieldErr(field+"/CipherData", ErrFormat, "missing")
	}
	if len(cd.Reference) > 0 {
		return 0, nil, fieldErr(field+"/CipherData/CipherReference", ErrUnsupported, "only inline CipherValue is supported")
	}
	s, ok, err := oneText(cd.Value, field+"/CipherData/CipherValue")
	if err != nil {
		return 0, nil, err
	}
	data, err := decodeBase64(s)
	if !ok || err != nil || len(data) == 0 {
		return 0, nil, fieldErr(field+"/CipherData/CipherValue", ErrFormat, "want non-empty base64")
	}
	return size, data, nil
}

// decrypt checks the ValueMAC of an encrypted value and only then decrypts
// it (RFC 6030 §6.1.1).
func (p *parser) decrypt(ev *xEncrypted, macs []string, field string) ([]byte, error) {
	if p.macHash == nil {
		return nil, fieldErr(field+"/EncryptedValue", ErrMAC, "an encrypted value, but the container declares no MACMethod")
	}
	if len(macs) != 1 {
		return nil, fieldErr(field+"/ValueMAC", ErrMAC, "want exactly one ValueMAC, found %d", len(macs))
	}
	size, data, err := encrypted(ev, field+"/EncryptedValue")
	if err != nil {
		return nil, err
	}
	want, err := decodeBase64(macs[0])
	if err != nil {
		return nil, fieldErr(field+"/ValueMAC", ErrMAC, "not base64")
	}
	if !hmac.Equal(computeMAC(p.macHash, p.macKey, data), want) {
		return nil, fieldErr(field+"/ValueMAC", ErrMAC, "does not match the CipherValue (altered document or wrong key)")
	}
	if p.seen == nil {
		p.seen = map[string]struct{}{}
	}
	if _, dup := p.seen[string(data)]; dup {
		return nil, fieldErr(field+"/EncryptedValue", ErrFormat, "the same CipherValue as an earlier value (copied between key packages?)")
	}
	p.seen[string(data)] = struct{}{}
	key, err := p.enc.key(size, p.keys)
	if err != nil {
		return nil, err
	}
	plain, err := cbcDecrypt(key, data)
	if err != nil {
		return nil, &Error{Field: field + "/EncryptedValue", Err: err}
	}
	return plain, nil
}

package pskc

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"io"
)

// cbcKeySize maps the XML Encryption block cipher URIs this package accepts
// (RFC 6030 §6.1, XML Encryption §5.2.2) to their key sizes in bytes.
var cbcKeySize = map[string]int{
	uriAES128CBC: 16,
	uriAES192CBC: 24,
	uriAES256CBC: 32,
}

// hmacHash maps MACMethod and PRF URIs to hash constructors.
var hmacHash = map[string]func() hash.Hash{
	uriHMACSHA1:   sha1.New,
	uriHMACSHA256: sha256.New,
	uriHMACSHA384: sha512.New384,
	uriHMACSHA512: sha512.New,
}

// cbcDecrypt decrypts IV||ciphertext with AES-CBC under key and removes the
// padding of XML Encryption §5.2 (the last byte counts the padding bytes,
// 1 to 16). It returns an error wrapping ErrDecrypt on a bad length or
// padding.
func cbcDecrypt(key, data []byte) ([]byte, error) {
	raw, err := cbcDecryptRaw(key, data)
	if err != nil {
		return nil, err
	}
	n := int(raw[len(raw)-1])
	if n < 1 || n > aes.BlockSize {
		clear(raw)
		return nil, fmt.Errorf("%w: bad padding", ErrDecrypt)
	}
	return raw[:len(raw)-n], nil
}

// cbcDecryptRaw decrypts without removing padding.
func cbcDecryptRaw(key, data []byte) ([]byte, error) {
	if len(data) < 2*aes.BlockSize || len(data)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: CipherValue of %d bytes is not an IV and whole AES blocks", ErrDecrypt, len(data))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	out := make([]byte, len(data)-aes.BlockSize)
	cipher.NewCBCDecrypter(block, data[:aes.BlockSize]).CryptBlocks(out, data[aes.BlockSize:])
	return out, nil
}

// cbcEncrypt pads plain as PKCS #7 (which meets XML Encryption §5.2),
// encrypts it with AES-CBC under key and a random IV read from rnd, and
// returns IV||ciphertext.
func cbcEncrypt(key, plain []byte, rnd io.Reader) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("pskc: %v", err)
	}
	n := aes.BlockSize - len(plain)%aes.BlockSize
	out := make([]byte, aes.BlockSize+len(plain)+n)
	if _, err := io.ReadFull(rnd, out[:aes.BlockSize]); err != nil {
		return nil, fmt.Errorf("pskc: reading random IV: %w", err)
	}
	body := out[aes.BlockSize:]
	copy(body, plain)
	for i := len(plain); i < len(body); i++ {
		body[i] = byte(n)
	}
	cipher.NewCBCEncrypter(block, out[:aes.BlockSize]).CryptBlocks(body, body)
	return out, nil
}

// computeMAC returns HMAC(key, data).
func computeMAC(h func() hash.Hash, key, data []byte) []byte {
	m := hmac.New(h, key)
	m.Write(data)
	return m.Sum(nil)
}

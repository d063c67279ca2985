package pskc

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults of EncryptOptions.
const (
	DefaultKeyName    = "Pre-shared-key" // ds:KeyName when EncryptOptions.KeyName is empty
	DefaultIterations = 600_000          // PBKDF2-HMAC-SHA256 iterations when EncryptOptions.Iterations is 0
)

// EncryptOptions says how Write protects the secrets. Set exactly one of
// Key and Passphrase; Write never writes a secret in the clear.
type EncryptOptions struct {
	// KeyName names the pre-shared key for the receiver (ds:KeyName,
	// RFC 6030 §6.1); with a Passphrase it is written as the
	// xenc11:MasterKeyName. Empty means DefaultKeyName for a Key and no
	// name for a Passphrase.
	KeyName string
	// Key is a pre-shared AES key of 16, 24 or 32 bytes: the secrets are
	// encrypted with AES-128-CBC, AES-192-CBC or AES-256-CBC.
	Key []byte
	// Passphrase derives a 16-byte AES-128-CBC key with PBKDF2-HMAC-SHA256
	// and a random 16-byte salt (RFC 6030 §6.2).
	Passphrase []byte
	// Iterations is the PBKDF2 iteration count; 0 means DefaultIterations.
	// It must not exceed the reader's Options.MaxIterations.
	Iterations int
	// Rand supplies the IVs, the MAC key and the salt; nil means
	// crypto/rand.Reader. Tests pass a fixed stream for a reproducible
	// document.
	Rand io.Reader
}

// Write writes keys as one PSKC 1.0 document (RFC 6030 §4) to w: the
// secrets encrypted with AES-CBC under the pre-shared key or the
// passphrase-derived key (§6.1, §6.2), each with a ValueMAC made with
// HMAC-SHA256 under a random MAC key that is itself sent encrypted
// (§6.1.1). Parse with the same key returns the same keys (times in UTC).
// Zero Digits, Period and Hash are left out of the document (Parse then
// reports Hash as SHA1); Counter is always written for HOTP keys.
//
// Write checks everything before writing anything, and writes the
// document with one call to w.Write. Errors: one wrapping ErrNoKey when
// neither Key nor Passphrase is set; one wrapping ErrUnsupported for a key
// of the wrong size or both set; an *Error naming the key (Package is its
// 1-based position in keys) that unwraps to ErrFormat or ErrUnsupported
// when a Key cannot be written as it is; or the error of Rand or w,
// wrapped.
func Write(w io.Writer, keys []Key, enc EncryptOptions) error {
	if err := checkKeys(keys); err != nil {
		return err
	}
	rnd := enc.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	var (
		aesKey  []byte
		keyName = enc.KeyName
		salt    []byte
		iter    = enc.Iterations
	)
	switch {
	case enc.Key != nil && enc.Passphrase != nil:
		return fmt.Errorf("pskc: write: %w: set EncryptOptions.Key or Passphrase, not both", ErrUnsupported)
	case enc.Key != nil:
		if n := len(enc.Key); n != 16 && n != 24 && n != 32 {
			return fmt.Errorf("pskc: write: %w: a pre-shared key of %d bytes, want 16, 24 or 32", ErrUnsupported, n)
		}
		aesKey = enc.Key
		if keyName == "" {
			keyName = DefaultKeyName
		}
	case enc.Passphrase != nil:
		if len(enc.Passphrase) == 0 {
			return fmt.Errorf("pskc: write: %w: empty passphrase", ErrNoKey)
		}
		if iter == 0 {
			iter = DefaultIterations
		}
		if iter < 0 {
			return fmt.Errorf("pskc: write: %w: %d PBKDF2 iterations", ErrUnsupported, iter)
		}
		salt = make([]byte, 16)
		if _, err := io.ReadFull(rnd, salt); err != nil {
			return fmt.Errorf("pskc: reading random salt: %w", err)
		}
		dk, err := pbkdf2.Key(sha256.New, string(enc.Passphrase), salt, iter, 16)
		if err != nil {
			return fmt.Errorf("pskc: write: PBKDF2: %w", err)
		}
		defer clear(dk)
		aesKey = dk
	default:
		return fmt.Errorf("pskc: write: %w: set EncryptOptions.Key or Passphrase (secrets are never written in the clear)", ErrNoKey)
	}
	if err := checkText(keyName); err != nil {
		return fmt.Errorf("pskc: write: %w: KeyName %v", ErrUnsupported, err)
	}
	encURI := map[int]string{16: uriAES128CBC, 24: uriAES192CBC, 32: uriAES256CBC}[len(aesKey)]

	macKey := make([]byte, 32)
	defer clear(macKey)
	if _, err := io.ReadFull(rnd, macKey); err != nil {
		return fmt.Errorf("pskc: reading random MAC key: %w", err)
	}
	sealedMACKey, err := cbcEncrypt(aesKey, macKey, rnd)
	if err != nil {
		return err
	}

	var b docWriter
	b.raw(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	ns := `xmlns:pskc="` + nsPSKC + `" xmlns:ds="` + nsDS + `" xmlns:xenc="` + nsXENC + `"`
	if salt != nil {
		ns += ` xmlns:xenc11="` + nsXENC11 + `" xmlns:pkcs5="` + nsPKCS5 + `"`
	}
	b.open(0, `pskc:KeyContainer `+ns+` Version="1.0"`)
	b.open(1, "pskc:EncryptionKey")
	if salt == nil {
		b.elem(2, "ds:KeyName", keyName)
	} else {
		b.open(2, "xenc11:DerivedKey")
		b.open(3, `xenc11:KeyDerivationMethod Algorithm="`+uriPBKDF2+`"`)
		b.open(4, "pkcs5:PBKDF2-params")
		b.open(5, "Salt")
		b.elem(6, "Specified", base64.StdEncoding.EncodeToString(salt))
		b.close(5, "Salt")
		b.elem(5, "IterationCount", strconv.Itoa(iter))
		b.elem(5, "KeyLength", "16")
		b.empty(5, `PRF Algorithm="`+uriHMACSHA256+`"`)
		b.close(4, "pkcs5:PBKDF2-params")
		b.close(3, "xenc11:KeyDerivationMethod")
		if keyName != "" {
			b.elem(3, "xenc11:MasterKeyName", keyName)
		}
		b.close(2, "xenc11:DerivedKey")
	}
	b.close(1, "pskc:EncryptionKey")
	b.open(1, `pskc:MACMethod Algorithm="`+uriHMACSHA256+`"`)
	b.open(2, "pskc:MACKey")
	b.cipher(3, encURI, sealedMACKey)
	b.close(2, "pskc:MACKey")
	b.close(1, "pskc:MACMethod")

	for i := range keys {
		k := &keys[i]
		sealed, err := cbcEncrypt(aesKey, k.Secret, rnd)
		if err != nil {
			return err
		}
		b.open(1, "pskc:KeyPackage")
		if k.Manufacturer != "" || k.Serial != "" || k.Model != "" {
			b.open(2, "pskc:DeviceInfo")
			b.optElem(3, "pskc:Manufacturer", k.Manufacturer)
			b.optElem(3, "pskc:SerialNo", k.Serial)
			b.optElem(3, "pskc:Model", k.Model)
			b.close(2, "pskc:DeviceInfo")
		}
		b.open(2, `pskc:Key Id="`+esc(k.ID)+`" Algorithm="`+k.Algorithm.URI()+`"`)
		if k.Hash != 0 || k.Digits != 0 {
			b.open(3, "pskc:AlgorithmParameters")
			if k.Hash != 0 {
				b.elem(4, "pskc:Suite", suiteName(k.Hash))
			}
			if k.Digits != 0 {
				b.empty(4, `pskc:ResponseFormat Length="`+strconv.Itoa(k.Digits)+`" Encoding="DECIMAL"`)
			}
			b.close(3, "pskc:AlgorithmParameters")
		}
		b.open(3, "pskc:Data")
		b.open(4, "pskc:Secret")
		b.open(5, "pskc:EncryptedValue")
		b.cipher(6, encURI, sealed)
		b.close(5, "pskc:EncryptedValue")
		b.elem(5, "pskc:ValueMAC", base64.StdEncoding.EncodeToString(computeMAC(sha256.New, macKey, sealed)))
		b.close(4, "pskc:Secret")
		if k.Counter != 0 || k.Algorithm == HOTP {
			b.plain(4, "pskc:Counter", strconv.FormatUint(k.Counter, 10))
		}
		if k.Time != 0 {
			b.plain(4, "pskc:Time", strconv.FormatInt(k.Time, 10))
		}
		if k.Period != 0 {
			b.plain(4, "pskc:TimeInterval", strconv.FormatInt(int64(k.Period/time.Second), 10))
		}
		if k.Drift != 0 {
			b.plain(4, "pskc:TimeDrift", strconv.Itoa(k.Drift))
		}
		b.close(3, "pskc:Data")
		if !k.NotBefore.IsZero() || !k.NotAfter.IsZero() {
			b.open(3, "pskc:Policy")
			if !k.NotBefore.IsZero() {
				b.elem(4, "pskc:StartDate", k.NotBefore.UTC().Format(time.RFC3339Nano))
			}
			if !k.NotAfter.IsZero() {
				b.elem(4, "pskc:ExpiryDate", k.NotAfter.UTC().Format(time.RFC3339Nano))
			}
			b.close(3, "pskc:Policy")
		}
		b.close(2, "pskc:Key")
		b.close(1, "pskc:KeyPackage")
	}
	b.close(0, "pskc:KeyContainer")
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("pskc: writing document: %w", err)
	}
	return nil
}

// checkKeys checks that every key can be written so that Parse returns it
// unchanged.
func checkKeys(keys []Key) error {
	ids := make(map[string]int, len(keys))
	for i := range keys {
		k := &keys[i]
		fail := func(field string, sentinel error, format string, args ...any) error {
			e := fieldErr(field, sentinel, format, args...).(*Error)
			e.Package, e.Serial, e.KeyID = i+1, k.Serial, k.ID
			return e
		}
		for _, f := range []struct{ name, v string }{
			{"Key/@Id", k.ID}, {"DeviceInfo/SerialNo", k.Serial},
			{"DeviceInfo/Manufacturer", k.Manufacturer}, {"DeviceInfo/Model", k.Model},
		} {
			if err := checkText(f.v); err != nil {
				return fail(f.name, ErrFormat, "%v", err)
			}
		}
		if k.ID == "" {
			return fail("Key/@Id", ErrFormat, "empty")
		}
		if first, dup := ids[k.ID]; dup {
			return fail("Key/@Id", ErrFormat, "the same Id as key %d", first)
		}
		ids[k.ID] = i + 1
		if k.Algorithm.URI() == "" {
			return fail("Key/@Algorithm", ErrUnsupported, "algorithm %q, want totp or hotp", k.Algorithm)
		}
		if k.Hash != 0 && !k.Hash.Valid() {
			return fail("Key/AlgorithmParameters/Suite", ErrUnsupported, "hash %v", k.Hash)
		}
		if k.Digits != 0 && (k.Digits < 6 || k.Digits > 8) {
			return fail("Key/AlgorithmParameters/ResponseFormat/@Length", ErrUnsupported, "%d digits, want 6 to 8", k.Digits)
		}
		if k.Period < 0 || k.Period%time.Second != 0 || k.Period > math.MaxInt32*time.Second {
			return fail("Key/Data/TimeInterval", ErrFormat, "period %v is not a positive whole number of seconds", k.Period)
		}
		if k.Counter > math.MaxInt64 {
			return fail("Key/Data/Counter", ErrFormat, "counter %d does not fit xs:long", k.Counter)
		}
		if k.Drift < math.MinInt32 || k.Drift > math.MaxInt32 {
			return fail("Key/Data/TimeDrift", ErrFormat, "drift %d does not fit xs:int", k.Drift)
		}
		for _, t := range []struct {
			name string
			v    time.Time
		}{{"Key/Policy/StartDate", k.NotBefore}, {"Key/Policy/ExpiryDate", k.NotAfter}} {
			if !t.v.IsZero() {
				if y := t.v.UTC().Year(); y < 0 || y > 9999 {
					return fail(t.name, ErrFormat, "year %d outside 0 to 9999", y)
				}
			}
		}
		if len(k.Secret) == 0 || len(k.Secret) > MaxSecretSize {
			return fail("Key/Data/Secret", ErrFormat, "%d-byte secret, want 1 to %d", len(k.Secret), MaxSecretSize)
		}
	}
	return nil
}

// checkText reports whether s survives an XML round trip unchanged: valid
// UTF-8 of XML characters (XML 1.0 §2.2) without leading or trailing
// whitespace, which Parse trims.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("not valid UTF-8")
	}
	for _, r := range s {
		if !isXMLChar(r) {
			return fmt.Errorf("character %U is not allowed in XML", r)
		}
	}
	if trim(s) != s {
		return fmt.Errorf("leading or trailing white space")
	}
	return nil
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) // writes to a strings.Builder never fail
	return b.String()
}

// docWriter builds the indented document.
type docWriter struct{ bytes.Buffer }

func (b *docWriter) raw(s string) { b.WriteString(s) }

func (b *docWriter) indent(d int) {
	for range d {
		b.WriteString("  ")
	}
}

func (b *docWriter) open(d int, tag string) {
	b.indent(d)
	b.WriteString("<" + tag + ">\n")
}

func (b *docWriter) empty(d int, tag string) {
	b.indent(d)
	b.WriteString("<" + tag + "/>\n")
}

func (b *docWriter) close(d int, name string) {
	b.indent(d)
	b.WriteString("</" + name + ">\n")
}

func (b *docWriter) elem(d int, name, text string) {
	b.indent(d)
	b.WriteString("<" + name + ">" + esc(text) + "</" + name + ">\n")
}

func (b *docWriter) optElem(d int, name, text string) {
	if text != "" {
		b.elem(d, name, text)
	}
}

func (b *docWriter) plain(d int, name, text string) {
	b.open(d, name)
	b.elem(d+1, "pskc:PlainValue", text)
	b.close(d, name)
}

func (b *docWriter) cipher(d int, uri string, data []byte) {
	b.empty(d, `xenc:EncryptionMethod Algorithm="`+uri+`"`)
	b.open(d, "xenc:CipherData")
	b.elem(d+1, "xenc:CipherValue", base64.StdEncoding.EncodeToString(data))
	b.close(d, "xenc:CipherData")
}

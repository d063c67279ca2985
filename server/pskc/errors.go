package pskc

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors callers branch on with errors.Is. Every error about the
// content of a document is an *Error that unwraps to one of them.
var (
	// ErrFormat: the document is not well-formed XML, is not a PSKC 1.0
	// KeyContainer, or an element holds a value of the wrong form (bad
	// base64, a non-integer counter, a duplicated element, a missing
	// secret).
	ErrFormat = errors.New("malformed PSKC document")
	// ErrUnsupported: the document uses a feature this package does not
	// implement or refuses on purpose: another algorithm than TOTP/HOTP,
	// another encryption than AES-CBC, asymmetric key protection (RFC 6030
	// §6.3), a key policy it does not understand (RFC 6030 §5), an unknown
	// MAC or PRF algorithm.
	ErrUnsupported = errors.New("unsupported PSKC feature")
	// ErrMAC: the integrity check of an encrypted value failed hard: the
	// ValueMAC does not match, is missing or malformed, or the document
	// encrypts values without declaring a MACMethod with a MACKey
	// (RFC 6030 §6.1.1).
	ErrMAC = errors.New("MAC check failed")
	// ErrDecrypt: an encrypted value whose MAC checked did not decrypt (bad
	// length or padding), or a key has the wrong size for the declared
	// encryption algorithm.
	ErrDecrypt = errors.New("decryption failed")
	// ErrNoKey: the KeySource has no pre-shared key of the name the
	// document gives, or no passphrase, or Write was given neither.
	ErrNoKey = errors.New("no decryption key")
	// ErrPlaintext: a secret is sent in the clear (PlainValue) and the
	// caller did not set Options.AllowPlain.
	ErrPlaintext = errors.New("plaintext secret not allowed")
	// ErrTooLarge: the document is larger than Options.MaxBytes or holds
	// more key packages than Options.MaxKeys.
	ErrTooLarge = errors.New("PSKC document too large")
)

// Error is a problem with one PSKC document, located as precisely as this
// package can: the key package (by position, serial number and key Id) and
// the element or attribute at fault. It unwraps to one of the sentinel
// errors above.
type Error struct {
	// Package is the 1-based position of the KeyPackage concerned, or 0
	// when the problem concerns the whole container (EncryptionKey,
	// MACMethod, XML syntax, size).
	Package int
	// Serial is DeviceInfo/SerialNo of that key package, when known.
	Serial string
	// KeyID is the Id attribute of its Key, when known.
	KeyID string
	// Field names the element or attribute at fault, relative to the
	// KeyPackage (or to the KeyContainer when Package is 0), such as
	// "Key/Data/Secret/ValueMAC".
	Field string
	// Err wraps one of the sentinel errors, with detail.
	Err error
}

// Error returns "pskc: key package N (serial "S", key "K"): Field: reason".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pskc: ")
	if e.Package > 0 {
		b.WriteString("key package ")
		b.WriteString(strconv.Itoa(e.Package))
		var ids []string
		if e.Serial != "" {
			ids = append(ids, "serial "+strconv.Quote(e.Serial))
		}
		if e.KeyID != "" {
			ids = append(ids, "key "+strconv.Quote(e.KeyID))
		}
		if len(ids) > 0 {
			b.WriteString(" (" + strings.Join(ids, ", ") + ")")
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("error")
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

var _ error = (*Error)(nil)

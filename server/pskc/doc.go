// Package pskc imports and exports OTP secrets of code devices (code
// displays and audio code readers) as Portable Symmetric Key Container
// documents, PSKC (RFC 6030).
//
// Where it sits: a provisioning station reads each device's secret over
// CDP/1 (§4.2 PROVISION, docs/cdp1.md), writes the batch as one PSKC document with
// Write, and the server imports it with Parse (DESIGN §5), then seals each
// secret at rest (server/secrets) under the device's serial number. The
// package is pure: it reads from an io.Reader and writes to an io.Writer,
// and takes randomness from an injectable io.Reader.
//
// What it implements:
//   - RFC 6030 §4 and §4.1: KeyContainer (Version "1.0"), KeyPackage,
//     DeviceInfo (Manufacturer, SerialNo, Model), Key (Id, Algorithm),
//     AlgorithmParameters (Suite for the HMAC hash, ResponseFormat with
//     DECIMAL digits), Data (Secret, Counter, Time, TimeInterval, TimeDrift).
//     Algorithms: HOTP (urn:ietf:params:xml:ns:keyprov:pskc:hotp, RFC 6030
//     §10.1) and TOTP (urn:ietf:params:xml:ns:keyprov:pskc:totp, from the
//     PSKC algorithm profiles draft).
//   - RFC 6030 §4.2: values as PlainValue or EncryptedValue with ValueMAC.
//     Only the Secret may be encrypted; a PlainValue secret is refused unless
//     Options.AllowPlain is set.
//   - RFC 6030 §5: Policy with StartDate, ExpiryDate and KeyUsage "OTP".
//     Any other policy element (PINPolicy, NumberOfTransactions, ...) makes
//     the document fail, since §5 forbids using a key whose policy is not
//     understood.
//   - RFC 6030 §6.1: pre-shared keys named by ds:KeyName, with
//     aes128-cbc, aes192-cbc and aes256-cbc from XML Encryption (the IV is
//     the first block of the CipherValue; padding as XML Encryption §5.2,
//     whose last byte counts 1 to 16 padding bytes).
//   - RFC 6030 §6.1.1: MACMethod hmac-sha1, hmac-sha256, hmac-sha384 or
//     hmac-sha512 with an encrypted MACKey; a ValueMAC over IV||ciphertext
//     of every EncryptedValue.
//   - RFC 6030 §6.2: PBKDF2 (PKCS #5 v2.0) key derivation with a specified
//     salt, IterationCount, KeyLength and PRF (HMAC-SHA1 by default).
//
// Not implemented (the document fails with ErrUnsupported): asymmetric key
// protection (§6.3), key wrap algorithms, encrypted values other than the
// Secret, check digits and non-decimal response formats. Digital
// signatures (§7) are not verified; integrity comes from the MACs.
//
// # MAC checking fails hard
//
// Parse refuses an encrypted value without a ValueMAC, with a wrong one,
// or in a document without a MACMethod and MACKey, and refuses unknown MAC
// algorithms. It compares MACs in constant time and checks them before it
// decrypts. The MACKey itself is not authenticated by RFC 6030; when it
// decrypts to bad padding, Parse goes on with the raw bytes, so that a
// wrong key or an altered MACKey shows as ErrMAC on the first value rather
// than as a padding error (no padding oracle through the error kind). A
// CipherValue that occurs twice in one document is refused, since the
// MAC does not bind a secret to its key package. Still, report import
// failures to an untrusted client without the detail.
//
// # All or nothing
//
// A document is imported whole or not at all: when any key package fails,
// Parse returns nil and an *Error naming the package (position, serial
// number, key Id) and the field, and wipes the secrets it decrypted.
//
// # Hostile input
//
// Parse reads at most Options.MaxBytes (4 MiB) and Options.MaxKeys
// (10,000) key packages, refuses DOCTYPE and every other <!...>
// declaration outright (so no entity of any kind), accepts UTF-8 only,
// bounds the nesting depth, the attributes per element and the PBKDF2
// iteration count, and never panics.
//
// # Secrets
//
// Key.Secret is the plaintext secret, in memory only. Key never prints it
// (String, Format, LogValue redact it; encoding/json skips it); Key.Wipe
// and Container.Wipe overwrite it when the caller is done.
package pskc

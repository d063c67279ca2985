package webauthn

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/authbench/authbench/device/ctap2"
)

// Sizes that bound an attestation object.
const (
	// MaxAttestationObject bounds the attestation object a relying party
	// reads (a chip's is under 1 KiB; a 1023-byte credential ID and a
	// four-certificate chain still fit).
	MaxAttestationObject = 16 << 10
	maxCertificate       = 4 << 10
	maxChain             = 4
)

// Attestation statement formats (WebAuthn Level 3 §8) that chips of this
// project return and the relying party accepts.
const (
	FormatPacked  = ctap2.FormatPacked  // §8.2
	FormatFIDOU2F = ctap2.FormatFIDOU2F // §8.6
	FormatNone    = ctap2.FormatNone    // §8.7
)

// AttestationObject is the attestation object (WebAuthn Level 3 §6.5.4): a
// CBOR map of the statement format, the statement and the authenticator
// data. The statement is kept as encoded, since its members depend on the
// format.
type AttestationObject struct {
	Format   string          `cbor:"fmt"`
	AttStmt  cbor.RawMessage `cbor:"attStmt"`
	AuthData []byte          `cbor:"authData"`
}

// statement holds the members of the packed (§8.2) and fido-u2f (§8.6)
// statements.
type statement struct {
	Alg        *int64   `cbor:"alg"`
	Sig        []byte   `cbor:"sig"`
	X5C        [][]byte `cbor:"x5c"`
	ECDAAKeyID []byte   `cbor:"ecdaaKeyId"`
}

// cborDec decodes attestation objects from clients: definite lengths, no
// tags, no duplicate map keys, little nesting. Canonical order is not
// required, since a client other than a CTAP2 authenticator may re-encode
// (a browser builds the object itself for a U2F key, §8.6).
var cborDec = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   8,
		MaxArrayElements:  16,
		MaxMapPairs:       32,
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}.DecMode()
	if err != nil {
		panic(err) // constant options
	}
	return m
}()

// ParseAttestationObject decodes an attestation object (WebAuthn Level 3
// §6.5.4). It checks the structure only: fmt is a non-empty text string,
// attStmt a map and authData authenticator data that parses (§6.1, with
// ctap2.ParseAuthData); no byte may follow. The keys need not be in
// canonical order.
//
// It returns nil and an error wrapping ErrInvalid otherwise.
func ParseAttestationObject(b []byte) (*AttestationObject, error) {
	o, _, err := parseAttestationObject(b)
	return o, err
}

// parseAttestationObject is ParseAttestationObject that also returns the
// parsed authenticator data, so that the relying party parses it once.
func parseAttestationObject(b []byte) (*AttestationObject, *ctap2.AuthData, error) {
	if len(b) > MaxAttestationObject {
		return nil, nil, invalidf("the attestation object is larger than %d bytes", MaxAttestationObject)
	}
	var o AttestationObject
	if err := cborDec.Unmarshal(b, &o); err != nil {
		return nil, nil, invalidf("the attestation object is not valid CBOR: %v", err)
	}
	if o.Format == "" || len(o.AuthData) == 0 || len(o.AttStmt) == 0 || o.AttStmt[0]>>5 != 5 {
		return nil, nil, invalidf("the attestation object lacks fmt, attStmt or authData")
	}
	ad, err := ctap2.ParseAuthData(o.AuthData)
	if err != nil {
		return nil, nil, invalidf("the attestation object's authenticator data: %v", err)
	}
	return &o, ad, nil
}

// EncodeAttestationObject returns the attestation object (WebAuthn Level 3
// §6.5.4) of a chip's authenticatorMakeCredential answer (CTAP 2.1
// §6.1.2), in the CTAP2 canonical CBOR encoding form (CTAP 2.1 §8), keeping
// the statement as the chip returned it: what a client platform sends for
// a CTAP2 chip (§5.1.3).
//
// It returns an error wrapping ErrInvalid when att is nil or has no format
// or authenticator data, and one wrapping ctap2.ErrInvalidCBOR when it
// cannot be encoded.
func EncodeAttestationObject(att *ctap2.Attestation) ([]byte, error) {
	if att == nil || att.Format == "" || len(att.AuthData) == 0 {
		return nil, invalidf("an attestation without format or authenticator data")
	}
	st, err := ctap2.Marshal(att.Statement)
	if err != nil {
		return nil, fmt.Errorf("webauthn: attestation statement: %w", err)
	}
	return (&AttestationObject{Format: att.Format, AttStmt: st, AuthData: att.AuthData}).Encode()
}

// Encode returns o in the CTAP2 canonical CBOR encoding form (keys fmt,
// attStmt, authData), with the statement as it is. It returns an error
// wrapping ctap2.ErrInvalidCBOR when o.AttStmt is not canonical CBOR.
func (o *AttestationObject) Encode() ([]byte, error) {
	b, err := ctap2.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("webauthn: attestation object: %w", err)
	}
	return b, nil
}

// Attestation returns o as a chip's makeCredential answer (CTAP 2.1
// §6.1.2) with the alg, sig and x5c of its statement, for whoever edits an
// attestation before encoding it again. It returns an error wrapping
// ErrInvalid when the statement's members have the wrong types.
func (o *AttestationObject) Attestation() (*ctap2.Attestation, error) {
	st, err := o.statement()
	if err != nil {
		return nil, err
	}
	att := &ctap2.Attestation{Format: o.Format, AuthData: append([]byte(nil), o.AuthData...)}
	if st.Alg != nil {
		att.Statement.Alg = *st.Alg
	}
	att.Statement.Sig, att.Statement.X5C = st.Sig, st.X5C
	return att, nil
}

// statement decodes the members of a packed or fido-u2f statement.
func (o *AttestationObject) statement() (*statement, error) {
	var st statement
	if err := cborDec.Unmarshal(o.AttStmt, &st); err != nil {
		return nil, invalidf("the attestation statement: %v", err)
	}
	return &st, nil
}

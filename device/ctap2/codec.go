package ctap2

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// encMode writes the CTAP2 canonical CBOR encoding form (CTAP 2.1 §8).
var encMode = func() cbor.EncMode {
	m, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err) // constant options; cannot happen
	}
	return m
}()

// decMode decodes strictly: no duplicate keys, no indefinite lengths, no tags,
// no bytes after the item, exact (case-sensitive) field names. Map keys that a
// struct does not know are ignored, as CTAP 2.1 §6 asks of authenticators for
// forward compatibility; a known key with a value of the wrong type is an
// error.
var decMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   maxNesting,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err) // constant options; cannot happen
	}
	return m
}()

// Marshal encodes v in the CTAP2 canonical CBOR encoding form (CTAP 2.1 §8)
// with github.com/fxamacker/cbor/v2 and its CTAP2EncOptions. Raw values
// (cbor.RawMessage) inside v must be canonical too.
//
// It returns an error wrapping ErrInvalidCBOR when v cannot be encoded or the
// result is not canonical.
func Marshal(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCBOR, err)
	}
	if err := CheckCanonical(b); err != nil {
		return nil, err
	}
	return b, nil
}

// Unmarshal decodes b into v the way this package decodes CTAP messages: b
// must be exactly one item in the CTAP2 canonical CBOR encoding form (CTAP
// 2.1 §8 says decoders SHOULD reject anything else), without null or
// undefined; unknown map keys are ignored.
//
// It returns an error wrapping ErrInvalidCBOR for malformed or non-canonical
// input and ErrCBORUnexpectedType when a value has the wrong type for v.
func Unmarshal(b []byte, v any) error {
	s := scanner{b: b, canonical: true, noNull: true}
	if _, err := s.one(); err != nil {
		return err
	}
	return unmarshal(b, v)
}

// unmarshal runs the decoder on input the scanner has already checked.
func unmarshal(b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		var te *cbor.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%w: %v", ErrCBORUnexpectedType, err)
		}
		return fmt.Errorf("%w: %v", ErrInvalidCBOR, err)
	}
	return nil
}

// param names a top-level key of a message for error messages.
type param struct {
	key  uint64
	name string
}

// decodeMessage decodes a CTAP message body (a map with integer keys) into v
// and checks that the required keys are present.
func decodeMessage(what string, b []byte, v any, required ...param) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: %s: no parameters", ErrMissingParameter, what)
	}
	keys, err := messageKeys(b)
	if err != nil {
		return fmt.Errorf("%w (%s)", err, what)
	}
	for _, p := range required {
		if keys&(1<<p.key) == 0 {
			return fmt.Errorf("%w: %s: %s (0x%02X) is missing", ErrMissingParameter, what, p.name, p.key)
		}
	}
	if err := unmarshal(b, v); err != nil {
		return fmt.Errorf("%w (%s)", err, what)
	}
	return nil
}

// encodeMessage encodes a validated message body canonically and checks that
// it decodes again (in particular that no raw extension value smuggles in a
// null or a non-canonical item).
func encodeMessage(what string, v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidCBOR, what, err)
	}
	if _, err := messageKeys(b); err != nil {
		return nil, fmt.Errorf("%w (%s)", err, what)
	}
	return b, nil
}

// validator is implemented by the message types of this package.
type validator interface{ Validate() error }

// EncodeRequest returns a CTAP2 request: the command byte cmd followed by
// params in the CTAP2 canonical CBOR encoding form (CTAP 2.1 §6, §8). A nil
// params gives the command byte alone (authenticatorGetInfo, Reset, ...).
// Params of this package's types are validated first.
//
// It returns the validation error (wrapping ErrMissingParameter,
// ErrInvalidLength, ...) or an error wrapping ErrInvalidCBOR when params
// cannot be encoded.
func EncodeRequest(cmd byte, params any) ([]byte, error) {
	if isNil(params) {
		return []byte{cmd}, nil
	}
	if v, ok := params.(validator); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	b, err := encodeMessage(CommandName(cmd), params)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+len(b))
	out[0] = cmd
	copy(out[1:], b)
	return out, nil
}

// isNil reports whether v is nil or a nil pointer of this package's types.
func isNil(v any) bool {
	switch p := v.(type) {
	case nil:
		return true
	case *MakeCredentialRequest:
		return p == nil
	case *GetAssertionRequest:
		return p == nil
	}
	return false
}

// CommandName returns the name of an authenticator API command (CTAP 2.1 §6),
// such as "authenticatorGetAssertion", or "command 0x42" for others.
func CommandName(cmd byte) string {
	switch cmd {
	case CmdMakeCredential:
		return "authenticatorMakeCredential"
	case CmdGetAssertion:
		return "authenticatorGetAssertion"
	case CmdGetInfo:
		return "authenticatorGetInfo"
	case CmdClientPIN:
		return "authenticatorClientPIN"
	case CmdReset:
		return "authenticatorReset"
	case CmdGetNextAssertion:
		return "authenticatorGetNextAssertion"
	case CmdSelection:
		return "authenticatorSelection"
	}
	return fmt.Sprintf("command 0x%02X", cmd)
}

// Decoders and encoders of the message bodies. Each body is the CBOR map that
// follows the command byte of a request or the status byte of a response.

// DecodeMakeCredentialRequest decodes the parameters of
// authenticatorMakeCredential (CTAP 2.1 §6.1) and validates them.
//
// It returns an error wrapping ErrInvalidCBOR (malformed or non-canonical),
// ErrCBORUnexpectedType (a value of the wrong type), ErrMissingParameter or
// ErrInvalidLength (see MakeCredentialRequest.Validate).
func DecodeMakeCredentialRequest(b []byte) (*MakeCredentialRequest, error) {
	var r MakeCredentialRequest
	if err := decodeMessage("authenticatorMakeCredential", b, &r,
		param{1, "clientDataHash"}, param{2, "rp"}, param{3, "user"}, param{4, "pubKeyCredParams"}); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// EncodeMakeCredentialRequest validates r and encodes it canonically
// (CTAP 2.1 §6.1), without the command byte.
//
// It returns the error of r.Validate or one wrapping ErrInvalidCBOR.
func EncodeMakeCredentialRequest(r *MakeCredentialRequest) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return encodeMessage("authenticatorMakeCredential", r)
}

// DecodeGetAssertionRequest decodes the parameters of
// authenticatorGetAssertion (CTAP 2.1 §6.2) and validates them.
//
// It returns an error wrapping ErrInvalidCBOR, ErrCBORUnexpectedType,
// ErrMissingParameter or ErrInvalidLength.
func DecodeGetAssertionRequest(b []byte) (*GetAssertionRequest, error) {
	var r GetAssertionRequest
	if err := decodeMessage("authenticatorGetAssertion", b, &r,
		param{1, "rpId"}, param{2, "clientDataHash"}); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// EncodeGetAssertionRequest validates r and encodes it canonically
// (CTAP 2.1 §6.2), without the command byte.
//
// It returns the error of r.Validate or one wrapping ErrInvalidCBOR.
func EncodeGetAssertionRequest(r *GetAssertionRequest) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return encodeMessage("authenticatorGetAssertion", r)
}

// DecodeInfo decodes and validates an authenticatorGetInfo response body
// (CTAP 2.1 §6.4).
//
// It returns an error wrapping ErrInvalidCBOR, ErrCBORUnexpectedType,
// ErrMissingParameter or ErrInvalidLength.
func DecodeInfo(b []byte) (*Info, error) {
	var r Info
	if err := decodeMessage("authenticatorGetInfo response", b, &r,
		param{1, "versions"}, param{3, "aaguid"}); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// EncodeInfo validates r and encodes it canonically (CTAP 2.1 §6.4), without
// the status byte.
//
// It returns the error of r.Validate or one wrapping ErrInvalidCBOR.
func EncodeInfo(r *Info) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return encodeMessage("authenticatorGetInfo response", r)
}

// DecodeAttestation decodes and validates an authenticatorMakeCredential
// response body (CTAP 2.1 §6.1.2).
//
// It returns an error wrapping ErrInvalidCBOR, ErrCBORUnexpectedType,
// ErrMissingParameter, or one of the errors of Attestation.Validate.
func DecodeAttestation(b []byte) (*Attestation, error) {
	var r Attestation
	if err := decodeMessage("authenticatorMakeCredential response", b, &r,
		param{1, "fmt"}, param{2, "authData"}, param{3, "attStmt"}); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// EncodeAttestation validates r and encodes it canonically (CTAP 2.1 §6.1.2),
// without the status byte.
//
// It returns the error of r.Validate or one wrapping ErrInvalidCBOR.
func EncodeAttestation(r *Attestation) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return encodeMessage("authenticatorMakeCredential response", r)
}

// DecodeAssertion decodes and validates an authenticatorGetAssertion or
// authenticatorGetNextAssertion response body (CTAP 2.1 §6.2.2).
//
// It returns an error wrapping ErrInvalidCBOR, ErrCBORUnexpectedType,
// ErrMissingParameter, or one of the errors of Assertion.Validate.
func DecodeAssertion(b []byte) (*Assertion, error) {
	var r Assertion
	if err := decodeMessage("authenticatorGetAssertion response", b, &r,
		param{2, "authData"}, param{3, "signature"}); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// EncodeAssertion validates r and encodes it canonically (CTAP 2.1 §6.2.2),
// without the status byte.
//
// It returns the error of r.Validate or one wrapping ErrInvalidCBOR.
func EncodeAssertion(r *Assertion) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return encodeMessage("authenticatorGetAssertion response", r)
}

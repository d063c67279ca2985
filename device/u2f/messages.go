package u2f

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"fmt"

	"github.com/authbench/authbench/device/apdu"
)

// Instruction bytes of U2F requests (Raw Message Formats §4.1, §5.1, §6.1;
// CLA is always 00).
const (
	InsRegister     byte = 0x01 // U2F_REGISTER
	InsAuthenticate byte = 0x02 // U2F_AUTHENTICATE
	InsVersion      byte = 0x03 // U2F_VERSION
)

// Control bytes of an authenticate request, sent in P1 (§5.1; v1.2 added
// 0x08).
const (
	ControlEnforcePresence     byte = 0x03 // enforce-user-presence-and-sign
	ControlCheckOnly           byte = 0x07 // check-only: is the key handle ours?
	ControlDontEnforcePresence byte = 0x08 // dont-enforce-user-presence-and-sign
)

// Version is the only version string U2F_VERSION answers (§6.1).
const Version = "U2F_V2"

// Sizes of message fields.
const (
	ParamLen        = 32  // challenge and application parameters (SHA-256)
	PublicKeyLen    = 65  // uncompressed P-256 point: 04 | X | Y
	MaxKeyHandleLen = 255 // the key handle length is one byte
	registerResLen  = 0x05
	upFlag          = 0x01 // bit 0 of the user presence byte
)

// RegisterRequest is the data of a U2F_REGISTER request (§4.1).
type RegisterRequest struct {
	Challenge   [32]byte // SHA-256 of the client data
	Application [32]byte // SHA-256 of the application identity (AppID)
}

// Encode returns the request data: challenge | application (64 bytes).
func (r *RegisterRequest) Encode() []byte {
	b := make([]byte, 0, 2*ParamLen)
	b = append(b, r.Challenge[:]...)
	return append(b, r.Application[:]...)
}

// Command returns the request as an APDU: CLA 00, INS 01, P1 P2 00 00,
// Ne 65536 (the extended Le 00 00 of §3.1).
func (r *RegisterRequest) Command() *apdu.Command {
	return &apdu.Command{INS: InsRegister, Data: r.Encode(), Ne: apdu.MaxExtendedNe}
}

// ParseRegisterRequest decodes the data of a U2F_REGISTER request. It
// returns a *FormatError unless b is exactly 64 bytes.
func ParseRegisterRequest(b []byte) (*RegisterRequest, error) {
	if len(b) != 2*ParamLen {
		return nil, formatErr("register request", "%d bytes, want %d", len(b), 2*ParamLen)
	}
	r := &RegisterRequest{}
	copy(r.Challenge[:], b[:ParamLen])
	copy(r.Application[:], b[ParamLen:])
	return r, nil
}

// RegisterResponse is the data of a successful U2F_REGISTER response
// (§4.3): 05 | public key | key handle length | key handle | attestation
// certificate | signature.
type RegisterResponse struct {
	PublicKey       [PublicKeyLen]byte // the new credential key, 04 | X | Y
	KeyHandle       []byte             // at most 255 bytes
	AttestationCert []byte             // one X.509 certificate in DER
	Signature       []byte             // ECDSA-SHA256 (DER) by the attestation key over RegisterSignedData
}

// Encode returns the response data. It returns a *FormatError when a field
// would not parse back: a public key not starting with 04, a key handle
// longer than 255 bytes, a certificate that is not exactly one DER
// SEQUENCE, or a signature that is not a DER ECDSA signature.
func (r *RegisterResponse) Encode() ([]byte, error) {
	const msg = "register response"
	if r.PublicKey[0] != 0x04 {
		return nil, formatErr(msg, "public key is not an uncompressed point")
	}
	if len(r.KeyHandle) > MaxKeyHandleLen {
		return nil, formatErr(msg, "key handle of %d bytes exceeds %d", len(r.KeyHandle), MaxKeyHandleLen)
	}
	if n, err := derElementLen(r.AttestationCert, tagSequence); err != nil || n != len(r.AttestationCert) {
		return nil, formatErr(msg, "attestation certificate is not one DER SEQUENCE")
	}
	if err := checkSignature(r.Signature); err != nil {
		return nil, formatErr(msg, "%v", err)
	}
	b := make([]byte, 0, 1+PublicKeyLen+1+len(r.KeyHandle)+len(r.AttestationCert)+len(r.Signature))
	b = append(b, registerResLen)
	b = append(b, r.PublicKey[:]...)
	b = append(b, byte(len(r.KeyHandle)))
	b = append(b, r.KeyHandle...)
	b = append(b, r.AttestationCert...)
	return append(b, r.Signature...), nil
}

// ParseRegisterResponse decodes the data of a successful U2F_REGISTER
// response (without SW1 SW2). The certificate's length is read from its DER
// header; what follows it must be exactly one DER ECDSA signature. It
// returns a *FormatError when b does not have that shape. It does not check
// the signature; see Verify.
func ParseRegisterResponse(b []byte) (*RegisterResponse, error) {
	const msg = "register response"
	if len(b) < 1+PublicKeyLen+1 {
		return nil, formatErr(msg, "%d bytes is too short", len(b))
	}
	if b[0] != registerResLen {
		return nil, formatErr(msg, "reserved byte is %02X, want 05", b[0])
	}
	if b[1] != 0x04 {
		return nil, formatErr(msg, "public key is not an uncompressed point")
	}
	r := &RegisterResponse{}
	copy(r.PublicKey[:], b[1:1+PublicKeyLen])
	rest := b[1+PublicKeyLen:]
	khLen := int(rest[0])
	rest = rest[1:]
	if len(rest) < khLen {
		return nil, formatErr(msg, "key handle length %d exceeds the %d bytes left", khLen, len(rest))
	}
	r.KeyHandle = append([]byte{}, rest[:khLen]...)
	rest = rest[khLen:]
	n, err := derElementLen(rest, tagSequence)
	if err != nil {
		return nil, formatErr(msg, "attestation certificate: %v", err)
	}
	r.AttestationCert = append([]byte(nil), rest[:n]...)
	rest = rest[n:]
	if err := checkSignature(rest); err != nil {
		return nil, formatErr(msg, "%v", err)
	}
	r.Signature = append([]byte(nil), rest...)
	return r, nil
}

// RegisterSignedData returns the bytes the attestation key signs in a
// registration (§4.3): 00 | application | challenge | key handle |
// public key.
func RegisterSignedData(app, challenge [32]byte, keyHandle []byte, publicKey [PublicKeyLen]byte) []byte {
	b := make([]byte, 0, 1+2*ParamLen+len(keyHandle)+PublicKeyLen)
	b = append(b, 0x00)
	b = append(b, app[:]...)
	b = append(b, challenge[:]...)
	b = append(b, keyHandle...)
	return append(b, publicKey[:]...)
}

// Key returns the credential public key. It returns a *FormatError when the
// bytes are not a point on P-256.
func (r *RegisterResponse) Key() (*ecdsa.PublicKey, error) {
	return ParsePublicKey(r.PublicKey[:])
}

// Verify checks the attestation signature of r for the given application
// and challenge parameters (§4.3) and returns the parsed attestation
// certificate. Whether that certificate is trusted is the caller's decision.
//
// It returns a *FormatError when the credential key is not a P-256 point,
// an error wrapping device.ErrProtocol when the certificate does not parse
// or holds no P-256 key, and ErrBadSignature when the signature does not
// verify.
func (r *RegisterResponse) Verify(app, challenge [32]byte) (*x509.Certificate, error) {
	if _, err := r.Key(); err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(r.AttestationCert)
	if err != nil {
		return nil, formatErr("register response", "attestation certificate: %v", err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, formatErr("register response", "attestation key is not ECDSA P-256")
	}
	if !verifySig(pub, RegisterSignedData(app, challenge, r.KeyHandle, r.PublicKey), r.Signature) {
		return nil, fmt.Errorf("%w (attestation)", ErrBadSignature)
	}
	return cert, nil
}

// AuthenticateRequest is a U2F_AUTHENTICATE request (§5.1). Control travels
// in P1; the other fields in the data.
type AuthenticateRequest struct {
	Control     byte     // ControlEnforcePresence, ControlCheckOnly or ControlDontEnforcePresence
	Challenge   [32]byte // SHA-256 of the client data
	Application [32]byte // SHA-256 of the application identity
	KeyHandle   []byte   // as returned by the registration, at most 255 bytes
}

func validControl(c byte) bool {
	return c == ControlEnforcePresence || c == ControlCheckOnly || c == ControlDontEnforcePresence
}

// Encode returns the request data: challenge | application | key handle
// length | key handle. It returns a *FormatError for an unknown control
// byte or a key handle longer than 255 bytes.
func (r *AuthenticateRequest) Encode() ([]byte, error) {
	const msg = "authenticate request"
	if !validControl(r.Control) {
		return nil, formatErr(msg, "unknown control byte %02X", r.Control)
	}
	if len(r.KeyHandle) > MaxKeyHandleLen {
		return nil, formatErr(msg, "key handle of %d bytes exceeds %d", len(r.KeyHandle), MaxKeyHandleLen)
	}
	b := make([]byte, 0, 2*ParamLen+1+len(r.KeyHandle))
	b = append(b, r.Challenge[:]...)
	b = append(b, r.Application[:]...)
	b = append(b, byte(len(r.KeyHandle)))
	return append(b, r.KeyHandle...), nil
}

// Command returns the request as an APDU: CLA 00, INS 02, P1 = Control,
// P2 00, Ne 65536. It returns the errors of Encode.
func (r *AuthenticateRequest) Command() (*apdu.Command, error) {
	data, err := r.Encode()
	if err != nil {
		return nil, err
	}
	return &apdu.Command{INS: InsAuthenticate, P1: r.Control, Data: data, Ne: apdu.MaxExtendedNe}, nil
}

// ParseAuthenticateRequest decodes a U2F_AUTHENTICATE request from its
// control byte (P1) and data. It returns a *FormatError for an unknown
// control byte or when the key handle length byte does not match the
// length of the data.
func ParseAuthenticateRequest(control byte, data []byte) (*AuthenticateRequest, error) {
	const msg = "authenticate request"
	if !validControl(control) {
		return nil, formatErr(msg, "unknown control byte %02X", control)
	}
	if len(data) < 2*ParamLen+1 {
		return nil, formatErr(msg, "%d bytes is too short", len(data))
	}
	khLen := int(data[2*ParamLen])
	if len(data) != 2*ParamLen+1+khLen {
		return nil, formatErr(msg, "key handle length %d does not match %d data bytes", khLen, len(data))
	}
	r := &AuthenticateRequest{Control: control}
	copy(r.Challenge[:], data[:ParamLen])
	copy(r.Application[:], data[ParamLen:2*ParamLen])
	r.KeyHandle = append([]byte{}, data[2*ParamLen+1:]...)
	return r, nil
}

// AuthenticateResponse is the data of a successful U2F_AUTHENTICATE
// response (§5.4): user presence | counter | signature.
type AuthenticateResponse struct {
	UserPresence byte   // bit 0 set: the user touched the authenticator
	Counter      uint32 // signature counter, big-endian on the wire
	Signature    []byte // ECDSA-SHA256 (DER) by the credential key over AuthenticateSignedData
}

// UserPresent reports whether bit 0 of the user presence byte is set.
func (r *AuthenticateResponse) UserPresent() bool { return r.UserPresence&upFlag != 0 }

// Encode returns the response data. It returns a *FormatError when the
// signature is not a DER ECDSA signature.
func (r *AuthenticateResponse) Encode() ([]byte, error) {
	if err := checkSignature(r.Signature); err != nil {
		return nil, formatErr("authenticate response", "%v", err)
	}
	b := make([]byte, 0, 5+len(r.Signature))
	b = append(b, r.UserPresence)
	b = binary.BigEndian.AppendUint32(b, r.Counter)
	return append(b, r.Signature...), nil
}

// ParseAuthenticateResponse decodes the data of a successful
// U2F_AUTHENTICATE response (without SW1 SW2). It returns a *FormatError
// unless b is the presence byte, four counter bytes and exactly one DER
// ECDSA signature. It does not check the signature; see Verify.
func ParseAuthenticateResponse(b []byte) (*AuthenticateResponse, error) {
	if len(b) < 5 {
		return nil, formatErr("authenticate response", "%d bytes is too short", len(b))
	}
	if err := checkSignature(b[5:]); err != nil {
		return nil, formatErr("authenticate response", "%v", err)
	}
	return &AuthenticateResponse{
		UserPresence: b[0],
		Counter:      binary.BigEndian.Uint32(b[1:5]),
		Signature:    append([]byte(nil), b[5:]...),
	}, nil
}

// AuthenticateSignedData returns the bytes the credential key signs in an
// authentication (§5.4): application | user presence | counter |
// challenge.
func AuthenticateSignedData(app [32]byte, userPresence byte, counter uint32, challenge [32]byte) []byte {
	b := make([]byte, 0, 2*ParamLen+5)
	b = append(b, app[:]...)
	b = append(b, userPresence)
	b = binary.BigEndian.AppendUint32(b, counter)
	return append(b, challenge[:]...)
}

// Verify checks the signature of r with the credential key pub for the
// given application and challenge parameters (§5.4). It does not judge the
// presence bit or the counter; the caller does. It returns ErrBadSignature
// when the signature does not verify or pub is not a P-256 key.
func (r *AuthenticateResponse) Verify(pub *ecdsa.PublicKey, app, challenge [32]byte) error {
	if pub == nil || pub.Curve != elliptic.P256() ||
		!verifySig(pub, AuthenticateSignedData(app, r.UserPresence, r.Counter, challenge), r.Signature) {
		return fmt.Errorf("%w (assertion)", ErrBadSignature)
	}
	return nil
}

// ParsePublicKey decodes a 65-byte uncompressed P-256 point, as found in a
// RegisterResponse. It returns a *FormatError when b is not a point on the
// curve.
func ParsePublicKey(b []byte) (*ecdsa.PublicKey, error) {
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
	if err != nil {
		return nil, formatErr("public key", "%v", err)
	}
	return pub, nil
}

func verifySig(pub *ecdsa.PublicKey, signed, sig []byte) bool {
	h := sha256.Sum256(signed)
	return ecdsa.VerifyASN1(pub, h[:], sig)
}

// DER parsing: just enough to find where the certificate ends and to check
// the shape of an ECDSA signature (SEQUENCE { INTEGER r, INTEGER s }).

const (
	tagInteger  = 0x02
	tagSequence = 0x30
)

// derElementLen returns the total length (header and contents) of the DER
// element at the start of b, which must have the given tag and a minimal
// definite length of at most three length bytes.
func derElementLen(b []byte, tag byte) (int, error) {
	if len(b) < 2 {
		return 0, fmt.Errorf("DER element truncated (%d bytes)", len(b))
	}
	if b[0] != tag {
		return 0, fmt.Errorf("DER tag %02X, want %02X", b[0], tag)
	}
	n, hdr := int(b[1]), 2
	if n >= 0x80 {
		k := n & 0x7f
		if k == 0 || k > 3 {
			return 0, fmt.Errorf("unsupported DER length form %02X", b[1])
		}
		if len(b) < 2+k {
			return 0, fmt.Errorf("DER length truncated")
		}
		if b[2] == 0 {
			return 0, fmt.Errorf("non-minimal DER length")
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		if n < 0x80 {
			return 0, fmt.Errorf("non-minimal DER length")
		}
		hdr += k
	}
	if len(b)-hdr < n {
		return 0, fmt.Errorf("DER element of %d bytes exceeds the %d bytes left", n, len(b)-hdr)
	}
	return hdr + n, nil
}

// checkSignature checks that b is exactly one DER SEQUENCE holding exactly
// two non-empty INTEGERs.
func checkSignature(b []byte) error {
	n, err := derElementLen(b, tagSequence)
	if err != nil {
		return fmt.Errorf("signature: %v", err)
	}
	if n != len(b) {
		return fmt.Errorf("signature: %d bytes after the DER signature", len(b)-n)
	}
	body := b[n-contentLen(b):]
	for i := 0; i < 2; i++ {
		m, err := derElementLen(body, tagInteger)
		if err != nil {
			return fmt.Errorf("signature: %v", err)
		}
		if m == 2 { // empty INTEGER
			return fmt.Errorf("signature: empty INTEGER")
		}
		body = body[m:]
	}
	if len(body) != 0 {
		return fmt.Errorf("signature: extra bytes in the DER SEQUENCE")
	}
	return nil
}

// contentLen returns the contents length of a DER element already checked
// by derElementLen.
func contentLen(b []byte) int {
	if b[1] < 0x80 {
		return int(b[1])
	}
	n := 0
	for _, c := range b[2 : 2+int(b[1]&0x7f)] {
		n = n<<8 | int(c)
	}
	return n
}

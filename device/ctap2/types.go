package ctap2

import "github.com/fxamacker/cbor/v2"

// Command bytes of the authenticator API (CTAP 2.1 §6, "Authenticator API").
const (
	CmdMakeCredential   byte = 0x01
	CmdGetAssertion     byte = 0x02
	CmdGetInfo          byte = 0x04
	CmdClientPIN        byte = 0x06
	CmdReset            byte = 0x07
	CmdGetNextAssertion byte = 0x08
	CmdSelection        byte = 0x0B
)

// Credential types and algorithms (WebAuthn §5.8.2, COSE IANA registry).
const (
	CredentialTypePublicKey = "public-key"
	AlgES256                = -7
)

// RPEntity is PublicKeyCredentialRpEntity (WebAuthn §5.4.2).
type RPEntity struct {
	ID   string `cbor:"id"`
	Name string `cbor:"name,omitempty"`
}

// UserEntity is PublicKeyCredentialUserEntity (WebAuthn §5.4.3).
type UserEntity struct {
	ID          []byte `cbor:"id"`
	Name        string `cbor:"name,omitempty"`
	DisplayName string `cbor:"displayName,omitempty"`
}

// CredentialParameters is PublicKeyCredentialParameters (WebAuthn §5.3).
type CredentialParameters struct {
	Type string `cbor:"type"`
	Alg  int64  `cbor:"alg"`
}

// CredentialDescriptor is PublicKeyCredentialDescriptor (WebAuthn §5.8.3).
type CredentialDescriptor struct {
	Type       string   `cbor:"type"`
	ID         []byte   `cbor:"id"`
	Transports []string `cbor:"transports,omitempty"`
}

// Info is the authenticatorGetInfo response (CTAP 2.1 §6.4).
type Info struct {
	Versions                 []string               `cbor:"1,keyasint"`
	Extensions               []string               `cbor:"2,keyasint,omitempty"`
	AAGUID                   []byte                 `cbor:"3,keyasint"` // 16 bytes
	Options                  map[string]bool        `cbor:"4,keyasint,omitempty"`
	MaxMsgSize               uint64                 `cbor:"5,keyasint,omitempty"`
	PINUVAuthProtocols       []uint64               `cbor:"6,keyasint,omitempty"`
	MaxCredentialCountInList uint64                 `cbor:"7,keyasint,omitempty"`
	MaxCredentialIDLength    uint64                 `cbor:"8,keyasint,omitempty"`
	Transports               []string               `cbor:"9,keyasint,omitempty"`
	Algorithms               []CredentialParameters `cbor:"10,keyasint,omitempty"`
	FirmwareVersion          uint64                 `cbor:"14,keyasint,omitempty"`
}

// MakeCredentialRequest holds the parameters of authenticatorMakeCredential
// (CTAP 2.1 §6.1).
type MakeCredentialRequest struct {
	ClientDataHash    []byte                     `cbor:"1,keyasint"` // 32 bytes
	RP                RPEntity                   `cbor:"2,keyasint"`
	User              UserEntity                 `cbor:"3,keyasint"`
	PubKeyCredParams  []CredentialParameters     `cbor:"4,keyasint"`
	ExcludeList       []CredentialDescriptor     `cbor:"5,keyasint,omitempty"`
	Extensions        map[string]cbor.RawMessage `cbor:"6,keyasint,omitempty"`
	Options           map[string]bool            `cbor:"7,keyasint,omitempty"` // "rk", "up", "uv"
	PINUVAuthParam    []byte                     `cbor:"8,keyasint,omitempty"`
	PINUVAuthProtocol uint64                     `cbor:"9,keyasint,omitempty"`
}

// AttestationStatement is the attStmt of the "packed" format (WebAuthn §8.2);
// the "none" format has an empty statement.
type AttestationStatement struct {
	Alg int64    `cbor:"alg,omitempty"`
	Sig []byte   `cbor:"sig,omitempty"`
	X5C [][]byte `cbor:"x5c,omitempty"`
}

// Attestation is the authenticatorMakeCredential response (CTAP 2.1 §6.1.2).
type Attestation struct {
	Format    string               `cbor:"1,keyasint"` // "packed", "none", "fido-u2f"
	AuthData  []byte               `cbor:"2,keyasint"`
	Statement AttestationStatement `cbor:"3,keyasint"`
}

// GetAssertionRequest holds the parameters of authenticatorGetAssertion
// (CTAP 2.1 §6.2).
type GetAssertionRequest struct {
	RPID              string                     `cbor:"1,keyasint"`
	ClientDataHash    []byte                     `cbor:"2,keyasint"` // 32 bytes
	AllowList         []CredentialDescriptor     `cbor:"3,keyasint,omitempty"`
	Extensions        map[string]cbor.RawMessage `cbor:"4,keyasint,omitempty"`
	Options           map[string]bool            `cbor:"5,keyasint,omitempty"` // "up", "uv"
	PINUVAuthParam    []byte                     `cbor:"6,keyasint,omitempty"`
	PINUVAuthProtocol uint64                     `cbor:"7,keyasint,omitempty"`
}

// Assertion is the authenticatorGetAssertion / authenticatorGetNextAssertion
// response (CTAP 2.1 §6.2.2).
type Assertion struct {
	Credential          *CredentialDescriptor `cbor:"1,keyasint,omitempty"`
	AuthData            []byte                `cbor:"2,keyasint"`
	Signature           []byte                `cbor:"3,keyasint"`
	User                *UserEntity           `cbor:"4,keyasint,omitempty"`
	NumberOfCredentials uint64                `cbor:"5,keyasint,omitempty"`
	UserSelected        bool                  `cbor:"6,keyasint,omitempty"`
}

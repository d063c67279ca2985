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

// Info is the authenticatorGetInfo response (CTAP 2.1 §6.4). Keys this type
// does not list are ignored when decoding.
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

	// CTAP 2.1 additions, mostly about PINs and large blobs.
	MaxSerializedLargeBlobArray      uint64            `cbor:"11,keyasint,omitempty"`
	ForcePINChange                   bool              `cbor:"12,keyasint,omitempty"`
	MinPINLength                     uint64            `cbor:"13,keyasint,omitempty"`
	MaxCredBlobLength                uint64            `cbor:"15,keyasint,omitempty"`
	MaxRPIDsForSetMinPINLength       uint64            `cbor:"16,keyasint,omitempty"`
	PreferredPlatformUVAttempts      uint64            `cbor:"17,keyasint,omitempty"`
	UVModality                       uint64            `cbor:"18,keyasint,omitempty"`
	Certifications                   map[string]uint64 `cbor:"19,keyasint,omitempty"`
	RemainingDiscoverableCredentials *uint64           `cbor:"20,keyasint,omitempty"` // nil when not reported; 0 is a value
	VendorPrototypeConfigCommands    []uint64          `cbor:"21,keyasint,omitempty"`
}

// MakeCredentialRequest holds the parameters of authenticatorMakeCredential
// (CTAP 2.1 §6.1).
type MakeCredentialRequest struct {
	ClientDataHash   []byte                     `cbor:"1,keyasint"` // 32 bytes
	RP               RPEntity                   `cbor:"2,keyasint"`
	User             UserEntity                 `cbor:"3,keyasint"`
	PubKeyCredParams []CredentialParameters     `cbor:"4,keyasint"`
	ExcludeList      []CredentialDescriptor     `cbor:"5,keyasint,omitempty"`
	Extensions       map[string]cbor.RawMessage `cbor:"6,keyasint,omitempty"`
	Options          map[string]bool            `cbor:"7,keyasint,omitempty"` // "rk", "up", "uv"
	// PINUVAuthParam is nil when absent. A present one may be empty: a
	// zero-length pinUvAuthParam is how a platform asks for a touch to
	// pick an authenticator (CTAP 2.1 §6.1.2 step 1), and it is sent and
	// decoded as present.
	PINUVAuthParam []byte `cbor:"8,keyasint,omitzero"`
	// PINUVAuthProtocol is nil when absent; a present 0 is a value (an
	// unsupported protocol), not an absence.
	PINUVAuthProtocol *uint64 `cbor:"9,keyasint,omitempty"`
	// EnterpriseAttestation asks for enterprise attestation (1 or 2).
	EnterpriseAttestation uint64 `cbor:"10,keyasint,omitempty"`
}

// AttestationStatement is the attStmt of the "packed" (WebAuthn §8.2) and
// "fido-u2f" (§8.6) formats; the "none" format (§8.7) has an empty statement.
// Members of other formats (such as tpm's certInfo) are not kept.
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
	// EPAtt reports that enterprise attestation was returned (CTAP 2.1).
	EPAtt bool `cbor:"4,keyasint,omitempty"`
	// LargeBlobKey is the credential's largeBlobKey extension output.
	LargeBlobKey []byte `cbor:"5,keyasint,omitempty"`
}

// GetAssertionRequest holds the parameters of authenticatorGetAssertion
// (CTAP 2.1 §6.2).
type GetAssertionRequest struct {
	RPID           string                     `cbor:"1,keyasint"`
	ClientDataHash []byte                     `cbor:"2,keyasint"` // 32 bytes
	AllowList      []CredentialDescriptor     `cbor:"3,keyasint,omitempty"`
	Extensions     map[string]cbor.RawMessage `cbor:"4,keyasint,omitempty"`
	Options        map[string]bool            `cbor:"5,keyasint,omitempty"` // "up", "uv"
	// PINUVAuthParam is nil when absent; present, it may be empty (see
	// MakeCredentialRequest).
	PINUVAuthParam []byte `cbor:"6,keyasint,omitzero"`
	// PINUVAuthProtocol is nil when absent.
	PINUVAuthProtocol *uint64 `cbor:"7,keyasint,omitempty"`
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
	LargeBlobKey        []byte                `cbor:"7,keyasint,omitempty"`
}

package webauthn

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// The JSON types below are the JSON forms of WebAuthn Level 3 §5.1
// (PublicKeyCredential's toJSON, parseCreationOptionsFromJSON and
// parseRequestOptionsFromJSON): binary values are unpadded base64url
// strings (Encode), which the relying party decodes itself so that a bad
// value is reported with the name of its field.

// Credential type and ceremony types (WebAuthn Level 3 §5.8.2,
// PublicKeyCredentialType; §5.8.1, CollectedClientData.type).
const (
	TypePublicKey = "public-key"
	TypeCreate    = "webauthn.create"
	TypeGet       = "webauthn.get"
)

// COSE algorithms a chip of this project signs with (RFC 9053 §2.1, RFC 8152
// §8.2), as PublicKeyCredentialParameters.alg.
const (
	AlgES256 int64 = -7
	AlgEdDSA int64 = -8
)

// CreationOptions is PublicKeyCredentialCreationOptionsJSON (WebAuthn Level
// 3 §5.4 and §5.1.8): what a relying party sends for a registration.
type CreationOptions struct {
	Challenge              string                 `json:"challenge"`
	RP                     RPEntity               `json:"rp"`
	User                   UserEntity             `json:"user"`
	PubKeyCredParams       []CredentialParameter  `json:"pubKeyCredParams"`
	Timeout                int64                  `json:"timeout"` // milliseconds; 0 for none
	ExcludeCredentials     []CredentialDescriptor `json:"excludeCredentials"`
	Attestation            string                 `json:"attestation,omitempty"` // "none", "indirect", "direct", "enterprise"
	AuthenticatorSelection AuthenticatorSelection `json:"authenticatorSelection"`
	Hints                  []string               `json:"hints,omitempty"` // §5.4.7: "security-key", "client-device", "hybrid"
}

// RequestOptions is PublicKeyCredentialRequestOptionsJSON (WebAuthn Level 3
// §5.5 and §5.1.9): what a relying party sends for an authentication.
type RequestOptions struct {
	Challenge        string                 `json:"challenge"`
	RPID             string                 `json:"rpId"`
	AllowCredentials []CredentialDescriptor `json:"allowCredentials"`
	UserVerification string                 `json:"userVerification"` // "required", "preferred", "discouraged"
	Timeout          int64                  `json:"timeout"`          // milliseconds; 0 for none
	Hints            []string               `json:"hints,omitempty"`
}

// RPEntity is PublicKeyCredentialRpEntity (WebAuthn Level 3 §5.4.2).
type RPEntity struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// UserEntity is PublicKeyCredentialUserEntityJSON (WebAuthn Level 3
// §5.4.3); ID is the user handle, base64url.
type UserEntity struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
}

// CredentialParameter is PublicKeyCredentialParameters (WebAuthn Level 3
// §5.3).
type CredentialParameter struct {
	Type string `json:"type"`
	Alg  int64  `json:"alg"`
}

// CredentialDescriptor is PublicKeyCredentialDescriptorJSON (WebAuthn Level
// 3 §5.8.3); ID is the credential ID, base64url.
type CredentialDescriptor struct {
	Type       string   `json:"type"`
	ID         string   `json:"id"`
	Transports []string `json:"transports,omitempty"`
}

// AuthenticatorSelection is AuthenticatorSelectionCriteria (WebAuthn Level
// 3 §5.4.4).
type AuthenticatorSelection struct {
	AuthenticatorAttachment string `json:"authenticatorAttachment,omitempty"`
	ResidentKey             string `json:"residentKey,omitempty"`
	RequireResidentKey      bool   `json:"requireResidentKey,omitempty"`
	UserVerification        string `json:"userVerification,omitempty"`
}

// RegistrationResponse is RegistrationResponseJSON (WebAuthn Level 3 §5.1):
// what navigator.credentials.create() returns, as JSON.
type RegistrationResponse struct {
	ID                      string                     `json:"id"`
	RawID                   string                     `json:"rawId"`
	Type                    string                     `json:"type"`
	Response                AttestationResponse        `json:"response"`
	AuthenticatorAttachment string                     `json:"authenticatorAttachment,omitempty"`
	ClientExtensionResults  map[string]json.RawMessage `json:"clientExtensionResults"`
}

// AttestationResponse is AuthenticatorAttestationResponseJSON (WebAuthn
// Level 3 §5.2.1). The convenience members a browser adds
// (authenticatorData, publicKey, publicKeyAlgorithm) are accepted and
// ignored: the relying party reads them from the attestation object.
type AttestationResponse struct {
	ClientDataJSON     string   `json:"clientDataJSON"`
	AttestationObject  string   `json:"attestationObject"`
	Transports         []string `json:"transports,omitempty"`
	AuthenticatorData  string   `json:"authenticatorData,omitempty"`
	PublicKey          string   `json:"publicKey,omitempty"`
	PublicKeyAlgorithm int64    `json:"publicKeyAlgorithm,omitempty"`
}

// AuthenticationResponse is AuthenticationResponseJSON (WebAuthn Level 3
// §5.1): what navigator.credentials.get() returns, as JSON.
type AuthenticationResponse struct {
	ID                      string                     `json:"id"`
	RawID                   string                     `json:"rawId"`
	Type                    string                     `json:"type"`
	Response                AssertionResponse          `json:"response"`
	AuthenticatorAttachment string                     `json:"authenticatorAttachment,omitempty"`
	ClientExtensionResults  map[string]json.RawMessage `json:"clientExtensionResults"`
}

// AssertionResponse is AuthenticatorAssertionResponseJSON (WebAuthn Level 3
// §5.2.2).
type AssertionResponse struct {
	ClientDataJSON    string `json:"clientDataJSON"`
	AuthenticatorData string `json:"authenticatorData"`
	Signature         string `json:"signature"`
	UserHandle        string `json:"userHandle,omitempty"`
	AttestationObject string `json:"attestationObject,omitempty"`
}

var (
	b64       = base64.RawURLEncoding
	b64Strict = base64.RawURLEncoding.Strict() // refuses bits set after the last byte
)

// Encode returns b in unpadded base64url (RFC 4648 §5), the form of every
// binary value in WebAuthn JSON.
func Encode(b []byte) string { return b64.EncodeToString(b) }

// Decode decodes an unpadded base64url value, strictly (so that one value
// has one spelling); field names it in the error. It returns an error
// wrapping ErrInvalid when v is empty, padded, holds a line break or is not
// base64url.
func Decode(field, v string) ([]byte, error) {
	if v == "" {
		return nil, invalidf("%s is missing", field)
	}
	b, err := b64Strict.DecodeString(v)
	if err != nil || strings.ContainsAny(v, "\r\n") {
		return nil, invalidf("%s is not unpadded base64url", field)
	}
	return b, nil
}

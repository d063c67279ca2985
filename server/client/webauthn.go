package client

import (
	"encoding/json"
	"fmt"

	"github.com/authbench/authbench/device/ctap2"
)

// CreationOptions is PublicKeyCredentialCreationOptions in its JSON form
// (WebAuthn Level 3 §5.4 and §5.1.8, PublicKeyCredentialCreationOptionsJSON).
type CreationOptions struct {
	Challenge              Bytes                   `json:"challenge"`
	RP                     RPEntity                `json:"rp"`
	User                   UserEntity              `json:"user"`
	PubKeyCredParams       []CredentialParameters  `json:"pubKeyCredParams"`
	Timeout                int64                   `json:"timeout,omitempty"` // milliseconds
	ExcludeCredentials     []CredentialDescriptor  `json:"excludeCredentials,omitempty"`
	Attestation            string                  `json:"attestation,omitempty"`
	AuthenticatorSelection *AuthenticatorSelection `json:"authenticatorSelection,omitempty"`
}

// RequestOptions is PublicKeyCredentialRequestOptions in its JSON form
// (WebAuthn Level 3 §5.5 and §5.1.9).
type RequestOptions struct {
	Challenge        Bytes                  `json:"challenge"`
	Timeout          int64                  `json:"timeout,omitempty"` // milliseconds
	RPID             string                 `json:"rpId"`
	AllowCredentials []CredentialDescriptor `json:"allowCredentials,omitempty"`
	UserVerification string                 `json:"userVerification,omitempty"`
}

// RPEntity is PublicKeyCredentialRpEntity (WebAuthn §5.4.2).
type RPEntity struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// UserEntity is PublicKeyCredentialUserEntityJSON (WebAuthn §5.4.3): ID is
// the user handle.
type UserEntity struct {
	ID          Bytes  `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
}

// CredentialParameters is PublicKeyCredentialParameters (WebAuthn §5.3).
type CredentialParameters struct {
	Type string `json:"type"`
	Alg  int64  `json:"alg"`
}

// CredentialDescriptor is PublicKeyCredentialDescriptorJSON (WebAuthn
// §5.8.3).
type CredentialDescriptor struct {
	Type       string   `json:"type"`
	ID         Bytes    `json:"id"`
	Transports []string `json:"transports,omitempty"`
}

// AuthenticatorSelection is AuthenticatorSelectionCriteria (WebAuthn
// §5.4.4).
type AuthenticatorSelection struct {
	AuthenticatorAttachment string `json:"authenticatorAttachment,omitempty"`
	ResidentKey             string `json:"residentKey,omitempty"`
	RequireResidentKey      bool   `json:"requireResidentKey,omitempty"`
	UserVerification        string `json:"userVerification,omitempty"`
}

// RegistrationResponse is RegistrationResponseJSON (WebAuthn Level 3
// §5.1, PublicKeyCredential's toJSON for a new credential), with only the
// members the API contract names.
type RegistrationResponse struct {
	ID                     string                           `json:"id"`
	RawID                  Bytes                            `json:"rawId"`
	Type                   string                           `json:"type"`
	Response               AuthenticatorAttestationResponse `json:"response"`
	ClientExtensionResults map[string]any                   `json:"clientExtensionResults"`
}

// AuthenticatorAttestationResponse is AuthenticatorAttestationResponseJSON
// (WebAuthn §5.2.1).
type AuthenticatorAttestationResponse struct {
	ClientDataJSON    Bytes    `json:"clientDataJSON"`
	AttestationObject Bytes    `json:"attestationObject"`
	Transports        []string `json:"transports,omitempty"`
}

// AuthenticationResponse is AuthenticationResponseJSON (WebAuthn Level 3
// §5.1, PublicKeyCredential's toJSON for an assertion).
type AuthenticationResponse struct {
	ID                     string                         `json:"id"`
	RawID                  Bytes                          `json:"rawId"`
	Type                   string                         `json:"type"`
	Response               AuthenticatorAssertionResponse `json:"response"`
	ClientExtensionResults map[string]any                 `json:"clientExtensionResults"`
}

// AuthenticatorAssertionResponse is AuthenticatorAssertionResponseJSON
// (WebAuthn §5.2.2).
type AuthenticatorAssertionResponse struct {
	ClientDataJSON    Bytes `json:"clientDataJSON"`
	AuthenticatorData Bytes `json:"authenticatorData"`
	Signature         Bytes `json:"signature"`
	UserHandle        Bytes `json:"userHandle,omitempty"`
}

// Client data types (WebAuthn §5.8.1, CollectedClientData.type).
const (
	ClientDataCreate = "webauthn.create"
	ClientDataGet    = "webauthn.get"
)

// ClientData is CollectedClientData (WebAuthn §5.8.1). Its JSON
// serialisation puts the members in the order of §5.8.1.1 (type,
// challenge, origin, crossOrigin), which is what a browser sends.
type ClientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"` // base64url of the RP's challenge
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

// NewClientData returns the serialised client data for a ceremony of type
// typ (ClientDataCreate or ClientDataGet) with the server's challenge, as
// sent from origin (WebAuthn §5.8.1.1).
func NewClientData(typ string, challenge []byte, origin string) []byte {
	b, err := json.Marshal(ClientData{Type: typ, Challenge: Bytes(challenge).String(), Origin: origin})
	if err != nil {
		panic("client: client data: " + err.Error()) // strings and a bool only
	}
	return b
}

// attestationObject is the attestation object (WebAuthn §6.5, Figure 6):
// a CBOR map of fmt, attStmt and authData. Encoded canonically (CTAP 2.1
// §8), the keys come in the order fmt, attStmt, authData.
type attestationObject struct {
	Format    string                     `cbor:"fmt"`
	Statement ctap2.AttestationStatement `cbor:"attStmt"`
	AuthData  []byte                     `cbor:"authData"`
}

// EncodeAttestationObject returns the attestation object (WebAuthn §6.5)
// for a chip's authenticatorMakeCredential answer (CTAP 2.1 §6.1.2: fmt,
// authData and attStmt under the integer keys 1, 2, 3), keeping the
// statement as the chip returned it, in the CTAP2 canonical CBOR encoding
// form.
//
// Errors: an error wrapping ctap2.ErrInvalidCBOR when att cannot be
// encoded; an error when att is nil or has no format or authData.
func EncodeAttestationObject(att *ctap2.Attestation) ([]byte, error) {
	if att == nil || att.Format == "" || len(att.AuthData) == 0 {
		return nil, fmt.Errorf("client: attestation without format or authenticator data")
	}
	return ctap2.Marshal(attestationObject{Format: att.Format, Statement: att.Statement, AuthData: att.AuthData})
}

// DecodeAttestationObject parses an attestation object (WebAuthn §6.5)
// strictly: canonical CBOR with fmt, attStmt and authData, where authData
// parses as authenticator data. It is EncodeAttestationObject's inverse.
//
// Errors: an error wrapping ctap2.ErrInvalidCBOR or
// ctap2.ErrInvalidAuthData.
func DecodeAttestationObject(b []byte) (*ctap2.Attestation, error) {
	var o attestationObject
	if err := ctap2.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("client: attestation object: %w", err)
	}
	if o.Format == "" || len(o.AuthData) == 0 {
		return nil, fmt.Errorf("client: attestation object: %w: fmt or authData missing", ctap2.ErrInvalidCBOR)
	}
	if _, err := ctap2.ParseAuthData(o.AuthData); err != nil {
		return nil, fmt.Errorf("client: attestation object: %w", err)
	}
	return &ctap2.Attestation{Format: o.Format, AuthData: o.AuthData, Statement: o.Statement}, nil
}

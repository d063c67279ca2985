// Package servicetest builds what a client sends to the authbench server,
// for tests and benchmarks of server/service and server/api: WebAuthn
// registration and authentication responses made by a device.Chip (a
// simulated one, typically), app signatures, and PSKC documents.
//
// It plays the browser's part of WebAuthn Level 3 (§5.1.3 and §5.1.4:
// collect the client data, hash it, call the authenticator, encode the
// result as JSON) in the simplest way; the full client is server/client.
package servicetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/pskc"
	"github.com/authbench/authbench/server/service"
)

var b64 = base64.RawURLEncoding

// ClientDataJSON returns the client data a browser would collect for a
// ceremony of type typ ("webauthn.create" or "webauthn.get") with the
// base64url challenge from the server (WebAuthn Level 3 §5.8.1).
func ClientDataJSON(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(service.ClientData{Type: typ, Challenge: challenge, Origin: origin})
	return b
}

// attestationObject is the CBOR layout of an attestation object (WebAuthn
// Level 3 §6.5.4).
type attestationObject struct {
	Fmt      string                     `cbor:"fmt"`
	AttStmt  ctap2.AttestationStatement `cbor:"attStmt"`
	AuthData []byte                     `cbor:"authData"`
}

// EncodeAttestationObject encodes a CTAP2 attestation as a WebAuthn
// attestation object, in canonical CBOR.
func EncodeAttestationObject(att *ctap2.Attestation) ([]byte, error) {
	return ctap2.Marshal(attestationObject{Fmt: att.Format, AttStmt: att.Statement, AuthData: att.AuthData})
}

// Register runs makeCredential on c for the server's creation options o
// and returns the registration response, as navigator.credentials.create()
// would. edit, when not nil, may change the attestation before it is
// encoded (to forge bad ones).
func Register(ctx context.Context, c device.Chip, origin string, o service.CreationOptions, edit func(*ctap2.Attestation)) (*service.RegistrationResponse, error) {
	uid, err := b64.DecodeString(o.User.ID)
	if err != nil {
		return nil, fmt.Errorf("servicetest: user.id: %w", err)
	}
	cd := ClientDataJSON("webauthn.create", o.Challenge, origin)
	h := sha256.Sum256(cd)
	req := &ctap2.MakeCredentialRequest{
		ClientDataHash: h[:],
		RP:             ctap2.RPEntity{ID: o.RP.ID, Name: o.RP.Name},
		User:           ctap2.UserEntity{ID: uid, Name: o.User.Name, DisplayName: o.User.DisplayName},
	}
	for _, p := range o.PubKeyCredParams {
		req.PubKeyCredParams = append(req.PubKeyCredParams, ctap2.CredentialParameters{Type: p.Type, Alg: p.Alg})
	}
	for _, x := range o.ExcludeCredentials {
		id, err := b64.DecodeString(x.ID)
		if err != nil {
			return nil, fmt.Errorf("servicetest: excludeCredentials: %w", err)
		}
		req.ExcludeList = append(req.ExcludeList, ctap2.CredentialDescriptor{Type: x.Type, ID: id})
	}
	att, err := c.MakeCredential(ctx, req)
	if err != nil {
		return nil, err
	}
	if edit != nil {
		edit(att)
	}
	ad, err := ctap2.ParseAuthData(att.AuthData)
	if err != nil {
		return nil, err
	}
	if ad.AttestedCredential == nil {
		return nil, fmt.Errorf("servicetest: the attestation holds no credential")
	}
	ao, err := EncodeAttestationObject(att)
	if err != nil {
		return nil, err
	}
	id := b64.EncodeToString(ad.AttestedCredential.CredentialID)
	return &service.RegistrationResponse{
		ID:    id,
		RawID: id,
		Type:  "public-key",
		Response: service.AttestationResponse{
			ClientDataJSON:    b64.EncodeToString(cd),
			AttestationObject: b64.EncodeToString(ao),
			Transports:        []string{"usb"},
		},
		ClientExtensionResults: map[string]json.RawMessage{},
	}, nil
}

// Assert runs getAssertion on c for the server's request options o and
// returns the authentication response, as navigator.credentials.get()
// would.
func Assert(ctx context.Context, c device.Chip, origin string, o *service.RequestOptions) (*service.AuthenticationResponse, error) {
	cd := ClientDataJSON("webauthn.get", o.Challenge, origin)
	h := sha256.Sum256(cd)
	req := &ctap2.GetAssertionRequest{RPID: o.RPID, ClientDataHash: h[:]}
	for _, x := range o.AllowCredentials {
		id, err := b64.DecodeString(x.ID)
		if err != nil {
			return nil, fmt.Errorf("servicetest: allowCredentials: %w", err)
		}
		req.AllowList = append(req.AllowList, ctap2.CredentialDescriptor{Type: x.Type, ID: id})
	}
	as, err := c.GetAssertion(ctx, req)
	if err != nil {
		return nil, err
	}
	var id []byte
	switch {
	case as.Credential != nil:
		id = as.Credential.ID
	case len(req.AllowList) == 1:
		id = req.AllowList[0].ID
	default:
		return nil, fmt.Errorf("servicetest: the assertion names no credential")
	}
	sid := b64.EncodeToString(id)
	return &service.AuthenticationResponse{
		ID:    sid,
		RawID: sid,
		Type:  "public-key",
		Response: service.AssertionResponse{
			ClientDataJSON:    b64.EncodeToString(cd),
			AuthenticatorData: b64.EncodeToString(as.AuthData),
			Signature:         b64.EncodeToString(as.Signature),
		},
		ClientExtensionResults: map[string]json.RawMessage{},
	}, nil
}

// SignChallenge returns what a MitID app sends: an ECDSA P-256 signature
// (ASN.1 DER) over SHA-256 of the base64url challenge's bytes, base64url.
func SignChallenge(key *ecdsa.PrivateKey, challenge string) (string, error) {
	raw, err := b64.DecodeString(challenge)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(raw)
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		return "", err
	}
	return b64.EncodeToString(sig), nil
}

// CodeDevice is a TOTP code device as a provisioning station knows it.
type CodeDevice struct {
	Serial string
	Secret []byte
	Digits int
	Period time.Duration
}

// TOTP returns the device's generator.
func (d CodeDevice) TOTP() *otp.TOTP {
	return &otp.TOTP{Secret: d.Secret, Digits: d.Digits, Period: d.Period}
}

// Code returns the code the device shows at t.
func (d CodeDevice) Code(t time.Time) string {
	c, _, err := d.TOTP().At(t)
	if err != nil {
		panic(err) // the test's own parameters are bad
	}
	return c
}

// PSKC writes devs as one PSKC document (RFC 6030) protected by the
// pre-shared key key, as a provisioning station would.
func PSKC(key []byte, devs ...CodeDevice) ([]byte, error) {
	keys := make([]pskc.Key, 0, len(devs))
	for i, d := range devs {
		keys = append(keys, pskc.Key{
			Serial:       d.Serial,
			Manufacturer: "authbench",
			ID:           fmt.Sprintf("key-%d", i+1),
			Algorithm:    pskc.TOTP,
			Digits:       d.Digits,
			Period:       d.Period,
			Secret:       d.Secret,
		})
	}
	var buf bytes.Buffer
	if err := pskc.Write(&buf, keys, pskc.EncryptOptions{Key: key}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

package webauthn

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
)

// Create plays the client platform's part of navigator.credentials.create()
// (WebAuthn Level 3 §5.1.3) with a chip: it builds the client data of opts'
// challenge as sent from origin (§5.8.1.1), asks the chip for a credential
// (CTAP 2.1 §6.1 authenticatorMakeCredential) with the RP, user, algorithms
// and exclude list of opts (and rk when a resident key is required), and
// returns RegistrationResponseJSON with the attestation object in the CTAP2
// canonical CBOR form. It does not bound the chip call: ctx does (and
// carries keepalives, ctap2.WithKeepalive).
//
// Errors: an *Error wrapping ErrInvalid for options without a challenge or
// with a challenge, user ID or excluded credential ID that is not base64url;
// the chip's error as it is (a *ctap2.StatusError such as
// ctap2.ErrCredentialExcluded when the chip holds an excluded credential,
// ctap2.ErrOperationDenied when the touch was refused, a context error,
// device.ErrRemoved and the like); an error wrapping
// ctap2.ErrInvalidAuthData when its answer holds no credential, one
// wrapping ctap2.ErrInvalidResponse when its attestation cannot be encoded.
func Create(ctx context.Context, chip device.Chip, opts *CreationOptions, origin string) (*RegistrationResponse, error) {
	if opts == nil {
		return nil, invalidf("no creation options")
	}
	uid, err := Decode("publicKey.user.id", opts.User.ID)
	if err != nil {
		return nil, err
	}
	cd, h, exclude, err := clientPart(TypeCreate, opts.Challenge, origin, "publicKey.excludeCredentials", opts.ExcludeCredentials)
	if err != nil {
		return nil, err
	}
	req := &ctap2.MakeCredentialRequest{
		ClientDataHash: h[:],
		RP:             ctap2.RPEntity{ID: opts.RP.ID, Name: opts.RP.Name},
		User:           ctap2.UserEntity{ID: uid, Name: opts.User.Name, DisplayName: opts.User.DisplayName},
		ExcludeList:    exclude,
	}
	for _, p := range opts.PubKeyCredParams {
		if p.Type == TypePublicKey {
			req.PubKeyCredParams = append(req.PubKeyCredParams, ctap2.CredentialParameters{Type: p.Type, Alg: p.Alg})
		}
	}
	if len(opts.PubKeyCredParams) == 0 {
		// §5.4: an empty list means ES256 and RS256; chips here have no RSA.
		req.PubKeyCredParams = []ctap2.CredentialParameters{{Type: TypePublicKey, Alg: AlgES256}}
	}
	if s := opts.AuthenticatorSelection; s.ResidentKey == "required" || s.RequireResidentKey {
		req.Options = map[string]bool{"rk": true}
	}
	att, err := chip.MakeCredential(ctx, req)
	if err != nil {
		return nil, err
	}
	ad, err := ctap2.ParseAuthData(att.AuthData)
	if err != nil {
		return nil, fmt.Errorf("webauthn: the chip's authenticator data: %w", err)
	}
	if ad.AttestedCredential == nil {
		return nil, fmt.Errorf("webauthn: %w: the chip returned no credential", ctap2.ErrInvalidAuthData)
	}
	obj, err := EncodeAttestationObject(att)
	if err != nil {
		return nil, fmt.Errorf("webauthn: %w: the chip's attestation: %v", ctap2.ErrInvalidResponse, err)
	}
	id := Encode(ad.AttestedCredential.CredentialID)
	return &RegistrationResponse{
		ID:    id,
		RawID: id,
		Type:  TypePublicKey,
		Response: AttestationResponse{
			ClientDataJSON:    Encode(cd),
			AttestationObject: Encode(obj),
		},
		ClientExtensionResults: map[string]json.RawMessage{},
	}, nil
}

// Get plays the client platform's part of navigator.credentials.get()
// (WebAuthn Level 3 §5.1.4) with a chip: it builds the client data of opts'
// challenge as sent from origin, asks the chip for an assertion (CTAP 2.1
// §6.2 authenticatorGetAssertion) over opts' RP ID and allow list, and
// returns AuthenticationResponseJSON. ctx bounds the chip call.
//
// Errors: an *Error wrapping ErrInvalid for options without a challenge or
// with IDs that are not base64url; the chip's error as it is
// (ctap2.ErrNoCredentials when the chip holds none of the allowed
// credentials, and those listed on Create); an error wrapping
// ctap2.ErrInvalidResponse when the chip does not say which credential it
// used and the allow list does not tell either.
func Get(ctx context.Context, chip device.Chip, opts *RequestOptions, origin string) (*AuthenticationResponse, error) {
	if opts == nil {
		return nil, invalidf("no request options")
	}
	cd, h, allow, err := clientPart(TypeGet, opts.Challenge, origin, "publicKey.allowCredentials", opts.AllowCredentials)
	if err != nil {
		return nil, err
	}
	as, err := chip.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: opts.RPID, ClientDataHash: h[:], AllowList: allow})
	if err != nil {
		return nil, err
	}
	var id []byte
	switch {
	case as.Credential != nil && len(as.Credential.ID) > 0:
		id = as.Credential.ID
	case len(allow) == 1:
		id = allow[0].ID // CTAP 2.1 §6.2.2: may be left out when the list had one
	default:
		return nil, fmt.Errorf("webauthn: %w: the chip did not say which credential signed", ctap2.ErrInvalidResponse)
	}
	r := &AuthenticationResponse{
		ID:    Encode(id),
		RawID: Encode(id),
		Type:  TypePublicKey,
		Response: AssertionResponse{
			ClientDataJSON:    Encode(cd),
			AuthenticatorData: Encode(as.AuthData),
			Signature:         Encode(as.Signature),
		},
		ClientExtensionResults: map[string]json.RawMessage{},
	}
	if as.User != nil && len(as.User.ID) > 0 {
		r.Response.UserHandle = Encode(as.User.ID)
	}
	return r, nil
}

// clientPart collects the client data of a ceremony of type typ with the
// options' challenge, as sent from origin (WebAuthn Level 3 §5.8.1.1), and
// returns it, its hash for CTAP, and the options' credential list (field).
func clientPart(typ, challenge, origin, field string, list []CredentialDescriptor) ([]byte, [32]byte, []ctap2.CredentialDescriptor, error) {
	raw, err := Decode("publicKey.challenge", challenge)
	if err != nil {
		return nil, [32]byte{}, nil, err
	}
	creds, err := descriptors(field, list)
	if err != nil {
		return nil, [32]byte{}, nil, err
	}
	cd := NewClientData(typ, raw, origin)
	return cd, sha256.Sum256(cd), creds, nil
}

// descriptors turns credential descriptors into CTAP's; those of other
// types are left out (WebAuthn Level 3 §5.1.3, §6.3.2).
func descriptors(field string, in []CredentialDescriptor) ([]ctap2.CredentialDescriptor, error) {
	var out []ctap2.CredentialDescriptor
	for i, d := range in {
		if d.Type != TypePublicKey {
			continue
		}
		id, err := Decode(fmt.Sprintf("%s[%d].id", field, i), d.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, ctap2.CredentialDescriptor{Type: d.Type, ID: id})
	}
	return out, nil
}

package api

import (
	"encoding/json"

	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/internal/plainjson"
	"github.com/authbench/authbench/server/service"
)

// The bodies of the login steps are the hottest requests of the API (three
// per login), those of a chip's enrolment (add, activate with the
// attestation) and of block come next, and encoding/json decodes them by
// reflection. fastDecode decodes them by hand (internal/plainjson), but
// only in the plain shape every client sends: one JSON object whose keys are exactly the fields' names (no escapes, no
// other case), each at most once, whose values are strings without escape
// sequences or null, and, for a chip's assertion or attestation, the
// nested credential with its response and an empty (or null)
// clientExtensionResults (an attestation's transports an array of such
// strings, its publicKeyAlgorithm an integer without fraction or exponent).
// Anything else (an escape, an unknown or duplicated key, a number, a
// non-empty extension result, broken JSON) is left to unmarshalStrict,
// which decides and words the answer. So what fastDecode accepts it
// decodes exactly as unmarshalStrict would (FuzzFastDecode checks that),
// and what it declines costs one extra pass over a few hundred bytes.

// fastDecode decodes b into v when v is the body of a login step, of
// adding, activating or blocking an authenticator, and b is in the plain
// shape; it reports whether it did. v must be a zero value.
func fastDecode(b []byte, v any) bool {
	d := plainjson.New(b)
	var ok bool
	switch v := v.(type) {
	case *service.PasswordLoginRequest:
		ok = d.Object(func(key []byte) bool {
			switch string(key) {
			case "password":
				return d.Str(&v.Password)
			case "second":
				return d.Str(&v.Second)
			}
			return false
		})
	case *service.SecondFactorRequest:
		ok = d.Object(func(key []byte) bool {
			switch string(key) {
			case "ceremony":
				return d.Str(&v.Ceremony)
			case "authenticator":
				return d.Str(&v.Authenticator)
			}
			return false
		})
	case *service.FinishLoginRequest:
		ok = d.Object(func(key []byte) bool {
			switch string(key) {
			case "ceremony":
				return d.Str(&v.Ceremony)
			case "code":
				return d.Str(&v.Code)
			case "pin":
				return d.Str(&v.PIN)
			case "signature":
				return d.Str(&v.Signature)
			case "credential":
				return authenticationResponse(&d, &v.Credential)
			}
			return false
		})
	case *service.AddRequest:
		ok = d.Object(func(key []byte) bool {
			switch string(key) {
			case "kind":
				return d.Str(&v.Kind)
			case "label":
				return d.Str(&v.Label)
			case "serial":
				return d.Str(&v.Serial)
			case "public_key":
				return d.Str(&v.PublicKey)
			case "pin":
				return d.Str(&v.PIN)
			case "password":
				return d.Str(&v.Password)
			}
			return false
		})
	case *service.ActivateRequest:
		ok = d.Object(func(key []byte) bool {
			switch string(key) {
			case "ceremony":
				return d.Str(&v.Ceremony)
			case "code":
				return d.Str(&v.Code)
			case "signature":
				return d.Str(&v.Signature)
			case "credential":
				return registrationResponse(&d, &v.Credential)
			}
			return false
		})
	case *service.BlockRequest:
		ok = d.Object(func(key []byte) bool {
			if string(key) == "reason" {
				return d.Str(&v.Reason)
			}
			return false
		})
	default:
		return false
	}
	return ok && d.End()
}

// credentialMembers decodes the members a credential
// (PublicKeyCredential's JSON form) has whatever its kind, and hands
// the members of its "response" object to response; "response": null
// leaves the response empty.
func credentialMembers(d *plainjson.Scanner, id, rawID, typ, attachment *string, ext *map[string]json.RawMessage, response func(key []byte) bool) bool {
	return d.Object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return d.Str(id)
		case "rawId":
			return d.Str(rawID)
		case "type":
			return d.Str(typ)
		case "authenticatorAttachment":
			return d.Str(attachment)
		case "clientExtensionResults":
			return d.EmptyObject(ext)
		case "response":
			return d.Null() || d.Object(response)
		}
		return false
	})
}

// authenticationResponse decodes a credential (AuthenticationResponseJSON)
// into *p, allocating it, or leaves *p nil for null.
func authenticationResponse(d *plainjson.Scanner, p **webauthn.AuthenticationResponse) bool {
	if d.Null() {
		return true
	}
	r := new(webauthn.AuthenticationResponse)
	*p = r
	a := &r.Response
	return credentialMembers(d, &r.ID, &r.RawID, &r.Type, &r.AuthenticatorAttachment, &r.ClientExtensionResults, func(key []byte) bool {
		switch string(key) {
		case "clientDataJSON":
			return d.Str(&a.ClientDataJSON)
		case "authenticatorData":
			return d.Str(&a.AuthenticatorData)
		case "signature":
			return d.Str(&a.Signature)
		case "userHandle":
			return d.Str(&a.UserHandle)
		case "attestationObject":
			return d.Str(&a.AttestationObject)
		}
		return false
	})
}

// registrationResponse decodes a credential (RegistrationResponseJSON)
// into *p, allocating it, or leaves *p nil for null.
func registrationResponse(d *plainjson.Scanner, p **webauthn.RegistrationResponse) bool {
	if d.Null() {
		return true
	}
	r := new(webauthn.RegistrationResponse)
	*p = r
	a := &r.Response
	return credentialMembers(d, &r.ID, &r.RawID, &r.Type, &r.AuthenticatorAttachment, &r.ClientExtensionResults, func(key []byte) bool {
		switch string(key) {
		case "clientDataJSON":
			return d.Str(&a.ClientDataJSON)
		case "attestationObject":
			return d.Str(&a.AttestationObject)
		case "authenticatorData":
			return d.Str(&a.AuthenticatorData)
		case "publicKey":
			return d.Str(&a.PublicKey)
		case "transports":
			return d.Strs(&a.Transports)
		case "publicKeyAlgorithm":
			return d.Int(&a.PublicKeyAlgorithm, 64)
		}
		return false
	})
}

package webauthn_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/sim/chip"
)

// FuzzParseAttestationObject: no panic, no value with an error; a parsed
// object encodes (unless its statement is not canonical CBOR) to a
// canonical form that parses and encodes to exactly itself.
func FuzzParseAttestationObject(f *testing.F) {
	for _, obj := range attestationObjects(f) {
		f.Add(obj)
	}
	f.Add([]byte{0xa0})
	f.Add([]byte{0xa3, 0x63, 'f', 'm', 't', 0x64, 'n', 'o', 'n', 'e', 0x67, 'a', 't', 't', 'S', 't', 'm', 't', 0xa0, 0x68, 'a', 'u', 't', 'h', 'D', 'a', 't', 'a', 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := webauthn.ParseAttestationObject(b)
		if err != nil {
			if o != nil || !errors.Is(err, webauthn.ErrInvalid) {
				t.Fatalf("%v with %v", err, o)
			}
			return
		}
		c, err := o.Encode()
		if err != nil {
			if !errors.Is(err, ctap2.ErrInvalidCBOR) {
				t.Fatalf("encode: %v", err)
			}
			return
		}
		o2, err := webauthn.ParseAttestationObject(c)
		if err != nil {
			t.Fatalf("the canonical form does not parse: %v", err)
		}
		if c2, err := o2.Encode(); err != nil || !bytes.Equal(c2, c) {
			t.Fatalf("the canonical form does not round-trip: %v", err)
		}
		_, _ = o.Attestation()
	})
}

// FuzzParseClientData: no panic, no value with an error; parsed client
// data encodes to JSON that parses and encodes to exactly itself.
func FuzzParseClientData(f *testing.F) {
	for _, v := range readVectors(f).Vectors {
		f.Add(unhex(f, v.Registration.ClientDataJSON))
		f.Add(unhex(f, v.Authentication.ClientDataJSON))
	}
	f.Add([]byte(`{"type":"webauthn.get","challenge":"x","origin":"o","crossOrigin":true,"topOrigin":"t","other":[1,2]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cd, err := webauthn.ParseClientData(b)
		if err != nil {
			if cd != nil || !errors.Is(err, webauthn.ErrInvalid) {
				t.Fatalf("%v with %v", err, cd)
			}
			return
		}
		c, err := json.Marshal(cd)
		if err != nil {
			t.Fatal(err)
		}
		cd2, err := webauthn.ParseClientData(c)
		if err != nil {
			t.Fatalf("re-encoded client data does not parse: %v", err)
		}
		if c2, _ := json.Marshal(cd2); !bytes.Equal(c, c2) {
			t.Fatalf("%s != %s", c, c2)
		}
	})
}

// fuzzRP is the relying party of the response fuzzers: the §16 vectors'
// (example.org, its root) with everything allowed that a vector needs, so
// that mutations reach deep into go-webauthn.
func fuzzRP(f *testing.F) (*webauthn.RelyingParty, *specVectors) {
	vs := readVectors(f)
	return newRP(f, webauthn.Config{ID: vs.RPID, Origins: []string{vs.Origin}, AllowUntrusted: true,
		AllowBackupEligible: true, Algorithms: []int64{-7, -35, -36, -257, -8, -19}}), vs
}

// FuzzVerifyRegistration: whatever the attestation object, no panic, and
// a refusal is an *Error without a registration. The client data and
// challenge are a §16 vector's (which picks it) and the credential ID is
// the object's own, so that mutations get past the client data checks into
// the attestation object and go-webauthn's verification of it.
func FuzzVerifyRegistration(f *testing.F) {
	rp, vs := fuzzRP(f)
	for i, v := range vs.Vectors {
		f.Add(uint8(i), unhex(f, v.Registration.AttestationObject))
	}
	f.Fuzz(func(t *testing.T, which uint8, ao []byte) {
		v := vs.Vectors[int(which)%len(vs.Vectors)]
		id := unhex(t, v.Registration.CredentialID)
		if o, err := webauthn.ParseAttestationObject(ao); err == nil {
			if ad, _ := ctap2.ParseAuthData(o.AuthData); ad.AttestedCredential != nil {
				id = ad.AttestedCredential.CredentialID
			}
		}
		r := &webauthn.RegistrationResponse{ID: webauthn.Encode(id), RawID: webauthn.Encode(id), Type: "public-key",
			Response: webauthn.AttestationResponse{ClientDataJSON: webauthn.Encode(unhex(t, v.Registration.ClientDataJSON)),
				AttestationObject: webauthn.Encode(ao)}}
		reg, err := rp.VerifyRegistration(t.Context(), r, unhex(t, v.Registration.Challenge))
		var we *webauthn.Error
		switch {
		case err == nil && reg == nil:
			t.Fatal("no registration and no error")
		case err != nil && (reg != nil || !errors.As(err, &we) || we.Reason == ""):
			t.Fatalf("%v with %v", err, reg)
		}
	})
}

// FuzzVerifyAssertion: whatever the client data, authenticator data,
// signature and stored key, no panic; a refusal is an *Error, or the
// stored key's error.
func FuzzVerifyAssertion(f *testing.F) {
	rp, vs := fuzzRP(f)
	for _, v := range vs.Vectors {
		cred := v.credential(f)
		f.Add(unhex(f, v.Authentication.ClientDataJSON), unhex(f, v.Authentication.AuthenticatorData),
			unhex(f, v.Authentication.Signature), cred.PublicKey, unhex(f, v.Authentication.Challenge))
	}
	c := newChip(f, "fuzz", chip.Options{})
	reg := register(f, c, nil, nil)
	raw, _ := webauthn.Decode("", reg.RawID)
	as := assert(f, c, raw, nil, nil)
	obj, _ := webauthn.Decode("", reg.Response.AttestationObject)
	ao, _ := webauthn.ParseAttestationObject(obj)
	ad, _ := ctap2.ParseAuthData(ao.AuthData)
	dec := func(s string) []byte { b, _ := webauthn.Decode("", s); return b }
	f.Add(dec(as.Response.ClientDataJSON), dec(as.Response.AuthenticatorData), dec(as.Response.Signature), ad.AttestedCredential.PublicKey, []byte(nil))
	id := []byte{1, 2, 3}
	f.Fuzz(func(t *testing.T, cd, authData, sig, key, challenge []byte) {
		r := &webauthn.AuthenticationResponse{ID: webauthn.Encode(id), RawID: webauthn.Encode(id), Type: "public-key",
			Response: webauthn.AssertionResponse{ClientDataJSON: webauthn.Encode(cd), AuthenticatorData: webauthn.Encode(authData),
				Signature: webauthn.Encode(sig)}}
		a, err := rp.VerifyAssertion(r, challenge, webauthn.Credential{ID: id, PublicKey: key, BackupEligible: len(key)%2 == 0})
		if err != nil && a != nil || err == nil && a == nil {
			t.Fatalf("%v with %v", err, a)
		}
	})
}

package u2f

import (
	"bytes"
	"testing"

	"github.com/authbench/authbench/device/ctap2"
)

// The CTAP 2.1 §10 translation turns wire bytes (U2F responses from an
// authenticator) into CTAP2 values; whatever an authenticator answers, it
// neither panics nor builds data that does not round-trip.

func FuzzU2FRegisterToAttestation(f *testing.F) {
	reg := readHex(f, "register_response.hex")
	f.Add(reg)
	f.Add(reg[:70])
	zeroKH := append([]byte{}, reg...)
	zeroKH[66] = 0
	f.Add(zeroKH)
	app := ctap2.RPIDHash("example.dk")
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := ParseRegisterResponse(b)
		if err != nil {
			return
		}
		att, err := AttestationFromRegister(app, resp)
		if err != nil {
			if att != nil {
				t.Fatal("attestation returned with an error")
			}
			return
		}
		ad, err := ctap2.ParseAuthData(att.AuthData)
		if err != nil {
			t.Fatalf("authData does not parse: %v", err)
		}
		again, err := ad.Encode()
		if err != nil || !bytes.Equal(again, att.AuthData) {
			t.Fatalf("authData round trip: %v", err)
		}
		if !bytes.Equal(ad.AttestedCredential.CredentialID, resp.KeyHandle) {
			t.Fatal("credential ID is not the key handle")
		}
		if _, err := ctap2.ParsePublicKey(ad.AttestedCredential.PublicKey); err != nil {
			t.Fatalf("COSE key: %v", err)
		}
		enc, err := ctap2.EncodeAttestation(att)
		if err != nil {
			t.Fatalf("EncodeAttestation: %v", err)
		}
		dec, err := ctap2.DecodeAttestation(enc)
		if err != nil {
			t.Fatalf("DecodeAttestation: %v", err)
		}
		if enc2, err := ctap2.EncodeAttestation(dec); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("attestation round trip: %v", err)
		}
	})
}

func FuzzU2FAuthenticateToAssertion(f *testing.F) {
	f.Add(readHex(f, "authenticate_response.hex"))
	f.Add([]byte{0x41, 0, 0, 0, 1, 0x30, 0x06, 2, 1, 1, 2, 1, 1})
	f.Add([]byte{0x81, 0, 0, 0, 1, 0x30, 0x06, 2, 1, 1, 2, 1, 1})
	app := ctap2.RPIDHash("example.dk")
	kh := []byte("key handle")
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := ParseAuthenticateResponse(b)
		if err != nil {
			return
		}
		as, err := AssertionFromAuthenticate(app, kh, resp)
		if err != nil {
			if as != nil {
				t.Fatal("assertion returned with an error")
			}
			return
		}
		// The authenticator data is exactly what U2F signed, minus the challenge.
		var cdh [32]byte
		signed := AuthenticateSignedData(app, resp.UserPresence, resp.Counter, cdh)
		if !bytes.Equal(append(append([]byte{}, as.AuthData...), cdh[:]...), signed) {
			t.Fatalf("authData % X is not the U2F signed prefix", as.AuthData)
		}
		enc, err := ctap2.EncodeAssertion(as)
		if err != nil {
			t.Fatalf("EncodeAssertion: %v", err)
		}
		dec, err := ctap2.DecodeAssertion(enc)
		if err != nil {
			t.Fatalf("DecodeAssertion: %v", err)
		}
		if enc2, err := ctap2.EncodeAssertion(dec); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("assertion round trip: %v", err)
		}
	})
}

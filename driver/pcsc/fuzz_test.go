package pcsc

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/u2f"
)

// The driver decodes nothing of its own, but the U2F fallback turns wire
// bytes (U2F responses from the card) into CTAP2 values; these targets
// check that whatever a card answers, the translation neither panics nor
// builds data that does not round-trip.

// readHex reads a hex file of the shared testdata ("#" lines are comments).
func readHex(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "u2f", name))
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			sb.WriteString(strings.Join(strings.Fields(line), ""))
		}
	}
	b, err := hex.DecodeString(sb.String())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func FuzzU2FRegisterToAttestation(f *testing.F) {
	reg := readHex(f, "register_response.hex")
	f.Add(reg)
	f.Add(reg[:70])
	zeroKH := append([]byte{}, reg...)
	zeroKH[66] = 0
	f.Add(zeroKH)
	app := ctap2.RPIDHash(testRP)
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := u2f.ParseRegisterResponse(b)
		if err != nil {
			return
		}
		att, err := attestationFromU2F(app, resp)
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
	app := ctap2.RPIDHash(testRP)
	kh := []byte("key handle")
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := u2f.ParseAuthenticateResponse(b)
		if err != nil {
			return
		}
		as, err := assertionFromU2F(app, kh, resp)
		if err != nil {
			if as != nil {
				t.Fatal("assertion returned with an error")
			}
			return
		}
		// The authenticator data is exactly what U2F signed, minus the challenge.
		var cdh [32]byte
		signed := u2f.AuthenticateSignedData(app, resp.UserPresence, resp.Counter, cdh)
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

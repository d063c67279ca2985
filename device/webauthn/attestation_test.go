package webauthn_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/sim/chip"
)

// attestationObjects returns attestation objects of simulated chips
// (packed, none) and of the §16 vectors.
func attestationObjects(t testing.TB) [][]byte {
	var out [][]byte
	for _, opts := range []chip.Options{{}, {Attestation: chip.AttestationNone}} {
		r := register(t, newChip(t, "seed", opts), nil, nil)
		obj, err := webauthn.Decode("", r.Response.AttestationObject)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, obj)
	}
	for _, v := range readVectors(t).Vectors {
		out = append(out, unhex(t, v.Registration.AttestationObject))
	}
	return out
}

func TestAttestationObjectCodec(t *testing.T) {
	for i, obj := range attestationObjects(t) {
		// Keys in canonical order: fmt, attStmt, authData.
		if obj[0] != 0xa3 || !bytes.HasPrefix(obj[1:], append([]byte{0x63}, "fmt"...)) {
			t.Errorf("object %d starts % x", i, obj[:8])
		}
		o, err := webauthn.ParseAttestationObject(obj)
		if err != nil {
			t.Fatalf("object %d: %v", i, err)
		}
		again, err := o.Encode()
		if err != nil || !bytes.Equal(again, obj) {
			t.Errorf("object %d does not round-trip: %v", i, err)
		}
		if o.Format != "packed" && o.Format != "none" {
			continue
		}
		att, err := o.Attestation()
		if err != nil {
			t.Fatalf("object %d: %v", i, err)
		}
		if again, err := webauthn.EncodeAttestationObject(att); err != nil || !bytes.Equal(again, obj) {
			t.Errorf("object %d: Attestation does not round-trip: %v", i, err)
		}
	}
	// A client may re-encode the map in another key order: accepted.
	obj := attestationObjects(t)[0]
	o, _ := webauthn.ParseAttestationObject(obj)
	reordered := []byte{0xa3}
	reordered = append(reordered, mustCBOR(t, "authData")...)
	reordered = append(reordered, mustCBOR(t, o.AuthData)...)
	reordered = append(reordered, mustCBOR(t, "fmt")...)
	reordered = append(reordered, mustCBOR(t, o.Format)...)
	reordered = append(reordered, mustCBOR(t, "attStmt")...)
	reordered = append(reordered, o.AttStmt...)
	if o2, err := webauthn.ParseAttestationObject(reordered); err != nil || o2.Format != o.Format {
		t.Errorf("reordered: %v", err)
	}

	bad := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"not a map", []byte{0x01}},
		{"indefinite map", []byte{0xbf, 0xff}},
		{"array", []byte{0x83, 1, 2, 3}},
		{"no fmt", mustCBOR(t, map[string]any{"attStmt": map[string]any{}, "authData": make([]byte, 37)})},
		{"attStmt not a map", mustCBOR(t, map[string]any{"fmt": "none", "attStmt": 1, "authData": make([]byte, 37)})},
		{"short authData", mustCBOR(t, map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": make([]byte, 36)})},
		{"duplicate key", append([]byte{0xa4}, append(obj[1:], append(mustCBOR(t, "fmt"), mustCBOR(t, "none")...)...)...)},
		{"trailing byte", append(append([]byte{}, obj...), 0)},
		{"too large", mustCBOR(t, map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": make([]byte, webauthn.MaxAttestationObject)})},
	}
	for _, tt := range bad {
		if o, err := webauthn.ParseAttestationObject(tt.b); !errorIs(err, webauthn.ErrInvalid) || o != nil {
			t.Errorf("%s: %v, %v", tt.name, o, err)
		}
	}
	for _, att := range []*ctap2.Attestation{nil, {}, {Format: "none"}} {
		if _, err := webauthn.EncodeAttestationObject(att); !errorIs(err, webauthn.ErrInvalid) {
			t.Errorf("%+v encoded: %v", att, err)
		}
	}
}

func mustCBOR(t testing.TB, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// VerifyAttestation is what a conformance suite uses: a chip's answer and
// its clientDataHash, no browser.
func TestVerifyAttestation(t *testing.T) {
	cdh := bytes.Repeat([]byte{7}, 32)
	attest := func(opts chip.Options) *webauthn.AttestationObject {
		c := newChip(t, "chip-1", opts)
		att, err := c.MakeCredential(context.Background(), &ctap2.MakeCredentialRequest{ClientDataHash: cdh,
			RP: ctap2.RPEntity{ID: rpID}, User: ctap2.UserEntity{ID: []byte{1}},
			PubKeyCredParams: []ctap2.CredentialParameters{{Type: "public-key", Alg: ctap2.AlgES256}}})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := webauthn.EncodeAttestationObject(att)
		if err != nil {
			t.Fatal(err)
		}
		o, err := webauthn.ParseAttestationObject(raw)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	trust := webauthn.Trust{Roots: testRoots(t)}
	a, err := webauthn.VerifyAttestation(t.Context(), attest(chip.Options{}), cdh, trust)
	if err != nil || !a.Trusted || a.Type != "basic_full" || len(a.Chain) != 1 || a.Why != "" {
		t.Fatalf("%+v %v", a, err)
	}
	a, err = webauthn.VerifyAttestation(t.Context(), attest(chip.Options{}), cdh, webauthn.Trust{})
	if err != nil || a.Trusted || !strings.Contains(a.Why, "does not chain") {
		t.Fatalf("no roots: %+v %v", a, err)
	}
	a, err = webauthn.VerifyAttestation(t.Context(), attest(chip.Options{Attestation: chip.AttestationNone}), cdh, trust)
	if err != nil || a.Trusted || a.Format != "none" {
		t.Fatalf("none: %+v %v", a, err)
	}
	_, err = webauthn.VerifyAttestation(t.Context(), attest(chip.Options{}), bytes.Repeat([]byte{8}, 32), trust)
	wantErr(t, err, webauthn.ErrUntrusted, "")
	_, err = webauthn.VerifyAttestation(t.Context(), attest(chip.Options{Faults: chip.Faults{BadSignature: true}}), cdh, trust)
	wantErr(t, err, webauthn.ErrUntrusted, "")
}

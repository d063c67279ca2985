package client

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authbench/authbench/device/ctap2"
)

const testdata = "../../testdata"

// readHex reads a testdata .hex file: hex digits, whitespace ignored, "#"
// comments to the end of the line.
func readHex(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		line, _, _ = strings.Cut(line, "#")
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(sb.String())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// TestClientDataVector builds the clientDataJSON of the WebAuthn Level 3
// §16.2 (none, ES256) authentication and compares it byte for byte.
func TestClientDataVector(t *testing.T) {
	want := readHex(t, filepath.Join(testdata, "ctap2", "webauthn-16.2-client-data.bin.hex"))
	var cd ClientData
	if err := json.Unmarshal(want, &cd); err != nil {
		t.Fatal(err)
	}
	var challenge Bytes
	if err := json.Unmarshal([]byte(`"`+cd.Challenge+`"`), &challenge); err != nil {
		t.Fatal(err)
	}
	got := NewClientData(ClientDataGet, challenge, cd.Origin)
	if !bytes.Equal(got, want) {
		t.Errorf("client data\n got %s\nwant %s", got, want)
	}
	// The signature of the vector covers authData || SHA-256(clientDataJSON).
	authData := readHex(t, filepath.Join(testdata, "ctap2", "webauthn-16.2-authdata-assertion.hex"))
	key := readHex(t, filepath.Join(testdata, "ctap2", "webauthn-16.2-cose-key.hex"))
	sig := readHex(t, filepath.Join(testdata, "ctap2", "webauthn-16.2-signature.bin.hex"))
	h := sha256sum(got)
	if err := ctap2.VerifyAssertion(key, authData, h, sig); err != nil {
		t.Errorf("vector signature over our client data: %v", err)
	}
}

// attestationVectors returns attestation objects made from the CTAP2
// makeCredential answers of testdata/ctap2.
func attestationVectors(t testing.TB) [][]byte {
	files, err := filepath.Glob(filepath.Join(testdata, "ctap2", "makecredential-response-*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no makeCredential vectors: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		att, err := ctap2.DecodeAttestation(readHex(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		obj, err := EncodeAttestationObject(att)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, obj)
	}
	return out
}

func TestAttestationObject(t *testing.T) {
	for _, obj := range attestationVectors(t) {
		// Keys in canonical order: fmt, attStmt, authData (WebAuthn §6.5
		// Figure 6 lists them in this order too).
		if obj[0] != 0xa3 || !bytes.HasPrefix(obj[1:], append([]byte{0x63}, "fmt"...)) {
			t.Errorf("attestation object starts % x", obj[:8])
		}
		if i, j := bytes.Index(obj, []byte("attStmt")), bytes.Index(obj, []byte("authData")); i < 0 || j < i {
			t.Errorf("attStmt at %d, authData at %d", i, j)
		}
		att, err := DecodeAttestationObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		again, err := EncodeAttestationObject(att)
		if err != nil || !bytes.Equal(again, obj) {
			t.Errorf("round trip: %v", err)
		}
	}
	bad := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"not a map", []byte{0x01}},
		{"no fmt", mustMarshal(t, map[string]any{"attStmt": map[string]any{}, "authData": make([]byte, 37)})},
		{"short authData", mustMarshal(t, map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": make([]byte, 36)})},
		{"trailing byte", append(attestationVectors(t)[0], 0)},
	}
	for _, tt := range bad {
		if att, err := DecodeAttestationObject(tt.b); err == nil || att != nil {
			t.Errorf("%s: decoded %v, %v", tt.name, att, err)
		}
	}
	if _, err := EncodeAttestationObject(&ctap2.Attestation{}); err == nil {
		t.Error("empty attestation encoded")
	}
	if _, err := EncodeAttestationObject(nil); err == nil {
		t.Error("nil attestation encoded")
	}
	if !errors.Is(func() error { _, err := DecodeAttestationObject([]byte{0xff}); return err }(), ctap2.ErrInvalidCBOR) {
		t.Error("bad CBOR does not wrap ErrInvalidCBOR")
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	b, err := ctap2.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecodeAttestationObject: no panic; a decoded object re-encodes to a
// canonical form that decodes and re-encodes to itself.
func FuzzDecodeAttestationObject(f *testing.F) {
	for _, obj := range attestationVectors(f) {
		f.Add(obj)
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		att, err := DecodeAttestationObject(b)
		if err != nil {
			if att != nil {
				t.Fatal("half-filled value with an error")
			}
			return
		}
		enc, err := EncodeAttestationObject(att)
		if err != nil {
			t.Fatalf("decoded but does not encode: %v", err)
		}
		att2, err := DecodeAttestationObject(enc)
		if err != nil {
			t.Fatalf("canonical form does not decode: %v", err)
		}
		enc2, err := EncodeAttestationObject(att2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("canonical form does not round-trip: %v", err)
		}
	})
}

// FuzzBytesJSON: no panic; an accepted string re-encodes to its unpadded
// form, which decodes to the same bytes.
func FuzzBytesJSON(f *testing.F) {
	f.Add([]byte(`"AQID"`))
	f.Add([]byte(`"-_8="`))
	f.Add([]byte(`""`))
	cd := readHex(f, filepath.Join(testdata, "ctap2", "webauthn-16.2-client-data.bin.hex"))
	var v ClientData
	if json.Unmarshal(cd, &v) == nil {
		f.Add([]byte(`"` + v.Challenge + `"`))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var b Bytes
		if err := json.Unmarshal(in, &b); err != nil {
			return
		}
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var b2 Bytes
		if err := json.Unmarshal(out, &b2); err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("%s -> %s does not round-trip: %v", in, out, err)
		}
		out2, _ := json.Marshal(b2)
		if !bytes.Equal(out, out2) {
			t.Fatalf("canonical form %s re-encodes to %s", out, out2)
		}
	})
}

// FuzzDecodeError: any error body gives an *APIError with a code, never a
// panic; an envelope decoded from the canonical JSON of an APIError gives
// the same code and message back.
func FuzzDecodeError(f *testing.F) {
	f.Add(401, []byte(`{"error":{"code":"wrong_code","message":"m","details":{"failures":1,"state":"active"}}}`))
	f.Add(502, []byte(`<html>`))
	f.Add(404, []byte(`{"error":null}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := decodeError("GET", "/x", status, body)
		if e == nil || e.Code == "" {
			t.Fatalf("no code for %d %q", status, body)
		}
		_ = e.Error()
		e.Failures()
		e.State()
		env, err := json.Marshal(map[string]any{"error": map[string]any{"code": e.Code, "message": e.Message, "details": e.Details}})
		if err != nil {
			t.Fatal(err)
		}
		e2 := decodeError("GET", "/x", status, env)
		if e2.Code != e.Code || e2.Message != e.Message {
			t.Fatalf("%q %q -> %q %q", e.Code, e.Message, e2.Code, e2.Message)
		}
	})
}

package u2f

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/authbench/authbench/device"
)

const testdataDir = "../../testdata/u2f/"

// readHex reads a testdata hex file: '#' lines are comments, white space is
// ignored.
func readHex(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(testdataDir + name)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(sb.String())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// readKeys reads testdata/u2f/keys.txt (name=value lines).
func readKeys(t testing.TB) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(testdataDir + "keys.txt")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("keys.txt: bad line %q", line)
		}
		m[k] = v
	}
	return m
}

func privateKey(t testing.TB, hexScalar string) *ecdsa.PrivateKey {
	t.Helper()
	d, err := hex.DecodeString(hexScalar)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pointBytes(t testing.TB, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	b, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRegistrationExample parses, re-encodes and verifies the registration
// example of the U2F Raw Message Formats.
func TestRegistrationExample(t *testing.T) {
	keys := readKeys(t)
	reqData := readHex(t, "register_request.hex")
	req, err := ParseRegisterRequest(reqData)
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256.Sum256([]byte(keys["register_client_data"])); got != req.Challenge {
		t.Errorf("challenge %x is not SHA-256 of the client data (%x)", req.Challenge, got)
	}
	if got := sha256.Sum256([]byte(keys["register_app_id"])); got != req.Application {
		t.Errorf("application %x is not SHA-256 of the AppID (%x)", req.Application, got)
	}
	if !bytes.Equal(req.Encode(), reqData) {
		t.Errorf("request does not re-encode exactly")
	}

	respData := readHex(t, "register_response.hex")
	resp, err := ParseRegisterResponse(respData)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := resp.Encode()
	if err != nil || !bytes.Equal(enc, respData) {
		t.Fatalf("response does not re-encode exactly: %v", err)
	}
	if len(resp.KeyHandle) != 64 || len(resp.AttestationCert) != 320 || len(resp.Signature) != 71 {
		t.Errorf("field lengths kh %d cert %d sig %d", len(resp.KeyHandle), len(resp.AttestationCert), len(resp.Signature))
	}
	signed := RegisterSignedData(req.Application, req.Challenge, resp.KeyHandle, resp.PublicKey)
	if want := readHex(t, "register_signed.hex"); !bytes.Equal(signed, want) {
		t.Errorf("signed data\n got %x\nwant %x", signed, want)
	}
	cert, err := resp.Verify(req.Application, req.Challenge)
	if err != nil {
		t.Fatal(err)
	}
	if cn := cert.Subject.CommonName; !strings.HasPrefix(cn, "PilotGnubby") {
		t.Errorf("attestation subject CN %q", cn)
	}
	// The published private keys belong to the public keys in the messages.
	att := privateKey(t, keys["attestation_private_key"])
	if !att.PublicKey.Equal(cert.PublicKey) {
		t.Errorf("attestation private key does not match the certificate")
	}
	user := privateKey(t, keys["register_private_key"])
	if !bytes.Equal(pointBytes(t, &user.PublicKey), resp.PublicKey[:]) {
		t.Errorf("registration private key does not match the public key")
	}
	if k, err := resp.Key(); err != nil || !k.Equal(&user.PublicKey) {
		t.Errorf("Key = %v, %v", k, err)
	}

	// Any change to the signed inputs breaks the signature.
	bad := req.Challenge
	bad[0] ^= 1
	if _, err := resp.Verify(req.Application, bad); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify with another challenge: %v", err)
	}
	kh := *resp
	kh.KeyHandle = append([]byte{}, resp.KeyHandle...)
	kh.KeyHandle[3] ^= 1
	if _, err := kh.Verify(req.Application, req.Challenge); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify with another key handle: %v", err)
	}
}

// TestAuthenticationExample parses, re-encodes and verifies the
// authentication example of the U2F Raw Message Formats.
func TestAuthenticationExample(t *testing.T) {
	keys := readKeys(t)
	raw := readHex(t, "authenticate_request.hex")
	req, err := ParseAuthenticateRequest(raw[0], raw[1:])
	if err != nil {
		t.Fatal(err)
	}
	if req.Control != ControlEnforcePresence {
		t.Errorf("control %02X", req.Control)
	}
	if got := sha256.Sum256([]byte(keys["authenticate_client_data"])); got != req.Challenge {
		t.Errorf("challenge is not SHA-256 of the client data")
	}
	if got := sha256.Sum256([]byte(keys["authenticate_app_id"])); got != req.Application {
		t.Errorf("application is not SHA-256 of the AppID")
	}
	enc, err := req.Encode()
	if err != nil || !bytes.Equal(enc, raw[1:]) {
		t.Fatalf("request does not re-encode exactly: %v", err)
	}
	cmd, err := req.Command()
	if err != nil || cmd.P1 != raw[0] || cmd.INS != InsAuthenticate || cmd.CLA != 0 || !bytes.Equal(cmd.Data, raw[1:]) {
		t.Fatalf("Command = %+v, %v", cmd, err)
	}

	respData := readHex(t, "authenticate_response.hex")
	resp, err := ParseAuthenticateResponse(respData)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.UserPresent() || resp.Counter != 1 {
		t.Errorf("presence %02X counter %d", resp.UserPresence, resp.Counter)
	}
	enc, err = resp.Encode()
	if err != nil || !bytes.Equal(enc, respData) {
		t.Fatalf("response does not re-encode exactly: %v", err)
	}
	signed := AuthenticateSignedData(req.Application, resp.UserPresence, resp.Counter, req.Challenge)
	if want := readHex(t, "authenticate_signed.hex"); !bytes.Equal(signed, want) {
		t.Errorf("signed data\n got %x\nwant %x", signed, want)
	}
	pub, err := ParsePublicKey(readHex(t, "authenticate_public_key.hex"))
	if err != nil {
		t.Fatal(err)
	}
	if !privateKey(t, keys["authenticate_private_key"]).PublicKey.Equal(pub) {
		t.Errorf("authentication private key does not match the public key")
	}
	if err := resp.Verify(pub, req.Application, req.Challenge); err != nil {
		t.Fatal(err)
	}
	c := *resp
	c.Counter = 2
	if err := c.Verify(pub, req.Application, req.Challenge); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify with another counter: %v", err)
	}
	c = *resp
	c.UserPresence = 0
	if err := c.Verify(pub, req.Application, req.Challenge); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify without presence: %v", err)
	}
	if err := resp.Verify(nil, req.Application, req.Challenge); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify with no key: %v", err)
	}
	other, _ := ParsePublicKey(readHex(t, "register_response.hex")[1:66])
	if err := resp.Verify(other, req.Application, req.Challenge); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify with another key: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	reg := readHex(t, "register_response.hex")
	auth := readHex(t, "authenticate_response.hex")
	areq := readHex(t, "authenticate_request.hex")
	mod := func(b []byte, i int, v byte) []byte {
		c := append([]byte{}, b...)
		c[i] = v
		return c
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	certStart := 1 + 65 + 1 + 64
	tests := []struct {
		name  string
		parse func([]byte) error
		in    []byte
	}{
		{"register request short", parseRR, make([]byte, 63)},
		{"register request long", parseRR, make([]byte, 65)},
		{"register request empty", parseRR, nil},
		{"register response empty", parseRS, nil},
		{"register response reserved byte", parseRS, mod(reg, 0, 0x04)},
		{"register response compressed key", parseRS, mod(reg, 1, 0x02)},
		{"register response truncated key handle", parseRS, reg[:1+65+1+10]},
		{"register response key handle too long", parseRS, mod(reg, 66, 0xFF)},
		{"register response no certificate", parseRS, reg[:certStart]},
		{"register response certificate not a sequence", parseRS, mod(reg, certStart, 0x31)},
		{"register response certificate truncated", parseRS, reg[:certStart+100]},
		{"register response indefinite length", parseRS, mod(reg, certStart+1, 0x80)},
		{"register response no signature", parseRS, reg[:certStart+320]},
		{"register response trailing byte", parseRS, cat(reg, []byte{0})},
		{"register response truncated signature", parseRS, reg[:len(reg)-1]},
		{"authenticate request control 00", parseAQ(0x00), areq[1:]},
		{"authenticate request control 05", parseAQ(0x05), areq[1:]},
		{"authenticate request short", parseAQ(0x03), areq[1:64]},
		{"authenticate request key handle length too big", parseAQ(0x03), mod(areq[1:], 64, 0x41)},
		{"authenticate request key handle length too small", parseAQ(0x03), mod(areq[1:], 64, 0x3F)},
		{"authenticate response empty", parseAS, nil},
		{"authenticate response no signature", parseAS, auth[:5]},
		{"authenticate response trailing", parseAS, cat(auth, []byte{0})},
		{"authenticate response truncated", parseAS, auth[:len(auth)-1]},
		{"authenticate response not a sequence", parseAS, mod(auth, 5, 0x31)},
		{"authenticate response r not integer", parseAS, mod(auth, 7, 0x03)},
		{"authenticate response three integers", parseAS, cat(auth[:5], []byte{0x30, 0x09, 2, 1, 1, 2, 1, 1, 2, 1, 1})},
		{"authenticate response one integer", parseAS, cat(auth[:5], []byte{0x30, 0x03, 2, 1, 1})},
		{"authenticate response empty integer", parseAS, cat(auth[:5], []byte{0x30, 0x05, 2, 0, 2, 1, 1})},
		{"authenticate response non-minimal length", parseAS, cat(auth[:5], []byte{0x30, 0x81, 0x06, 2, 1, 1, 2, 1, 1})},
		{"public key", func(b []byte) error { _, err := ParsePublicKey(b); return err }, mod(reg[1:66], 64, reg[65]^1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse(tt.in)
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, device.ErrProtocol) {
				t.Fatalf("err = %v, want a *FormatError", err)
			}
			if !strings.HasPrefix(err.Error(), "u2f: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// The parse helpers also check that a failed parse returns no value.
func parseRR(b []byte) error {
	r, err := ParseRegisterRequest(b)
	return nilOnError(r == nil, err)
}

func parseRS(b []byte) error {
	r, err := ParseRegisterResponse(b)
	return nilOnError(r == nil, err)
}

func parseAQ(control byte) func([]byte) error {
	return func(b []byte) error {
		r, err := ParseAuthenticateRequest(control, b)
		return nilOnError(r == nil, err)
	}
}

func parseAS(b []byte) error {
	r, err := ParseAuthenticateResponse(b)
	return nilOnError(r == nil, err)
}

func nilOnError(isNil bool, err error) error {
	if err != nil && !isNil {
		return errors.New("value returned with an error")
	}
	return err
}

func TestEncodeErrors(t *testing.T) {
	resp, err := ParseRegisterResponse(readHex(t, "register_response.hex"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		encode func() error
	}{
		{"long key handle", func() error {
			r := *resp
			r.KeyHandle = make([]byte, 256)
			_, err := r.Encode()
			return err
		}},
		{"compressed key", func() error {
			r := *resp
			r.PublicKey[0] = 2
			_, err := r.Encode()
			return err
		}},
		{"certificate with trailing bytes", func() error {
			r := *resp
			r.AttestationCert = append(append([]byte{}, r.AttestationCert...), 0)
			_, err := r.Encode()
			return err
		}},
		{"no signature", func() error {
			r := *resp
			r.Signature = nil
			_, err := r.Encode()
			return err
		}},
		{"authenticate response bad signature", func() error {
			_, err := (&AuthenticateResponse{UserPresence: 1, Signature: []byte{1, 2, 3}}).Encode()
			return err
		}},
		{"authenticate request control", func() error {
			_, err := (&AuthenticateRequest{Control: 0x04}).Encode()
			return err
		}},
		{"authenticate request key handle", func() error {
			_, err := (&AuthenticateRequest{Control: ControlCheckOnly, KeyHandle: make([]byte, 256)}).Command()
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fe *FormatError
			if err := tt.encode(); !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *FormatError", err)
			}
		})
	}
	// A key handle of 255 bytes and an empty one are fine.
	for _, n := range []int{0, 255} {
		r := *resp
		r.KeyHandle = make([]byte, n)
		b, err := r.Encode()
		if err != nil {
			t.Fatalf("%d-byte key handle: %v", n, err)
		}
		back, err := ParseRegisterResponse(b)
		if err != nil || len(back.KeyHandle) != n {
			t.Fatalf("%d-byte key handle does not round-trip: %v", n, err)
		}
	}
}

func TestStatusError(t *testing.T) {
	tests := []struct {
		sw       uint16
		sentinel []error
		text     string
	}{
		{0x6985, []error{ErrPresenceRequired}, "touch the authenticator"},
		{0x6A80, []error{ErrBadKeyHandle}, "key handle"},
		{0x6700, []error{ErrWrongLength, device.ErrProtocol}, "wrong request length"},
		{0x6D00, []error{device.ErrNotSupported}, "instruction not supported"},
		{0x6E00, []error{device.ErrNotSupported}, "class not supported"},
		{0x6F00, nil, "6F00"},
		{0x6A86, nil, "6A86"},
		{0x1234, nil, "1234"},
	}
	all := []error{ErrPresenceRequired, ErrBadKeyHandle, ErrWrongLength, device.ErrProtocol, device.ErrNotSupported}
	for _, tt := range tests {
		err := error(&StatusError{SW: tt.sw})
		for _, s := range all {
			want := false
			for _, w := range tt.sentinel {
				want = want || w == s
			}
			if errors.Is(err, s) != want {
				t.Errorf("%04X: errors.Is(%v) = %v", tt.sw, s, !want)
			}
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "u2f: ") || !strings.Contains(msg, tt.text) {
			t.Errorf("%04X: message %q", tt.sw, msg)
		}
	}
	if !strings.Contains(ErrPresenceRequired.Error(), "touch the authenticator") {
		t.Errorf("ErrPresenceRequired says %q", ErrPresenceRequired)
	}
}

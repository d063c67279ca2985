package ctap2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// adHeader returns rpIdHash || flags || signCount.
func adHeader(flags byte, count uint32) []byte {
	h := RPIDHash("mitid.dk")
	b := append(h[:], flags)
	return binary.BigEndian.AppendUint32(b, count)
}

func attested(credIDLen int, key []byte) []byte {
	b := make([]byte, 16, 18+credIDLen+len(key))
	b = binary.BigEndian.AppendUint16(b, uint16(credIDLen))
	b = append(b, bytes.Repeat([]byte{0xcc}, credIDLen)...)
	return append(b, key...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestParseAuthData(t *testing.T) {
	key := readVector(t, "cose-es256.hex")
	ext := mustHex(t, "a16b6372656450726f7465637402") // {"credProtect": 2}
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"assertion", adHeader(FlagUP, 7), true},
		{"reserved flag bits kept", adHeader(FlagUP|0x02|0x20, 7), true},
		{"attested", cat(adHeader(FlagUP|FlagAT, 0), attested(32, key)), true},
		{"attested with extensions", cat(adHeader(FlagUP|FlagAT|FlagED, 0), attested(16, key), ext), true},
		{"extensions only", cat(adHeader(FlagUP|FlagED, 3), ext), true},
		{"non-canonical key kept", cat(adHeader(FlagAT, 0), attested(16, mustHex(t, "a2 03 26 01 02"))), true},
		{"credential ID 1023", cat(adHeader(FlagAT, 0), attested(1023, key)), true},
		{"too short", adHeader(FlagUP, 7)[:36], false},
		{"empty", nil, false},
		{"AT without data", adHeader(FlagAT, 0), false},
		{"AT truncated AAGUID", cat(adHeader(FlagAT, 0), make([]byte, 10)), false},
		{"credential ID 0", cat(adHeader(FlagAT, 0), attested(0, key)), false},
		{"credential ID 1024", cat(adHeader(FlagAT, 0), attested(1024, key)), false},
		{"credential ID truncated", cat(adHeader(FlagAT, 0), attested(32, nil)[:40]), false},
		{"no public key", cat(adHeader(FlagAT, 0), attested(16, nil)), false},
		{"public key not a map", cat(adHeader(FlagAT, 0), attested(16, mustHex(t, "8101"))), false},
		{"public key truncated", cat(adHeader(FlagAT, 0), attested(16, key[:len(key)-1])), false},
		{"public key indefinite", cat(adHeader(FlagAT, 0), attested(16, mustHex(t, "bf0102ff"))), false},
		{"public key with tag", cat(adHeader(FlagAT, 0), attested(16, mustHex(t, "a101c102"))), false},
		{"trailing after key", cat(adHeader(FlagAT, 0), attested(16, key), []byte{0}), false},
		{"extensions without ED", cat(adHeader(FlagUP, 0), ext), false},
		{"ED without extensions", adHeader(FlagUP|FlagED, 0), false},
		{"extensions not a map", cat(adHeader(FlagED, 0), mustHex(t, "01")), false},
		{"two extension maps", cat(adHeader(FlagED, 0), ext, ext), false},
		{"attested data without AT", cat(adHeader(FlagUP, 0), attested(16, key)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ad, err := ParseAuthData(tc.in)
			if !tc.ok {
				if err == nil || ad != nil || !errors.Is(err, ErrInvalidAuthData) {
					t.Fatalf("ParseAuthData = %+v, %v; want ErrInvalidAuthData", ad, err)
				}
				if !strings.HasPrefix(err.Error(), "ctap2: ") {
					t.Errorf("error text %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := ad.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, tc.in) {
				t.Fatalf("Encode = %x, want %x", out, tc.in)
			}
		})
	}
}

func TestParseAuthDataCopies(t *testing.T) {
	in := readVector(t, "authdata-attested.hex")
	ad, err := ParseAuthData(in)
	if err != nil {
		t.Fatal(err)
	}
	keep := append([]byte(nil), ad.AttestedCredential.PublicKey...)
	for i := range in {
		in[i] = 0
	}
	if !bytes.Equal(ad.AttestedCredential.PublicKey, keep) {
		t.Fatal("parsed value shares memory with the input")
	}
}

func TestAuthDataEncodeErrors(t *testing.T) {
	key := readVector(t, "cose-es256.hex")
	cred := &AttestedCredentialData{CredentialID: []byte{1}, PublicKey: key}
	for _, tc := range []struct {
		name string
		ad   *AuthData
	}{
		{"nil", nil},
		{"AT without data", &AuthData{Flags: FlagAT}},
		{"data without AT", &AuthData{AttestedCredential: cred}},
		{"ED without extensions", &AuthData{Flags: FlagED}},
		{"extensions without ED", &AuthData{Extensions: []byte{0xa0}}},
		{"empty credential ID", &AuthData{Flags: FlagAT, AttestedCredential: &AttestedCredentialData{PublicKey: key}}},
		{"long credential ID", &AuthData{Flags: FlagAT, AttestedCredential: &AttestedCredentialData{CredentialID: make([]byte, 1024), PublicKey: key}}},
		{"key not CBOR", &AuthData{Flags: FlagAT, AttestedCredential: &AttestedCredentialData{CredentialID: []byte{1}, PublicKey: []byte{0xff}}}},
		{"key with trailing bytes", &AuthData{Flags: FlagAT, AttestedCredential: &AttestedCredentialData{CredentialID: []byte{1}, PublicKey: append(key, 0)}}},
		{"extensions not a map", &AuthData{Flags: FlagED, Extensions: []byte{0x01}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := tc.ad.Encode(); !errors.Is(err, ErrInvalidAuthData) || b != nil {
				t.Fatalf("Encode = %x, %v", b, err)
			}
		})
	}
}

func TestRPIDHash(t *testing.T) {
	// WebAuthn §16.2 uses the RP ID example.org.
	h := RPIDHash("example.org")
	if want := mustHex(t, "bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b5"); !bytes.Equal(h[:], want) {
		t.Fatalf("RPIDHash = %x", h)
	}
}

package ctap2

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func TestCheckCanonical(t *testing.T) {
	deep := strings.Repeat("81", maxNesting+1) + "00"
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"uint", "17", true},
		{"uint 24", "1818", true},
		{"uint 24 in 2 bytes", "190018", false},
		{"uint 1 in 1 byte arg", "1801", false},
		{"uint 256", "190100", true},
		{"uint32 not minimal", "1a0000ffff", false},
		{"uint64 not minimal", "1b00000000ffffffff", false},
		{"neg", "20", true},
		{"bytes", "43010203", true},
		{"bytes length not minimal", "5803010203", false},
		{"text", "6161", true},
		{"text not utf8", "61ff", false},
		{"empty map", "a0", true},
		{"sorted map", "a2010002f5", true},
		{"unsorted map", "a2020001f5", false},
		{"duplicate key", "a2010001f5", false},
		{"int before text keys", "a2016161616100", true},
		{"text keys length first", "a26161006262620f", true},
		{"text keys bytewise wrong", "a2626262006161 0f", false},
		{"indefinite array", "9f01ff", false},
		{"indefinite bytes", "5f4101ff", false},
		{"break", "ff", false},
		{"tag", "c074323031332d30332d32315432303a30343a30305a", false},
		{"reserved ai", "1c", false},
		{"simple 16 two-byte form", "f810", false},
		{"simple 32 (unassigned: no CTAP message carries it)", "f820", false},
		{"simple 1", "e1", false},
		{"true", "f5", true},
		{"float16", "f93c00", true},
		{"float64", "fb3ff0000000000000", true},
		{"null", "f6", true},
		{"trailing byte", "0000", false},
		{"truncated uint16", "19 01", false},
		{"truncated bytes", "4301", false},
		{"huge bytes length", "5bffffffffffffffff00", false},
		{"huge array", "9bffffffffffffffff", false},
		{"huge map", "bb7fffffffffffffff", false},
		{"empty input", "", false},
		{"deep nesting", deep, false},
		{"nesting at the limit", strings.Repeat("81", maxNesting) + "00", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckCanonical(mustHex(t, tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("CheckCanonical = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidCBOR) {
				t.Fatalf("error %v does not wrap ErrInvalidCBOR", err)
			}
		})
	}
}

// TestMarshalCanonical shows that Marshal sorts keys the CTAP2 way and
// refuses raw values that are not canonical.
func TestMarshalCanonical(t *testing.T) {
	b, err := Marshal(map[any]int{"b": 1, 3: 2, "aa": 3, -1: 4})
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex(t, "a4 0302 2004 616201 62616103"); !bytes.Equal(b, want) {
		t.Errorf("Marshal = %x, want %x", b, want)
	}
	if _, err := Marshal(map[string]cbor.RawMessage{"x": {0x18, 0x01}}); !errors.Is(err, ErrInvalidCBOR) {
		t.Errorf("non-canonical raw value: %v", err)
	}
	var v map[string]int
	if err := Unmarshal(mustHex(t, "a16178f6"), &v); !errors.Is(err, ErrCBORUnexpectedType) {
		t.Errorf("Unmarshal null: %v", err)
	}
}

// decodeCase is one message body and what decoding it must give.
type decodeCase struct {
	name string
	in   string // hex
	want error  // nil: decodes
}

// Building blocks for hand-written message bodies.
const (
	hexCDH  = "5820" + "1111111111111111111111111111111111111111111111111111111111111111"
	hexRP   = "a1626964686d697469642e646b"                     // {"id": "mitid.dk"}
	hexUser = "a16269644401020304"                             // {"id": h'01020304'}
	hexAlgs = "81a263616c672664747970656a7075626c69632d6b6579" // [{"alg": -7, "type": "public-key"}]
)

func TestDecodeMakeCredentialRequestErrors(t *testing.T) {
	for _, tc := range []decodeCase{
		{"minimal", "a4" + "01" + hexCDH + "02" + hexRP + "03" + hexUser + "04" + hexAlgs, nil},
		{"empty pubKeyCredParams", "a4" + "01" + hexCDH + "02" + hexRP + "03" + hexUser + "0480", nil},
		{"unknown keys ignored", "a6" + "01" + hexCDH + "02" + hexRP + "03" + hexUser + "04" + hexAlgs + "0f00" + "6178f5", nil},
		{"empty", "", ErrMissingParameter},
		{"not a map", "80", ErrCBORUnexpectedType},
		{"missing rp", "a3" + "01" + hexCDH + "03" + hexUser + "04" + hexAlgs, ErrMissingParameter},
		{"missing pubKeyCredParams", "a3" + "01" + hexCDH + "02" + hexRP + "03" + hexUser, ErrMissingParameter},
		{"rp without id", "a4" + "01" + hexCDH + "02a0" + "03" + hexUser + "04" + hexAlgs, ErrMissingParameter},
		{"empty user id", "a4" + "01" + hexCDH + "02" + hexRP + "03a1626964 40" + "04" + hexAlgs, ErrMissingParameter},
		{"long user id", "a4" + "01" + hexCDH + "02" + hexRP + "03a16269645841" + strings.Repeat("00", 65) + "04" + hexAlgs, ErrInvalidLength},
		{"short clientDataHash", "a4" + "01" + "4100" + "02" + hexRP + "03" + hexUser + "04" + hexAlgs, ErrInvalidLength},
		{"clientDataHash as text", "a4" + "01" + "6161" + "02" + hexRP + "03" + hexUser + "04" + hexAlgs, ErrCBORUnexpectedType},
		{"rp as array", "a4" + "01" + hexCDH + "0280" + "03" + hexUser + "04" + hexAlgs, ErrCBORUnexpectedType},
		{"alg as text", "a4" + "01" + hexCDH + "02" + hexRP + "03" + hexUser + "0481a263616c67617864747970656a7075626c69632d6b6579", ErrCBORUnexpectedType},
		{"alg missing", "a4" + "01" + hexCDH + "02" + hexRP + "03" + hexUser + "0481a164747970656a7075626c69632d6b6579", ErrMissingParameter},
		{"option not bool", "a5" + "01" + hexCDH + "02" + hexRP + "03" + hexUser + "04" + hexAlgs + "07a162726b01", ErrCBORUnexpectedType},
		{"null value", "a5" + "01" + hexCDH + "02" + hexRP + "03" + hexUser + "04" + hexAlgs + "07f6", ErrCBORUnexpectedType},
		{"excludeList entry without id", "a5" + "01" + hexCDH + "02" + hexRP + "03" + hexUser + "04" + hexAlgs + "0581a164747970656a7075626c69632d6b6579", ErrMissingParameter},
		{"unsorted", "a4" + "02" + hexRP + "01" + hexCDH + "03" + hexUser + "04" + hexAlgs, ErrInvalidCBOR},
		{"trailing", "a4" + "01" + hexCDH + "02" + hexRP + "03" + hexUser + "04" + hexAlgs + "00", ErrInvalidCBOR},
		{"truncated", "a4" + "01" + hexCDH + "02" + hexRP + "03" + hexUser + "04", ErrInvalidCBOR},
		{"uppercase field name", "a4" + "01" + hexCDH + "02a1624944686d697469642e646b" + "03" + hexUser + "04" + hexAlgs, ErrMissingParameter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeMakeCredentialRequest(mustHex(t, tc.in))
			checkDecode(t, r, err, tc.want)
		})
	}
}

func checkDecode[T any](t *testing.T, v *T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil || v == nil {
			t.Fatalf("decode: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	if v != nil {
		t.Fatalf("value %+v returned with an error", v)
	}
	if !strings.HasPrefix(err.Error(), "ctap2: ") {
		t.Errorf("error text %q lacks the package prefix", err)
	}
}

func TestDecodeGetAssertionRequestErrors(t *testing.T) {
	for _, tc := range []decodeCase{
		{"minimal", "a2" + "01686d697469642e646b" + "02" + hexCDH, nil},
		{"missing rpId", "a1" + "02" + hexCDH, ErrMissingParameter},
		{"empty rpId", "a2" + "0160" + "02" + hexCDH, ErrMissingParameter},
		{"long clientDataHash", "a2" + "01686d697469642e646b" + "025821" + strings.Repeat("11", 33), ErrInvalidLength},
		{"allowList not array", "a3" + "01686d697469642e646b" + "02" + hexCDH + "03a0", ErrCBORUnexpectedType},
		{"pinUvAuthProtocol negative", "a3" + "01686d697469642e646b" + "02" + hexCDH + "0720", ErrCBORUnexpectedType},
		{"indefinite", "bf" + "01686d697469642e646b" + "02" + hexCDH + "ff", ErrInvalidCBOR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeGetAssertionRequest(mustHex(t, tc.in))
			checkDecode(t, r, err, tc.want)
		})
	}
}

func TestDecodeResponsesErrors(t *testing.T) {
	info := func(t *testing.T, in string, want error) {
		r, err := DecodeInfo(mustHex(t, in))
		checkDecode(t, r, err, want)
	}
	t.Run("info minimal", func(t *testing.T) { info(t, "a2"+"0181684649444f5f325f30"+"0350"+strings.Repeat("00", 16), nil) })
	t.Run("info short aaguid", func(t *testing.T) {
		info(t, "a2"+"0181684649444f5f325f30"+"034f"+strings.Repeat("00", 15), ErrInvalidLength)
	})
	t.Run("info no versions", func(t *testing.T) { info(t, "a2"+"0180"+"0350"+strings.Repeat("00", 16), ErrMissingParameter) })
	t.Run("info no aaguid", func(t *testing.T) { info(t, "a1"+"0181684649444f5f325f30", ErrMissingParameter) })

	authData := readVector(t, "authdata-attested.hex")
	assertionAD := readVector(t, "authdata-assertion.hex")
	att := func(t *testing.T, a *Attestation, want error) {
		b, err := Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		r, err := DecodeAttestation(b)
		checkDecode(t, r, err, want)
	}
	t.Run("none", func(t *testing.T) { att(t, &Attestation{Format: "none", AuthData: authData}, nil) })
	t.Run("none with sig", func(t *testing.T) {
		att(t, &Attestation{Format: "none", AuthData: authData, Statement: AttestationStatement{Sig: []byte{1}}}, ErrInvalidParameter)
	})
	t.Run("packed without sig", func(t *testing.T) {
		att(t, &Attestation{Format: "packed", AuthData: authData, Statement: AttestationStatement{Alg: -7}}, ErrMissingParameter)
	})
	t.Run("fido-u2f without cert", func(t *testing.T) {
		att(t, &Attestation{Format: "fido-u2f", AuthData: authData, Statement: AttestationStatement{Sig: []byte{1}}}, ErrMissingParameter)
	})
	t.Run("unknown format", func(t *testing.T) {
		att(t, &Attestation{Format: "tpm", AuthData: authData, Statement: AttestationStatement{Alg: -257, Sig: []byte{1}}}, nil)
	})
	t.Run("authData without AT", func(t *testing.T) {
		att(t, &Attestation{Format: "none", AuthData: assertionAD}, ErrInvalidParameter)
	})
	t.Run("bad authData", func(t *testing.T) {
		att(t, &Attestation{Format: "none", AuthData: authData[:40]}, ErrInvalidAuthData)
	})
	t.Run("no attStmt", func(t *testing.T) {
		b := mustMarshal(map[int]any{1: "none", 2: authData})
		r, err := DecodeAttestation(b)
		checkDecode(t, r, err, ErrMissingParameter)
	})

	as := func(t *testing.T, a *Assertion, want error) {
		b, err := Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		r, err := DecodeAssertion(b)
		checkDecode(t, r, err, want)
	}
	t.Run("assertion", func(t *testing.T) { as(t, &Assertion{AuthData: assertionAD, Signature: []byte{1}}, nil) })
	t.Run("assertion with user", func(t *testing.T) {
		as(t, &Assertion{AuthData: assertionAD, Signature: []byte{1}, User: &UserEntity{ID: []byte{9}}, NumberOfCredentials: 2}, nil)
	})
	t.Run("assertion user without id", func(t *testing.T) {
		as(t, &Assertion{AuthData: assertionAD, Signature: []byte{1}, User: &UserEntity{Name: "x", ID: []byte{}}}, ErrMissingParameter)
	})
	t.Run("assertion empty signature", func(t *testing.T) {
		as(t, &Assertion{AuthData: assertionAD, Signature: []byte{}}, ErrMissingParameter)
	})
	t.Run("assertion bad authData", func(t *testing.T) {
		as(t, &Assertion{AuthData: []byte{1, 2, 3}, Signature: []byte{1}}, ErrInvalidAuthData)
	})
}

// TestUnknownKeysDropped documents the one way a decode and re-encode is not
// exact: unknown keys, and most optional fields sent with their zero value,
// are dropped (pinUvAuthParam and pinUvAuthProtocol are kept: present is
// not absent for them).
func TestUnknownKeysDropped(t *testing.T) {
	base := "01" + hexCDH + "02" + hexRP + "03" + hexUser + "04" + hexAlgs
	in := mustHex(t, "a7"+base+"09 00"+"0f 6178"+"6178 f5") // pinUvAuthProtocol 0, 15: "x", "x": true
	r, err := DecodeMakeCredentialRequest(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := EncodeMakeCredentialRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	// The present pinUvAuthProtocol 0 is kept: it is a value, not an
	// absence (see TestPINUVAuthPresence).
	if want := mustHex(t, "a5"+base+"0900"); !bytes.Equal(out, want) {
		t.Fatalf("re-encoded %x, want %x", out, want)
	}
	if !subsetOf(out, in) {
		t.Fatal("re-encoding is not the input minus entries")
	}
}

func TestEncodeRequest(t *testing.T) {
	b, err := EncodeRequest(CmdGetInfo, nil)
	if err != nil || !bytes.Equal(b, []byte{CmdGetInfo}) {
		t.Fatalf("getInfo request %x %v", b, err)
	}
	var nilReq *GetAssertionRequest
	if b, err := EncodeRequest(CmdGetAssertion, nilReq); err != nil || len(b) != 1 {
		t.Fatalf("nil request %x %v", b, err)
	}
	r := vecGetAssertionRequest()
	b, err = EncodeRequest(CmdGetAssertion, r)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != CmdGetAssertion || !bytes.Equal(b[1:], readVector(t, "getassertion-request.hex")) {
		t.Fatalf("request %x", b)
	}
	r.ClientDataHash = r.ClientDataHash[:31]
	if _, err := EncodeRequest(CmdGetAssertion, r); !errors.Is(err, ErrInvalidLength) {
		t.Fatalf("short hash: %v", err)
	}
	if _, err := EncodeMakeCredentialRequest(&MakeCredentialRequest{
		ClientDataHash: vecMCHash[:], RP: RPEntity{ID: "x"}, User: UserEntity{ID: []byte{1}},
		PubKeyCredParams: []CredentialParameters{}, Extensions: map[string]cbor.RawMessage{"bad": {0xf6}},
	}); !errors.Is(err, ErrCBORUnexpectedType) {
		t.Fatalf("null extension value: %v", err)
	}
	if _, err := EncodeMakeCredentialRequest(&MakeCredentialRequest{
		ClientDataHash: vecMCHash[:], RP: RPEntity{ID: "x"}, User: UserEntity{ID: []byte{1}},
		PubKeyCredParams: []CredentialParameters{}, Extensions: map[string]cbor.RawMessage{"bad": nil},
	}); !errors.Is(err, ErrMissingParameter) {
		t.Fatalf("empty extension value: %v", err)
	}
}

func TestDecodeValues(t *testing.T) {
	r, err := DecodeMakeCredentialRequest(readVector(t, "makecredential-request.hex"))
	if err != nil {
		t.Fatal(err)
	}
	if want := vecMakeCredentialRequest(); !reflect.DeepEqual(r, want) {
		t.Errorf("decoded\n %+v\nwant\n %+v", r, want)
	}
	info, err := DecodeInfo(readVector(t, "getinfo-response.hex"))
	if err != nil {
		t.Fatal(err)
	}
	if want := vecInfo(); !reflect.DeepEqual(info, want) {
		t.Errorf("decoded\n %+v\nwant\n %+v", info, want)
	}
}

func TestCommandName(t *testing.T) {
	for cmd, want := range map[byte]string{
		CmdMakeCredential: "authenticatorMakeCredential", CmdGetAssertion: "authenticatorGetAssertion",
		CmdGetInfo: "authenticatorGetInfo", CmdClientPIN: "authenticatorClientPIN", CmdReset: "authenticatorReset",
		CmdGetNextAssertion: "authenticatorGetNextAssertion", CmdSelection: "authenticatorSelection", 0x42: "command 0x42",
	} {
		if got := CommandName(cmd); got != want {
			t.Errorf("CommandName(%#x) = %q", cmd, got)
		}
	}
}

// TestPINUVAuthPresence: a zero-length pinUvAuthParam is a present
// parameter (CTAP 2.1 §6.1.2 steps 1 and 2, §6.2.2 steps 1 and 2 treat it
// so), and so is a pinUvAuthProtocol of 0. Both survive encoding and
// decoding, distinct from absent ones.
func TestPINUVAuthPresence(t *testing.T) {
	zero := uint64(0)
	one := uint64(1)
	base := func() *MakeCredentialRequest {
		return &MakeCredentialRequest{
			ClientDataHash:   make([]byte, 32),
			RP:               RPEntity{ID: "example.dk"},
			User:             UserEntity{ID: []byte{1}},
			PubKeyCredParams: []CredentialParameters{{Type: CredentialTypePublicKey, Alg: AlgES256}},
		}
	}
	for _, tt := range []struct {
		name     string
		param    []byte
		protocol *uint64
		keys     map[int]string // keys 8 and 9 as encoded, in hex
	}{
		{"both absent", nil, nil, map[int]string{}},
		{"zero-length param", []byte{}, nil, map[int]string{8: "40"}},
		{"zero-length param, protocol 1", []byte{}, &one, map[int]string{8: "40", 9: "01"}},
		{"protocol 0 alone", nil, &zero, map[int]string{9: "00"}},
		{"two-byte param, protocol 1", []byte{1, 2}, &one, map[int]string{8: "420102", 9: "01"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			r.PINUVAuthParam, r.PINUVAuthProtocol = tt.param, tt.protocol
			b, err := EncodeMakeCredentialRequest(r)
			if err != nil {
				t.Fatal(err)
			}
			var m map[int]cbor.RawMessage
			if err := Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			got := map[int]string{}
			for _, k := range []int{8, 9} {
				if v, ok := m[k]; ok {
					got[k] = hex.EncodeToString(v)
				}
			}
			if !reflect.DeepEqual(got, tt.keys) {
				t.Errorf("keys 8 and 9 encoded as %v, want %v", got, tt.keys)
			}
			d, err := DecodeMakeCredentialRequest(b)
			if err != nil {
				t.Fatal(err)
			}
			if (d.PINUVAuthParam == nil) != (tt.param == nil) || !bytes.Equal(d.PINUVAuthParam, tt.param) {
				t.Errorf("pinUvAuthParam decoded as %#v, want %#v", d.PINUVAuthParam, tt.param)
			}
			if (d.PINUVAuthProtocol == nil) != (tt.protocol == nil) || tt.protocol != nil && *d.PINUVAuthProtocol != *tt.protocol {
				t.Errorf("pinUvAuthProtocol decoded as %v, want %v", d.PINUVAuthProtocol, tt.protocol)
			}
			g := &GetAssertionRequest{RPID: "example.dk", ClientDataHash: make([]byte, 32), PINUVAuthParam: tt.param, PINUVAuthProtocol: tt.protocol}
			gb, err := EncodeGetAssertionRequest(g)
			if err != nil {
				t.Fatal(err)
			}
			gd, err := DecodeGetAssertionRequest(gb)
			if err != nil {
				t.Fatal(err)
			}
			if (gd.PINUVAuthParam == nil) != (tt.param == nil) || (gd.PINUVAuthProtocol == nil) != (tt.protocol == nil) {
				t.Errorf("getAssertion: decoded %#v / %v", gd.PINUVAuthParam, gd.PINUVAuthProtocol)
			}
		})
	}
}

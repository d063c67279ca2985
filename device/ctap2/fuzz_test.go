package ctap2

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// What "round-trips exactly" means here.
//
// The decoders accept only input in the CTAP2 canonical CBOR encoding form
// (CTAP 2.1 §8), so every accepted input is already canonical. Decoding still
// loses two things, by design: map keys the types do not know (ignored for
// forward compatibility) and optional fields sent with their zero value (an
// explicit pinUvAuthProtocol 0, an empty excludeList, ...). So for every input
// x a decoder accepts, with c the re-encoding of the decoded value:
//
//   - c is canonical and decodes again, and re-encoding that gives c
//     byte for byte (c is a fixed point);
//   - c is x with zero or more map entries removed and nothing else changed
//     (subsetOf); in particular c == x whenever nothing was dropped, which is
//     the case for every vector in testdata/ctap2.
//
// Authenticator data keeps all its bytes (it is signed), so ParseAuthData
// followed by Encode must give x exactly.

func addSeeds(f *testing.F, extra ...[]byte) {
	for _, b := range vectorFiles(f) {
		f.Add(b)
	}
	for _, b := range extra {
		f.Add(b)
	}
}

func fuzzMessage[T any](f *testing.F, dec func([]byte) (*T, error), enc func(*T) ([]byte, error)) {
	addSeeds(f, nil, []byte{0xa0}, []byte{0xa1, 0x01, 0x00}, []byte{0xf6}, []byte{0xbf, 0xff})
	f.Fuzz(func(t *testing.T, x []byte) {
		v, err := dec(x)
		if err != nil {
			if v != nil {
				t.Fatalf("value %+v returned with error %v", v, err)
			}
			return
		}
		c, err := enc(v)
		if err != nil {
			t.Fatalf("decoded value does not encode: %v", err)
		}
		if err := CheckCanonical(c); err != nil {
			t.Fatalf("re-encoding is not canonical: %v", err)
		}
		v2, err := dec(c)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		c2, err := enc(v2)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("not a fixed point: %x then %x (%v)", c, c2, err)
		}
		if !subsetOf(c, x) {
			t.Fatalf("re-encoding changed more than dropping entries:\n in  %x\n out %x", x, c)
		}
		if len(c) == len(x) && !bytes.Equal(c, x) {
			t.Fatalf("same length, different bytes:\n in  %x\n out %x", x, c)
		}
	})
}

func FuzzDecodeMakeCredentialRequest(f *testing.F) {
	fuzzMessage(f, DecodeMakeCredentialRequest, EncodeMakeCredentialRequest)
}

func FuzzDecodeGetAssertionRequest(f *testing.F) {
	fuzzMessage(f, DecodeGetAssertionRequest, EncodeGetAssertionRequest)
}

func FuzzDecodeInfo(f *testing.F) { fuzzMessage(f, DecodeInfo, EncodeInfo) }

func FuzzDecodeAttestation(f *testing.F) { fuzzMessage(f, DecodeAttestation, EncodeAttestation) }

func FuzzDecodeAssertion(f *testing.F) { fuzzMessage(f, DecodeAssertion, EncodeAssertion) }

func FuzzParseAuthData(f *testing.F) {
	addSeeds(f, make([]byte, 37), append(make([]byte, 32), FlagED, 0, 0, 0, 0, 0xa0))
	f.Fuzz(func(t *testing.T, x []byte) {
		ad, err := ParseAuthData(x)
		if err != nil {
			if ad != nil {
				t.Fatal("value returned with an error")
			}
			return
		}
		c, err := ad.Encode()
		if err != nil {
			t.Fatalf("parsed value does not encode: %v", err)
		}
		if !bytes.Equal(c, x) {
			t.Fatalf("round trip differs:\n in  %x\n out %x", x, c)
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	addSeeds(f, mustHex(f, "a4 0101 0327 2006 215820"+strings.Repeat("00", 32)))
	f.Fuzz(func(t *testing.T, x []byte) {
		k, err := ParsePublicKey(x)
		if err != nil {
			if k != nil {
				t.Fatal("key returned with an error")
			}
			return
		}
		c, err := EncodePublicKey(k)
		if err != nil {
			t.Fatalf("parsed key does not encode: %v", err)
		}
		k2, err := ParsePublicKey(c)
		if err != nil {
			t.Fatalf("re-encoding does not parse: %v", err)
		}
		c2, err := EncodePublicKey(k2)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("not a fixed point: %x then %x", c, c2)
		}
		if !subsetOf(c, x) {
			t.Fatalf("re-encoding changed more than dropping labels:\n in  %x\n out %x", x, c)
		}
	})
}

// FuzzServeCTAP2 feeds random requests to a Handler and to a proxy (Handler
// over Client over that Handler): both must answer, with the same bytes.
func FuzzServeCTAP2(f *testing.F) {
	for name, b := range vectorFiles(f) {
		switch {
		case strings.HasPrefix(name, "makecredential-request"):
			f.Add(append([]byte{CmdMakeCredential}, b...))
		case strings.HasPrefix(name, "getassertion-request"):
			f.Add(append([]byte{CmdGetAssertion}, b...))
		default:
			f.Add(append([]byte{CmdGetAssertion}, b...))
		}
	}
	for _, cmd := range []byte{CmdGetInfo, CmdReset, CmdGetNextAssertion, CmdSelection, CmdClientPIN, 0x00, 0x40, 0xff} {
		f.Add([]byte{cmd})
	}
	f.Add([]byte{})
	inner := NewHandler(newFakeAuth(f), HandlerOptions{})
	proxy := NewHandler(NewClient(serveMessenger(inner)), HandlerOptions{})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, req []byte) {
		a := inner.ServeCTAP2(ctx, req)
		if len(a) == 0 {
			t.Fatal("empty answer")
		}
		if b := proxy.ServeCTAP2(ctx, req); !bytes.Equal(a, b) {
			t.Fatalf("handler answered %x, proxy %x", a, b)
		}
	})
}

// FuzzCheckCanonical compares the canonical scanner with the well-formedness
// check of fxamacker/cbor: whatever the scanner accepts must be well-formed,
// and Marshal must accept it as a raw value.
func FuzzCheckCanonical(f *testing.F) {
	addSeeds(f, []byte{0x18, 0x01}, []byte{0x9f, 0xff}, []byte{0xc0, 0x00})
	f.Fuzz(func(t *testing.T, x []byte) {
		if CheckCanonical(x) != nil {
			return
		}
		if err := decMode.Wellformed(x); err != nil {
			t.Fatalf("canonical but not well-formed: %v", err)
		}
		if _, err := mapItemLen(x); err == nil && wellFormedMap(x) != nil {
			t.Fatal("map scanners disagree")
		}
	})
}

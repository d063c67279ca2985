package ctap2

import (
	"crypto/sha256"
	"testing"
)

func BenchmarkGetAssertionRequest(b *testing.B) {
	r := vecGetAssertionRequest()
	b.ReportAllocs()
	for b.Loop() {
		enc, err := EncodeRequest(CmdGetAssertion, r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeGetAssertionRequest(enc[1:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAssertionResponse(b *testing.B) {
	as, err := DecodeAssertion(readVector(b, "getassertion-response.hex"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		enc, err := EncodeAssertion(as)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeAssertion(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyAssertion(b *testing.B) {
	k := testKey(b, vecCredLabel)
	key := EncodeES256PublicKey(&k.PublicKey)
	authData := readVector(b, "authdata-assertion.hex")
	cdh := sha256.Sum256([]byte("client data"))
	sig := sign(b, k, authData, cdh[:])
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyAssertion(key, authData, cdh[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifySignature is VerifyAssertion without parsing the COSE key,
// for comparison with the raw ECDSA verify throughput.
func BenchmarkVerifySignature(b *testing.B) {
	k := testKey(b, vecCredLabel)
	authData := readVector(b, "authdata-assertion.hex")
	cdh := sha256.Sum256([]byte("client data"))
	sig := sign(b, k, authData, cdh[:])
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifySignature(&k.PublicKey, authData, cdh[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

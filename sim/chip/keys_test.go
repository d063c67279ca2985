package chip

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/authbench/authbench/device/ctap2"
)

// The n-th credential of a chip has the ID HKDF-SHA256(seed, salt,
// "credential id" || n) of RFC 5869, however the chip got there: made
// anew, or loaded from a saved state in the middle of its sequence.
func TestCredentialIDsAreHKDFOfTheSeed(t *testing.T) {
	seed := testSeed("hkdf ids")
	want := func(n uint64) []byte {
		info := binary.BigEndian.AppendUint64([]byte("credential id"), n)
		out, err := hkdf.Key(sha256.New, seed, []byte(hkdfSalt), string(info), credentialIDLen)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	c := testChip(t, Options{Seed: seed})
	for n := uint64(1); n <= 2; n++ {
		if m := mustMake(t, c, makeReq("example.dk", "alice", false)); !bytes.Equal(m.id, want(n)) {
			t.Fatalf("credential %d has ID %x, want %x", n, m.id, want(n))
		}
	}
	var saved bytes.Buffer
	if err := c.Save(&saved); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(&saved, Options{Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	defer loaded.Close()
	if m := mustMake(t, loaded, makeReq("example.dk", "bob", false)); !bytes.Equal(m.id, want(3)) {
		t.Fatalf("the loaded chip's next credential has ID %x, want %x", m.id, want(3))
	}
}

// With DeterministicSignatures two chips of one seed sign the same
// registration with the same bytes (RFC 6979), which verify; without it
// they sign it with different ones. Assertions verify either way.
func TestDeterministicSignatures(t *testing.T) {
	for _, det := range []bool{false, true} {
		seed := testSeed("signatures")
		var sigs [][]byte
		for range 2 {
			c := testChip(t, Options{Seed: seed, DeterministicSignatures: det})
			m := mustMake(t, c, makeReq("example.dk", "alice", false))
			if err := ctap2.VerifySignature(c.Certificate().PublicKey, m.att.AuthData, makeReq("example.dk", "alice", false).ClientDataHash, m.att.Statement.Sig); err != nil {
				t.Fatalf("deterministic %v: attestation signature: %v", det, err)
			}
			sigs = append(sigs, m.att.Statement.Sig)
			mustAssert(t, c, getReq("example.dk", m.id), m.pub)
		}
		if same := bytes.Equal(sigs[0], sigs[1]); same != det {
			t.Errorf("deterministic %v: two chips of one seed signed one registration alike: %v", det, same)
		}
	}
}

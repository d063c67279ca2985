package chip

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"testing"
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

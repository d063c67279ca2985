package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestMerkleVectors: the tree hash of RFC 6962 §2.1, checked against the
// Certificate Transparency test vectors (the roots of the first 1 to 8 of
// these leaves), recomputed independently in Python.
func TestMerkleVectors(t *testing.T) {
	leaves := []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}
	roots := []string{
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	}
	var hashes []Hash
	for i, l := range leaves {
		hashes = append(hashes, sha256.Sum256(append([]byte{0}, mustHex(t, l)...)))
		if got := merkle(hashes); got.String() != roots[i] {
			t.Errorf("root of %d leaves = %v, want %s", i+1, got, roots[i])
		}
	}
	if got, want := MerkleRoot(nil), Hash(sha256.Sum256(nil)); got != want {
		t.Errorf("root of no heads = %v, want %v", got, want)
	}
}

// TestMerkleRootOfHeads pins the leaf encoding of a head (computed in
// Python: SHA-256(0x00 | u32 len | chain | u64 seq | hash)).
func TestMerkleRootOfHeads(t *testing.T) {
	heads := []Head{
		{Chain: "", Seq: 3, Hash: sha256.Sum256([]byte("h0"))},
		{Chain: "id-1", Seq: 7, Hash: sha256.Sum256([]byte("h1"))},
		{Chain: "id-2", Seq: 1, Hash: sha256.Sum256([]byte("h2"))},
	}
	if got := MerkleRoot(heads).String(); got != "149922a1c633271e4b3c0a241a78ac6a419e715148dc15880c4d5997bdd528dd" {
		t.Fatalf("MerkleRoot = %s", got)
	}
	moved := append([]Head(nil), heads...)
	moved[1].Seq = 8
	if MerkleRoot(moved) == MerkleRoot(heads) {
		t.Fatal("a moved head keeps the root")
	}
}

// goldenCheckpoints are a full checkpoint and the delta that follows it.
func goldenCheckpoints() []*Checkpoint {
	h := func(s string) Hash { return sha256.Sum256([]byte(s)) }
	first := &Checkpoint{Seq: 1, Time: time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC), KeyID: "k-0a1b2c3d", Full: true,
		Heads: []Head{{Chain: "", Seq: 2, Hash: h("a")}, {Chain: "id-1", Seq: 5, Hash: h("b")}, {Chain: "id-2", Seq: 1, Hash: h("c")}}}
	first.Chains, first.Root = 3, MerkleRoot(first.Heads)
	second := &Checkpoint{Seq: 2, Time: first.Time.Add(time.Minute), Prev: first.Hash(), KeyID: "k-0a1b2c3d",
		Heads: []Head{{Chain: "id-1", Seq: 9, Hash: h("d")}, {Chain: "id-3", Seq: 1, Hash: h("e")}}}
	all := []Head{first.Heads[0], second.Heads[0], first.Heads[2], second.Heads[1]}
	second.Chains, second.Root = 4, MerkleRoot(all)
	return []*Checkpoint{first, second}
}

func TestCheckpointLayout(t *testing.T) {
	c := goldenCheckpoints()[1]
	b, _ := c.MarshalBinary()
	var want bytes.Buffer
	want.Write(mustHex(t, `01 0000000000000002 00062f46ad309940`))
	want.Write(c.Prev[:])
	want.Write(mustHex(t, `0000000a 6b2d3061316232633364 00 0000000000000004`))
	want.Write(c.Root[:])
	want.Write(mustHex(t, `00000002 00000004 69642d31 0000000000000009`))
	want.Write(c.Heads[0].Hash[:])
	want.Write(mustHex(t, `00000004 69642d33 0000000000000001`))
	want.Write(c.Heads[1].Hash[:])
	if !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("MarshalBinary =\n%x\nwant\n%x", b, want.Bytes())
	}
	if c.Hash() != sha256.Sum256(b) {
		t.Fatal("Hash is not SHA-256 of the canonical form")
	}
}

// TestCheckpointGolden pins the stored form of checkpoints; the files seed
// FuzzParseCheckpoint. Refresh with -update (only on purpose).
func TestCheckpointGolden(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "audit", "checkpoints")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range goldenCheckpoints() {
		checkGolden(t, filepath.Join(dir, fmt.Sprintf("checkpoint-%d.hex", c.Seq)), c)
		b, _ := c.MarshalBinary()
		back, err := ParseCheckpoint(b)
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Errorf("ParseCheckpoint = %+v, %v\nwant %+v", back, err, c)
		}
	}
}

func TestParseCheckpointRefuses(t *testing.T) {
	c := goldenCheckpoints()[1]
	good, _ := c.MarshalBinary()
	with := func(f func(c *Checkpoint)) []byte {
		cc := *c
		cc.Heads = append([]Head(nil), c.Heads...)
		f(&cc)
		b, _ := cc.MarshalBinary()
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-1]},
		{"byte added", append(bytes.Clone(good), 0)},
		{"version 2", append([]byte{2}, good[1:]...)},
		{"seq 0", with(func(c *Checkpoint) { c.Seq = 0 })},
		{"no key ID", with(func(c *Checkpoint) { c.KeyID = "" })},
		{"key ID of 65 bytes", with(func(c *Checkpoint) { c.KeyID = strings.Repeat("k", 65) })},
		{"full 2", func() []byte {
			b := bytes.Clone(good)
			b[1+8+8+32+4+10] = 2
			return b
		}()},
		{"head at seq 0", with(func(c *Checkpoint) { c.Heads[0].Seq = 0 })},
		{"heads out of order", with(func(c *Checkpoint) { c.Heads[0], c.Heads[1] = c.Heads[1], c.Heads[0] })},
		{"head repeated", with(func(c *Checkpoint) { c.Heads[1].Chain = c.Heads[0].Chain })},
		{"full with too few heads", with(func(c *Checkpoint) { c.Full = true })},
		{"huge head count", func() []byte {
			b := bytes.Clone(good)
			at := 1 + 8 + 8 + 32 + 4 + 10 + 1 + 8 + 32
			copy(b[at:], []byte{0xff, 0xff, 0xff, 0xff})
			return b
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCheckpoint(tc.in)
			if c != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseCheckpoint = %+v, %v", c, err)
			}
		})
	}
}

// FuzzParseCheckpoint: ParseCheckpoint never panics, refuses with
// ErrMalformed, and what it accepts encodes back to exactly the input.
func FuzzParseCheckpoint(f *testing.F) {
	seeds(f, "checkpoints/*.hex", func(b []byte) {
		raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCheckpoint(b)
		if err != nil {
			if c != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseCheckpoint = %+v, %v", c, err)
			}
			return
		}
		out, _ := c.MarshalBinary()
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip:\n%x\n%x", b, out)
		}
	})
}

package secrets

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testKey returns a fixed key whose bytes are seed, seed+1, ...
func testKey(seed byte) []byte {
	k := make([]byte, KeySize)
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

func newTestKeyring(t testing.TB) *Keyring {
	t.Helper()
	k, err := NewKeyring("k1", testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSealVector checks Seal against the AEAD_XChaCha20_Poly1305 vector of
// draft-irtf-cfrg-xchacha-03 §A.3.1, with the nonce fed through Rand.
func TestSealVector(t *testing.T) {
	key := mustHex(t, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
	nonce := mustHex(t, "404142434445464748494a4b4c4d4e4f5051525354555657")
	ad := mustHex(t, "50515253c0c1c2c3c4c5c6c7")
	pt := []byte("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
	want := mustHex(t, `bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb
		731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452
		2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9
		21f9664c97637da9768812f615c68b13b52e c0875924c1c7987947deafd8780acf49`)

	k, err := NewKeyring("draft", key)
	if err != nil {
		t.Fatal(err)
	}
	k.Rand = bytes.NewReader(nonce)
	s, err := k.Seal(pt, ad)
	if err != nil {
		t.Fatal(err)
	}
	wantBlob := append(append([]byte{blobVersion}, nonce...), want...)
	if s.KeyID != "draft" || !bytes.Equal(s.Blob, wantBlob) {
		t.Fatalf("Seal = %s %x\nwant draft %x", s.KeyID, s.Blob, wantBlob)
	}
	got, err := k.Open(s, ad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}
}

func TestSealOpen(t *testing.T) {
	k := newTestKeyring(t)
	ad := AssociatedData("otp-secret", "a1")
	for _, n := range []int{0, 1, 20, 64, 4096} {
		pt := bytes.Repeat([]byte{0xA5}, n)
		s, err := k.Seal(pt, ad)
		if err != nil {
			t.Fatal(err)
		}
		if s.KeyID != "k1" || len(s.Blob) != n+blobOverhead {
			t.Fatalf("%d bytes: sealed %v", n, s)
		}
		got, err := k.Open(s, ad)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes: Open = %x, %v", n, got, err)
		}
		s2, _ := k.Seal(pt, ad)
		if bytes.Equal(s.Blob, s2.Blob) {
			t.Fatalf("%d bytes: two seals gave the same blob (nonce reused)", n)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	k := newTestKeyring(t)
	if err := k.AddKey("k2", testKey(2)); err != nil {
		t.Fatal(err)
	}
	ad := AssociatedData("otp-secret", "a1")
	s, err := k.Seal([]byte("JBSWY3DPEHPK3PXP"), ad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) Sealed {
		b := bytes.Clone(s.Blob)
		b[i] ^= 0x01
		return Sealed{KeyID: s.KeyID, Blob: b}
	}
	tests := []struct {
		name string
		s    Sealed
		ad   []byte
		want error
	}{
		{"copied to another authenticator", s, AssociatedData("otp-secret", "a2"), ErrOpen},
		{"other purpose", s, AssociatedData("app-key", "a1"), ErrOpen},
		{"no associated data", s, nil, ErrOpen},
		{"unknown key", Sealed{KeyID: "k9", Blob: s.Blob}, ad, ErrUnknownKey},
		{"empty key ID", Sealed{Blob: s.Blob}, ad, ErrUnknownKey},
		{"other key of the ring", Sealed{KeyID: "k2", Blob: s.Blob}, ad, ErrOpen},
		{"empty blob", Sealed{KeyID: "k1"}, ad, ErrOpen},
		{"truncated to the overhead", Sealed{KeyID: "k1", Blob: s.Blob[:blobOverhead-1]}, ad, ErrOpen},
		{"tag cut", Sealed{KeyID: "k1", Blob: s.Blob[:len(s.Blob)-1]}, ad, ErrOpen},
		{"byte appended", Sealed{KeyID: "k1", Blob: append(bytes.Clone(s.Blob), 0)}, ad, ErrOpen},
		{"version", flip(0), ad, ErrOpen},
		{"nonce", flip(5), ad, ErrOpen},
		{"ciphertext", flip(1 + 24 + 3), ad, ErrOpen},
		{"tag", flip(len(s.Blob) - 1), ad, ErrOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := k.Open(tt.s, tt.ad)
			var oe *OpenError
			if pt != nil || !errors.Is(err, tt.want) || !errors.As(err, &oe) || oe.KeyID != tt.s.KeyID {
				t.Fatalf("Open = %q, %v; want %v", pt, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "secrets: ") {
				t.Errorf("message %q lacks the package prefix", err)
			}
		})
	}
	// Every single-bit change anywhere in the blob is refused.
	for i := range s.Blob {
		for bit := range 8 {
			b := bytes.Clone(s.Blob)
			b[i] ^= 1 << bit
			if _, err := k.Open(Sealed{KeyID: "k1", Blob: b}, ad); !errors.Is(err, ErrOpen) {
				t.Fatalf("byte %d bit %d: %v", i, bit, err)
			}
		}
	}
}

func TestAssociatedData(t *testing.T) {
	if bytes.Equal(AssociatedData("ab", "c"), AssociatedData("a", "bc")) {
		t.Error("parts are ambiguous")
	}
	if bytes.Equal(AssociatedData("a"), AssociatedData("a", "")) {
		t.Error("an empty part vanishes")
	}
	if got, want := AssociatedData("pin", "a1"), mustHex(t, "00000003 70696e 00000002 6131"); !bytes.Equal(got, want) {
		t.Errorf("AssociatedData = %x, want %x", got, want)
	}
}

func TestRotateReseal(t *testing.T) {
	k := newTestKeyring(t)
	ad := AssociatedData("app-key", "a1")
	old, err := k.Seal([]byte("secret"), ad)
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if id == "k1" || k.Current() != id || !strings.HasPrefix(id, "k-") || len(k.IDs()) != 2 {
		t.Fatalf("after Rotate: %v (new %s)", k, id)
	}
	s, _ := k.Seal([]byte("secret"), ad)
	if s.KeyID != id {
		t.Fatalf("Seal after Rotate used %s", s.KeyID)
	}
	if pt, err := k.Open(old, ad); err != nil || string(pt) != "secret" {
		t.Fatalf("old value after Rotate: %q, %v", pt, err)
	}

	re, changed, err := k.Reseal(old, ad)
	if err != nil || !changed || re.KeyID != id {
		t.Fatalf("Reseal = %v, %v, %v", re, changed, err)
	}
	same, changed, err := k.Reseal(re, ad)
	if err != nil || changed || !bytes.Equal(same.Blob, re.Blob) {
		t.Fatalf("Reseal of a current value = %v, %v, %v", same, changed, err)
	}
	if _, _, err := k.Reseal(old, AssociatedData("app-key", "a2")); !errors.Is(err, ErrOpen) {
		t.Fatalf("Reseal with other associated data: %v", err)
	}

	if err := k.RemoveKey(id); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("RemoveKey(current) = %v", err)
	}
	if err := k.RemoveKey("k1"); err != nil {
		t.Fatal(err)
	}
	if err := k.RemoveKey("k1"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("RemoveKey twice = %v", err)
	}
	if _, err := k.Open(old, ad); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Open under a removed key = %v", err)
	}
	if pt, err := k.Open(re, ad); err != nil || string(pt) != "secret" {
		t.Fatalf("resealed value: %q, %v", pt, err)
	}

	// Two-step rotation across replicas: add first, switch later.
	if err := k.AddKey("k3", testKey(3)); err != nil {
		t.Fatal(err)
	}
	if k.Current() != id {
		t.Fatal("AddKey changed the current key")
	}
	if err := k.SetCurrent("k3"); err != nil || k.Current() != "k3" {
		t.Fatalf("SetCurrent = %v", err)
	}
	if err := k.SetCurrent("nope"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("SetCurrent(unknown) = %v", err)
	}
}

func TestAddKey(t *testing.T) {
	tests := []struct {
		name string
		id   string
		key  []byte
		ok   bool
	}{
		{"same key again", "k1", testKey(1), true},
		{"new", "2024-01.main_B", testKey(9), true},
		{"taken", "k1", testKey(2), false},
		{"empty ID", "", testKey(2), false},
		{"long ID", strings.Repeat("k", MaxKeyIDLen+1), testKey(2), false},
		{"longest ID", strings.Repeat("k", MaxKeyIDLen), testKey(2), true},
		{"space", "k 1", testKey(2), false},
		{"slash", "k/1", testKey(2), false},
		{"short key", "k5", testKey(2)[:31], false},
		{"long key", "k5", append(testKey(2), 0), false},
		{"zero key", "k5", make([]byte, KeySize), false},
		{"nil key", "k5", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newTestKeyring(t)
			err := k.AddKey(tt.id, tt.key)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrKeyFile)) {
				t.Fatalf("AddKey = %v", err)
			}
		})
	}
	// The keyring keeps its own copy.
	key := testKey(7)
	k, _ := NewKeyring("k7", key)
	s, _ := k.Seal([]byte("x"), nil)
	clear(key)
	if _, err := k.Open(s, nil); err != nil {
		t.Fatalf("changing the caller's slice changed the key: %v", err)
	}
	// The zero Keyring seals nothing.
	var zero Keyring
	if _, err := zero.Seal([]byte("x"), nil); err == nil {
		t.Fatal("the zero Keyring sealed")
	}
}

func TestKeyID(t *testing.T) {
	a, b := KeyID(testKey(1)), KeyID(testKey(2))
	if a == b || len(a) != 10 || !strings.HasPrefix(a, "k-") || KeyID(testKey(1)) != a {
		t.Fatalf("KeyID: %s %s", a, b)
	}
	if err := checkKeyID(a); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateKeyring(t *testing.T) {
	k, err := GenerateKeyring(bytes.NewReader(testKey(40)))
	if err != nil || k.Current() != KeyID(testKey(40)) {
		t.Fatalf("GenerateKeyring = %v, %v", k, err)
	}
	if _, err := GenerateKeyring(bytes.NewReader(nil)); err == nil {
		t.Fatal("GenerateKeyring without randomness succeeded")
	}
	k.Rand = bytes.NewReader(nil)
	if _, err := k.Seal([]byte("x"), nil); err == nil {
		t.Fatal("Seal without randomness succeeded")
	}
}

// TestKeyringConcurrent seals and opens from several goroutines while keys
// are added and rotated; run with -race. Every goroutine is joined.
func TestKeyringConcurrent(t *testing.T) {
	k := newTestKeyring(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 4 {
		wg.Go(func() {
			ad := AssociatedData("otp-secret", fmt.Sprint(g))
			for i := range 200 {
				pt := []byte(fmt.Sprint(g, i))
				s, err := k.Seal(pt, ad)
				if err == nil {
					var got []byte
					got, err = k.Open(s, ad)
					if err == nil && !bytes.Equal(got, pt) {
						err = fmt.Errorf("got %q, want %q", got, pt)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if _, err := k.Rotate(); err != nil {
				errs <- err
				return
			}
			_ = k.String()
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

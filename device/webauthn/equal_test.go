package webauthn

import "testing"

// TestEqualStrings checks the comparison of a client data challenge with
// the ceremony's: equal only for the same bytes, whichever byte differs.
func TestEqualStrings(t *testing.T) {
	want := Encode([]byte("a registration challenge, 32 B.."))
	flip := func(i int) string {
		b := []byte(want)
		b[i] ^= 1
		return string(b)
	}
	for _, c := range []struct {
		name string
		a, b string
		eq   bool
	}{
		{"same", want, want, true},
		{"copy", string([]byte(want)), want, true},
		{"both empty", "", "", true},
		{"first byte", flip(0), want, false},
		{"last byte", flip(len(want) - 1), want, false},
		{"prefix", want[:len(want)-1], want, false},
		{"longer", want + "A", want, false},
		{"empty", "", want, false},
	} {
		if got := equalStrings(c.a, c.b); got != c.eq {
			t.Errorf("%s: equalStrings = %v, want %v", c.name, got, c.eq)
		}
		if got := equalStrings(c.b, c.a); got != c.eq {
			t.Errorf("%s (swapped): equalStrings = %v, want %v", c.name, got, c.eq)
		}
	}
}

package ctap2

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdataDir holds the vectors of this package (relative to the package
// directory, where go test runs).
const testdataDir = "../../testdata/ctap2"

// parseHexFile reads the hex format of testdata: hex digits, any whitespace,
// and comments from '#' to the end of the line.
func parseHexFile(text string) ([]byte, error) {
	var sb strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	return hex.DecodeString(sb.String())
}

func readVector(tb testing.TB, name string) []byte {
	tb.Helper()
	text, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		tb.Fatal(err)
	}
	b, err := parseHexFile(string(text))
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return b
}

// vectorFiles returns the contents of every testdata/ctap2/*.hex file whose
// name starts with one of the prefixes (all files when none are given).
func vectorFiles(tb testing.TB, prefixes ...string) map[string][]byte {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join(testdataDir, "*.hex"))
	if err != nil {
		tb.Fatal(err)
	}
	out := make(map[string][]byte)
	for _, path := range names {
		name := filepath.Base(path)
		match := len(prefixes) == 0
		for _, p := range prefixes {
			match = match || strings.HasPrefix(name, p)
		}
		if match {
			out[name] = readVector(tb, name)
		}
	}
	if len(out) == 0 {
		tb.Fatalf("no vectors in %s for %q", testdataDir, prefixes)
	}
	return out
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// testKey derives a fixed P-256 key from a label, so vectors can be checked
// against the key that made them.
func testKey(tb testing.TB, label string) *ecdsa.PrivateKey {
	tb.Helper()
	d := sha256.Sum256([]byte(label))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// subsetOf reports whether the CBOR item c equals the CBOR item x with zero
// or more map entries removed, at any depth: same types, arrays of the same
// length, equal scalars. Both must be well-formed.
func subsetOf(c, x []byte) bool {
	sc, sx := &scanner{b: c}, &scanner{b: x}
	endC, endX, ok := subItem(sc, 0, sx, 0)
	return ok && endC == len(c) && endX == len(x)
}

func subItem(sc *scanner, pc int, sx *scanner, px int) (int, int, bool) {
	mc, _, ac, nc, err1 := sc.head(pc)
	mx, _, ax, nx, err2 := sx.head(px)
	endC, err3 := sc.item(pc, 0)
	endX, err4 := sx.item(px, 0)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || mc != mx {
		return 0, 0, false
	}
	switch mc {
	case majorArray:
		if ac != ax {
			return 0, 0, false
		}
		for i := uint64(0); i < ac; i++ {
			var ok bool
			if nc, nx, ok = subItem(sc, nc, sx, nx); !ok {
				return 0, 0, false
			}
		}
	case majorMap:
		type entry struct {
			key []byte
			val int
		}
		var xs []entry
		p := nx
		for i := uint64(0); i < ax; i++ {
			k, _ := sx.item(p, 0)
			xs = append(xs, entry{sx.b[p:k], k})
			p, _ = sx.item(k, 0)
		}
		p = nc
		for i := uint64(0); i < ac; i++ {
			k, _ := sc.item(p, 0)
			key := sc.b[p:k]
			found := false
			for _, e := range xs {
				if bytes.Equal(e.key, key) {
					if _, _, ok := subItem(sc, k, sx, e.val); !ok {
						return 0, 0, false
					}
					found = true
					break
				}
			}
			if !found {
				return 0, 0, false
			}
			p, _ = sc.item(k, 0)
		}
	default:
		if !bytes.Equal(sc.b[pc:endC], sx.b[px:endX]) {
			return 0, 0, false
		}
	}
	return endC, endX, true
}

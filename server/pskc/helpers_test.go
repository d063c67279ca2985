package pskc_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/authbench/authbench/server/pskc"
)

// testdataDir is the repository's shared test data for this package.
var testdataDir = filepath.Join("..", "..", "testdata", "pskc")

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// RFC 6030 Figures 6 and 7 facts.
var (
	rfcPreSharedKey = unhex("12345678901234567890123456789012")
	rfcSecret       = unhex("3132333435363738393031323334353637383930")
)

// keySource hands out both a pre-shared key and a passphrase.
type keySource struct {
	psk  pskc.PreShared
	pass pskc.Passphrase
}

func (k keySource) PreSharedKey(name string) ([]byte, error) { return k.psk.PreSharedKey(name) }
func (k keySource) Passphrase() ([]byte, error)              { return k.pass.Passphrase() }

var rfcKeys = keySource{
	psk:  pskc.PreShared{"Pre-shared-key": rfcPreSharedKey},
	pass: "qwerty",
}

// countingRand is a reproducible stand-in for crypto/rand: 0, 1, 2, ...
type countingRand struct{ n byte }

func (r *countingRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

// diffKeys lists the fields in which a and b differ, printing secrets in
// hex (Key's own formatting redacts them).
func diffKeys(a, b []pskc.Key) []string {
	var out []string
	if len(a) != len(b) {
		return []string{fmt.Sprintf("%d keys, want %d", len(a), len(b))}
	}
	for i := range a {
		va, vb := reflect.ValueOf(a[i]), reflect.ValueOf(b[i])
		for f := 0; f < va.NumField(); f++ {
			name := va.Type().Field(f).Name
			fa, fb := va.Field(f).Interface(), vb.Field(f).Interface()
			if reflect.DeepEqual(fa, fb) {
				continue
			}
			if name == "Secret" {
				fa, fb = hex.EncodeToString(a[i].Secret), hex.EncodeToString(b[i].Secret)
			}
			out = append(out, fmt.Sprintf("key %d: %s = %#v, want %#v", i+1, name, fa, fb))
		}
	}
	return out
}

func checkKeys(t testing.TB, got, want []pskc.Key) {
	t.Helper()
	for _, d := range diffKeys(got, want) {
		t.Error(d)
	}
}

// wantErr checks that err is an *Error that unwraps to sentinel.
func wantErr(t testing.TB, err, sentinel error) *pskc.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", sentinel)
	}
	var e *pskc.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *pskc.Error", err, err)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %q does not wrap %q", err, sentinel)
	}
	if !strings.HasPrefix(err.Error(), "pskc: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
	return e
}

// replace returns doc with old replaced once; it fails the test when old
// does not occur.
func replace(t testing.TB, doc []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(doc, []byte(old)) {
		t.Fatalf("%q not in document", old)
	}
	return bytes.Replace(doc, []byte(old), []byte(new), 1)
}

package pskc_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/authbench/authbench/server/pskc"
)

var sentinels = []error{
	pskc.ErrFormat, pskc.ErrUnsupported, pskc.ErrMAC, pskc.ErrDecrypt,
	pskc.ErrNoKey, pskc.ErrPlaintext, pskc.ErrTooLarge,
}

// FuzzParse feeds Parse arbitrary documents. Parse must not panic, must
// fail with an *Error wrapping a sentinel and no container, or succeed
// with keys that Write accepts; the written document must parse to the
// same keys, and writing those again (same randomness) must give the same
// bytes: Write's output is a canonical form.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"*.xml", filepath.Join("invalid", "*.xml")} {
		files, err := filepath.Glob(filepath.Join(testdataDir, pattern))
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"/>`))
	f.Add([]byte(`<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"><KeyPackage>` +
		`<Key Id="1" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp"><AlgorithmParameters><Suite>HMAC-SHA256</Suite>` +
		`<ResponseFormat Length="6" Encoding="DECIMAL"/></AlgorithmParameters><Data><Secret><PlainValue>AQID</PlainValue></Secret>` +
		`<TimeInterval><PlainValue>30</PlainValue></TimeInterval><TimeDrift><PlainValue>-1</PlainValue></TimeDrift></Data></Key></KeyPackage></KeyContainer>`))

	opts := pskc.Options{AllowPlain: true, MaxIterations: 2000, MaxBytes: 1 << 16}
	keys := keySource{
		psk:  pskc.PreShared{"Pre-shared-key": rfcPreSharedKey, "station-1": stationPSK},
		pass: "qwerty",
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := opts.Parse(bytes.NewReader(doc), keys)
		if err != nil {
			if c != nil {
				t.Fatal("a container and an error")
			}
			var e *pskc.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not a *pskc.Error", err, err)
			}
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error %v wraps no sentinel", err)
		}
		enc := func() pskc.EncryptOptions {
			return pskc.EncryptOptions{Key: stationPSK, Rand: &countingRand{}}
		}
		var w1 bytes.Buffer
		if err := pskc.Write(&w1, c.Keys, enc()); err != nil {
			t.Fatalf("Write refuses what Parse returned: %v", err)
		}
		c2, err := pskc.Parse(bytes.NewReader(w1.Bytes()), pskc.PreShared{pskc.DefaultKeyName: stationPSK})
		if err != nil {
			t.Fatalf("Parse refuses what Write wrote: %v\n%s", err, w1.Bytes())
		}
		if d := diffKeys(c2.Keys, c.Keys); len(d) > 0 {
			t.Fatalf("round trip changed keys: %v", d)
		}
		var w2 bytes.Buffer
		if err := pskc.Write(&w2, c2.Keys, enc()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(w1.Bytes(), w2.Bytes()) {
			t.Fatalf("Write is not canonical:\n%s\n---\n%s", w1.Bytes(), w2.Bytes())
		}
	})
}

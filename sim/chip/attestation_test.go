package chip

import (
	"bytes"
	"strings"
	"testing"
)

// The chips of a batch hold one parsed attestation key and certificate
// between them (a load of thousands of chips held a parsed copy per chip);
// chips with certificates of their own, and a saved chip loaded back, keep
// what is theirs.
func TestBatchChipsShareAttestation(t *testing.T) {
	a := testChip(t, Options{Seed: []byte("batch a")})
	b := testChip(t, Options{Seed: []byte("batch b")})
	if a.Certificate() != b.Certificate() || a.attKey != b.attKey {
		t.Error("two chips of one batch hold parsed attestation keys or certificates of their own")
	}
	u := testChip(t, Options{Seed: []byte("batch u"), Profile: ProfileU2F})
	if u.Certificate() == a.Certificate() || u.Certificate().Equal(a.Certificate()) {
		t.Error("a chip of another model has the FIDO2 model's batch certificate")
	}
	s1 := testChip(t, Options{Seed: []byte("serial 1"), Attestation: AttestationSerial})
	s2 := testChip(t, Options{Seed: []byte("serial 2"), Attestation: AttestationSerial})
	if s1.Certificate().Equal(s2.Certificate()) || s1.Certificate() == a.Certificate() {
		t.Error("chips with serial attestation share a certificate")
	}
	if !strings.Contains(s1.Certificate().Subject.String(), s1.Serial()) {
		t.Errorf("serial attestation certificate %s does not name serial %s", s1.Certificate().Subject, s1.Serial())
	}

	// Loaded from a saved state, a batch chip shares the batch's parse too,
	// and a serial chip gets its own certificate back.
	for _, c := range []*Chip{a, s1} {
		var buf bytes.Buffer
		if err := c.Save(&buf); err != nil {
			t.Fatal(err)
		}
		l, err := Load(&buf, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !l.Certificate().Equal(c.Certificate()) || !l.attKey.Equal(c.attKey) {
			t.Errorf("chip %s loaded back with another attestation key or certificate", c.Serial())
		}
		if shared := l.Certificate() == a.Certificate(); shared != (c == a) {
			t.Errorf("chip %s loaded back: shares the batch certificate %v, want %v", c.Serial(), shared, c == a)
		}
		l.Close()
	}
}

package pskc_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/pskc"
)

// TestRFC6030Examples parses the examples of RFC 6030 and checks every
// field of every key.
func TestRFC6030Examples(t *testing.T) {
	date := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	bulk := func(serial, id, from, to string) pskc.Key {
		return pskc.Key{Serial: serial, Manufacturer: "TokenVendorAcme", ID: id, Algorithm: pskc.HOTP,
			Hash: otp.SHA1, Digits: 8, Secret: rfcSecret,
			NotBefore: date(from), NotAfter: date(to)}
	}
	tests := []struct {
		name   string
		file   string
		opts   pskc.Options
		keys   pskc.KeySource
		wantID string
		want   []pskc.Key
	}{
		{
			name: "figure 2 plaintext", file: "rfc6030-fig2-plain.xml",
			opts: pskc.Options{AllowPlain: true}, wantID: "exampleID1",
			want: []pskc.Key{{ID: "12345678", Algorithm: pskc.HOTP, Hash: otp.SHA1, Secret: []byte("1234")}},
		},
		{
			name: "figure 3 supplementary", file: "rfc6030-fig3-supplementary.xml",
			opts: pskc.Options{AllowPlain: true}, wantID: "exampleID1",
			want: []pskc.Key{{Serial: "987654321", Manufacturer: "Manufacturer", ID: "12345678",
				Algorithm: pskc.HOTP, Hash: otp.SHA1, Digits: 8, Counter: 0, Secret: rfcSecret}},
		},
		{
			name: "figure 6 pre-shared AES-128-CBC, HMAC-SHA1", file: "rfc6030-fig6-preshared.xml",
			keys: pskc.PreShared{"Pre-shared-key": rfcPreSharedKey},
			want: []pskc.Key{{Serial: "987654321", Manufacturer: "Manufacturer", ID: "12345678",
				Algorithm: pskc.HOTP, Hash: otp.SHA1, Digits: 8, Secret: rfcSecret}},
		},
		{
			name: "figure 7 PBKDF2", file: "rfc6030-fig7-pbkdf2.xml",
			keys: pskc.Passphrase("qwerty"),
			want: []pskc.Key{{Serial: "987654321", Manufacturer: "TokenVendorAcme", ID: "123456",
				Algorithm: pskc.HOTP, Hash: otp.SHA1, Digits: 8, Secret: rfcSecret}},
		},
		{
			name: "figure 10 bulk", file: "rfc6030-fig10-bulk.xml",
			opts: pskc.Options{AllowPlain: true},
			want: []pskc.Key{
				bulk("654321", "1", "2006-05-01T00:00:00Z", "2006-05-31T00:00:00Z"),
				bulk("123456", "2", "2006-05-01T00:00:00Z", "2006-05-31T00:00:00Z"),
				bulk("9999999", "3", "2006-03-01T00:00:00Z", "2006-03-31T00:00:00Z"),
				bulk("9999999", "4", "2006-04-01T00:00:00Z", "2006-04-30T00:00:00Z"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.opts.Parse(bytes.NewReader(readTestdata(t, tt.file)), tt.keys)
			if err != nil {
				t.Fatal(err)
			}
			if c.ID != tt.wantID {
				t.Errorf("container Id %q, want %q", c.ID, tt.wantID)
			}
			checkKeys(t, c.Keys, tt.want)
		})
	}
}

// TestRFC6030SecretWorks cross-checks the decrypted Figure 6 secret with
// the RFC 4226 Appendix D value for counter 0 (1284755224, 8 digits).
func TestRFC6030SecretWorks(t *testing.T) {
	c, err := pskc.Parse(bytes.NewReader(readTestdata(t, "rfc6030-fig6-preshared.xml")), rfcKeys)
	if err != nil {
		t.Fatal(err)
	}
	k := c.Keys[0]
	code, err := otp.HOTP(k.Secret, k.Counter, k.Digits, k.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if code != "84755224" {
		t.Errorf("HOTP = %s, want 84755224", code)
	}
}

func TestPlaintextNeedsOptIn(t *testing.T) {
	for _, file := range []string{"rfc6030-fig2-plain.xml", "rfc6030-fig3-supplementary.xml", "rfc6030-fig10-bulk.xml"} {
		c, err := pskc.Parse(bytes.NewReader(readTestdata(t, file)), nil)
		if c != nil {
			t.Errorf("%s: got a container with an error", file)
		}
		e := wantErr(t, err, pskc.ErrPlaintext)
		if e.Package != 1 || e.KeyID == "" {
			t.Errorf("%s: error %q does not name key package 1", file, err)
		}
	}
}

func TestKeyTOTP(t *testing.T) {
	k := pskc.Key{ID: "a", Algorithm: pskc.TOTP, Hash: otp.SHA256, Digits: 8, Period: 60 * time.Second, Secret: []byte("12345678901234567890123456789012")}
	p, err := k.TOTP()
	if err != nil {
		t.Fatal(err)
	}
	// The generator must use the key's secret, digits and hash: its code
	// for step 0 is the HOTP value for counter 0.
	want, err := otp.HOTP(k.Secret, 0, 8, otp.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Code(0); got != want {
		t.Errorf("code %s, want %s", got, want)
	}
	k.Algorithm = pskc.HOTP
	if _, err := k.TOTP(); err == nil {
		t.Error("TOTP of an HOTP key did not fail")
	}
}

package pskc_test

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/pskc"
)

// A provisioning station writes the secrets it read from two code devices;
// the server imports them with the same pre-shared key.
func Example() {
	key := []byte("0123456789abcdef") // shared by station and server, 16 bytes: AES-128
	batch := []pskc.Key{
		{Serial: "CD-000001", ID: "CD-000001", Algorithm: pskc.TOTP, Hash: otp.SHA1, Digits: 6,
			Period: 30 * time.Second, Secret: []byte("12345678901234567890")},
		{Serial: "AR-000002", ID: "AR-000002", Algorithm: pskc.TOTP, Hash: otp.SHA256, Digits: 6,
			Period: 30 * time.Second, Secret: []byte("12345678901234567890123456789012")},
	}
	var doc bytes.Buffer
	if err := pskc.Write(&doc, batch, pskc.EncryptOptions{KeyName: "station-1", Key: key}); err != nil {
		fmt.Println(err)
		return
	}

	c, err := pskc.Parse(&doc, pskc.PreShared{"station-1": key})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Wipe()
	for _, k := range c.Keys {
		fmt.Println(k) // the secret is never printed
	}
	// Output:
	// pskc.Key{serial="CD-000001" id="CD-000001" totp sha1 digits=6 period=30s secret=redacted}
	// pskc.Key{serial="AR-000002" id="AR-000002" totp sha256 digits=6 period=30s secret=redacted}
}

// A tampered document fails as a whole, naming the key package.
func ExampleParse_tampered() {
	key := []byte("0123456789abcdef")
	var doc bytes.Buffer
	_ = pskc.Write(&doc, []pskc.Key{{Serial: "CD-7", ID: "k7", Algorithm: pskc.TOTP, Secret: []byte("12345678901234567890")}},
		pskc.EncryptOptions{Key: key})
	b := doc.Bytes()
	i := bytes.Index(b, []byte("<pskc:ValueMAC>")) + len("<pskc:ValueMAC>")
	b[i] ^= 1 // flip a bit of the MAC

	_, err := pskc.Parse(bytes.NewReader(b), pskc.PreShared{pskc.DefaultKeyName: key})
	fmt.Println(errors.Is(err, pskc.ErrMAC))
	var e *pskc.Error
	if errors.As(err, &e) {
		fmt.Println(e.Package, e.Serial, e.Field)
	}
	// Output:
	// true
	// 1 CD-7 Key/Data/Secret/ValueMAC
}

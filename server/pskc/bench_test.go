package pskc_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/server/pskc"
)

// batch1000 is a station batch of 1000 TOTP keys under a pre-shared key.
func batch1000(b *testing.B) []byte {
	keys := make([]pskc.Key, 1000)
	for i := range keys {
		keys[i] = pskc.Key{Serial: fmt.Sprintf("CD-%06d", i), Manufacturer: "authbench", Model: "code-display v1",
			ID: fmt.Sprintf("CD-%06d#1", i), Algorithm: pskc.TOTP, Hash: otp.SHA1, Digits: 6,
			Period: 30 * time.Second, Secret: []byte(fmt.Sprintf("secret-%013d", i))}
	}
	var buf bytes.Buffer
	if err := pskc.Write(&buf, keys, pskc.EncryptOptions{Key: stationPSK, Rand: &countingRand{}}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func BenchmarkParse1000Keys(b *testing.B) {
	doc := batch1000(b)
	keys := pskc.PreShared{pskc.DefaultKeyName: stationPSK}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		c, err := pskc.Parse(bytes.NewReader(doc), keys)
		if err != nil {
			b.Fatal(err)
		}
		if len(c.Keys) != 1000 {
			b.Fatal(len(c.Keys))
		}
	}
}

func BenchmarkWrite1000Keys(b *testing.B) {
	doc := batch1000(b)
	c, err := pskc.Parse(bytes.NewReader(doc), pskc.PreShared{pskc.DefaultKeyName: stationPSK})
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := pskc.Write(&buf, c.Keys, pskc.EncryptOptions{Key: stationPSK, Rand: &countingRand{}}); err != nil {
			b.Fatal(err)
		}
	}
}

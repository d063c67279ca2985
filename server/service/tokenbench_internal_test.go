package service

import (
	"bytes"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/secrets"
)

// BenchmarkLoginToken measures what a login token costs the server: the
// sealing of a chip's ceremony after the second factor is chosen and its
// opening at the finish (allocs/op and ns/op, with nothing else in them).
//
//	go test -run '^$' -bench LoginToken -benchmem ./server/service
func BenchmarkLoginToken(b *testing.B) {
	kr, err := secrets.NewKeyring("k1", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		b.Fatal(err)
	}
	s := &Service{keys: kr, now: time.Now, ceremonyTT: DefaultCeremonyTTL}
	b.ReportAllocs()
	for b.Loop() {
		c := loginCeremony{Stage: stageFactor, Password: "pw-3kq0d7n2x9ab", PasswordPending: true, Factor: "chip-3kq0d7n2x9ab",
			Kind: device.KindChip, Challenge: bytes.Repeat([]byte{0xa5}, challengeLen)}
		tok, err := s.sealCeremony("lchip-123", &c)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.openCeremony(tok, "lchip-123", stageFactor); err != nil {
			b.Fatal(err)
		}
	}
}

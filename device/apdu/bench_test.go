package apdu_test

import (
	"context"
	"testing"

	"github.com/authbench/authbench/device/apdu"
)

// BenchmarkCBOR1KiB measures a 1 KiB CTAP2 message echoed through
// Client↔Card in-process: chaining and GET RESPONSE against one extended APDU.
func BenchmarkCBOR1KiB(b *testing.B) {
	req := append([]byte{0x41}, bigPayload(1023)...)
	for _, bc := range []struct {
		name string
		opts apdu.ClientOptions
	}{
		{"short", apdu.ClientOptions{}},
		{"extended", apdu.ClientOptions{Extended: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			card := apdu.NewCard(&testHandler{}, apdu.CardOptions{})
			defer card.Close()
			c := apdu.NewClient(card, bc.opts)
			ctx := context.Background()
			if _, err := c.Select(ctx); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(req)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.CBOR(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

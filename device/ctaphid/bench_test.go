package ctaphid_test

import (
	"context"
	"testing"

	"github.com/authbench/authbench/device/ctaphid"
)

// BenchmarkCBORRoundTrip measures one CTAPHID_CBOR request and its echo over
// the in-memory pipe, host Conn to Serve and back.
func BenchmarkCBORRoundTrip(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"1KiB", 1024}, {"7609B", ctaphid.MaxMessageSize}} {
		b.Run(size.name, func(b *testing.B) {
			host := startDevice(b, &handler{}, ctaphid.ServeOptions{})
			c := open(b, host, ctaphid.Options{})
			req := make([]byte, size.n)
			ctx := context.Background()
			b.SetBytes(int64(2 * size.n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.CBOR(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

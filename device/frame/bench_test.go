package frame

import (
	"context"
	"testing"

	"github.com/authbench/authbench/device/frame/frametest"
)

// BenchmarkPressRoundTrip: Host.Press against Serve over an in-memory pipe,
// in each stream mode.
func BenchmarkPressRoundTrip(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode, func(b *testing.B) {
			a, d := frametest.Pipe()
			defer a.Close()
			defer d.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- Serve(ctx, wrap(d, mode), newFakeDevice(KindCodeDisplay)) }()
			h := NewHost(wrap(a, mode), nil)
			defer h.Close()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Press(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

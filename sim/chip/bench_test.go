package chip

import (
	"context"
	"testing"
)

// benchTransports: the chip in-process, over CTAPHID through an in-memory
// pipe, and over APDUs to an in-process card.
var benchTransports = []transport{
	{"inprocess", connectInProcess},
	{"ctaphid", connectHID},
	{"apdu", connectAPDU},
}

func BenchmarkMakeCredential(b *testing.B) {
	for _, tr := range benchTransports {
		b.Run(tr.name, func(b *testing.B) {
			c := testChip(b, Options{})
			a := tr.connect(b, c).ctap
			req := makeReq("example.dk", "alice", false)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.MakeCredential(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGetAssertion(b *testing.B) {
	for _, tr := range benchTransports {
		b.Run(tr.name, func(b *testing.B) {
			c := testChip(b, Options{})
			a := tr.connect(b, c).ctap
			m := mustMake(b, a, makeReq("example.dk", "alice", false))
			req := getReq("example.dk", m.id)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.GetAssertion(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

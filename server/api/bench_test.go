package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
)

// BenchmarkChipLogin measures a chip login end to end through HTTP (begin
// and finish over a loopback connection, the simulated chip's assertion,
// the server's WebAuthn verification, the signature counter and the
// session, all on a durable SQLite file with synchronous=FULL), next to
// one raw ECDSA P-256 verification in the same run. The http
// sub-benchmark reports the ratio as x-ecdsa-verify.
func BenchmarkChipLogin(b *testing.B) {
	var verifyNs float64
	b.Run("ecdsa-p256-verify", func(b *testing.B) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		h := sha256.Sum256([]byte("authenticator data and client data hash"))
		sig, _ := ecdsa.SignASN1(rand.Reader, k, h[:])
		b.ResetTimer()
		for b.Loop() {
			if !ecdsa.VerifyASN1(&k.PublicKey, h[:], sig) {
				b.Fatal("verify")
			}
		}
		verifyNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("http", func(b *testing.B) {
		s := start(b)
		s.createIdentity("alice", "correct horse")
		c := newChip(b, "bench-chip")
		ch := s.addChip("alice", supportToken, c)
		ctx := context.Background()
		b.ResetTimer()
		for b.Loop() {
			r := s.login("alice", ch.ID, map[string]any{"sign": func(bl service.BeginLoginResult) map[string]any {
				resp, err := servicetest.Assert(ctx, c, origin, bl.PublicKey)
				if err != nil {
					b.Fatal(err)
				}
				return map[string]any{"credential": resp}
			}})
			if r.status != 200 {
				b.Fatalf("%d %s", r.status, r.raw)
			}
		}
		loginNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		if verifyNs > 0 {
			b.ReportMetric(loginNs/verifyNs, "x-ecdsa-verify")
		}
	})
}

// BenchmarkOTPLogin measures a code-device login end to end through HTTP:
// begin and finish, TOTP verification with ±1 step, the atomic watermark
// update, failure bookkeeping and the session, on a durable SQLite file.
// The virtual clock moves one step per login, as codes are single use.
func BenchmarkOTPLogin(b *testing.B) {
	s := start(b)
	s.createIdentity("alice", "correct horse")
	dev := servicetest.CodeDevice{Serial: "KV-BENCH", Secret: []byte("12345678901234567890")}
	doc, _ := servicetest.PSKC(pskcKey, dev)
	s.want(s.do("POST", "/v1/pskc", supportToken, doc, "application/pskc+xml"), 200, "")
	r := s.do("POST", "/v1/identities/alice/authenticators", supportToken, map[string]any{"kind": "code-display", "serial": dev.Serial})
	var add service.AddResult
	r.decode(b, &add)
	s.want(s.do("POST", "/v1/identities/alice/authenticators/"+add.Authenticator.ID+"/activate", supportToken,
		map[string]any{"code": dev.Code(s.clk.Now())}), 200, "")
	b.ResetTimer()
	for b.Loop() {
		s.clk.Advance(30 * time.Second)
		r := s.login("alice", add.Authenticator.ID, map[string]any{"code": dev.Code(s.clk.Now())})
		if r.status != 200 {
			b.Fatalf("%d %s", r.status, r.raw)
		}
	}
}

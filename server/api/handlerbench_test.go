package api_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/internal/cputime"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
)

// benchWriter is the ResponseWriter of BenchmarkCodeLoginHandler: a
// header and a body kept between requests, so that what the benchmark
// counts is the server's work.
type benchWriter struct {
	hdr    http.Header
	status int
	body   bytes.Buffer
}

func (w *benchWriter) Header() http.Header         { return w.hdr }
func (w *benchWriter) WriteHeader(status int)      { w.status = status }
func (w *benchWriter) Write(p []byte) (int, error) { return w.body.Write(p) }

func (w *benchWriter) reset() {
	clear(w.hdr)
	w.status = 0
	w.body.Reset()
}

// BenchmarkCodeLoginHandler measures what the server does for one code
// login (the load command's three requests: the password, the choice of
// the code device, the code) without the network: the API handler is
// called directly, on the logger and rate limits of `authbench load`
// (none), over an in-memory SQLite store, whose writes cost no fsync, so
// that the rest shows. The virtual clock moves one OTP period per login,
// so one device logs in again and again. It reports the CPU time per
// login ("cpu-ns/op") and the allocations.
//
//	go test -run '^$' -bench CodeLoginHandler -benchmem ./server/api
func BenchmarkCodeLoginHandler(b *testing.B) {
	s := start(b, func(o *embeddedOptions) { o.Logger, o.DB = nil, ":memory:" })
	secret := sha256.Sum256([]byte("handler bench"))
	dev := servicetest.CodeDevice{Serial: "KV-H-1", Secret: secret[:20]}
	doc, _ := servicetest.PSKC(pskcKey, dev)
	s.want(s.do("POST", "/v1/pskc", supportToken, doc, "application/pskc+xml"), 200, "")
	const id = "handler-bench"
	s.createIdentity(id, "correct horse")
	var add service.AddResult
	s.do("POST", "/v1/identities/"+id+"/authenticators", supportToken, map[string]any{"kind": "code-display", "serial": dev.Serial}).decode(b, &add)
	s.want(s.do("POST", "/v1/identities/"+id+"/authenticators/"+add.Authenticator.ID+"/activate", supportToken,
		map[string]any{"code": dev.Code(s.clk.Now())}), 200, "")
	h := s.srv.Handler
	w := &benchWriter{hdr: http.Header{}}
	serve := func(path, body string) []byte {
		r, err := http.NewRequest("POST", "http://127.0.0.1/v1/identities/"+id+path, strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		r.RemoteAddr = "127.0.0.1:40000"
		r.Header.Set("Content-Type", "application/json")
		w.reset()
		h.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("%s: %d %s", path, w.status, w.body.Bytes())
		}
		return w.body.Bytes()
	}
	var pr service.PasswordLoginResult
	var fl service.FactorLogin
	login := func() {
		s.clk.Advance(30 * time.Second)
		if err := json.Unmarshal(serve("/login/password", `{"password":"correct horse"}`), &pr); err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(serve("/login/second", `{"ceremony":"`+pr.Ceremony+`","authenticator":"`+add.Authenticator.ID+`"}`), &fl); err != nil {
			b.Fatal(err)
		}
		serve("/login/finish", `{"ceremony":"`+fl.Ceremony+`","code":"`+dev.Code(s.clk.Now())+`"}`)
	}
	b.ReportAllocs()
	cputime.Measure(b, login)
}

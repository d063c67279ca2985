package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/server/client"
)

// seenRequest is what a server sees of a request.
type seenRequest struct {
	method, uri, proto string
	header             http.Header
	body               string
	length             int64
}

// TestLoadTransportSendsWhatHTTPTransportSends sends the requests of an
// enrolment through client.Client on http.Transport and on loadTransport
// and asserts that the server sees the same requests: method, target,
// protocol, every header and the body.
func TestLoadTransportSendsWhatHTTPTransportSends(t *testing.T) {
	var mu sync.Mutex
	var seen []seenRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		mu.Lock()
		seen = append(seen, seenRequest{r.Method, r.RequestURI, r.Proto, h, string(b), r.ContentLength})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"authenticator":{"id":"a1","kind":"chip","state":"pending"},"activation":{"ceremony":"c1"}}`)
	}))
	defer srv.Close()
	lt := newLoadTransport(4)
	defer lt.CloseIdleConnections()
	std := &http.Transport{}
	defer std.CloseIdleConnections()
	for _, tr := range []http.RoundTripper{std, lt} {
		c, err := client.New(srv.URL, client.Options{HTTPClient: &http.Client{Transport: tr}, Token: "support", Origin: loadOrigin, UserAgent: "authbench-load"})
		if err != nil {
			t.Fatal(err)
		}
		added, err := c.AddAuthenticator(t.Context(), "load-chip-1", client.AddRequest{Kind: client.KindChip, Label: "load <&> \u00e9"})
		if err != nil {
			t.Fatal(err)
		}
		if added.Authenticator.ID != "a1" || added.Activation.Ceremony != "c1" {
			t.Fatalf("the answer read through %T: %+v", tr, added)
		}
		if _, err := c.WithToken("").PasswordLogin(t.Context(), "load-chip-1", "pw", "a1"); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 4 {
		t.Fatalf("the server saw %d requests, want 4", len(seen))
	}
	for i := range 2 {
		a, b := seen[i], seen[i+2]
		if a.method != b.method || a.uri != b.uri || a.proto != b.proto || a.body != b.body || a.length != b.length {
			t.Errorf("request %d: http.Transport sent %s %s %s (%d bytes) %q, loadTransport %s %s %s (%d bytes) %q",
				i, a.method, a.uri, a.proto, a.length, a.body, b.method, b.uri, b.proto, b.length, b.body)
		}
		if !equalHeaders(a.header, b.header) {
			t.Errorf("request %d: headers from http.Transport %v, from loadTransport %v", i, a.header, b.header)
		}
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\x00") != strings.Join(b[k], "\x00") {
			return false
		}
	}
	return true
}

// countConns starts a server that counts the connections made to it.
func countConns(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

func get(t *testing.T, tr http.RoundTripper, ctx context.Context, url string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// TestLoadTransportKeepsConnectionsAlive asserts that requests one after
// the other share one connection, and that concurrent ones open no more
// connections than there are requests at once.
func TestLoadTransportKeepsConnectionsAlive(t *testing.T) {
	srv, conns := countConns(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})
	lt := newLoadTransport(8)
	defer lt.CloseIdleConnections()
	for range 20 {
		if _, body, err := get(t, lt, t.Context(), srv.URL); err != nil || body != "ok" {
			t.Fatalf("answer %q, %v", body, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 requests one after the other opened %d connections, want 1", n)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 25 {
				if _, body, err := get(t, lt, t.Context(), srv.URL); err != nil || body != "ok" {
					t.Errorf("answer %q, %v", body, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := conns.Load(); n > 4 {
		t.Fatalf("4 clients opened %d connections, want at most 4", n)
	}
}

// TestLoadTransportAnswers reads the shapes of answer a server gives: with
// a length, chunked, gzipped (asked for as http.Transport asks, and
// undone), an error status, and one that closes its connection, after
// which the next request goes on a new one.
func TestLoadTransportAnswers(t *testing.T) {
	big := strings.Repeat("0123456789", 10000)
	srv, conns := countConns(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/length":
			io.WriteString(w, "short")
		case "/chunked":
			for i := 0; i < len(big); i += 1000 {
				io.WriteString(w, big[i:i+1000])
				w.(http.Flusher).Flush()
			}
		case "/gzip":
			if r.Header.Get("Accept-Encoding") != "gzip" {
				http.Error(w, "no gzip asked for", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			io.WriteString(zw, big)
			zw.Close()
		case "/error":
			http.Error(w, `{"error":"nope"}`, http.StatusConflict)
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		}
	})
	lt := newLoadTransport(8)
	defer lt.CloseIdleConnections()
	for _, c := range []struct {
		path, body string
		status     int
	}{
		{"/length", "short", 200},
		{"/chunked", big, 200},
		{"/gzip", big, 200},
		{"/error", "{\"error\":\"nope\"}\n", http.StatusConflict},
		{"/length", "short", 200},
	} {
		resp, body, err := get(t, lt, t.Context(), srv.URL+c.path)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		if resp.StatusCode != c.status || body != c.body {
			t.Fatalf("%s: status %d, %d bytes; want %d, %d bytes", c.path, resp.StatusCode, len(body), c.status, len(c.body))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections before the close, want 1", n)
	}
	if _, body, err := get(t, lt, t.Context(), srv.URL+"/close"); err != nil || body != "bye" {
		t.Fatalf("/close: %q, %v", body, err)
	}
	if _, body, err := get(t, lt, t.Context(), srv.URL+"/length"); err != nil || body != "short" {
		t.Fatalf("after /close: %q, %v", body, err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections after the server closed one, want 2", n)
	}
}

// TestLoadTransportEndsWithItsContext asserts that a request whose context
// ends while the server has not answered returns the context's error at
// once, and that the transport goes on working on new connections.
func TestLoadTransportEndsWithItsContext(t *testing.T) {
	release := make(chan struct{})
	srv, _ := countConns(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "ok")
	})
	defer close(release)
	lt := newLoadTransport(8)
	defer lt.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := get(t, lt, ctx, srv.URL+"/slow")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the request returned %v after it was sent, its deadline was 100ms", d)
	}
	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, _, err := get(t, lt, ctx, srv.URL+"/slow"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if _, body, err := get(t, lt, t.Context(), srv.URL+"/fast"); err != nil || body != "ok" {
		t.Fatalf("after the ended requests: %q, %v", body, err)
	}
}

// TestLoadTransportRefusesOtherSchemes asserts the one scheme it speaks.
func TestLoadTransportRefusesOtherSchemes(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, "https://load.authbench.test/", bytes.NewReader([]byte("x")))
	if _, err := newLoadTransport(1).RoundTrip(req); !errors.Is(err, errLoadScheme) {
		t.Fatalf("err %v, want errLoadScheme", err)
	}
}

// BenchmarkLoadTransport compares the CPU time of the whole process per
// request (client and server, as in `authbench load`) on loadTransport
// and on http.Transport, 32 clients on loopback, with bodies the size of
// an activation's.
//
//	go test -run '^$' -bench LoadTransport ./cmd/authbench
func BenchmarkLoadTransport(b *testing.B) {
	answer := []byte(`{"id":"01J","kind":"chip","state":"active","label":"load","credential_id":"` + strings.Repeat("A", 86) + `"}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	}))
	defer srv.Close()
	body := bytes.Repeat([]byte("x"), 1200)
	for _, tc := range []struct {
		name string
		tr   fleetTransport
	}{
		{"net-http", &http.Transport{MaxIdleConnsPerHost: 48}},
		{"load", newLoadTransport(48)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			defer tc.tr.CloseIdleConnections()
			hc := &http.Client{Transport: tc.tr}
			before := cpuUsed(b)
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/x", bytes.NewReader(body))
					req.Header = http.Header{"Content-Type": {"application/json"}, "User-Agent": {"authbench-load"}}
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
			b.ReportMetric(float64((cpuUsed(b)-before).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// TestLoadTransportInterimAnswers: a request that asks for 100 Continue
// (Expect: 100-continue) is answered with the server's final answer, not
// its interim one, and the next request on the same connection gets its
// own answer, never the one the server gave to the request before.
func TestLoadTransportInterimAnswers(t *testing.T) {
	srv, conns := countConns(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "answer to "+string(b))
	})
	lt := newLoadTransport(8)
	defer lt.CloseIdleConnections()
	for _, name := range []string{"first", "second", "third"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/", strings.NewReader(name))
		if err != nil {
			t.Fatal(err)
		}
		if name != "third" {
			req.Header.Set("Expect", "100-continue")
		}
		resp, err := lt.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != "answer to "+name {
			t.Fatalf("%s: %d %q, want 200 %q", name, resp.StatusCode, body, "answer to "+name)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for three requests in a row, want 1", n)
	}
}

// TestLoadTransportUnsolicitedBytes: a connection on which the server sent
// more than the answer is not used again, so that the next request never
// reads bytes meant for no request as its answer.
func TestLoadTransportUnsolicitedBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(n int) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					answer := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nconn%d", n)
					if n == 0 {
						answer += "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale"
					}
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			}(n)
		}
	}()
	lt := newLoadTransport(8)
	defer lt.CloseIdleConnections()
	for i, want := range []string{"conn0", "conn1", "conn1"} {
		_, body, err := get(t, lt, t.Context(), "http://"+ln.Addr().String()+"/")
		if err != nil || body != want {
			t.Fatalf("request %d: %q, %v; want %q", i+1, body, err, want)
		}
	}
}

// TestLoadTransportHead: an answer to HEAD, which carries the length of
// the body it leaves out, is read as an answer without a body, and the
// connection serves the next request.
func TestLoadTransportHead(t *testing.T) {
	srv, conns := countConns(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	})
	lt := newLoadTransport(8)
	defer lt.CloseIdleConnections()
	for i := range 2 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodHead, srv.URL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := lt.RoundTrip(req)
		if err != nil {
			t.Fatalf("HEAD %d: %v", i+1, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.ContentLength != 5 || len(body) != 0 {
			t.Fatalf("HEAD %d: %d, length %d, body %q; want 200, 5, none", i+1, resp.StatusCode, resp.ContentLength, body)
		}
	}
	if _, body, err := get(t, lt, t.Context(), srv.URL+"/"); err != nil || body != "hello" {
		t.Fatalf("GET after HEAD: %q, %v", body, err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

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
	"sync"
	"time"
)

// loadTransport is the HTTP/1.1 transport of the lifecycle's clients: kept
// alive loopback connections, each used by one request at a time, on
// which RoundTrip writes the request and reads the answer itself, in the
// caller's goroutine. The requests and answers are net/http's own
// (http.Request.Write, http.ReadResponse), with the headers
// http.Transport adds (Accept-Encoding: gzip, a gzipped answer undone),
// so the server sees what it sees from http.Transport.
//
// What it leaves out is http.Transport's machinery for connections shared
// by goroutines: a reader and a writer goroutine per connection and the
// hand-overs between them and the caller, which cost about 20 µs of CPU per
// request on this kind of loopback load (BenchmarkLoadTransport) — a
// twentieth of a lifecycle's CPU per chip, taken from the server that the
// clients share the process with. It speaks plain http only (no TLS, no
// proxy, no HTTP/2, no protocol switch; interim 1xx answers are read past
// to the final one), which is all the load's servers on loopback need.
//
// A connection idle longer than loadIdleMax is closed rather than reused,
// well before the server's own idle timeout (2 minutes, server/embedded),
// so that a request is never written to a connection the server has
// closed (a POST cannot be sent again safely).
type loadTransport struct {
	maxIdle int // idle connections kept per host
	dialer  net.Dialer

	mu   sync.Mutex
	idle map[string][]*loadConn // by host:port, the most recently used last
}

// loadConn is one kept-alive connection of a loadTransport.
type loadConn struct {
	host string
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time // when it last went idle
}

const (
	// loadIdleMax is how long a connection may stay idle and be reused.
	loadIdleMax = 30 * time.Second
	// loadTimeout bounds a request whose context has no deadline, as
	// the fleet's http.Client Timeout does.
	loadTimeout = time.Minute
)

var _ http.RoundTripper = (*loadTransport)(nil)

// newLoadTransport returns a transport that keeps up to maxIdle idle
// connections per host.
func newLoadTransport(maxIdle int) *loadTransport {
	return &loadTransport{maxIdle: maxIdle, dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}, idle: map[string][]*loadConn{}}
}

// errLoadScheme is the error of a request that is not for an http:// URL.
var errLoadScheme = errors.New("load transport: only http:// URLs")

// RoundTrip sends req on a kept-alive connection to its host and returns
// the answer, its body read to the end (and closed) already: the body of
// the returned *http.Response is in memory. An error is net/http's or the
// connection's; the connection is then closed.
func (t *loadTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Scheme != "http" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errLoadScheme
	}
	ctx := req.Context()
	host := req.URL.Host
	c, err := t.get(ctx, host)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, reuse, err := t.exchange(ctx, c, req)
	if err != nil {
		c.nc.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			// The connection's deadline, which is the context's, came
			// a moment before the context's own timer.
			return nil, context.DeadlineExceeded
		}
		return nil, err
	}
	if !reuse || resp.Close || req.Close {
		c.nc.Close()
	} else {
		t.put(c)
	}
	return resp, nil
}

// exchange writes req on c and reads its answer, body and all, within
// ctx's deadline (or loadTimeout) and until ctx ends. reuse reports
// whether c may carry another request: not when the server sent more
// than the answer, nor when ctx ended meanwhile (its AfterFunc, which
// runs in a goroutine of its own, could otherwise cut the deadline of
// the connection's next request).
func (t *loadTransport) exchange(ctx context.Context, c *loadConn, req *http.Request) (resp *http.Response, reuse bool, err error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(loadTimeout)
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return nil, false, err
	}
	// A context that ends makes every read and write fail at once.
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	resp, err = t.send(ctx, c, req)
	stopped := stop()
	if err != nil {
		return nil, false, err
	}
	return resp, stopped && c.br.Buffered() == 0, nil
}

// send writes req on c and reads its final answer, body and all.
func (t *loadTransport) send(ctx context.Context, c *loadConn, req *http.Request) (*http.Response, error) {
	gzipped := false
	if req.Header.Get("Accept-Encoding") == "" && req.Header.Get("Range") == "" && req.Method != http.MethodHead {
		// As http.Transport asks (and undoes), unless told otherwise.
		req = req.Clone(ctx)
		req.Header.Set("Accept-Encoding", "gzip")
		gzipped = true
	}
	if err := req.Write(c.bw); err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	var resp *http.Response
	for {
		var err error
		if resp, err = http.ReadResponse(c.br, req); err != nil {
			return nil, err
		}
		// An interim answer (100 Continue, 103 Early Hints) has no body
		// and is followed by the final one; 101 switches protocols,
		// which this transport does not speak.
		if resp.StatusCode/100 != 1 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return nil, errors.New("load transport: the server switched protocols")
	}
	body, err := readAnswer(resp)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if gzipped && resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("load transport: a gzipped answer: %w", err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("load transport: a gzipped answer: %w", err)
		}
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		resp.Uncompressed = true
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// readAnswer reads the body of resp to its end: into a buffer of its size
// when the answer says it. An answer to HEAD has no body, whatever its
// Content-Length says.
func readAnswer(resp *http.Response) ([]byte, error) {
	if resp.Body == http.NoBody {
		return nil, nil
	}
	if n := resp.ContentLength; n >= 0 && n <= 64<<20 {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(resp.Body)
}

// get returns an idle connection to host, or a new one.
func (t *loadTransport) get(ctx context.Context, host string) (*loadConn, error) {
	now := time.Now()
	t.mu.Lock()
	var stale []*loadConn
	var c *loadConn
	for cs := t.idle[host]; len(cs) > 0; {
		last := cs[len(cs)-1]
		cs = cs[:len(cs)-1]
		t.idle[host] = cs
		if now.Sub(last.used) > loadIdleMax {
			stale = append(stale, last)
			continue
		}
		c = last
		break
	}
	t.mu.Unlock()
	for _, s := range stale {
		s.nc.Close()
	}
	if c != nil {
		return c, nil
	}
	nc, err := t.dialer.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	return &loadConn{host: host, nc: nc, br: bufio.NewReaderSize(nc, 8<<10), bw: bufio.NewWriterSize(nc, 8<<10)}, nil
}

// put keeps c for the next request to its host, or closes it.
func (t *loadTransport) put(c *loadConn) {
	c.used = time.Now()
	t.mu.Lock()
	if len(t.idle[c.host]) < t.maxIdle {
		t.idle[c.host] = append(t.idle[c.host], c)
		c = nil
	}
	t.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

// CloseIdleConnections closes the idle connections; the transport stays
// usable.
func (t *loadTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*loadConn{}
	t.mu.Unlock()
	for _, cs := range idle {
		for _, c := range cs {
			c.nc.Close()
		}
	}
}

package ctaphid_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctaphid"
)

// guard is the failure guard for anything a test waits for; it is never
// reached when the code works.
const guard = 10 * time.Second

// readHex reads a testdata file of hex digits ("#" comment lines, white
// space ignored).
func readHex(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	var digits strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	out, err := hex.DecodeString(digits.String())
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return out
}

// packetSeeds returns the single reports in testdata/ctaphid/packets.
func packetSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	names, err := filepath.Glob("../../testdata/ctaphid/packets/*.hex")
	if err != nil || len(names) == 0 {
		tb.Fatalf("no packet seeds: %v", err)
	}
	var out [][]byte
	for _, n := range names {
		out = append(out, readHex(tb, n))
	}
	return out
}

// transcriptWrites returns, per transcript in testdata/ctaphid, the reports
// the host wrote, concatenated: a realistic request stream.
func transcriptWrites(tb testing.TB) [][]byte {
	tb.Helper()
	names, _ := filepath.Glob("../../testdata/ctaphid/*.transcript")
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			tb.Fatal(err)
		}
		var stream []byte
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "> "); ok {
				r, err := hex.DecodeString(strings.Join(strings.Fields(rest), ""))
				if err != nil {
					tb.Fatalf("%s: %v", n, err)
				}
				stream = append(stream, r...)
			}
		}
		out = append(out, stream)
	}
	return out
}

// leakCheck records the number of goroutines and, at cleanup, waits for it
// to settle back, failing with a dump when it does not.
func leakCheck(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(guard)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines left running, %d before:\n%s", runtime.NumGoroutine(), before, buf)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// handler is a configurable ctaphid.Handler; nil functions echo the request.
type handler struct {
	cbor func(ctx context.Context, req []byte) []byte
	u2f  func(ctx context.Context, req []byte) []byte
}

func (h *handler) ServeCTAP2(ctx context.Context, req []byte) []byte {
	if h != nil && h.cbor != nil {
		return h.cbor(ctx, req)
	}
	return append([]byte(nil), req...)
}

func (h *handler) ServeU2F(ctx context.Context, req []byte) []byte {
	if h != nil && h.u2f != nil {
		return h.u2f(ctx, req)
	}
	return append([]byte(nil), req...)
}

// winker is a handler that counts winks.
type winker struct {
	handler
	winks chan struct{}
}

func (w *winker) Wink() { w.winks <- struct{}{} }

// startDevice runs Serve on one end of a new pipe and returns the other end.
// Cleanup stops Serve, checks it returned ctx.Err(), and closes the pipe.
func startDevice(t testing.TB, h ctaphid.Handler, opts ctaphid.ServeOptions) *ctaphid.PipeEnd {
	t.Helper()
	host, dev := ctaphid.NewPipe()
	stop := serveOn(t, dev, h, opts)
	t.Cleanup(func() {
		stop()
		host.Close()
	})
	return host
}

// serveOn runs Serve on rw until the returned function is called; that
// function waits for Serve and reports an unexpected error.
func serveOn(t testing.TB, rw *ctaphid.PipeEnd, h ctaphid.Handler, opts ctaphid.ServeOptions) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- ctaphid.Serve(ctx, rw, h, opts) }()
	stopped := false
	return func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) && !errors.Is(err, device.ErrClosed) {
				t.Errorf("Serve returned %v, want context.Canceled or device.ErrClosed", err)
			}
		case <-time.After(guard):
			t.Errorf("Serve did not return after its context ended")
		}
	}
}

// open opens a Conn with a seeded nonce source and closes it at cleanup.
func open(t testing.TB, rw *ctaphid.PipeEnd, opts ctaphid.Options) *ctaphid.Conn {
	t.Helper()
	if opts.Rand == nil {
		opts.Rand = bytes.NewReader(bytes.Repeat([]byte{0xA5}, 1024))
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	c, err := ctaphid.Open(ctx, rw, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawHost speaks CTAPHID by hand over a pipe end, to test what Serve sends.
type rawHost struct {
	t  testing.TB
	rw *ctaphid.PipeEnd
	ra ctaphid.Reassembler
}

func (h *rawHost) writeReports(reports ...[]byte) {
	h.t.Helper()
	for _, r := range reports {
		if _, err := h.rw.Write(r); err != nil {
			h.t.Fatalf("write: %v", err)
		}
	}
}

func (h *rawHost) send(cid uint32, cmd ctaphid.Command, data []byte) {
	h.t.Helper()
	reports, err := ctaphid.Fragment(cid, cmd, data)
	if err != nil {
		h.t.Fatal(err)
	}
	h.writeReports(reports...)
}

// next returns the next message from the device, skipping keepalives when
// skipKeepalive is set.
func (h *rawHost) next(skipKeepalive bool) *ctaphid.Message {
	h.t.Helper()
	h.rw.SetReadDeadline(time.Now().Add(guard))
	defer h.rw.SetReadDeadline(time.Time{})
	buf := make([]byte, ctaphid.ReportSize)
	for {
		n, err := h.rw.Read(buf)
		if err != nil {
			h.t.Fatalf("read: %v", err)
		}
		p, err := ctaphid.ParsePacket(buf[:n])
		if err != nil {
			h.t.Fatal(err)
		}
		m, err := h.ra.Add(p, time.Now())
		if err != nil {
			h.t.Fatalf("device sent bad packets: %v", err)
		}
		if m == nil || skipKeepalive && m.Cmd == ctaphid.CmdKeepalive {
			continue
		}
		return m
	}
}

// init allocates a channel and returns it.
func (h *rawHost) init() uint32 {
	h.t.Helper()
	nonce := []byte("nonce-01")
	h.send(ctaphid.BroadcastCID, ctaphid.CmdInit, nonce)
	m := h.next(true)
	r, err := ctaphid.ParseInitResponse(m.Data)
	if m.Cmd != ctaphid.CmdInit || err != nil || !bytes.Equal(r.Nonce[:], nonce) {
		h.t.Fatalf("INIT answered %+v (%v)", m, err)
	}
	return r.CID
}

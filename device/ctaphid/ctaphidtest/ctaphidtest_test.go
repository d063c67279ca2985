package ctaphidtest_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/ctaphid/ctaphidtest"
)

var update = flag.Bool("update", false, "record testdata/ctaphid transcripts again from the in-process device")

const (
	guard          = 10 * time.Second
	transcriptFile = "../../../testdata/ctaphid/init_ping_getinfo.transcript"
)

func leakCheck(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(guard)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines left running:\n%s", buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// seeded returns the deterministic nonce source transcripts are made with.
func seeded() *bytes.Reader {
	return bytes.NewReader([]byte("transcript-nonce-0123456789abcdef"))
}

// chip is a tiny authenticator: getInfo answers a fixed Info, everything
// else is echoed.
type chip struct{}

func getInfoResponse() []byte {
	em, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	info := ctap2.Info{
		Versions:   []string{"U2F_V2", "FIDO_2_0"},
		AAGUID:     []byte("authbench-ctaphi"),
		Options:    map[string]bool{"rk": true, "up": true},
		MaxMsgSize: ctaphid.MaxMessageSize,
	}
	b, err := em.Marshal(info)
	if err != nil {
		panic(err)
	}
	return append([]byte{0x00}, b...)
}

func (chip) ServeCTAP2(ctx context.Context, req []byte) []byte {
	if len(req) == 1 && req[0] == ctap2.CmdGetInfo {
		return getInfoResponse()
	}
	return req
}

func (chip) ServeU2F(ctx context.Context, req []byte) []byte { return append(req, 0x90, 0x00) }

// exchange is the session in the transcript: PING, then getInfo.
func exchange(t *testing.T, c *ctaphid.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := c.Ping(ctx, []byte("authbench ping over CTAPHID, long enough to need a continuation packet (SEQ 0)")); err != nil {
		t.Fatal(err)
	}
	resp, err := c.CBOR(ctx, []byte{ctap2.CmdGetInfo})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp) == 0 || resp[0] != 0x00 {
		t.Fatalf("getInfo status %x", resp)
	}
	var info ctap2.Info
	if err := cbor.Unmarshal(resp[1:], &info); err != nil {
		t.Fatal(err)
	}
	if info.MaxMsgSize != 7609 || len(info.Versions) != 2 {
		t.Errorf("getInfo = %+v", info)
	}
}

// record runs the exchange against the in-process device through a
// Recorder and returns the transcript.
func record(t *testing.T) []ctaphidtest.Step {
	host, dev := ctaphid.NewPipe()
	defer host.Close()
	ctx, cancel := context.WithCancel(context.Background())
	serveErr := make(chan error, 1)
	// No periodic keepalives: the recording must not depend on timing.
	go func() {
		serveErr <- ctaphid.Serve(ctx, dev, chip{}, ctaphid.ServeOptions{Major: 1, KeepaliveInterval: time.Hour})
	}()
	rec := ctaphidtest.NewRecorder(host)
	c, err := ctaphid.Open(ctx, rec, ctaphid.Options{Rand: seeded()})
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-serveErr
	return rec.Steps()
}

func play(t *testing.T, steps []ctaphidtest.Step) {
	t.Helper()
	pb := ctaphidtest.NewPlayback(steps)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	c, err := ctaphid.Open(ctx, pb, ctaphid.Options{Rand: seeded()})
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPlaybackTranscript plays the recorded session in testdata to a host
// Conn: it must write exactly the recorded reports. Run with -update to
// record it again.
func TestPlaybackTranscript(t *testing.T) {
	leakCheck(t)
	if *update {
		steps := record(t)
		header := "# CTAPHID session recorded from ctaphid.Serve by ctaphidtest's TestPlaybackTranscript -update:\n" +
			"# INIT on the broadcast channel (seeded nonce), PING of 78 bytes (two packets), CBOR authenticatorGetInfo.\n" +
			"# '>' host to device, '<' device to host; one 64-byte report per line.\n"
		if err := os.WriteFile(transcriptFile, append([]byte(header), ctaphidtest.FormatTranscript(steps)...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(transcriptFile)
	if err != nil {
		t.Fatal(err)
	}
	steps, err := ctaphidtest.ParseTranscript(b)
	if err != nil {
		t.Fatal(err)
	}
	play(t, steps)
}

// TestRecordThenPlay records a fresh session in memory and plays it back.
func TestRecordThenPlay(t *testing.T) {
	leakCheck(t)
	steps := record(t)
	if len(steps) < 6 || !steps[0].Write || steps[1].Write {
		t.Fatalf("recorded %d steps: %s", len(steps), ctaphidtest.FormatTranscript(steps))
	}
	play(t, steps)
}

func TestPlaybackIsStrict(t *testing.T) {
	leakCheck(t)
	steps := []ctaphidtest.Step{{Write: true, Report: []byte{1, 2}}, {Report: []byte{3}}, {Write: true, Report: []byte{4}}}

	pb := ctaphidtest.NewPlayback(steps)
	_, err := pb.Write([]byte{1, 3})
	if !errors.Is(err, device.ErrProtocol) || !strings.Contains(err.Error(), "want > 0102") || !strings.Contains(err.Error(), "got  > 0103") {
		t.Errorf("wrong write: %v", err)
	}
	if err := pb.Close(); !errors.Is(err, device.ErrProtocol) || !strings.Contains(err.Error(), "step 1") {
		t.Errorf("Close after a wrong write: %v", err)
	}

	pb = ctaphidtest.NewPlayback(steps)
	pb.Write([]byte{1, 2})
	if _, err := pb.Write([]byte{4}); !errors.Is(err, device.ErrProtocol) || !strings.Contains(err.Error(), "want < 03") {
		t.Errorf("write while a read is due: %v", err)
	}
	pb.Close()

	pb = ctaphidtest.NewPlayback(steps)
	pb.Write([]byte{1, 2})
	buf := make([]byte, 64)
	if n, err := pb.Read(buf); err != nil || !bytes.Equal(buf[:n], []byte{3}) {
		t.Errorf("Read = %x, %v", buf[:n], err)
	}
	if err := pb.Close(); !errors.Is(err, device.ErrProtocol) || !strings.Contains(err.Error(), "1 of 3 steps not played, next: > 04") {
		t.Errorf("Close with a step left: %v", err)
	}
	if _, err := pb.Read(buf); !errors.Is(err, device.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}

	pb = ctaphidtest.NewPlayback(steps[:1])
	pb.Write([]byte{1, 2})
	if _, err := pb.Write([]byte{9}); !errors.Is(err, device.ErrProtocol) || !strings.Contains(err.Error(), "after the last step") {
		t.Errorf("write past the end: %v", err)
	}
	pb.Close()
}

func TestPlaybackReadWaits(t *testing.T) {
	leakCheck(t)
	pb := ctaphidtest.NewPlayback([]ctaphidtest.Step{{Write: true, Report: []byte{1}}, {Report: []byte{2}}})
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 64)
		n, err := pb.Read(buf) // waits for the write
		if err != nil {
			t.Error(err)
		}
		got <- buf[:n]
	}()
	pb.Write([]byte{1})
	if r := <-got; !bytes.Equal(r, []byte{2}) {
		t.Errorf("Read = %x", r)
	}
	// At the end, Read waits like a silent device: a deadline or Close ends it.
	pb.SetReadDeadline(time.Now().Add(time.Millisecond))
	var te interface{ Timeout() bool }
	if _, err := pb.Read(make([]byte, 64)); !errors.As(err, &te) || !te.Timeout() {
		t.Errorf("Read past the deadline: %v", err)
	}
	pb.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, err := pb.Read(make([]byte, 64))
		errc <- err
	}()
	if err := pb.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := <-errc; !errors.Is(err, device.ErrClosed) {
		t.Errorf("pending Read after Close: %v", err)
	}
}

func TestParseTranscript(t *testing.T) {
	in := "# comment\n\n> 01 02 AB\n<0304\n  > ff\n"
	steps, err := ctaphidtest.ParseTranscript([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := "> 0102ab\n< 0304\n> ff\n"
	if got := string(ctaphidtest.FormatTranscript(steps)); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"= 00\n", "> 0\n", "> zz\n", ">\n", "# ok\n< \n"} {
		if s, err := ctaphidtest.ParseTranscript([]byte(bad)); s != nil || !errors.Is(err, device.ErrProtocol) {
			t.Errorf("%q: %v, %v", bad, s, err)
		}
	}
}

func FuzzParseTranscript(f *testing.F) {
	names, _ := filepath.Glob("../../../testdata/ctaphid/*.transcript")
	if len(names) == 0 {
		f.Fatal("no transcripts in testdata/ctaphid")
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("> 00\n< 01\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		steps, err := ctaphidtest.ParseTranscript(b)
		if err != nil {
			if steps != nil {
				t.Fatal("steps and error")
			}
			return
		}
		canon := ctaphidtest.FormatTranscript(steps)
		again, err := ctaphidtest.ParseTranscript(canon)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v", err)
		}
		if !bytes.Equal(ctaphidtest.FormatTranscript(again), canon) || len(again) != len(steps) {
			t.Fatalf("canonical form does not round-trip:\n%s", canon)
		}
	})
}

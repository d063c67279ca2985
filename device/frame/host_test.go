package frame

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/frame/frametest"
)

// rig is a Host and a Server joined by a frametest.Pipe.
type rig struct {
	host     *Host
	srv      *Server
	dev      *fakeDevice
	hostEnd  *frametest.End // the host's end of the pipe
	devEnd   *frametest.End // the device's end
	serveErr chan error
}

type rigOptions struct {
	mode       string // how the host sees its end (modes)
	devMode    string // how the server sees its end; "" = same as mode
	opts       Options
	hostFaults *frametest.Faults // if set, wraps the host's end (RW is filled in)
	devFaults  *frametest.Faults // if set, wraps the device's end
	noServer   bool
	kind       Kind
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	if o.devMode == "" {
		o.devMode = o.mode
	}
	if o.kind == 0 {
		o.kind = KindCodeDisplay
	}
	if o.opts.Rand == nil {
		o.opts.Rand = bytes.NewReader([]byte{0})
	}
	hostEnd, devEnd := frametest.Pipe()
	r := &rig{dev: newFakeDevice(o.kind), hostEnd: hostEnd, devEnd: devEnd, serveErr: make(chan error, 1)}
	var hrw io.ReadWriter = wrap(hostEnd, o.mode)
	if o.hostFaults != nil {
		o.hostFaults.RW = hrw
		hrw = o.hostFaults
		if o.mode != "deadline" {
			hrw = plain{hrw} // Faults offers SetReadDeadline; keep the mode asked for
		}
	}
	var drw io.ReadWriter = wrap(devEnd, o.devMode)
	if o.devFaults != nil {
		o.devFaults.RW = drw
		drw = o.devFaults
		if o.devMode != "deadline" {
			drw = plain{drw}
		}
	}
	r.host = NewHost(hrw, &o.opts)
	r.srv = &Server{Handler: r.dev, IdleTimeout: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	if o.noServer {
		close(r.serveErr)
	} else {
		go func() { r.serveErr <- r.srv.Serve(ctx, drw) }()
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.serveErr:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
		r.host.Close()
		hostEnd.Close()
		devEnd.Close()
		waitDone(t, r.host.rd.done)
	})
	return r
}

func waitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("reader goroutine did not exit")
	}
}

func eachMode(t *testing.T, f func(t *testing.T, mode string)) {
	for _, m := range modes {
		t.Run(m, func(t *testing.T) { f(t, m) })
	}
}

func TestHostCommands(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		ctx := context.Background()
		r := newRig(t, rigOptions{mode: mode, kind: KindAudioReader})
		h := r.host
		info, err := h.Identify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Kind != device.KindAudioCodeReader || info.Serial != "CD0000001" || info.Period != 30*time.Second || info.Digits != 6 {
			t.Fatalf("info %+v", info)
		}
		code, err := h.Press(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if code.Digits != "111111" || code.Step != 1 || code.ValidFor != 17*time.Second {
			t.Fatalf("code %+v", code)
		}
		if code.Audio == nil || code.Audio.SampleRate != 16000 || !bytes.Equal(code.Audio.PCM, r.dev.pcm) {
			t.Fatalf("audio %+v", code.Audio)
		}
		if n := r.dev.Calls(CmdAudio); n != 3 { // 2500 bytes in chunks of 1023
			t.Errorf("%d AUDIO requests, want 3", n)
		}
		if s, err := h.Display(ctx); err != nil || s != "111111" {
			t.Fatalf("Display %q, %v", s, err)
		}
		if err := h.Settings(ctx, &Settings{Language: "en", Speed: 120, Volume: 50}); err != nil {
			t.Fatal(err)
		}
		if r.dev.settings != (Settings{Language: "en", Speed: 120, Volume: 50}) {
			t.Fatalf("settings %+v", r.dev.settings)
		}
		var se *StatusError
		if err := h.Settings(ctx, &Settings{Language: "fr"}); !errors.As(err, &se) || se.Status != StatusBadRequest || se.Cmd != CmdSettings {
			t.Fatalf("Settings fr: %v", err)
		}
		if err := h.SetClock(ctx, time.Unix(1800000000, 0)); err != nil {
			t.Fatal(err)
		}
		st, err := h.Status(ctx)
		if err != nil || st.Clock != 1800000000 || !st.FactoryMode || st.Presses != 1 || st.Battery != 87 {
			t.Fatalf("Status %+v, %v", st, err)
		}
		pr, err := h.Provision(ctx, stationRequest())
		if err != nil {
			t.Fatal(err)
		}
		if secret, err := pr.Open(stationPriv, info.Serial); err != nil || !bytes.Equal(secret, testSecret) {
			t.Fatalf("Open %q, %v", secret, err)
		}
		if err := h.Seal(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Provision(ctx, stationRequest()); !errors.As(err, &se) || se.Status != StatusSealed {
			t.Fatalf("Provision after Seal: %v", err)
		}
		if st, data, err := h.Do(ctx, 0x42, []byte{1, 2}); err != nil || st != StatusUnknownCommand || len(data) != 0 {
			t.Fatalf("Do 0x42: %v %x %v", st, data, err)
		}
		if err := h.SetClock(ctx, time.Unix(-1, 0)); err == nil {
			t.Fatal("SetClock before 1970 accepted")
		}
		r.dev.noCode = true
		if _, err := h.Press(ctx); !errors.Is(err, device.ErrNoCode) {
			t.Fatalf("Press without code: %v", err)
		}
		if hs := h.Stats(); hs.Resends != 0 || hs.Timeouts != 0 || hs.Commands != 15 || hs.Parser.Frames != 15 {
			t.Errorf("host stats %+v", hs)
		}
	})
}

// TestDroppedBadCRCThenResend: the host's first frame is corrupted on the
// way; the device drops it silently, the host times out and resends the
// identical frame (same SEQ), and the second one is answered.
func TestDroppedBadCRCThenResend(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		faults := &frametest.Faults{Corrupt: []int{1}}
		r := newRig(t, rigOptions{mode: mode, hostFaults: faults, opts: Options{Timeout: 100 * time.Millisecond}})
		code, err := r.host.Press(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if code.Digits != "111111" {
			t.Fatalf("code %+v", code)
		}
		w := faults.Writes()
		if len(w) < 2 || !bytes.Equal(w[0], w[1]) {
			t.Fatalf("writes %x: want the same frame twice", w)
		}
		if f, _ := ParseFrame(w[0]); f.Seq != 0 || f.Cmd != CmdPress {
			t.Fatalf("frame %+v", f)
		}
		if hs := r.host.Stats(); hs.Resends < 1 || hs.Commands != 1 {
			t.Errorf("host stats %+v", hs)
		}
		waitFor(t, func() bool { return r.srv.Stats().Parser.BadCRC >= 1 }, "server to count the bad CRC")
		if n := r.dev.Calls(CmdPress); n != 1 {
			t.Errorf("handler saw %d PRESS, want 1", n)
		}
	})
}

// TestRepeatedSeqFromCache: the device's answer is lost; the host resends
// with the same SEQ and the device answers from its cache without calling
// the handler again, so no second code is consumed.
func TestRepeatedSeqFromCache(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		faults := &frametest.Faults{Drop: []int{1}}
		r := newRig(t, rigOptions{mode: mode, devFaults: faults, opts: Options{Timeout: 100 * time.Millisecond}})
		ctx := context.Background()
		code, err := r.host.Press(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if code.Step != 1 {
			t.Fatalf("code %+v", code)
		}
		if n := r.dev.Calls(CmdPress); n != 1 {
			t.Fatalf("handler saw %d PRESS, want 1", n)
		}
		if st := r.srv.Stats(); st.Replayed < 1 || st.Requests != 1 {
			t.Fatalf("server stats %+v", st)
		}
		w := faults.Writes()
		if len(w) < 2 || !bytes.Equal(w[0], w[1]) {
			t.Fatalf("device writes %x: want the cached frame twice", w)
		}
		// The next PRESS has a new SEQ and gets a new code.
		if code, err = r.host.Press(ctx); err != nil || code.Step != 2 {
			t.Fatalf("second press %+v, %v", code, err)
		}
	})
}

// TestServeCacheIsLastOnly: the same SEQ with another command or payload is
// a new request, and only the last answer is replayed.
func TestServeCacheIsLastOnly(t *testing.T) {
	r := newRig(t, rigOptions{mode: "deadline", noServer: true})
	dev := newFakeDevice(KindCodeDisplay)
	srv := &Server{Handler: dev}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, r.devEnd) }()
	defer func() { cancel(); <-done }()
	var p Parser
	exchange := func(seq, cmd byte, payload ...byte) Frame {
		t.Helper()
		r.hostEnd.Write(enc(seq, cmd, payload...))
		buf := make([]byte, MaxFrame)
		for {
			if f, ok := p.Next(); ok {
				return f
			}
			n, err := r.hostEnd.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			p.Write(buf[:n])
		}
	}
	a := exchange(7, CmdPress)
	b := exchange(7, CmdPress) // resend: cached
	c := exchange(7, CmdDisplay)
	d := exchange(7, CmdPress) // same SEQ as two ago: a new request
	e := exchange(8, CmdSettings, 'd', 'a', 1, 2)
	f := exchange(8, CmdSettings, 'd', 'a', 1, 3)
	if !bytes.Equal(a.Payload, b.Payload) || bytes.Equal(a.Payload, d.Payload) || c.Cmd != CmdDisplay|ResponseBit {
		t.Fatalf("answers %x %x %x %x", a.Payload, b.Payload, c.Payload, d.Payload)
	}
	if e.Seq != 8 || f.Seq != 8 {
		t.Fatal("SEQ not echoed")
	}
	if dev.Calls(CmdPress) != 2 || dev.Calls(CmdSettings) != 2 {
		t.Fatalf("calls %v", dev.calls)
	}
	if st := srv.Stats(); st.Replayed != 1 || st.Requests != 5 {
		t.Fatalf("stats %+v", st)
	}
}

// TestResyncAfterGarbage: noise on the line in both directions, including
// a false A5 with a large LEN that only Idle clears, does not stop the
// exchange.
func TestResyncAfterGarbage(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		r := newRig(t, rigOptions{mode: mode, opts: Options{Timeout: 100 * time.Millisecond}})
		garbage := []byte{0x00, 0xFF, SOF, 0xFF, 0xFF, 0x13, SOF, 0x03, 0xE8, 0x01}
		r.hostEnd.Write(garbage) // to the device
		r.devEnd.Write(garbage)  // to the host
		info, err := r.host.Identify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.Serial != "CD0000001" {
			t.Fatalf("info %+v", info)
		}
		hs := r.host.Stats()
		if hs.Parser.BadLen < 1 || hs.Parser.Stale < 1 {
			t.Errorf("host parser %+v", hs.Parser)
		}
		waitFor(t, func() bool { return r.srv.Stats().Parser.Stale >= 1 }, "server to give up the false A5")
	})
}

func TestHostIgnoresStaleResponses(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		r := newRig(t, rigOptions{mode: mode, opts: Options{Rand: bytes.NewReader([]byte{5})}})
		// A late answer to an earlier command, an echo of a request, and an
		// answer with the right SEQ to another command.
		r.devEnd.Write(cat(enc(4, CmdPress|ResponseBit, 0, 9, 9), enc(5, CmdIdentify), enc(5, CmdPress|ResponseBit, 0)))
		if _, err := r.host.Identify(context.Background()); err != nil {
			t.Fatal(err)
		}
		if hs := r.host.Stats(); hs.Ignored != 3 {
			t.Fatalf("stats %+v", hs)
		}
	})
}

func TestHostTimeout(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		faults := &frametest.Faults{}
		r := newRig(t, rigOptions{mode: mode, noServer: true, hostFaults: faults, opts: Options{Timeout: 5 * time.Millisecond, Retries: 2}})
		_, err := r.host.Press(context.Background())
		if !errors.Is(err, device.ErrTimeout) {
			t.Fatalf("err %v", err)
		}
		w := faults.Writes()
		if len(w) != 3 || !bytes.Equal(w[0], w[2]) {
			t.Fatalf("writes %x", w)
		}
		if hs := r.host.Stats(); hs.Resends != 2 || hs.Timeouts != 1 {
			t.Fatalf("stats %+v", hs)
		}
		// Negative Retries: one try only.
		a, b := frametest.Pipe()
		defer a.Close()
		defer b.Close()
		h := NewHost(wrap(a, mode), &Options{Timeout: time.Millisecond, Retries: -1})
		defer h.Close()
		if _, _, err := h.Do(context.Background(), CmdIdentify, nil); !errors.Is(err, device.ErrTimeout) || h.Stats().Resends != 0 {
			t.Fatalf("Retries -1: %v, %+v", err, h.Stats())
		}
	})
}

func TestHostContextAndClose(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		r := newRig(t, rigOptions{mode: mode, noServer: true})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { _, err := r.host.Press(ctx); errc <- err }()
		r.devEnd.Read(make([]byte, 64)) // the request is out: the host waits
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("after cancel: %v", err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		if _, err := r.host.Press(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("after deadline: %v", err)
		}

		go func() { _, err := r.host.Identify(context.Background()); errc <- err }()
		r.devEnd.Read(make([]byte, 64))
		r.host.Close()
		if err := <-errc; !errors.Is(err, device.ErrClosed) {
			t.Fatalf("Close during Do: %v", err)
		}
		if _, err := r.host.Identify(context.Background()); !errors.Is(err, device.ErrClosed) {
			t.Fatalf("Do after Close: %v", err)
		}
		if r.host.Close() != nil {
			t.Fatal("second Close failed")
		}
	})
}

func TestHostRemoved(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		r := newRig(t, rigOptions{mode: mode, noServer: true})
		r.devEnd.Close()
		_, err := r.host.Identify(context.Background())
		if !errors.Is(err, device.ErrRemoved) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestHostErrors(t *testing.T) {
	r := newRig(t, rigOptions{mode: "deadline"})
	ctx := context.Background()
	if _, _, err := r.host.Do(ctx, CmdAudio, make([]byte, MaxPayload+1)); !errors.Is(err, device.ErrMessageTooLarge) {
		t.Errorf("large payload: %v", err)
	}
	if _, _, err := r.host.Do(ctx, CmdPress|ResponseBit, nil); !errors.Is(err, device.ErrProtocol) {
		t.Errorf("response bit: %v", err)
	}
	// Malformed answers from the device.
	for cmd, answer := range map[byte][]byte{
		CmdIdentify: {1, 1},
		CmdPress:    []byte("12345"),
		CmdSettings: {1},
		CmdAudio:    nil, // empty chunk
	} {
		r.dev.mu.Lock()
		r.dev.answer = func(byte) []byte { return answer }
		r.dev.mu.Unlock()
		var err error
		switch cmd {
		case CmdIdentify:
			_, err = r.host.Identify(ctx)
		case CmdPress:
			_, err = r.host.Press(ctx)
		case CmdSettings:
			err = r.host.Settings(ctx, &Settings{Language: "da"})
		case CmdAudio:
			_, err = r.host.Audio(ctx, 10)
		}
		wantPayloadErr(t, CmdName(cmd), err)
	}
	if _, err := r.host.Audio(ctx, maxAudio+1); err == nil {
		t.Error("huge audio accepted")
	}
	// A response without a status byte.
	r2 := newRig(t, rigOptions{mode: "deadline", noServer: true})
	r2.devEnd.Write(enc(0, CmdPress|ResponseBit))
	if _, _, err := r2.host.Do(ctx, CmdPress, nil); !errors.Is(err, device.ErrProtocol) {
		t.Errorf("no status: %v", err)
	}
}

// TestServeNeverSpeaksFirst: an echoed response gets no answer, and the
// first bytes back answer the request that follows it.
func TestServeNeverSpeaksFirst(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		r := newRig(t, rigOptions{mode: mode})
		r.hostEnd.Write(cat(enc(1, CmdPress|ResponseBit, 0), enc(2, CmdDisplay)))
		wire := enc(2, CmdDisplay|ResponseBit, append([]byte{0}, "000000"...)...)
		got := make([]byte, len(wire))
		if _, err := io.ReadFull(r.hostEnd, got); err != nil || !bytes.Equal(got, wire) {
			t.Fatalf("got %x, %v; want %x", got, err, wire)
		}
		if st := r.srv.Stats(); st.Ignored != 1 || st.Requests != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestServeReturns(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		// On EOF.
		a, b := frametest.Pipe()
		done := make(chan error, 1)
		go func() { done <- Serve(context.Background(), wrap(b, mode), newFakeDevice(KindCodeDisplay)) }()
		a.Write(enc(1, CmdIdentify))
		a.CloseWrite()
		if err := <-done; err != nil {
			t.Fatalf("EOF: %v", err)
		}
		if f, err := ParseFrame(mustRead(t, a, len(enc(1, CmdIdentify|ResponseBit, ok(mustEnc(newFakeDevice(KindCodeDisplay).id.Encode()))...)))); err != nil || f.Seq != 1 {
			t.Fatalf("answer before EOF: %+v, %v", f, err)
		}
		a.Close()
		b.Close()
		// On ctx end, with a partial frame pending.
		a, b = frametest.Pipe()
		defer a.Close()
		defer b.Close()
		ctx, cancel := context.WithCancel(context.Background())
		go func() { done <- Serve(ctx, wrap(b, mode), newFakeDevice(KindCodeDisplay)) }()
		a.Write([]byte{SOF, 0, 1})
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("cancel: %v", err)
		}
		// A handler that answers too much.
		a2, b2 := frametest.Pipe()
		defer a2.Close()
		defer b2.Close()
		go func() {
			done <- Serve(context.Background(), wrap(b2, mode), HandlerFunc(func(context.Context, byte, []byte) (Status, []byte) {
				return StatusOK, make([]byte, MaxData+1)
			}))
		}()
		a2.Write(enc(1, CmdIdentify))
		if err := <-done; !errors.Is(err, device.ErrMessageTooLarge) {
			t.Fatalf("large answer: %v", err)
		}
	})
}

// TestNoGoroutineLeft: after Serve returns, Close, and the stream is
// closed, the goroutine count settles back.
func TestNoGoroutineLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, mode := range modes {
		a, b := frametest.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); Serve(ctx, wrap(b, mode), newFakeDevice(KindAudioReader)) }()
		h := NewHost(wrap(a, mode), nil)
		if _, err := h.Press(ctx); err != nil {
			t.Fatal(err)
		}
		h.Close()
		cancel()
		wg.Wait()
		a.Close()
		b.Close()
		waitDone(t, h.rd.done)
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before }, "goroutines to exit")
}

func mustRead(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFor polls cond; the 10 s limit is only a failure guard.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestServeEndsWhenPipePeerCloses: a host that closes its end of a net.Pipe
// ends Serve without an error, as EOF does.
func TestServeEndsWhenPipePeerCloses(t *testing.T) {
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), a, HandlerFunc(func(ctx context.Context, cmd byte, p []byte) (Status, []byte) {
			return StatusOK, nil
		}))
	}()
	b.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v, want nil after the peer closed", err)
	}
}

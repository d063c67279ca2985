package ctaphid_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
)

// The messenger interfaces of the CTAP2 and U2F clients.
var (
	_ interface {
		CBOR(ctx context.Context, req []byte) ([]byte, error)
	} = (*ctaphid.Conn)(nil)
	_ interface {
		APDU(ctx context.Context, req []byte) ([]byte, error)
	} = (*ctaphid.Conn)(nil)
	_ io.ReadWriteCloser = (*ctaphid.PipeEnd)(nil)
)

func ctxGuard(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	t.Cleanup(cancel)
	return ctx
}

func TestOpen(t *testing.T) {
	leakCheck(t)
	w := &winker{winks: make(chan struct{}, 1)}
	host := startDevice(t, w, ctaphid.ServeOptions{Major: 4, Minor: 5, Build: 6})
	c := open(t, host, ctaphid.Options{})
	if c.CID() != 1 {
		t.Errorf("CID = %08X, want 00000001 (the first channel)", c.CID())
	}
	want := ctaphid.DeviceInfo{ProtocolVersion: 2, Major: 4, Minor: 5, Build: 6, Capabilities: ctaphid.CapWink | ctaphid.CapCBOR}
	if got := c.DeviceInfo(); got != want {
		t.Errorf("DeviceInfo = %+v, want %+v", got, want)
	}
	if err := c.Wink(ctxGuard(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.winks:
	default:
		t.Error("Wink did not reach the handler")
	}
	// One transport, one Conn at a time (NewHub shares a device).
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c2 := open(t, host, ctaphid.Options{})
	if c2.CID() != 2 {
		t.Errorf("second CID = %08X, want 00000002", c2.CID())
	}
}

func TestCapabilityOptions(t *testing.T) {
	leakCheck(t)
	host := startDevice(t, &handler{}, ctaphid.ServeOptions{NoCBOR: true})
	c := open(t, host, ctaphid.Options{})
	if caps := c.DeviceInfo().Capabilities; caps != 0 {
		t.Errorf("capabilities %s, want none", caps)
	}
	if _, err := c.CBOR(ctxGuard(t), []byte{0x04}); !errors.Is(err, device.ErrNotSupported) {
		t.Errorf("CBOR on a U2F-only device: %v, want device.ErrNotSupported", err)
	}
	// Wink without a Winker is still answered.
	if err := c.Wink(ctxGuard(t)); err != nil {
		t.Errorf("Wink: %v", err)
	}
	if resp, err := c.APDU(ctxGuard(t), []byte{0, 3, 0, 0}); err != nil || !bytes.Equal(resp, []byte{0, 3, 0, 0}) {
		t.Errorf("APDU = %x, %v", resp, err)
	}

	host2 := startDevice(t, &handler{}, ctaphid.ServeOptions{NoMSG: true})
	c2 := open(t, host2, ctaphid.Options{})
	if caps := c2.DeviceInfo().Capabilities; caps != ctaphid.CapCBOR|ctaphid.CapNMSG {
		t.Errorf("capabilities %s, want CBOR|NMSG", caps)
	}
	if _, err := c2.APDU(ctxGuard(t), []byte{0, 3, 0, 0}); !errors.Is(err, device.ErrNotSupported) {
		t.Errorf("APDU on a CTAP2-only device: %v, want device.ErrNotSupported", err)
	}
}

func TestMaxMessageRoundTrip(t *testing.T) {
	leakCheck(t)
	host := startDevice(t, &handler{}, ctaphid.ServeOptions{})
	c := open(t, host, ctaphid.Options{})
	ctx := ctxGuard(t)
	msg := make([]byte, ctaphid.MaxMessageSize)
	for i := range msg {
		msg[i] = byte(i * 31)
	}
	resp, err := c.CBOR(ctx, msg)
	if err != nil || !bytes.Equal(resp, msg) {
		t.Fatalf("CBOR of 7609 bytes: %d bytes back, %v", len(resp), err)
	}
	if resp, err := c.APDU(ctx, msg); err != nil || !bytes.Equal(resp, msg) {
		t.Fatalf("APDU of 7609 bytes: %d bytes back, %v", len(resp), err)
	}
	if err := c.Ping(ctx, msg); err != nil {
		t.Fatalf("PING of 7609 bytes: %v", err)
	}
	if err := c.Ping(ctx, nil); err != nil {
		t.Fatalf("empty PING: %v", err)
	}

	big := make([]byte, ctaphid.MaxMessageSize+1)
	calls := map[string]func() error{
		"CBOR": func() error { _, err := c.CBOR(ctx, big); return err },
		"APDU": func() error { _, err := c.APDU(ctx, big); return err },
		"PING": func() error { return c.Ping(ctx, big) },
	}
	for name, call := range calls {
		err := call()
		var tl *ctaphid.TooLargeError
		if !errors.Is(err, device.ErrMessageTooLarge) || !errors.As(err, &tl) || tl.Size != 7610 {
			t.Errorf("%s of 7610 bytes: %v, want *TooLargeError (device.ErrMessageTooLarge)", name, err)
		}
	}
	// Nothing was sent: the channel still works.
	if err := c.Ping(ctx, []byte("still there")); err != nil {
		t.Fatal(err)
	}
}

// presence is a handler that reports UPNEEDED and waits for a touch or a
// cancel, as an authenticator waiting for user presence does.
type presence struct {
	waiting   chan struct{} // receives when the handler waits
	touch     chan struct{} // closed or sent to for a touch
	cancelled chan struct{} // receives when the handler saw its ctx end
	ignoreCtx bool          // do not stop on cancel (a slow authenticator)
}

func newPresence() *presence {
	return &presence{waiting: make(chan struct{}, 10), touch: make(chan struct{}), cancelled: make(chan struct{}, 10)}
}

func (p *presence) ServeCTAP2(ctx context.Context, req []byte) []byte {
	if len(req) > 0 && req[0] != ctap2.CmdSelection {
		return []byte{0x00, 0xA0} // CTAP2_OK and an empty map
	}
	ctap2.Keepalive(ctx, ctap2.StatusUPNeeded)
	p.waiting <- struct{}{}
	if p.ignoreCtx {
		<-p.touch
		return []byte{0x00}
	}
	select {
	case <-p.touch:
		return []byte{0x00}
	case <-ctx.Done():
		p.cancelled <- struct{}{}
		return []byte{0x2D} // CTAP2_ERR_KEEPALIVE_CANCEL
	}
}

func (p *presence) ServeU2F(ctx context.Context, req []byte) []byte {
	return []byte{0x69, 0x85} // SW_CONDITIONS_NOT_SATISFIED
}

func TestKeepaliveWhileWaitingForPresence(t *testing.T) {
	leakCheck(t)
	p := newPresence()
	host := startDevice(t, p, ctaphid.ServeOptions{KeepaliveInterval: 5 * time.Millisecond})
	c := open(t, host, ctaphid.Options{})

	statuses := make(chan ctap2.KeepaliveStatus, 100)
	ctx := ctap2.WithKeepalive(ctxGuard(t), func(s ctap2.KeepaliveStatus) {
		select {
		case statuses <- s:
		default:
		}
	})
	type result struct {
		resp []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := c.CBOR(ctx, []byte{ctap2.CmdSelection})
		done <- result{resp, err}
	}()
	<-p.waiting
	// Several keepalives with UPNEEDED arrive while the handler waits.
	for n := 0; n < 3; {
		select {
		case s := <-statuses:
			if s == ctap2.StatusUPNeeded {
				n++
			}
		case <-time.After(guard):
			t.Fatal("no UPNEEDED keepalive")
		}
	}
	close(p.touch)
	r := <-done
	if r.err != nil || !bytes.Equal(r.resp, []byte{0x00}) {
		t.Fatalf("CBOR = %x, %v", r.resp, r.err)
	}
}

func TestCancelOnContextEnd(t *testing.T) {
	leakCheck(t)
	p := newPresence()
	host := startDevice(t, p, ctaphid.ServeOptions{})
	c := open(t, host, ctaphid.Options{CancelWait: guard})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.CBOR(ctx, []byte{ctap2.CmdSelection})
		done <- err
	}()
	<-p.waiting
	cancel()
	select {
	case <-p.cancelled: // CANCEL reached the handler's ctx
	case <-time.After(guard):
		t.Fatal("the handler's context was not cancelled")
	}
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("CBOR: %v, want context.Canceled", err)
		}
	case <-time.After(guard):
		t.Fatal("CBOR did not return after its context ended")
	}
	// The device's 0x2D answer was consumed: the channel is in step.
	resp, err := c.CBOR(ctxGuard(t), []byte{ctap2.CmdGetInfo})
	if err != nil || !bytes.Equal(resp, []byte{0x00, 0xA0}) {
		t.Fatalf("next CBOR = %x, %v", resp, err)
	}
}

func TestCancelMethod(t *testing.T) {
	leakCheck(t)
	p := newPresence()
	host := startDevice(t, p, ctaphid.ServeOptions{})
	c := open(t, host, ctaphid.Options{})
	done := make(chan []byte, 1)
	go func() {
		resp, err := c.CBOR(ctxGuard(t), []byte{ctap2.CmdSelection})
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	<-p.waiting
	if err := c.Cancel(); err != nil {
		t.Fatal(err)
	}
	if resp := <-done; !bytes.Equal(resp, []byte{0x2D}) {
		t.Errorf("cancelled CBOR answered %x, want 2D (CTAP2_ERR_KEEPALIVE_CANCEL)", resp)
	}
}

// TestCancelWithoutAnswer: the authenticator does not stop when cancelled.
// The host gives up after CancelWait; its next call resynchronizes the
// channel, and the device runs that request once the slow one returns.
func TestCancelWithoutAnswer(t *testing.T) {
	leakCheck(t)
	p := newPresence()
	p.ignoreCtx = true
	host := startDevice(t, p, ctaphid.ServeOptions{})
	c := open(t, host, ctaphid.Options{CancelWait: time.Millisecond})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.CBOR(ctx, []byte{ctap2.CmdSelection})
		done <- err
	}()
	<-p.waiting
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("CBOR: %v, want context.Canceled", err)
	}
	next := make(chan error, 1)
	go func() {
		resp, err := c.CBOR(ctxGuard(t), []byte{ctap2.CmdGetInfo})
		if err == nil && !bytes.Equal(resp, []byte{0x00, 0xA0}) {
			t.Errorf("next CBOR answered %x", resp)
		}
		next <- err
	}()
	close(p.touch) // the slow request ends; its answer is dropped
	if err := <-next; err != nil {
		t.Fatal(err)
	}
	if c.CID() != 1 {
		t.Errorf("CID after resync = %08X, want 00000001", c.CID())
	}
}

func TestSecondChannelIsBusy(t *testing.T) {
	leakCheck(t)
	p := newPresence()
	dev, hosts := ctaphid.NewHub(2)
	stop := serveOn(t, dev, p, ctaphid.ServeOptions{})
	t.Cleanup(func() { stop(); dev.Close() })
	c1 := open(t, hosts[0], ctaphid.Options{})
	c2 := open(t, hosts[1], ctaphid.Options{Rand: bytes.NewReader(bytes.Repeat([]byte{0x5A}, 64))})
	if c1.CID() == c2.CID() {
		t.Fatalf("both channels are %08X", c1.CID())
	}

	done := make(chan error, 1)
	go func() {
		_, err := c1.CBOR(ctxGuard(t), []byte{ctap2.CmdSelection})
		done <- err
	}()
	<-p.waiting
	_, err := c2.CBOR(ctxGuard(t), []byte{ctap2.CmdGetInfo})
	var e *ctaphid.Error
	if !errors.Is(err, device.ErrBusy) || !errors.As(err, &e) || e.Code != ctaphid.CodeChannelBusy || e.CID != c2.CID() {
		t.Fatalf("second channel: %v, want ERR_CHANNEL_BUSY (device.ErrBusy)", err)
	}
	if err := c2.Ping(ctxGuard(t), []byte("x")); !errors.Is(err, device.ErrBusy) {
		t.Errorf("PING on the second channel: %v, want device.ErrBusy", err)
	}
	close(p.touch)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := c2.CBOR(ctxGuard(t), []byte{ctap2.CmdGetInfo}); err != nil {
		t.Fatalf("second channel after the first finished: %v", err)
	}
}

func TestDeviceRemovedMidTransaction(t *testing.T) {
	leakCheck(t)
	p := newPresence()
	host, dev := ctaphid.NewPipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serveErr := make(chan error, 1)
	go func() { serveErr <- ctaphid.Serve(ctx, dev, p, ctaphid.ServeOptions{}) }()
	c := open(t, host, ctaphid.Options{})

	done := make(chan error, 1)
	go func() {
		_, err := c.CBOR(context.Background(), []byte{ctap2.CmdSelection})
		done <- err
	}()
	<-p.waiting
	dev.Close() // unplugged
	select {
	case err := <-done:
		if !errors.Is(err, device.ErrRemoved) {
			t.Fatalf("CBOR: %v, want device.ErrRemoved", err)
		}
	case <-time.After(guard):
		t.Fatal("CBOR hangs after the device went away")
	}
	if err := c.Ping(context.Background(), nil); !errors.Is(err, device.ErrRemoved) {
		t.Errorf("Ping after removal: %v, want device.ErrRemoved", err)
	}
	select {
	case err := <-serveErr:
		if !errors.Is(err, device.ErrClosed) {
			t.Errorf("Serve: %v, want device.ErrClosed", err)
		}
	case <-time.After(guard):
		t.Fatal("Serve did not return after its transport closed")
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
}

func TestCloseDuringTransaction(t *testing.T) {
	leakCheck(t)
	p := newPresence()
	host := startDevice(t, p, ctaphid.ServeOptions{})
	c := open(t, host, ctaphid.Options{})
	done := make(chan error, 1)
	go func() {
		_, err := c.CBOR(context.Background(), []byte{ctap2.CmdSelection})
		done <- err
	}()
	<-p.waiting
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, device.ErrClosed) {
		t.Errorf("CBOR: %v, want device.ErrClosed", err)
	}
	if err := c.Ping(context.Background(), nil); !errors.Is(err, device.ErrClosed) {
		t.Errorf("Ping after Close: %v", err)
	}
	if err := c.Cancel(); !errors.Is(err, device.ErrClosed) {
		t.Errorf("Cancel after Close: %v", err)
	}
	close(p.touch)
	// The transport is still usable by a new Conn: Close did not close it.
	// The device may still be finishing the first request, and then says
	// busy.
	c2 := open(t, host, ctaphid.Options{})
	for {
		err := c2.Ping(ctxGuard(t), []byte("hi"))
		if err == nil {
			break
		}
		if !errors.Is(err, device.ErrBusy) {
			t.Fatal(err)
		}
	}
}

func TestCloseTransportOption(t *testing.T) {
	leakCheck(t)
	host := startDevice(t, &handler{}, ctaphid.ServeOptions{})
	c := open(t, host, ctaphid.Options{CloseTransport: true})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := host.Write(make([]byte, 64)); !errors.Is(err, device.ErrClosed) {
		t.Errorf("transport still open after Close: %v", err)
	}
}

// scripted runs a fake device on the far end of a pipe: for each report the
// host writes, reply returns the reports to answer with.
func scripted(t *testing.T, reply func(req *ctaphid.Packet) [][]byte) *ctaphid.PipeEnd {
	host, dev := ctaphid.NewPipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			n, err := dev.Read(buf)
			if err != nil {
				return
			}
			p, err := ctaphid.ParsePacket(buf[:n])
			if err != nil {
				t.Error(err)
				return
			}
			for _, r := range reply(p) {
				if _, err := dev.Write(r); err != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(func() { host.Close(); <-done })
	return host
}

func report(tb testing.TB, cid uint32, cmd ctaphid.Command, data []byte) [][]byte {
	r, err := ctaphid.Fragment(cid, cmd, data)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestOpenSkipsForeignAnswers(t *testing.T) {
	leakCheck(t)
	host := scripted(t, func(p *ctaphid.Packet) [][]byte {
		if p.Cmd != ctaphid.CmdInit {
			return report(t, p.CID, p.Cmd, p.Data[:p.Len]) // echo
		}
		nonce := p.Data[:8]
		other := &ctaphid.InitResponse{CID: 9, DeviceInfo: ctaphid.DeviceInfo{ProtocolVersion: 2}}
		copy(other.Nonce[:], "someone!")
		mine := &ctaphid.InitResponse{CID: 0x0A0B0C0D, DeviceInfo: ctaphid.DeviceInfo{ProtocolVersion: 2, Capabilities: ctaphid.CapCBOR}}
		copy(mine.Nonce[:], nonce)
		var out [][]byte
		out = append(out, report(t, ctaphid.BroadcastCID, ctaphid.CmdInit, other.Encode())...) // another host's answer
		out = append(out, report(t, 0x0A0B0C0D, ctaphid.CmdPing, []byte("stray"))...)          // not on the broadcast channel
		out = append(out, []byte{1, 2, 3})                                                     // not a report
		out = append(out, report(t, ctaphid.BroadcastCID, ctaphid.CmdInit, mine.Encode())...)
		return out
	})
	c := open(t, host, ctaphid.Options{})
	if c.CID() != 0x0A0B0C0D {
		t.Errorf("CID = %08X", c.CID())
	}
}

func TestOpenRejectsBadAnswers(t *testing.T) {
	tests := []struct {
		name  string
		reply func(nonce []byte) [][]byte
		is    error
	}{
		{"CID 0", func(nonce []byte) [][]byte {
			r := &ctaphid.InitResponse{}
			copy(r.Nonce[:], nonce)
			return report(t, ctaphid.BroadcastCID, ctaphid.CmdInit, r.Encode())
		}, device.ErrProtocol},
		{"broadcast CID", func(nonce []byte) [][]byte {
			r := &ctaphid.InitResponse{CID: ctaphid.BroadcastCID}
			copy(r.Nonce[:], nonce)
			return report(t, ctaphid.BroadcastCID, ctaphid.CmdInit, r.Encode())
		}, device.ErrProtocol},
		{"short answer", func(nonce []byte) [][]byte {
			return report(t, ctaphid.BroadcastCID, ctaphid.CmdInit, append(nonce, 0, 0, 0, 1))
		}, device.ErrProtocol},
		{"busy", func(nonce []byte) [][]byte {
			return report(t, ctaphid.BroadcastCID, ctaphid.CmdError, []byte{byte(ctaphid.CodeChannelBusy)})
		}, device.ErrBusy},
		{"silent", func(nonce []byte) [][]byte { return nil }, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			host := scripted(t, func(p *ctaphid.Packet) [][]byte { return tt.reply(p.Data[:8]) })
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			c, err := ctaphid.Open(ctx, host, ctaphid.Options{})
			if c != nil || !errors.Is(err, tt.is) {
				t.Errorf("Open = %v, %v; want %v", c, err, tt.is)
			}
		})
	}
}

func TestMalformedResponses(t *testing.T) {
	tests := []struct {
		name  string
		reply func(cid uint32) [][]byte
		is    error
	}{
		{"error without code", func(cid uint32) [][]byte { return report(t, cid, ctaphid.CmdError, nil) }, device.ErrProtocol},
		{"continuation out of sequence", func(cid uint32) [][]byte {
			r := report(t, cid, ctaphid.CmdCBOR, make([]byte, 200))
			return [][]byte{r[0], r[2], r[1], r[3]}
		}, device.ErrProtocol},
		{"answer on other channels only", func(cid uint32) [][]byte {
			return append(report(t, cid+1, ctaphid.CmdCBOR, []byte{0}), report(t, ctaphid.BroadcastCID, ctaphid.CmdCBOR, []byte{0})...)
		}, context.DeadlineExceeded},
		{"invalid channel", func(cid uint32) [][]byte {
			return report(t, cid, ctaphid.CmdError, []byte{byte(ctaphid.CodeInvalidChannel)})
		}, device.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			host := scripted(t, func(p *ctaphid.Packet) [][]byte {
				if p.Cmd == ctaphid.CmdInit {
					r := &ctaphid.InitResponse{CID: 3, DeviceInfo: ctaphid.DeviceInfo{ProtocolVersion: 2}}
					copy(r.Nonce[:], p.Data)
					return report(t, p.CID, ctaphid.CmdInit, r.Encode())
				}
				if p.Cmd == ctaphid.CmdCBOR {
					return tt.reply(p.CID)
				}
				return nil
			})
			c := open(t, host, ctaphid.Options{CancelWait: time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			resp, err := c.CBOR(ctx, []byte{4})
			if resp != nil || !errors.Is(err, tt.is) {
				t.Errorf("CBOR = %x, %v; want %v", resp, err, tt.is)
			}
		})
	}
}

func TestContextDoneBeforeCall(t *testing.T) {
	leakCheck(t)
	host := startDevice(t, &handler{}, ctaphid.ServeOptions{})
	c := open(t, host, ctaphid.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.CBOR(ctx, []byte{4}); !errors.Is(err, context.Canceled) {
		t.Errorf("CBOR: %v", err)
	}
	if err := c.Ping(ctxGuard(t), []byte("ok")); err != nil {
		t.Error(err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	leakCheck(t)
	host := startDevice(t, &handler{}, ctaphid.ServeOptions{})
	c := open(t, host, ctaphid.Options{})
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			msg := bytes.Repeat([]byte{byte(i)}, 100*i+1)
			resp, err := c.CBOR(ctxGuard(t), msg)
			if err == nil && !bytes.Equal(resp, msg) {
				err = errors.New("wrong answer")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestOversizedAnswer(t *testing.T) {
	leakCheck(t)
	host := startDevice(t, &handler{cbor: func(ctx context.Context, req []byte) []byte {
		return make([]byte, ctaphid.MaxMessageSize+1)
	}}, ctaphid.ServeOptions{})
	c := open(t, host, ctaphid.Options{})
	_, err := c.CBOR(ctxGuard(t), []byte{4})
	var e *ctaphid.Error
	if !errors.As(err, &e) || e.Code != ctaphid.CodeOther {
		t.Errorf("CBOR: %v, want ERR_OTHER", err)
	}
}

// A device that lost its channels (reset) answers ERR_INVALID_CHANNEL; the
// Conn allocates a new channel for the next call.
func TestChannelLostAfterDeviceReset(t *testing.T) {
	leakCheck(t)
	host, dev := ctaphid.NewPipe()
	t.Cleanup(func() { host.Close() })
	stop := serveOn(t, dev, &handler{}, ctaphid.ServeOptions{})
	c := open(t, host, ctaphid.Options{})
	stop() // power cycle: a new Serve knows no channels
	stop2 := serveOn(t, dev, &handler{}, ctaphid.ServeOptions{})
	t.Cleanup(stop2)
	err := c.Ping(ctxGuard(t), []byte("a"))
	var e *ctaphid.Error
	if !errors.As(err, &e) || e.Code != ctaphid.CodeInvalidChannel || !errors.Is(err, device.ErrProtocol) {
		t.Fatalf("first call after reset: %v, want ERR_INVALID_CHANNEL", err)
	}
	if err := c.Ping(ctxGuard(t), []byte("b")); err != nil {
		t.Fatalf("second call: %v", err)
	}
	if c.CID() != 1 {
		t.Errorf("new channel %08X, want 00000001", c.CID())
	}
}

// profiled is a handler that reports the protocols it speaks.
type profiled struct {
	*handler
	p device.Protocols
}

func (h profiled) Protocols() device.Protocols { return h.p }

// TestCapabilitiesFollowProtocols: a handler that reports its protocols
// (device.ProtocolReporter) is announced as what it is in the INIT
// response (CTAP 2.1 §11.2.9.1.3): CBOR only with CTAP2, NMSG without U2F;
// the command it lacks is answered ERR_INVALID_CMD.
func TestCapabilitiesFollowProtocols(t *testing.T) {
	for _, tt := range []struct {
		p        device.Protocols
		caps     ctaphid.Capabilities
		cbor, u2 bool
	}{
		{device.ProfileFIDO2, ctaphid.CapCBOR, true, true},
		{device.ProfileU2FOnly, 0, false, true},
		{device.ProfileCTAP2Only, ctaphid.CapCBOR | ctaphid.CapNMSG, true, false},
		{0, ctaphid.CapCBOR, true, true}, // reports nothing: both
	} {
		t.Run(tt.p.String(), func(t *testing.T) {
			leakCheck(t)
			host := startDevice(t, profiled{&handler{}, tt.p}, ctaphid.ServeOptions{})
			c := open(t, host, ctaphid.Options{})
			if caps := c.DeviceInfo().Capabilities; caps != tt.caps {
				t.Errorf("capabilities %s, want %s", caps, tt.caps)
			}
			_, err := c.CBOR(ctxGuard(t), []byte{0x04})
			if (err == nil) != tt.cbor || err != nil && !errors.Is(err, device.ErrNotSupported) {
				t.Errorf("CBOR: %v", err)
			}
			_, err = c.APDU(ctxGuard(t), []byte{0, 3, 0, 0})
			if (err == nil) != tt.u2 || err != nil && !errors.Is(err, device.ErrNotSupported) {
				t.Errorf("APDU: %v", err)
			}
		})
	}
}

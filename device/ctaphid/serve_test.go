package ctaphid_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authbench/authbench/device/ctaphid"
)

// step is one thing a raw host does in a Serve table test: send a message,
// write raw reports, or expect the next message from the device.
type step struct {
	send    *ctaphid.Message
	reports [][]byte
	expect  *ctaphid.Message
}

func send(cid uint32, cmd ctaphid.Command, data []byte) step {
	return step{send: &ctaphid.Message{CID: cid, Cmd: cmd, Data: data}}
}

func expect(cid uint32, cmd ctaphid.Command, data []byte) step {
	return step{expect: &ctaphid.Message{CID: cid, Cmd: cmd, Data: data}}
}

func expectErr(cid uint32, code ctaphid.ErrorCode) step {
	return expect(cid, ctaphid.CmdError, []byte{byte(code)})
}

func raw(reports ...[]byte) step { return step{reports: reports} }

// ping is a PING and its echo: it proves that nothing else was sent before.
func ping(cid uint32) []step {
	return []step{send(cid, ctaphid.CmdPing, []byte("ping")), expect(cid, ctaphid.CmdPing, []byte("ping"))}
}

func encode(tb testing.TB, p *ctaphid.Packet) []byte {
	b, err := p.Encode()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func initResp(nonce string, cid uint32) []byte {
	r := ctaphid.InitResponse{CID: cid, DeviceInfo: ctaphid.DeviceInfo{ProtocolVersion: 2, Major: 1, Capabilities: ctaphid.CapCBOR}}
	copy(r.Nonce[:], nonce)
	return r.Encode()
}

func TestServeTable(t *testing.T) {
	const B = ctaphid.BroadcastCID
	frag := func(cid uint32, cmd ctaphid.Command, n int) [][]byte {
		r, err := ctaphid.Fragment(cid, cmd, bytes.Repeat([]byte{0x42}, n))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"INIT allocates channels from 1", []step{
			send(B, ctaphid.CmdInit, []byte("nonce-01")), expect(B, ctaphid.CmdInit, initResp("nonce-01", 1)),
			send(B, ctaphid.CmdInit, []byte("nonce-02")), expect(B, ctaphid.CmdInit, initResp("nonce-02", 2)),
		}},
		{"INIT on an allocated channel keeps it", []step{
			send(B, ctaphid.CmdInit, []byte("nonce-01")), expect(B, ctaphid.CmdInit, initResp("nonce-01", 1)),
			send(1, ctaphid.CmdInit, []byte("nonce-03")), expect(1, ctaphid.CmdInit, initResp("nonce-03", 1)),
		}},
		{"INIT with a short nonce", []step{send(B, ctaphid.CmdInit, []byte("short")), expectErr(B, ctaphid.CodeInvalidLen)}},
		{"PING on the broadcast channel", []step{send(B, ctaphid.CmdPing, nil), expectErr(B, ctaphid.CodeInvalidChannel)}},
		{"PING on channel 0", []step{send(0, ctaphid.CmdPing, nil), expectErr(0, ctaphid.CodeInvalidChannel)}},
		{"PING on a channel never allocated", []step{send(5, ctaphid.CmdPing, nil), expectErr(5, ctaphid.CodeInvalidChannel)}},
		{"LOCK is not offered", []step{send(1, ctaphid.CmdLock, []byte{5}), expectErr(1, ctaphid.CodeInvalidCmd)}},
		{"unknown command", []step{send(1, 0x50, nil), expectErr(1, ctaphid.CodeInvalidCmd)}},
		{"KEEPALIVE from a host", []step{send(1, ctaphid.CmdKeepalive, []byte{1}), expectErr(1, ctaphid.CodeInvalidCmd)}},
		{"ERROR from a host", []step{send(1, ctaphid.CmdError, []byte{1}), expectErr(1, ctaphid.CodeInvalidCmd)}},
		{"BCNT above 7609", []step{raw(encode(t, initPkt(1, ctaphid.CmdCBOR, 7610))), expectErr(1, ctaphid.CodeInvalidLen)}},
		{"empty CBOR", []step{send(1, ctaphid.CmdCBOR, nil), expectErr(1, ctaphid.CodeInvalidLen)}},
		{"WINK with data", []step{send(1, ctaphid.CmdWink, []byte{1}), expectErr(1, ctaphid.CodeInvalidLen)}},
		{"WINK", []step{send(1, ctaphid.CmdWink, nil), expect(1, ctaphid.CmdWink, nil)}},
		{"CBOR", []step{send(1, ctaphid.CmdCBOR, []byte{4, 5}), expect(1, ctaphid.CmdCBOR, []byte{4, 5})}},
		{"MSG", []step{send(1, ctaphid.CmdMsg, []byte{0, 3, 0, 0}), expect(1, ctaphid.CmdMsg, []byte{0, 3, 0, 0})}},
		{"CANCEL when idle is not answered", append([]step{send(1, ctaphid.CmdCancel, nil)}, ping(1)...)},
		{"stray continuation is ignored", append([]step{raw(frag(1, ctaphid.CmdPing, 100)[1])}, ping(1)...)},
		{"continuation out of sequence", []step{
			raw(frag(1, ctaphid.CmdPing, 200)[0], frag(1, ctaphid.CmdPing, 200)[2]), expectErr(1, ctaphid.CodeInvalidSeq),
		}},
		{"new request on the same channel mid-message", []step{
			raw(frag(1, ctaphid.CmdPing, 100)[0]), send(1, ctaphid.CmdPing, []byte("x")), expectErr(1, ctaphid.CodeInvalidSeq),
		}},
		{"another channel mid-message is busy", append([]step{
			raw(frag(1, ctaphid.CmdPing, 100)[0]),
			send(2, ctaphid.CmdPing, []byte("x")), expectErr(2, ctaphid.CodeChannelBusy),
			raw(frag(1, ctaphid.CmdPing, 100)[1]), expect(1, ctaphid.CmdPing, bytes.Repeat([]byte{0x42}, 100)),
		}, ping(2)...)},
		{"INIT mid-message on the same channel resyncs", append([]step{
			raw(frag(1, ctaphid.CmdPing, 100)[0]),
			send(1, ctaphid.CmdInit, []byte("nonce-04")), expect(1, ctaphid.CmdInit, initResp("nonce-04", 1)),
			raw(frag(1, ctaphid.CmdPing, 100)[1]), // now stray
		}, ping(1)...)},
		{"INIT on the broadcast channel mid-message", append([]step{
			raw(frag(1, ctaphid.CmdPing, 100)[0]),
			send(B, ctaphid.CmdInit, []byte("nonce-05")), expect(B, ctaphid.CmdInit, initResp("nonce-05", 3)),
			raw(frag(1, ctaphid.CmdPing, 100)[1]), expect(1, ctaphid.CmdPing, bytes.Repeat([]byte{0x42}, 100)),
		}, ping(3)...)},
		{"7609-byte PING", []step{
			send(1, ctaphid.CmdPing, bytes.Repeat([]byte{7}, 7609)), expect(1, ctaphid.CmdPing, bytes.Repeat([]byte{7}, 7609)),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			rw := startDevice(t, &handler{}, ctaphid.ServeOptions{Major: 1, MessageTimeout: guard})
			h := &rawHost{t: t, rw: rw}
			// Allocate channels 1 and 2 unless the case is about INIT.
			if tt.steps[0].send == nil || tt.steps[0].send.Cmd != ctaphid.CmdInit {
				h.init()
				h.init()
			}
			for i, s := range tt.steps {
				switch {
				case s.send != nil:
					h.send(s.send.CID, s.send.Cmd, s.send.Data)
				case s.reports != nil:
					h.writeReports(s.reports...)
				case s.expect != nil:
					m := h.next(true)
					if m.CID != s.expect.CID || m.Cmd != s.expect.Cmd || !bytes.Equal(m.Data, s.expect.Data) {
						t.Fatalf("step %d: got %s, want %s", i, show(m), show(s.expect))
					}
				}
			}
		})
	}
}

func show(m *ctaphid.Message) string {
	if len(m.Data) > 20 {
		return fmt.Sprintf("%08X %s %d bytes", m.CID, m.Cmd, len(m.Data))
	}
	return fmt.Sprintf("%08X %s %x", m.CID, m.Cmd, m.Data)
}

// A half-sent message times out with ERR_MSG_TIMEOUT and frees the device.
func TestServeMessageTimeout(t *testing.T) {
	leakCheck(t)
	rw := startDevice(t, &handler{}, ctaphid.ServeOptions{MessageTimeout: 5 * time.Millisecond})
	h := &rawHost{t: t, rw: rw}
	c1, c2 := h.init(), h.init()
	r, _ := ctaphid.Fragment(c1, ctaphid.CmdPing, make([]byte, 100))
	h.writeReports(r[0])
	if m := h.next(true); m.CID != c1 || m.Cmd != ctaphid.CmdError || !bytes.Equal(m.Data, []byte{byte(ctaphid.CodeMsgTimeout)}) {
		t.Fatalf("got %s, want ERR_MSG_TIMEOUT", show(m))
	}
	h.send(c2, ctaphid.CmdPing, []byte("free"))
	if m := h.next(true); m.CID != c2 || m.Cmd != ctaphid.CmdPing {
		t.Fatalf("got %s, want the PING echo", show(m))
	}
}

// A request on another channel while the handler runs gets
// ERR_CHANNEL_BUSY; INIT still works; the answer follows keepalives.
func TestServeBusyWhileProcessing(t *testing.T) {
	leakCheck(t)
	p := newPresence()
	rw := startDevice(t, p, ctaphid.ServeOptions{})
	h := &rawHost{t: t, rw: rw}
	c1, c2 := h.init(), h.init()
	h.send(c1, ctaphid.CmdCBOR, []byte{0x0B})
	<-p.waiting
	m := h.next(false)
	if m.CID != c1 || m.Cmd != ctaphid.CmdKeepalive || !bytes.Equal(m.Data, []byte{2}) {
		t.Fatalf("got %s, want KEEPALIVE UPNEEDED on %08X", show(m), c1)
	}
	for _, cid := range []uint32{c1, c2} {
		h.send(cid, ctaphid.CmdPing, []byte("x"))
		if m := h.next(true); m.CID != cid || m.Cmd != ctaphid.CmdError || !bytes.Equal(m.Data, []byte{byte(ctaphid.CodeChannelBusy)}) {
			t.Fatalf("PING on %08X while busy: %s", cid, show(m))
		}
	}
	c3 := h.init()
	if c3 != 3 {
		t.Errorf("INIT while busy allocated %08X", c3)
	}
	h.send(c2, ctaphid.CmdCancel, nil) // someone else's CANCEL does nothing
	close(p.touch)
	if m := h.next(true); m.CID != c1 || m.Cmd != ctaphid.CmdCBOR || !bytes.Equal(m.Data, []byte{0}) {
		t.Fatalf("answer: %s", show(m))
	}
}

// A resynchronizing INIT cancels the request on that channel; the handler's
// late answer is dropped.
func TestServeResyncAbortsRequest(t *testing.T) {
	leakCheck(t)
	p := newPresence()
	rw := startDevice(t, p, ctaphid.ServeOptions{})
	h := &rawHost{t: t, rw: rw}
	c1 := h.init()
	h.send(c1, ctaphid.CmdCBOR, []byte{0x0B})
	<-p.waiting
	h.send(c1, ctaphid.CmdInit, []byte("resync-1"))
	m := h.next(true)
	if m.Cmd != ctaphid.CmdInit || m.CID != c1 {
		t.Fatalf("got %s", show(m))
	}
	<-p.cancelled
	for _, s := range ping(c1) {
		if s.send != nil {
			h.send(s.send.CID, s.send.Cmd, s.send.Data)
			continue
		}
		// The PING may meet the aborted handler still returning; keepalives
		// are not sent for it, and no CBOR answer may come.
		if m := h.next(true); m.Cmd != ctaphid.CmdPing {
			t.Fatalf("got %s, want the PING echo only", show(m))
		}
	}
}

// Serve stops when its transport is closed, with no goroutine left.
func TestServeTransportClosed(t *testing.T) {
	leakCheck(t)
	host, dev := ctaphid.NewPipe()
	errc := make(chan error, 1)
	go func() { errc <- ctaphid.Serve(context.Background(), dev, &handler{}, ctaphid.ServeOptions{}) }()
	h := &rawHost{t: t, rw: host}
	h.init()
	host.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("Serve returned nil")
		}
	case <-time.After(guard):
		t.Fatal("Serve still running")
	}
}

// FuzzServe feeds arbitrary reports to Serve and checks that it neither
// panics nor stops answering, and that it shuts down completely.
func FuzzServe(f *testing.F) {
	for _, s := range transcriptWrites(f) {
		f.Add(s)
	}
	for _, s := range packetSeeds(f) {
		f.Add(s)
	}
	var stream []byte
	for _, r := range [][]byte{encode(f, initPkt(ctaphid.BroadcastCID, ctaphid.CmdInit, 8)), encode(f, initPkt(1, ctaphid.CmdCBOR, 70)), encode(f, contPkt(1, 0))} {
		stream = append(stream, r...)
	}
	f.Add(stream)
	sentinel := []byte("fuzzdone")
	f.Fuzz(func(t *testing.T, stream []byte) {
		if len(stream) > 64*ctaphid.ReportSize {
			stream = stream[:64*ctaphid.ReportSize]
		}
		host, dev := ctaphid.NewPipe()
		defer host.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		serveErr := make(chan error, 1)
		go func() {
			serveErr <- ctaphid.Serve(ctx, dev, &handler{}, ctaphid.ServeOptions{KeepaliveInterval: time.Millisecond, MessageTimeout: 5 * time.Millisecond})
		}()
		answered := make(chan struct{})
		readerDone := make(chan struct{})
		go func() {
			defer close(readerDone)
			buf := make([]byte, ctaphid.ReportSize)
			for {
				n, err := host.Read(buf)
				if err != nil {
					return
				}
				p, _ := ctaphid.ParsePacket(buf[:n])
				if p != nil && p.Init && p.CID == ctaphid.BroadcastCID && p.Cmd == ctaphid.CmdInit && bytes.HasPrefix(p.Data, sentinel) {
					close(answered)
				}
			}
		}()
		for len(stream) >= ctaphid.ReportSize {
			host.Write(stream[:ctaphid.ReportSize])
			stream = stream[ctaphid.ReportSize:]
		}
		r, _ := ctaphid.Fragment(ctaphid.BroadcastCID, ctaphid.CmdInit, sentinel)
		host.Write(r[0])
		select {
		case <-answered:
		case <-time.After(guard):
			t.Fatal("Serve stopped answering")
		}
		cancel()
		select {
		case err := <-serveErr:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(guard):
			t.Fatal("Serve did not return")
		}
		host.Close()
		<-readerDone
	})
}

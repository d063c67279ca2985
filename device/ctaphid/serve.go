package ctaphid

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
)

// DefaultKeepaliveInterval is how often Serve sends CTAPHID_KEEPALIVE while a
// request is being processed: CTAP 2.1 §11.2.9.1.7 asks for one at least
// every 100 ms.
const DefaultKeepaliveInterval = 100 * time.Millisecond

// Handler is the authenticator behind Serve: it answers CTAP2 and U2F
// requests. Serve calls one method at a time.
//
// Before a call, Serve puts a function into ctx with ctap2.WithKeepalive; the
// handler reports with ctap2.Keepalive(ctx, ctap2.StatusUPNeeded) that it is
// waiting for a touch, and Serve repeats the latest status in
// CTAPHID_KEEPALIVE packets until the answer is ready. When the host cancels
// (CTAPHID_CANCEL, a resynchronizing INIT) or Serve stops, ctx is cancelled;
// the handler then answers CTAP2_ERR_KEEPALIVE_CANCEL (0x2D) promptly.
type Handler interface {
	// ServeCTAP2 answers a CTAP2 request: command byte + CBOR parameters in,
	// status byte + CBOR out.
	ServeCTAP2(ctx context.Context, req []byte) []byte
	// ServeU2F answers a U2F request APDU with response data + SW1 SW2.
	ServeU2F(ctx context.Context, req []byte) []byte
}

// Winker is implemented by handlers that can identify their device to the
// user, e.g. by blinking a light (CTAPHID_WINK, CTAP 2.1 §11.2.9.2.1). Wink
// must return quickly.
type Winker interface {
	Wink()
}

// ServeOptions configure Serve. The zero value is the default.
type ServeOptions struct {
	// Major, Minor and Build are the device version number reported in
	// the INIT response.
	Major, Minor, Build byte

	// NoCBOR makes a U2F-only device: the CBOR capability flag is clear and
	// CTAPHID_CBOR is answered with ERR_INVALID_CMD. A handler that
	// reports protocols without CTAP2 (device.ProtocolReporter) gets this
	// without asking.
	NoCBOR bool
	// NoMSG makes a CTAP2-only device: the NMSG capability flag is set and
	// CTAPHID_MSG is answered with ERR_INVALID_CMD. A handler that reports
	// protocols without U2F gets this without asking.
	NoMSG bool

	// KeepaliveInterval is the time between two CTAPHID_KEEPALIVE packets
	// while a request is processed; zero means DefaultKeepaliveInterval. A
	// change of status is sent at once.
	KeepaliveInterval time.Duration

	// MessageTimeout is the longest gap between two packets of one request
	// before Serve drops it and answers ERR_MSG_TIMEOUT (§11.2.5.2); zero
	// means DefaultMessageTimeout.
	MessageTimeout time.Duration
}

// Serve is the device side of CTAPHID (CTAP 2.1 §11.2): it reads request
// reports from rw, hands CTAPHID_CBOR requests to h.ServeCTAP2 and
// CTAPHID_MSG requests to h.ServeU2F, and writes the responses, until ctx
// ends or rw fails. It answers:
//
//   - INIT on the broadcast channel by allocating a fresh channel, and INIT
//     on an allocated channel by resynchronizing it: the request in progress
//     there is cancelled and its answer dropped (§11.2.9.1.3). Channels are
//     numbered from 1, so transcripts are repeatable. The capability flags
//     are CBOR (unless NoCBOR), NMSG (if NoMSG) and WINK (if h is a Winker);
//     a handler that is a device.ProtocolReporter sets NoCBOR and NoMSG
//     by what it speaks, so a U2F-only chip is served as one.
//   - PING with an echo, WINK by calling h.Wink when h is a Winker (and
//     with an empty answer in any case), CANCEL by cancelling the request in
//     progress on that channel (CANCEL itself is never answered).
//   - While a request is in progress: KEEPALIVE packets with the handler's
//     latest status (PROCESSING until it reports otherwise), and
//     ERR_CHANNEL_BUSY to every new request, on any channel, except INIT
//     and CANCEL (§11.2.5.1).
//   - ERR_INVALID_CHANNEL to requests on channel 0, on channels never
//     allocated, and to any command but INIT on the broadcast channel;
//     ERR_INVALID_CMD to unknown commands, to LOCK (the optional channel lock
//     of §11.2.9.2.2 is not offered) and to KEEPALIVE and ERROR sent by a
//     host; ERR_INVALID_LEN to a BCNT above MaxMessageSize, to an INIT whose
//     nonce is not 8 bytes, to a WINK with data and to an empty CBOR request;
//     and, following the Reassembler rules, ERR_INVALID_SEQ and
//     ERR_MSG_TIMEOUT.
//
// Serve returns ctx.Err() when ctx ends, and an error wrapping the
// transport's error when a Read or Write fails (a Read that times out is
// retried). Before it returns, it cancels the handler and waits for it, and
// stops its reading goroutine: when rw has a SetReadDeadline method, Serve
// sets a past deadline to interrupt the pending Read and clears it
// afterwards; otherwise it waits until that Read returns, so close rw to let
// Serve return. Writes to rw are expected not to block for long.
func Serve(ctx context.Context, rw io.ReadWriter, h Handler, opts ServeOptions) error {
	if r, ok := h.(device.ProtocolReporter); ok {
		if p := r.Protocols(); p != 0 {
			opts.NoCBOR = opts.NoCBOR || !p.Has(device.ProtocolCTAP2)
			opts.NoMSG = opts.NoMSG || !p.Has(device.ProtocolU2F)
		}
	}
	s := &server{rw: rw, h: h, opts: opts, nextCID: 1}
	s.ra.Timeout = opts.MessageTimeout
	return s.run(ctx)
}

type server struct {
	rw   io.ReadWriter
	h    Handler
	opts ServeOptions
	ctx  context.Context

	ra      Reassembler
	nextCID uint32 // channels 1 .. nextCID-1 are allocated
	wrapped bool   // every channel has been allocated once

	active   *txn // the handler call running, possibly aborted
	next     *txn // a request waiting for an aborted call to return
	handlers sync.WaitGroup
}

// txn is one CBOR or MSG request handed to the handler.
type txn struct {
	cid     uint32
	cmd     Command
	data    []byte
	ctx     context.Context
	cancel  context.CancelFunc
	status  atomic.Uint32 // the latest ctap2.KeepaliveStatus
	changed chan struct{} // signalled when status changes
	done    chan []byte   // the handler's answer
	aborted bool          // the channel was resynchronized: drop the answer
}

type readResult struct {
	p   *Packet
	err error
}

func (s *server) run(ctx context.Context) (err error) {
	s.ctx = ctx
	reads := make(chan readResult)
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go s.readLoop(reads, stop, readerDone)

	interval := s.opts.KeepaliveInterval
	if interval <= 0 {
		interval = DefaultKeepaliveInterval
	}
	ticker := time.NewTicker(interval)
	expiry := time.NewTimer(time.Hour)
	expiry.Stop()
	var armed time.Time // the deadline expiry is set for; zero when stopped

	defer func() {
		ticker.Stop()
		expiry.Stop()
		close(stop)
		var dl readDeadliner
		if d, ok := s.rw.(readDeadliner); ok && d.SetReadDeadline(time.Now()) == nil {
			dl = d
		}
		for _, t := range []*txn{s.active, s.next} {
			if t != nil {
				t.cancel()
			}
		}
		s.handlers.Wait()
		<-readerDone
		if dl != nil {
			dl.SetReadDeadline(time.Time{})
		}
	}()

	for {
		var doneC <-chan []byte
		if s.active != nil {
			doneC = s.active.done
		}
		var changedC <-chan struct{}
		if cur := s.current(); cur != nil {
			changedC = cur.changed
		}
		var expiryC <-chan time.Time
		if !armed.IsZero() {
			expiryC = expiry.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-reads:
			if r.err != nil {
				return r.err
			}
			err = s.packet(r.p)
		case <-ticker.C:
			err = s.keepalive()
		case <-changedC:
			err = s.keepalive()
		case resp := <-doneC:
			err = s.finished(resp)
		case <-expiryC:
			armed = time.Time{}
			if e := s.ra.Expire(time.Now()); e != nil {
				err = s.replyError(e)
			}
		}
		if err != nil {
			return err
		}
		if dl, ok := s.ra.Deadline(); !ok {
			if !armed.IsZero() {
				expiry.Stop()
				armed = time.Time{}
			}
		} else if !dl.Equal(armed) {
			expiry.Reset(time.Until(dl))
			armed = dl
		}
	}
}

func (s *server) readLoop(reads chan<- readResult, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, 2*ReportSize)
	for {
		n, err := s.rw.Read(buf)
		select {
		case <-stop:
			return
		default:
		}
		var r readResult
		if err != nil {
			if isTimeout(err) || errors.Is(err, io.ErrShortBuffer) {
				continue
			}
			r.err = fmt.Errorf("ctaphid: serve: read report: %w", err)
		} else if r.p, err = ParsePacket(buf[:n]); err != nil {
			continue // not a CTAPHID report
		}
		select {
		case reads <- r:
		case <-stop:
			return
		}
		if r.err != nil {
			return
		}
	}
}

// current returns the transaction the device is busy with, if any.
func (s *server) current() *txn {
	if s.next != nil {
		return s.next
	}
	if s.active != nil && !s.active.aborted {
		return s.active
	}
	return nil
}

func (s *server) allocated(cid uint32) bool {
	if cid == 0 || cid == BroadcastCID {
		return false
	}
	return s.wrapped || cid < s.nextCID
}

func (s *server) allocate() uint32 {
	cid := s.nextCID
	s.nextCID++
	if s.nextCID == BroadcastCID {
		s.nextCID, s.wrapped = 1, true
	}
	return cid
}

func (s *server) packet(p *Packet) error {
	if p.Init {
		if p.CID == BroadcastCID && p.Cmd != CmdInit || p.CID != BroadcastCID && !s.allocated(p.CID) {
			return s.sendError(p.CID, CodeInvalidChannel)
		}
		if s.current() != nil && p.Cmd != CmdInit && p.Cmd != CmdCancel {
			return s.sendError(p.CID, CodeChannelBusy)
		}
	}
	m, err := s.ra.Add(p, time.Now())
	if err != nil {
		return s.replyError(err)
	}
	if m == nil {
		return nil
	}
	return s.message(m)
}

func (s *server) message(m *Message) error {
	switch m.Cmd {
	case CmdInit:
		if len(m.Data) != NonceSize {
			return s.sendError(m.CID, CodeInvalidLen)
		}
		cid := m.CID
		if cid == BroadcastCID {
			cid = s.allocate()
		} else {
			s.abort(cid)
		}
		r := InitResponse{CID: cid, DeviceInfo: s.info()}
		copy(r.Nonce[:], m.Data)
		return s.send(m.CID, CmdInit, r.Encode())
	case CmdPing:
		return s.send(m.CID, CmdPing, m.Data)
	case CmdWink:
		if len(m.Data) != 0 {
			return s.sendError(m.CID, CodeInvalidLen)
		}
		if w, ok := s.h.(Winker); ok {
			w.Wink()
		}
		return s.send(m.CID, CmdWink, nil)
	case CmdCBOR:
		if s.opts.NoCBOR {
			return s.sendError(m.CID, CodeInvalidCmd)
		}
		if len(m.Data) == 0 {
			return s.sendError(m.CID, CodeInvalidLen)
		}
		s.start(m)
		return nil
	case CmdMsg:
		if s.opts.NoMSG {
			return s.sendError(m.CID, CodeInvalidCmd)
		}
		s.start(m)
		return nil
	case CmdCancel:
		if cur := s.current(); cur != nil && cur.cid == m.CID {
			cur.cancel()
		}
		return nil
	}
	return s.sendError(m.CID, CodeInvalidCmd)
}

func (s *server) info() DeviceInfo {
	d := DeviceInfo{ProtocolVersion: ProtocolVersion, Major: s.opts.Major, Minor: s.opts.Minor, Build: s.opts.Build}
	if !s.opts.NoCBOR {
		d.Capabilities |= CapCBOR
	}
	if s.opts.NoMSG {
		d.Capabilities |= CapNMSG
	}
	if _, ok := s.h.(Winker); ok {
		d.Capabilities |= CapWink
	}
	return d
}

// abort drops the request on channel cid (§11.2.5.3).
func (s *server) abort(cid uint32) {
	if s.next != nil && s.next.cid == cid {
		s.next.cancel()
		s.next = nil
	}
	if s.active != nil && s.active.cid == cid && !s.active.aborted {
		s.active.aborted = true
		s.active.cancel()
	}
}

func (s *server) start(m *Message) {
	t := &txn{cid: m.CID, cmd: m.Cmd, data: m.Data, changed: make(chan struct{}, 1), done: make(chan []byte, 1)}
	t.status.Store(uint32(ctap2.StatusProcessing))
	ctx, cancel := context.WithCancel(s.ctx)
	t.cancel = cancel
	t.ctx = ctap2.WithKeepalive(ctx, func(st ctap2.KeepaliveStatus) {
		if t.status.Swap(uint32(st)) != uint32(st) {
			select {
			case t.changed <- struct{}{}:
			default:
			}
		}
	})
	if s.active == nil {
		s.launch(t)
	} else {
		s.next = t // the aborted call has not returned yet
	}
}

func (s *server) launch(t *txn) {
	s.active = t
	s.handlers.Add(1)
	go func() {
		defer s.handlers.Done()
		var resp []byte
		if t.cmd == CmdCBOR {
			resp = s.h.ServeCTAP2(t.ctx, t.data)
		} else {
			resp = s.h.ServeU2F(t.ctx, t.data)
		}
		t.done <- resp
	}()
}

func (s *server) finished(resp []byte) error {
	t := s.active
	s.active = nil
	t.cancel()
	var err error
	if !t.aborted {
		err = s.send(t.cid, t.cmd, resp)
		var tooLarge *TooLargeError
		if errors.As(err, &tooLarge) {
			err = s.sendError(t.cid, CodeOther)
		}
	}
	if s.next != nil {
		n := s.next
		s.next = nil
		s.launch(n)
	}
	return err
}

func (s *server) keepalive() error {
	cur := s.current()
	if cur == nil {
		return nil
	}
	return s.send(cur.cid, CmdKeepalive, []byte{byte(cur.status.Load())})
}

func (s *server) replyError(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	return s.sendError(e.CID, e.Code)
}

func (s *server) sendError(cid uint32, code ErrorCode) error {
	return s.send(cid, CmdError, []byte{byte(code)})
}

func (s *server) send(cid uint32, cmd Command, data []byte) error {
	reports, err := Fragment(cid, cmd, data)
	if err != nil {
		return err
	}
	for _, r := range reports {
		if _, err := s.rw.Write(r); err != nil {
			return fmt.Errorf("ctaphid: serve: write report: %w", err)
		}
	}
	return nil
}

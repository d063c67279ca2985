package ctaphid

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
)

// DefaultCancelWait is how long a transaction whose context ended waits for
// the device's final answer after sending CTAPHID_CANCEL.
const DefaultCancelWait = 200 * time.Millisecond

// Options configure a host-side Conn. The zero value is the default.
type Options struct {
	// Rand is the source of the 8-byte INIT nonces; nil means
	// crypto/rand.Reader. Give a seeded reader for recorded transcripts.
	Rand io.Reader

	// CancelWait bounds how long a CBOR or APDU call whose context ended
	// waits, after sending CTAPHID_CANCEL, for the device to send its final
	// answer (CTAP2_ERR_KEEPALIVE_CANCEL); zero means DefaultCancelWait.
	// The call returns after that in any case.
	CancelWait time.Duration

	// CloseTransport hands the transport to the Conn: Close, and an Open
	// that fails, then close it when it is an io.Closer. By default the
	// transport is left open, for whoever opened it to close.
	CloseTransport bool
}

// Conn is the host side of one CTAPHID channel (CTAP 2.1 §11.2) over a
// report transport. Open allocates the channel. A Conn runs one transaction
// at a time; concurrent calls wait their turn. It is safe for concurrent
// use.
//
// Conn has the messenger methods of the CTAP2 and U2F clients: CBOR sends
// CTAPHID_CBOR and APDU sends CTAPHID_MSG.
//
// A Conn reads the transport in a goroutine of its own, because a Read may
// block until a report arrives. Close stops it: it closes the transport when
// Options.CloseTransport is set and the transport is an io.Closer, or else
// sets a past read deadline when the transport has a SetReadDeadline method
// (as net.Conn and PipeEnd have), waits for the goroutine to end, and clears
// the deadline again. A transport with neither keeps the goroutine until its
// pending Read returns; close the transport after Close to end it. A Read
// error that is a timeout (its Timeout method says true) is retried, so a
// transport may also poll with short timeouts. Writes are expected to finish
// or fail in bounded time, as USB interrupt transfers with a timeout and
// datagram sends do.
//
// When a call is abandoned before its answer came (its context ended and the
// device did not answer the CANCEL in time, or the answer was malformed), or
// the device said ERR_INVALID_CHANNEL, the next call first resynchronizes the
// channel with INIT (CTAP 2.1 §11.2.5.3), and allocates a new channel when
// the device no longer knows the old one.
type Conn struct {
	rw   io.ReadWriter
	opts Options

	sem   chan struct{} // held by the transaction in progress
	dirty bool          // guarded by sem: an abandoned exchange may still answer
	wmu   sync.Mutex    // keeps the reports of one message together
	cid   atomic.Uint32

	mu   sync.Mutex
	info DeviceInfo
	sink *sink

	done       chan struct{} // closed by Close
	closeOnce  sync.Once
	closeErr   error
	failed     chan struct{} // closed when the transport failed
	failErr    error
	readerDone chan struct{}
}

// sink receives the packets of one channel while a transaction waits.
type sink struct {
	cid  uint32
	ch   chan *Packet
	stop chan struct{}
}

type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

// Open allocates a channel on the device behind rw (CTAPHID_INIT on the
// broadcast channel with a fresh nonce, CTAP 2.1 §11.2.9.1.3) and returns the
// Conn for it. INIT responses that do not echo the nonce, such as answers to
// other programs sharing the device, are skipped.
//
// Open returns an error wrapping ctx.Err() when ctx ends first (give ctx a
// deadline: a device that never answers is otherwise waited for forever),
// an *Error when the device answered CTAPHID_ERROR, an error wrapping
// device.ErrProtocol for a malformed answer, and one wrapping
// device.ErrRemoved when the transport fails.
func Open(ctx context.Context, rw io.ReadWriter, opts Options) (*Conn, error) {
	c := &Conn{
		rw:         rw,
		opts:       opts,
		sem:        make(chan struct{}, 1),
		done:       make(chan struct{}),
		failed:     make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	c.cid.Store(BroadcastCID)
	go c.readLoop()
	c.sem <- struct{}{}
	r, err := c.initExchange(ctx, BroadcastCID)
	<-c.sem
	if err != nil {
		c.Close()
		return nil, err
	}
	c.cid.Store(r.CID)
	c.info = r.DeviceInfo
	return c, nil
}

// CID returns the channel the device allocated to this Conn.
func (c *Conn) CID() uint32 { return c.cid.Load() }

// DeviceInfo returns the versions and capabilities from the device's last
// INIT response.
func (c *Conn) DeviceInfo() DeviceInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info
}

// CBOR sends a CTAP2 request (command byte followed by CBOR parameters) with
// CTAPHID_CBOR (CTAP 2.1 §11.2.9.1.2) and returns the response (status byte
// followed by CBOR). Keepalives that arrive meanwhile are reported through
// ctap2.Keepalive(ctx, status). When ctx ends first, CBOR sends
// CTAPHID_CANCEL, waits at most Options.CancelWait for the device's answer,
// and returns an error wrapping ctx.Err().
//
// Other errors: *TooLargeError (device.ErrMessageTooLarge) for a request
// over MaxMessageSize bytes, *Error when the device answered CTAPHID_ERROR
// (ERR_CHANNEL_BUSY unwraps to device.ErrBusy, ERR_MSG_TIMEOUT to
// device.ErrTimeout, ERR_INVALID_CMD to device.ErrNotSupported), an error
// wrapping device.ErrProtocol for a malformed response, device.ErrRemoved
// when the transport fails, and device.ErrClosed after Close.
func (c *Conn) CBOR(ctx context.Context, req []byte) ([]byte, error) {
	return c.transact(ctx, CmdCBOR, req)
}

// APDU sends a U2F request APDU with CTAPHID_MSG (CTAP 2.1 §11.2.9.1.1) and
// returns the response data followed by SW1 SW2. Keepalives, cancellation and
// errors are as for CBOR.
func (c *Conn) APDU(ctx context.Context, req []byte) ([]byte, error) {
	return c.transact(ctx, CmdMsg, req)
}

// Ping sends data with CTAPHID_PING (CTAP 2.1 §11.2.9.1.4) and checks that
// the device echoes it. A different echo gives an error wrapping
// device.ErrProtocol; other errors are as for CBOR, except that an ended ctx
// sends no CANCEL.
func (c *Conn) Ping(ctx context.Context, data []byte) error {
	echo, err := c.transact(ctx, CmdPing, data)
	if err != nil {
		return err
	}
	if !bytes.Equal(echo, data) {
		return fmt.Errorf("ctaphid: PING: %w: sent %d bytes, echo of %d bytes differs", device.ErrProtocol, len(data), len(echo))
	}
	return nil
}

// Wink asks the device to identify itself, e.g. by blinking
// (CTAPHID_WINK, CTAP 2.1 §11.2.9.2.1). A device without the command answers
// ERR_INVALID_CMD: the *Error unwraps to device.ErrNotSupported. Other errors
// are as for Ping.
func (c *Conn) Wink(ctx context.Context) error {
	_, err := c.transact(ctx, CmdWink, nil)
	return err
}

// Cancel sends CTAPHID_CANCEL on the channel (CTAP 2.1 §11.2.9.1.5) right
// away, for a CBOR or APDU call running in another goroutine; that call then
// returns what the device answers, normally a CTAP2 response with status
// CTAP2_ERR_KEEPALIVE_CANCEL (0x2D). It returns an error wrapping
// device.ErrRemoved when the write fails and device.ErrClosed after Close.
func (c *Conn) Cancel() error {
	if c.isClosed() {
		return errConnClosed
	}
	reports, err := Fragment(c.cid.Load(), CmdCancel, nil)
	if err != nil {
		return err
	}
	return c.write(reports)
}

// Close stops the Conn (see Conn for what happens to the transport). Calls in
// progress return an error wrapping device.ErrClosed. Close returns the
// transport's Close error when it closed the transport, and nil otherwise;
// later calls return the same.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		woken := false
		var dl readDeadliner
		if cl, ok := c.rw.(io.Closer); ok && c.opts.CloseTransport {
			c.closeErr = cl.Close()
			woken = true
		} else if d, ok := c.rw.(readDeadliner); ok && d.SetReadDeadline(time.Now()) == nil {
			dl, woken = d, true
		}
		if woken {
			<-c.readerDone
		}
		if dl != nil {
			dl.SetReadDeadline(time.Time{})
		}
	})
	return c.closeErr
}

var errConnClosed = fmt.Errorf("ctaphid: %w", device.ErrClosed)

func (c *Conn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// readLoop moves reports from the transport to the waiting transaction.
func (c *Conn) readLoop() {
	defer close(c.readerDone)
	buf := make([]byte, 2*ReportSize)
	for {
		n, err := c.rw.Read(buf)
		if c.isClosed() {
			return
		}
		if err != nil {
			if isTimeout(err) || errors.Is(err, io.ErrShortBuffer) {
				continue
			}
			c.failErr = fmt.Errorf("ctaphid: read report: %w: %w", device.ErrRemoved, err)
			close(c.failed)
			return
		}
		p, err := ParsePacket(buf[:n])
		if err != nil {
			continue // not a CTAPHID report: nothing to do with it
		}
		c.mu.Lock()
		s := c.sink
		c.mu.Unlock()
		if s == nil || p.CID != s.cid {
			continue // another program's channel, or nobody waiting
		}
		select {
		case s.ch <- p:
		case <-s.stop:
		case <-c.done:
			return
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func (c *Conn) listen(cid uint32) *sink {
	s := &sink{cid: cid, ch: make(chan *Packet, 32), stop: make(chan struct{})}
	c.mu.Lock()
	c.sink = s
	c.mu.Unlock()
	return s
}

func (c *Conn) unlisten(s *sink) {
	c.mu.Lock()
	if c.sink == s {
		c.sink = nil
	}
	c.mu.Unlock()
	close(s.stop)
}

func (c *Conn) write(reports [][]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, r := range reports {
		if _, err := c.rw.Write(r); err != nil {
			if c.isClosed() {
				return errConnClosed
			}
			return fmt.Errorf("ctaphid: write report: %w: %w", device.ErrRemoved, err)
		}
	}
	return nil
}

// acquire waits for the turn to run a transaction.
func (c *Conn) acquire(ctx context.Context, cmd Command) error {
	select {
	case <-c.done:
		return errConnClosed
	case <-c.failed:
		return c.failErr
	default:
	}
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ctaphid: %s: %w", cmd, ctx.Err())
	case <-c.done:
		return errConnClosed
	case <-c.failed:
		return c.failErr
	}
}

// transact sends one request and waits for its response (CTAP 2.1 §11.2.5.1:
// one transaction is a request followed by its response).
func (c *Conn) transact(ctx context.Context, cmd Command, data []byte) ([]byte, error) {
	if len(data) > MaxMessageSize {
		return nil, &TooLargeError{Size: len(data), Max: MaxMessageSize}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ctaphid: %s: %w", cmd, err)
	}
	if err := c.acquire(ctx, cmd); err != nil {
		return nil, err
	}
	defer func() { <-c.sem }()
	if c.dirty {
		// An earlier exchange was abandoned and its answer may still come:
		// resynchronize the channel first (§11.2.5.3), which also drops
		// whatever the device was doing on it.
		r, err := c.initExchange(ctx, c.cid.Load())
		var e *Error
		if errors.As(err, &e) && e.Code == CodeInvalidChannel {
			// The device forgot the channel (it was reset or replugged):
			// allocate a new one.
			r, err = c.initExchange(ctx, BroadcastCID)
		}
		if err != nil {
			return nil, err
		}
		c.cid.Store(r.CID)
		c.mu.Lock()
		c.info = r.DeviceInfo
		c.mu.Unlock()
		c.dirty = false
	}
	cid := c.cid.Load()
	reports, err := Fragment(cid, cmd, data)
	if err != nil {
		return nil, err
	}
	s := c.listen(cid)
	defer c.unlisten(s)
	if err := c.write(reports); err != nil {
		c.dirty = true
		return nil, err
	}
	var ra Reassembler
	for {
		select {
		case p := <-s.ch:
			m, err := ra.Add(p, time.Now())
			if err != nil {
				c.dirty = true
				return nil, fmt.Errorf("ctaphid: %s: %w: response packets out of sequence", cmd, device.ErrProtocol)
			}
			if m == nil {
				continue
			}
			switch m.Cmd {
			case cmd:
				return m.Data, nil
			case CmdKeepalive:
				if len(m.Data) > 0 {
					ctap2.Keepalive(ctx, ctap2.KeepaliveStatus(m.Data[0]))
				}
			case CmdError:
				err := errorResponse(m)
				var e *Error
				if errors.As(err, &e) && e.Code == CodeInvalidChannel {
					c.dirty = true // resynchronize, or allocate anew, next time
				}
				return nil, err
			}
			// Any other command on this channel is left over from an
			// exchange abandoned earlier: skip it.
		case <-ctx.Done():
			if cmd == CmdCBOR || cmd == CmdMsg {
				c.cancelAndDrain(s, &ra, cmd)
			} else {
				c.dirty = true
			}
			return nil, fmt.Errorf("ctaphid: %s: %w", cmd, ctx.Err())
		case <-c.failed:
			return nil, c.failErr
		case <-c.done:
			return nil, errConnClosed
		}
	}
}

// cancelAndDrain sends CTAPHID_CANCEL (§11.2.9.1.5) and waits a little for
// the device's final answer to the cancelled request, so that the channel is
// in step for the next transaction. If the answer does not come, the next
// transaction resynchronizes first.
func (c *Conn) cancelAndDrain(s *sink, ra *Reassembler, cmd Command) {
	reports, err := Fragment(s.cid, CmdCancel, nil)
	if err != nil || c.write(reports) != nil {
		c.dirty = true
		return
	}
	wait := c.opts.CancelWait
	if wait <= 0 {
		wait = DefaultCancelWait
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case p := <-s.ch:
			m, err := ra.Add(p, time.Now())
			if err != nil {
				c.dirty = true
				return
			}
			if m != nil && (m.Cmd == cmd || m.Cmd == CmdError) {
				return
			}
		case <-t.C:
			c.dirty = true
			return
		case <-c.failed:
			return
		case <-c.done:
			return
		}
	}
}

// initExchange runs CTAPHID_INIT on channel cid (§11.2.9.1.3): on the
// broadcast channel it allocates a channel, on an allocated channel it
// resynchronizes that channel. The caller holds sem.
func (c *Conn) initExchange(ctx context.Context, cid uint32) (*InitResponse, error) {
	rnd := c.opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	var nonce [NonceSize]byte
	if _, err := io.ReadFull(rnd, nonce[:]); err != nil {
		return nil, fmt.Errorf("ctaphid: INIT nonce: %w", err)
	}
	reports, err := Fragment(cid, CmdInit, nonce[:])
	if err != nil {
		return nil, err
	}
	s := c.listen(cid)
	defer c.unlisten(s)
	if err := c.write(reports); err != nil {
		return nil, err
	}
	var ra Reassembler
	for {
		select {
		case p := <-s.ch:
			m, err := ra.Add(p, time.Now())
			if err != nil || m == nil {
				continue // the broadcast channel is shared: skip what is not ours
			}
			switch m.Cmd {
			case CmdInit:
				if len(m.Data) < NonceSize || !bytes.Equal(m.Data[:NonceSize], nonce[:]) {
					continue // an answer to someone else's INIT
				}
				r, err := ParseInitResponse(m.Data)
				if err != nil {
					return nil, fmt.Errorf("ctaphid: INIT: %w", err)
				}
				if r.CID == 0 || r.CID == BroadcastCID {
					return nil, fmt.Errorf("ctaphid: INIT: %w: device allocated channel %08X", device.ErrProtocol, r.CID)
				}
				return r, nil
			case CmdError:
				return nil, errorResponse(m)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("ctaphid: INIT: %w", ctx.Err())
		case <-c.failed:
			return nil, c.failErr
		case <-c.done:
			return nil, errConnClosed
		}
	}
}

// errorResponse turns a CTAPHID_ERROR message into an *Error.
func errorResponse(m *Message) error {
	if len(m.Data) < 1 {
		return fmt.Errorf("ctaphid: %w: ERROR response without a code", device.ErrProtocol)
	}
	return &Error{CID: m.CID, Code: ErrorCode(m.Data[0])}
}

package vicc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
)

// Default vpcd ports of pcscd's vsmartcard driver.
const (
	DefaultAddr  = "127.0.0.1:35963" // reader "Virtual PCD 00 00"
	DefaultAddr1 = "127.0.0.1:35964" // reader "Virtual PCD 00 01"
)

// DefaultATR is a minimal ATR that pcscd accepts: direct convention, T=1.
var DefaultATR = []byte{0x3B, 0x80, 0x80, 0x01, 0x01}

// Control bytes sent by vpcd in one-byte messages.
const (
	ctrlOff   = 0x00
	ctrlOn    = 0x01
	ctrlReset = 0x02
	ctrlATR   = 0x04
)

// maxMessage bounds one vpcd message (an extended APDU with 64 KiB of data
// and its header fits).
const maxMessage = 0xFFFF

// Card is the simulated card: it answers command APDUs. apdu.Card meets it.
type Card interface {
	// Process answers one command APDU with a response APDU (data + SW).
	Process(ctx context.Context, apdu []byte) []byte
	// Reset is a power cycle: the card forgets its volatile state.
	Reset()
}

// Options configure a Conn. The zero value connects to DefaultAddr with
// DefaultATR.
type Options struct {
	ATR []byte // answer to reset; nil means DefaultATR

	// Retry is the pause between connection attempts; 0 means 200 ms.
	Retry time.Duration

	// Logger receives connection events; nil discards them.
	Logger *slog.Logger

	// Fault, when set, is consulted before each APDU; see Fault.
	Fault func(n int, apdu []byte) Fault
	// Delay is how long FaultDelay holds an answer; 0 means DefaultDelay.
	Delay time.Duration
	// Rand supplies the bytes of FaultGarbage answers; nil means
	// crypto/rand. Tests pass a seeded reader to get the same garbage on
	// every run.
	Rand io.Reader
}

// DefaultDelay is how long FaultDelay holds an answer when Options.Delay is
// 0: longer than a host's usual status interval, shorter than its patience.
const DefaultDelay = 500 * time.Millisecond

// Fault is what the card does with the n-th APDU of a connection.
type Fault int

// Faults a test can inject.
const (
	FaultNone   Fault = iota // answer normally
	FaultRemove              // close the connection instead of answering: the card is pulled mid-command
	FaultMute                // never answer; vpcd times out
	// FaultDelay: the card processes the APDU at once but holds its answer
	// for Options.Delay, as a slow card or reader does. If the Conn's
	// context ends meanwhile, the connection closes without the answer.
	FaultDelay
	// FaultGarbage: the card processes the APDU, and the answer is
	// replaced on the way by as many random bytes (from Options.Rand),
	// status word included: noise on the line.
	FaultGarbage
	// FaultTruncate: the card processes the APDU, and only the first byte
	// of the answer's status word (SW1, without the data) arrives: a
	// response cut short, which no well-formed response APDU is.
	FaultTruncate
)

// String returns the fault's name ("FaultDelay").
func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "FaultNone"
	case FaultRemove:
		return "FaultRemove"
	case FaultMute:
		return "FaultMute"
	case FaultDelay:
		return "FaultDelay"
	case FaultGarbage:
		return "FaultGarbage"
	case FaultTruncate:
		return "FaultTruncate"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// Stats counts what a Conn has seen.
type Stats struct {
	Connects int // connections made to vpcd
	APDUs    int // command APDUs answered
	Polls    int // ATR requests answered
}

// Conn keeps a simulated card connected to one vpcd port.
type Conn struct {
	addr string
	card Card
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	stats   Stats
	readyCh chan struct{} // closed when the first connection saw vpcd's first message
	ready   bool
}

// New returns a Conn for card at addr ("" means DefaultAddr). Call Run to
// connect.
func New(addr string, card Card, opts Options) *Conn {
	if addr == "" {
		addr = DefaultAddr
	}
	if opts.ATR == nil {
		opts.ATR = DefaultATR
	}
	if opts.Retry <= 0 {
		opts.Retry = 200 * time.Millisecond
	}
	if opts.Delay <= 0 {
		opts.Delay = DefaultDelay
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Conn{addr: addr, card: card, opts: opts, log: log, readyCh: make(chan struct{})}
}

// Addr returns the vpcd address the Conn connects to.
func (c *Conn) Addr() string { return c.addr }

// Ready is closed once vpcd has spoken on the first connection, which is when
// pcscd has noticed the card and PC/SC programs may use the reader.
func (c *Conn) Ready() <-chan struct{} { return c.readyCh }

// Stats returns a snapshot of the counters.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Run connects to vpcd and serves the card until ctx ends, reconnecting
// whenever the connection drops (pcscd restarted). It returns ctx.Err() when
// ctx ends. A connection that is refused is retried every Options.Retry.
func (c *Conn) Run(ctx context.Context) error {
	var d net.Dialer
	failures := 0
	for {
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if failures == 0 {
				c.log.Warn("vpcd not reachable; retrying", "addr", c.addr, "err", err)
			}
			failures++
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(c.opts.Retry):
			}
			continue
		}
		failures = 0
		c.mu.Lock()
		c.stats.Connects++
		c.mu.Unlock()
		c.log.Info("connected to vpcd", "addr", c.addr)
		err = c.serve(ctx, conn)
		c.card.Reset()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Info("vpcd connection ended; reconnecting", "addr", c.addr, "err", err)
	}
}

// RunOnce serves a single vpcd connection that the caller made (for tests over
// a net.Pipe or a listener of their own). It returns when the connection ends.
func (c *Conn) RunOnce(ctx context.Context, conn net.Conn) error {
	c.mu.Lock()
	c.stats.Connects++
	c.mu.Unlock()
	defer c.card.Reset()
	return c.serve(ctx, conn)
}

func (c *Conn) serve(ctx context.Context, conn net.Conn) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	n := 0
	var hdr [2]byte
	buf := make([]byte, maxMessage)
	for {
		quickAck(conn)
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return fmt.Errorf("vicc: read: %w", err)
		}
		size := int(binary.BigEndian.Uint16(hdr[:]))
		quickAck(conn)
		if _, err := io.ReadFull(conn, buf[:size]); err != nil {
			return fmt.Errorf("vicc: read: %w", err)
		}
		c.markReady()
		msg := buf[:size]
		var resp []byte
		switch {
		case size == 1:
			switch msg[0] {
			case ctrlATR:
				resp = c.opts.ATR
				c.mu.Lock()
				c.stats.Polls++
				c.mu.Unlock()
			case ctrlOff, ctrlReset:
				c.card.Reset()
				continue
			case ctrlOn:
				continue
			default:
				c.log.Warn("unknown vpcd control byte", "byte", msg[0])
				continue
			}
		case size == 0:
			continue
		default:
			n++
			f := FaultNone
			if c.opts.Fault != nil {
				f = c.opts.Fault(n, msg)
			}
			switch f {
			case FaultRemove:
				return fmt.Errorf("vicc: %w (injected at APDU %d)", device.ErrRemoved, n)
			case FaultMute:
				<-ctx.Done()
				return ctx.Err()
			}
			resp = c.card.Process(ctx, append([]byte(nil), msg...))
			c.mu.Lock()
			c.stats.APDUs++
			c.mu.Unlock()
			var err error
			if resp, err = c.spoil(ctx, f, n, resp); err != nil {
				return err
			}
		}
		if len(resp) > maxMessage {
			return fmt.Errorf("vicc: response of %d bytes exceeds the vpcd limit", len(resp))
		}
		out := make([]byte, 2+len(resp))
		binary.BigEndian.PutUint16(out, uint16(len(resp)))
		copy(out[2:], resp)
		if _, err := conn.Write(out); err != nil {
			return fmt.Errorf("vicc: write: %w", err)
		}
	}
}

// spoil applies the answer faults FaultDelay, FaultGarbage and
// FaultTruncate to resp, the card's answer to APDU n.
func (c *Conn) spoil(ctx context.Context, f Fault, n int, resp []byte) ([]byte, error) {
	switch f {
	case FaultDelay:
		t := time.NewTimer(c.opts.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case FaultGarbage:
		g := make([]byte, len(resp))
		if _, err := io.ReadFull(c.opts.Rand, g); err != nil {
			return nil, fmt.Errorf("vicc: garbage for APDU %d: %w", n, err)
		}
		return g, nil
	case FaultTruncate:
		if len(resp) >= 2 {
			return resp[len(resp)-2 : len(resp)-1], nil
		}
	}
	return resp, nil
}

func (c *Conn) markReady() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready {
		c.ready = true
		close(c.readyCh)
	}
}

// errNotTCP is returned by quickAck's platform code for other connections.
var errNotTCP = errors.New("not a TCP connection")

package devicetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/frame"
)

// CDPStreamer is the optional ability of a code device target to hand out
// the byte stream its CDP/1 host speaks over (docs/cdp1.md), so that checks
// can send frames of their own: a repeated SEQ, noise, a bad CRC. The stream
// must have a SetReadDeadline method (net.Conn, *os.File of a pty,
// frametest.Pipe) or a SetReadTimeout method (go.bug.st/serial.Port), and
// nothing else may read it while a check runs.
type CDPStreamer interface {
	CDPStream() io.ReadWriter
}

// StatusReader is the optional ability to read a code device's STATUS
// (CDP/1 0x06: battery, clock, presses, factory mode). *frame.Host has it.
type StatusReader interface {
	Status(ctx context.Context) (*frame.DeviceStatus, error)
}

// Commander is the optional ability to send any CDP/1 command and get its
// status and data back. *frame.Host has it; a frame.Handler (a simulator
// in-process) is used as one too.
type Commander interface {
	Do(ctx context.Context, cmd byte, payload []byte) (frame.Status, []byte, error)
}

// Displayer is the optional ability to read what a code display shows
// (CDP/1 DISPLAY). *frame.Host has it.
type Displayer interface {
	Display(ctx context.Context) (string, error)
}

// CDPTarget is a code device reached over a CDP/1 byte stream: a frame.Host
// for the ordinary commands, and the stream itself for the checks that send
// frames of their own. Close closes the Host, not the stream.
type CDPTarget struct {
	*frame.Host
	rw io.ReadWriter
}

var (
	_ device.CodeDevice = (*CDPTarget)(nil)
	_ CDPStreamer       = (*CDPTarget)(nil)
	_ StatusReader      = (*CDPTarget)(nil)
	_ Commander         = (*CDPTarget)(nil)
	_ Displayer         = (*CDPTarget)(nil)
)

// NewCDPTarget returns a code device target speaking CDP/1 over rw. opts
// configure the Host (nil means its defaults).
func NewCDPTarget(rw io.ReadWriter, opts *frame.Options) *CDPTarget {
	return &CDPTarget{Host: frame.NewHost(rw, opts), rw: rw}
}

// CDPStream returns the byte stream.
func (t *CDPTarget) CDPStream() io.ReadWriter { return t.rw }

// handlerCommander runs commands through a device-side frame.Handler.
type handlerCommander struct{ h frame.Handler }

func (c handlerCommander) Do(ctx context.Context, cmd byte, payload []byte) (frame.Status, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	st, data := c.h.HandleFrame(ctx, cmd, payload)
	return st, data, nil
}

type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

type readTimeouter interface {
	SetReadTimeout(d time.Duration) error
}

// errNoAnswer: a raw request got no answer in time.
var errNoAnswer = errors.New("no answer")

// rawCDP sends and receives CDP/1 frames on a stream, bypassing the Host,
// for checks that need control of SEQ and of the bytes.
type rawCDP struct {
	rw  io.ReadWriter
	dl  readDeadliner
	to  readTimeouter
	p   frame.Parser
	buf []byte
	// wait is how long one try waits for an answer.
	wait time.Duration
	// seen collects the good frames read that answered nothing asked for.
	seen []frame.Frame
}

// newRawCDP returns nil when rw can't be read with a deadline.
func newRawCDP(rw io.ReadWriter, wait time.Duration) *rawCDP {
	c := &rawCDP{rw: rw, buf: make([]byte, frame.MaxFrame), wait: wait}
	if d, ok := rw.(readDeadliner); ok && d.SetReadDeadline(time.Time{}) == nil {
		c.dl = d
	} else if t, ok := rw.(readTimeouter); ok {
		c.to = t
	} else {
		return nil
	}
	return c
}

// close leaves the stream without a deadline.
func (c *rawCDP) close() {
	if c.dl != nil {
		c.dl.SetReadDeadline(time.Time{})
	}
}

func (c *rawCDP) write(b []byte) error {
	if _, err := c.rw.Write(b); err != nil {
		return fmt.Errorf("writing to the device: %w", err)
	}
	return nil
}

// read feeds the parser with what arrives before deadline; it returns
// errNoAnswer when nothing did.
func (c *rawCDP) read(ctx context.Context, deadline time.Time) error {
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return errNoAnswer
		}
		var n int
		var err error
		if c.dl != nil {
			if err := c.dl.SetReadDeadline(deadline); err != nil {
				return err
			}
			fired := make(chan struct{})
			stop := context.AfterFunc(ctx, func() {
				defer close(fired)
				c.dl.SetReadDeadline(time.Unix(1, 0)) // in the past: the Read returns now
			})
			n, err = c.rw.Read(c.buf)
			if !stop() {
				<-fired // let it finish before the deadline is set again
			}
		} else {
			if err := c.to.SetReadTimeout(min(left, 50*time.Millisecond)); err != nil {
				return err
			}
			n, err = c.rw.Read(c.buf)
		}
		if n > 0 {
			c.p.Write(c.buf[:n])
			return nil
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("reading from the device: %w", err)
		}
	}
}

// await returns the response to (seq, cmd) that arrives within c.wait,
// or errNoAnswer.
func (c *rawCDP) await(ctx context.Context, seq, cmd byte) (*frame.Frame, error) {
	deadline := time.Now().Add(c.wait)
	for {
		for {
			f, ok := c.p.Next()
			if !ok {
				break
			}
			if f.Seq == seq && f.Cmd == cmd|frame.ResponseBit {
				return &f, nil
			}
			c.seen = append(c.seen, f)
		}
		if err := c.read(ctx, deadline); err != nil {
			return nil, err
		}
	}
}

// exchange sends f and returns its answer, sending the identical frame
// again (up to tries times in all) when an answer does not come in time.
// It returns the answer and how many times f was resent.
func (c *rawCDP) exchange(ctx context.Context, f frame.Frame, tries int) (*frame.Frame, int, error) {
	wire, err := f.Encode()
	if err != nil {
		return nil, 0, err
	}
	for i := range tries {
		if err := c.write(wire); err != nil {
			return nil, i, err
		}
		resp, err := c.await(ctx, f.Seq, f.Cmd)
		if err == nil {
			if len(resp.Payload) == 0 {
				return nil, i, fmt.Errorf("%s response (SEQ 0x%02X) without a status byte", frame.CmdName(f.Cmd), f.Seq)
			}
			return resp, i, nil
		}
		if !errors.Is(err, errNoAnswer) {
			return nil, i, err
		}
	}
	return nil, tries - 1, fmt.Errorf("no answer to %s (SEQ 0x%02X) after %d tries of %v: %w", frame.CmdName(f.Cmd), f.Seq, tries, c.wait, device.ErrTimeout)
}

// status sends STATUS with seq and decodes the answer.
func (c *rawCDP) status(ctx context.Context, seq byte) (*frame.DeviceStatus, error) {
	resp, _, err := c.exchange(ctx, frame.Frame{Seq: seq, Cmd: frame.CmdStatus}, 3)
	if err != nil {
		return nil, err
	}
	if st := frame.Status(resp.Payload[0]); st != frame.StatusOK {
		return nil, fmt.Errorf("STATUS answered status 0x%02X (%v)", byte(st), st)
	}
	return frame.ParseStatus(resp.Payload[1:])
}

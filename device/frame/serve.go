package frame

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
)

// Handler is the device logic behind Serve: a code display or audio reader
// simulator, for instance. HandleFrame gets the command (without the response
// bit) and its payload, and returns the status and the bytes after it (at
// most MaxData). It is called for every new request, also for commands CDP/1
// does not define, which it answers with StatusUnknownCommand; checking the
// payload (ParseXxx) is its job, answering StatusBadRequest when it is
// malformed. Serve calls it from one goroutine at a time. An answer returned
// after ctx has ended is not sent: Serve returns.
type Handler interface {
	HandleFrame(ctx context.Context, cmd byte, payload []byte) (Status, []byte)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, cmd byte, payload []byte) (Status, []byte)

// HandleFrame calls f.
func (f HandlerFunc) HandleFrame(ctx context.Context, cmd byte, payload []byte) (Status, []byte) {
	return f(ctx, cmd, payload)
}

// DefaultIdleTimeout is how long a Server waits for the rest of a frame
// before it gives the frame up (see Parser.Idle). At 115200 baud the largest
// frame takes about 90 ms.
const DefaultIdleTimeout = 100 * time.Millisecond

// Server is the device side of CDP/1 (docs/cdp1.md). The zero value with a
// Handler set is ready to use.
type Server struct {
	Handler Handler
	// IdleTimeout: see DefaultIdleTimeout, which 0 means.
	IdleTimeout time.Duration
	// Logger receives debug records of replayed and ignored frames; nil
	// discards them.
	Logger *slog.Logger

	mu    sync.Mutex
	stats ServerStats
}

// ServerStats counts what a Server did, over all its Serve calls. The
// counters only grow.
type ServerStats struct {
	Requests uint64 // requests passed to the handler
	Replayed uint64 // repeated requests answered from the cache
	Ignored  uint64 // good frames with the response bit set (an echo)
	Parser   Stats  // the parser of the host's bytes
}

// Stats returns the counters so far.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Serve is (&Server{Handler: h}).Serve(ctx, rw).
func Serve(ctx context.Context, rw io.ReadWriter, h Handler) error {
	return (&Server{Handler: h}).Serve(ctx, rw)
}

// Serve reads requests from rw and answers them until ctx ends or rw
// reports io.EOF; then it returns nil. It skips noise and frames with a bad
// CRC, ignores frames that carry the response bit, and never speaks first.
//
// Each answer has CMD|0x80, the request's SEQ, and the status first. The
// last answer is cached: a request identical to the previous one (same SEQ,
// CMD and payload: a resend after the host timed out) gets the cached bytes
// again and the handler is not called, so a resent PRESS never consumes a
// second code. Only the last answer is kept, since SEQ wraps after 256
// commands and an older one would be stale.
//
// Reads use rw's SetReadDeadline or SetReadTimeout when it has one, so that
// Serve returns promptly when ctx ends; otherwise a goroutine reads, which
// exits once its Read returns after Serve has returned (when the owner closes
// rw). Serve does not close rw.
//
// Errors: a read error other than io.EOF, or a write error before ctx
// ended, wrapped; and an error wrapping device.ErrMessageTooLarge when the
// handler answers more than MaxData bytes.
func (s *Server) Serve(ctx context.Context, rw io.ReadWriter) error {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	rd := newLineReader(rw)
	defer rd.close()
	defer rd.release()

	var (
		p    Parser
		last struct {
			ok       bool
			seq, cmd byte
			payload  []byte
			wire     []byte
		}
		seen Stats // parser counters already added to s.stats
	)
	defer func() {
		st := p.Stats()
		s.count(func(t *ServerStats) { t.Parser = t.Parser.Add(diff(st, seen)) })
	}()
	for {
		for {
			f, ok := p.Next()
			if !ok {
				break
			}
			if f.IsResponse() {
				s.count(func(t *ServerStats) { t.Ignored++ })
				log.Debug("frame: ignoring a response", "cmd", CmdName(f.Cmd), "seq", f.Seq)
				continue
			}
			if last.ok && f.Seq == last.seq && f.Cmd == last.cmd && bytes.Equal(f.Payload, last.payload) {
				s.count(func(t *ServerStats) { t.Replayed++ })
				log.Debug("frame: answering a repeated request from the cache", "cmd", CmdName(f.Cmd), "seq", f.Seq)
				if _, err := rw.Write(last.wire); err != nil {
					return writeErr(ctx, err)
				}
				continue
			}
			s.count(func(t *ServerStats) { t.Requests++ })
			st, data := s.Handler.HandleFrame(ctx, f.Cmd, f.Payload)
			if ctx.Err() != nil {
				// The server is stopping (a simulated cable pulled
				// mid-request, for one): no answer goes out.
				return nil
			}
			if len(data) > MaxData {
				return fmt.Errorf("frame: serve: handler answered %s with %d bytes, at most %d fit: %w",
					CmdName(f.Cmd), len(data), MaxData, device.ErrMessageTooLarge)
			}
			payload := make([]byte, 0, 1+len(data))
			payload = append(append(payload, byte(st)), data...)
			wire, _ := (&Frame{Seq: f.Seq, Cmd: f.Cmd | ResponseBit, Payload: payload}).Encode()
			last.ok, last.seq, last.cmd, last.payload, last.wire = true, f.Seq, f.Cmd, f.Payload, wire
			if _, err := rw.Write(wire); err != nil {
				return writeErr(ctx, err)
			}
		}
		st := p.Stats()
		s.count(func(t *ServerStats) { t.Parser = t.Parser.Add(diff(st, seen)) })
		seen = st

		var deadline time.Time // none while nothing is pending
		if p.Buffered() > 0 {
			deadline = time.Now().Add(idle)
		}
		b, err := rd.read(ctx, deadline)
		switch {
		case err == nil:
			p.Write(b)
		case err == errIdle:
			p.Idle()
		case ctx.Err() != nil, endOfStream(err):
			return nil
		default:
			return fmt.Errorf("frame: serve: read: %w", err)
		}
	}
}

// endOfStream reports whether a read error means the host went away: EOF, or
// a pipe or connection that the other end closed (net.Pipe reports that as
// io.ErrClosedPipe, also from SetReadDeadline).
func endOfStream(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed)
}

// writeErr is Serve's result for a failed write: nil when ctx has ended
// (the stream may be closing too), the wrapped error otherwise.
func writeErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("frame: serve: write: %w", err)
}

func (s *Server) count(f func(*ServerStats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// diff returns a-b, counter by counter (b ≤ a).
func diff(a, b Stats) Stats {
	return Stats{
		Frames:  a.Frames - b.Frames,
		BadCRC:  a.BadCRC - b.BadCRC,
		BadLen:  a.BadLen - b.BadLen,
		Stale:   a.Stale - b.Stale,
		Skipped: a.Skipped - b.Skipped,
	}
}

package frame

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
)

// Host defaults.
const (
	DefaultTimeout = 500 * time.Millisecond
	DefaultRetries = 3
)

// maxAudio bounds the audio a host fetches (8 minutes at 16 kHz), whatever
// length a device claims.
const maxAudio = 16 << 20

// Options configure a Host. The zero value gives the defaults.
type Options struct {
	// Timeout is how long one try waits for the answer before the frame is
	// sent again; 0 means DefaultTimeout.
	Timeout time.Duration
	// Retries is how many times a frame is sent again after the first try
	// timed out; 0 means DefaultRetries, a negative number none.
	Retries int
	// Rand picks the first SEQ, so that a restarted host is unlikely to
	// repeat the SEQ a device has cached; nil means crypto/rand. Tests and
	// recordings pass a fixed reader.
	Rand io.Reader
	// Logger receives debug records of resends and ignored frames; nil
	// discards them.
	Logger *slog.Logger
}

// Host is the host side of CDP/1 (docs/cdp1.md) over a byte stream, such as
// a serial port (go.bug.st/serial.Port) or a pty. It numbers requests with
// SEQ, sends them, waits for the response with the same SEQ and CMD|0x80,
// ignores stale responses, and resends the identical frame when a try times
// out. One command runs at a time; Host is safe for concurrent use.
//
// Reads never block past a try's timeout: Host uses the stream's
// SetReadDeadline (net.Conn, *os.File) or SetReadTimeout (go.bug.st/serial)
// when it has one, and otherwise a reader goroutine, which Close stops.
//
// Host implements device.CodeDevice.
type Host struct {
	w       io.Writer
	rd      *lineReader
	timeout time.Duration
	tries   int
	log     *slog.Logger

	closing context.Context // done once Close is called
	cancel  context.CancelFunc
	sem     chan struct{} // held by the running command

	// Owned by the holder of sem.
	seq byte
	p   Parser

	mu    sync.Mutex
	stats HostStats
}

var _ device.CodeDevice = (*Host)(nil)

// HostStats counts what a Host did. The counters only grow.
type HostStats struct {
	Commands uint64 // commands answered (any status)
	Resends  uint64 // frames sent again after a try timed out
	Timeouts uint64 // commands that got no answer after every try
	Ignored  uint64 // good frames that did not answer the command waited for
	Parser   Stats  // the parser of the device's bytes
}

// NewHost returns a Host speaking over rw. opts may be nil. The Host does
// not own rw: Close leaves it open, and the one who opened it closes it.
func NewHost(rw io.ReadWriter, opts *Options) *Host {
	if opts == nil {
		opts = &Options{}
	}
	h := &Host{
		w:       rw,
		rd:      newLineReader(rw),
		timeout: opts.Timeout,
		tries:   1 + opts.Retries,
		log:     opts.Logger,
		sem:     make(chan struct{}, 1),
	}
	if h.timeout <= 0 {
		h.timeout = DefaultTimeout
	}
	if opts.Retries == 0 {
		h.tries = 1 + DefaultRetries
	} else if opts.Retries < 0 {
		h.tries = 1
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	r := opts.Rand
	if r == nil {
		r = rand.Reader
	}
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err == nil {
		h.seq = b[0]
	}
	h.closing, h.cancel = context.WithCancel(context.Background())
	return h
}

// Close makes commands in progress and later ones fail with an error
// wrapping device.ErrClosed, waits for a command in progress to return, and
// stops the reader goroutine if there is one (it exits as soon as its
// current Read returns). It does not close the stream. Close always returns
// nil.
func (h *Host) Close() error {
	h.cancel()
	h.sem <- struct{}{} // wait for the running command
	defer func() { <-h.sem }()
	h.rd.close()
	return nil
}

// Stats returns the counters so far.
func (h *Host) Stats() HostStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stats
}

// Do sends the request cmd with payload and returns the response's status
// and the bytes after it. A status other than StatusOK is not an error here;
// Status.Err turns it into one.
//
// Each try waits Options.Timeout for the answer, then sends the identical
// frame again with the same SEQ; after the last try Do returns an error
// wrapping device.ErrTimeout. Other errors: device.ErrMessageTooLarge when
// payload exceeds MaxPayload; device.ErrProtocol for a response without a
// status byte; device.ErrClosed after Close; device.ErrRemoved (together
// with the stream's error) when the stream reports EOF or closed; the
// stream's other errors, wrapped; and ctx.Err(), wrapped, when ctx ends
// first.
func (h *Host) Do(ctx context.Context, cmd byte, payload []byte) (Status, []byte, error) {
	name := CmdName(cmd)
	if cmd&ResponseBit != 0 {
		return 0, nil, fmt.Errorf("frame: %s: a request cannot carry the response bit: %w", name, device.ErrProtocol)
	}
	if len(payload) > MaxPayload {
		return 0, nil, fmt.Errorf("frame: %s: payload of %d bytes, at most %d fit: %w", name, len(payload), MaxPayload, device.ErrMessageTooLarge)
	}
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, nil, fmt.Errorf("frame: %s: %w", name, ctx.Err())
	case <-h.closing.Done():
		return 0, nil, fmt.Errorf("frame: %s: %w", name, device.ErrClosed)
	}
	defer func() { <-h.sem }()
	if h.closing.Err() != nil {
		return 0, nil, fmt.Errorf("frame: %s: %w", name, device.ErrClosed)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(h.closing, cancel)()

	seq := h.seq
	h.seq++
	wire, err := (&Frame{Seq: seq, Cmd: cmd, Payload: payload}).Encode()
	if err != nil {
		return 0, nil, err
	}
	defer h.syncParserStats()
	defer h.rd.release()
	for try := 1; ; try++ {
		if _, err := h.w.Write(wire); err != nil {
			return 0, nil, h.streamErr(ctx, name, "write", err)
		}
		f, err := h.await(ctx, seq, cmd|ResponseBit, time.Now().Add(h.timeout))
		switch {
		case err == nil:
			h.count(func(s *HostStats) { s.Commands++ })
			if len(f.Payload) == 0 {
				return 0, nil, fmt.Errorf("frame: %s (SEQ %d): response without a status byte: %w", name, seq, device.ErrProtocol)
			}
			return Status(f.Payload[0]), f.Payload[1:], nil
		case err != errIdle:
			return 0, nil, h.streamErr(ctx, name, "read", err)
		}
		// No answer within the timeout: give up on partial frames (a false
		// A5 may be waiting for bytes that never come) and try again.
		h.p.Idle()
		if try >= h.tries {
			h.count(func(s *HostStats) { s.Timeouts++ })
			return 0, nil, fmt.Errorf("frame: %s (SEQ %d): no answer after %d tries of %v: %w", name, seq, try, h.timeout, device.ErrTimeout)
		}
		h.count(func(s *HostStats) { s.Resends++ })
		h.log.Debug("frame: resending", "cmd", name, "seq", seq, "try", try+1)
	}
}

// await reads until the frame (seq, cmd) arrives or deadline passes
// (errIdle).
func (h *Host) await(ctx context.Context, seq, cmd byte, deadline time.Time) (Frame, error) {
	for {
		for {
			f, ok := h.p.Next()
			if !ok {
				break
			}
			if f.Seq == seq && f.Cmd == cmd {
				return f, nil
			}
			h.count(func(s *HostStats) { s.Ignored++ })
			h.log.Debug("frame: ignoring frame", "cmd", CmdName(f.Cmd), "seq", f.Seq, "want_seq", seq)
		}
		b, err := h.rd.read(ctx, deadline)
		if err != nil {
			return Frame{}, err
		}
		h.p.Write(b)
	}
}

func (h *Host) count(f func(*HostStats)) {
	h.mu.Lock()
	f(&h.stats)
	h.mu.Unlock()
}

func (h *Host) syncParserStats() {
	st := h.p.Stats()
	h.count(func(s *HostStats) { s.Parser = st })
}

// streamErr turns a failure of the stream or of ctx into Do's errors.
func (h *Host) streamErr(ctx context.Context, name, op string, err error) error {
	switch {
	case h.closing.Err() != nil:
		return fmt.Errorf("frame: %s: %w", name, device.ErrClosed)
	case ctx.Err() != nil:
		return fmt.Errorf("frame: %s: %w", name, ctx.Err())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrClosedPipe), errors.Is(err, os.ErrClosed), errors.Is(err, net.ErrClosed):
		return fmt.Errorf("frame: %s: %s: %w (%w)", name, op, device.ErrRemoved, err)
	}
	return fmt.Errorf("frame: %s: %s: %w", name, op, err)
}

// call runs Do and turns a status other than StatusOK into a *StatusError.
func (h *Host) call(ctx context.Context, cmd byte, payload []byte) ([]byte, error) {
	st, data, err := h.Do(ctx, cmd, payload)
	if err != nil {
		return nil, err
	}
	if err := st.Err(cmd); err != nil {
		return nil, err
	}
	return data, nil
}

// callEmpty runs call for a command whose response has nothing after the
// status.
func (h *Host) callEmpty(ctx context.Context, cmd byte, payload []byte) error {
	data, err := h.call(ctx, cmd, payload)
	if err != nil {
		return err
	}
	return checkEmpty(cmd|ResponseBit, data)
}

// Identify sends IDENTIFY (CMD 0x01) and returns the device's identity in
// the device vocabulary. Errors: those of Do, a *StatusError, or a
// *PayloadError for a malformed answer (see ParseIdentity).
func (h *Host) Identify(ctx context.Context) (*device.CodeDeviceInfo, error) {
	id, err := h.Identity(ctx)
	if err != nil {
		return nil, err
	}
	return id.Info(), nil
}

// Identity sends IDENTIFY (CMD 0x01) and returns the decoded TLVs, with the
// errors of Identify.
func (h *Host) Identity(ctx context.Context) (*Identity, error) {
	data, err := h.call(ctx, CmdIdentify, nil)
	if err != nil {
		return nil, err
	}
	return ParseIdentity(data)
}

// Press sends PRESS (CMD 0x02) and returns the code. For an audio reader it
// then fetches what was spoken with AUDIO and fills Code.Audio. A resent
// PRESS never consumes a second code: the device answers a repeated SEQ from
// its cache. Errors: those of Do, a *StatusError (StatusNoCode unwraps to
// device.ErrNoCode, StatusBusy to device.ErrBusy), or a *PayloadError for a
// malformed answer.
func (h *Host) Press(ctx context.Context) (*device.Code, error) {
	data, err := h.call(ctx, CmdPress, nil)
	if err != nil {
		return nil, err
	}
	r, err := ParsePress(data)
	if err != nil {
		return nil, err
	}
	code := r.Code()
	if r.Audio != nil {
		pcm, err := h.Audio(ctx, int(r.Audio.Length))
		if err != nil {
			return nil, err
		}
		code.Audio = &device.Audio{SampleRate: int(r.Audio.SampleRate), PCM: pcm}
	}
	return code, nil
}

// Display sends DISPLAY (CMD 0x03) and returns what the display shows ("" when
// it is off). Errors: those of Do, a *StatusError, or a *PayloadError.
func (h *Host) Display(ctx context.Context) (string, error) {
	data, err := h.call(ctx, CmdDisplay, nil)
	if err != nil {
		return "", err
	}
	d, err := ParseDisplay(data)
	if err != nil {
		return "", err
	}
	return d.Text, nil
}

// Audio fetches the first length bytes of the PCM of the last spoken code
// with AUDIO (CMD 0x04) requests of at most MaxData bytes each. Errors:
// those of Do, a *StatusError, or a *PayloadError when length is out of
// range (above 16 MiB) or a chunk is empty or longer than asked for.
func (h *Host) Audio(ctx context.Context, length int) ([]byte, error) {
	if length < 0 || length > maxAudio {
		return nil, payloadErr(CmdAudio, "audio length %d out of range 0 to %d", length, maxAudio)
	}
	pcm := make([]byte, 0, min(length, 1<<20))
	for len(pcm) < length {
		req := &AudioRequest{Offset: uint32(len(pcm)), Max: uint16(min(length-len(pcm), MaxData, math.MaxUint16))}
		p, _ := req.Encode()
		data, err := h.call(ctx, CmdAudio, p)
		if err != nil {
			return nil, err
		}
		if len(data) == 0 || len(data) > int(req.Max) {
			return nil, payloadErr(CmdAudio|ResponseBit, "%d bytes at offset %d, asked for 1 to %d", len(data), req.Offset, req.Max)
		}
		pcm = append(pcm, data...)
	}
	return pcm, nil
}

// Settings sends SETTINGS (CMD 0x05). Errors: those of Do, a *StatusError
// (StatusBadRequest for a value the device does not support), or a
// *PayloadError for an invalid s.
func (h *Host) Settings(ctx context.Context, s *Settings) error {
	p, err := s.Encode()
	if err != nil {
		return err
	}
	return h.callEmpty(ctx, CmdSettings, p)
}

// Status sends STATUS (CMD 0x06). Errors: those of Do, a *StatusError, or a
// *PayloadError.
func (h *Host) Status(ctx context.Context) (*DeviceStatus, error) {
	data, err := h.call(ctx, CmdStatus, nil)
	if err != nil {
		return nil, err
	}
	return ParseStatus(data)
}

// Provision sends PROVISION (CMD 0x10); open the answer with
// ProvisionResponse.Open. Only a device in factory mode accepts it. Errors:
// those of Do, a *StatusError (StatusNotFactory, StatusSealed), or a
// *PayloadError.
func (h *Host) Provision(ctx context.Context, req *ProvisionRequest) (*ProvisionResponse, error) {
	p, _ := req.Encode()
	data, err := h.call(ctx, CmdProvision, p)
	if err != nil {
		return nil, err
	}
	return ParseProvisionResponse(data)
}

// SetClock sends SET_CLOCK (CMD 0x11) with t in unix seconds. Only a device
// in factory mode accepts it. Errors: those of Do, a *StatusError, or a
// *PayloadError when t is before 1970.
func (h *Host) SetClock(ctx context.Context, t time.Time) error {
	if t.Unix() < 0 {
		return payloadErr(CmdSetClock, "time %v is before 1970", t)
	}
	p, _ := (&SetClock{Unix: uint64(t.Unix())}).Encode()
	return h.callEmpty(ctx, CmdSetClock, p)
}

// Seal sends SEAL (CMD 0x12): the device leaves factory mode for good.
// Errors: those of Do, or a *StatusError.
func (h *Host) Seal(ctx context.Context) error {
	return h.callEmpty(ctx, CmdSeal, nil)
}

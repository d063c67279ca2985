package usb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
)

// ReportSize is the length of a CTAPHID report and of the interrupt
// endpoints' packets (CTAP 2.1 §11.2.4).
const ReportSize = 64

// DefaultWriteTimeout bounds one report written to the OUT endpoint.
const DefaultWriteTimeout = 2 * time.Second

// inEndpoint is what the report transport needs of an interrupt IN
// endpoint. *gousb.InEndpoint has it as it is.
type inEndpoint interface {
	ReadContext(ctx context.Context, b []byte) (int, error)
}

// outEndpoint is what the report transport needs of an interrupt OUT
// endpoint. *gousb.OutEndpoint has it as it is.
type outEndpoint interface {
	WriteContext(ctx context.Context, b []byte) (int, error)
}

// endpoints is a report transport over an interrupt IN and OUT endpoint
// pair: one report per Read and Write, without a report-ID byte, as
// ctaphid.Conn expects. Close cancels a Read in progress, which is how a
// Conn's reading goroutine ends.
type endpoints struct {
	in           inEndpoint
	out          outEndpoint
	writeTimeout time.Duration
	// classify names the sentinel a libusb error stands for (nil when it
	// stands for none): it is set by usb_cgo.go, which knows gousb's errors.
	classify func(error) error

	ctx    context.Context // ends at Close
	cancel context.CancelFunc

	rmu  sync.Mutex
	rbuf [ReportSize]byte
}

func newEndpoints(in inEndpoint, out outEndpoint, writeTimeout time.Duration, classify func(error) error) *endpoints {
	if writeTimeout <= 0 {
		writeTimeout = DefaultWriteTimeout
	}
	if classify == nil {
		classify = func(error) error { return nil }
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &endpoints{in: in, out: out, writeTimeout: writeTimeout, classify: classify, ctx: ctx, cancel: cancel}
}

var errEndpointsClosed = fmt.Errorf("usb: endpoints: %w", device.ErrClosed)

// Read waits for the next input report and copies it into p. It asks the
// endpoint for exactly ReportSize bytes: an interrupt transfer of more
// would wait for a second packet. A shorter packet is padded with zeros to
// a whole report.
//
// Errors: an error wrapping device.ErrClosed after Close (also for a Read
// that Close interrupted), one wrapping io.ErrShortBuffer (with the report
// cut) when p is shorter than a report, and otherwise the endpoint's error
// wrapping the sentinel classify names for it (device.ErrRemoved when the
// key was unplugged).
func (e *endpoints) Read(p []byte) (int, error) {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	if e.ctx.Err() != nil {
		return 0, errEndpointsClosed
	}
	n, err := e.in.ReadContext(e.ctx, e.rbuf[:])
	if e.ctx.Err() != nil {
		return 0, errEndpointsClosed
	}
	if err != nil {
		return 0, e.wrap("read report", err)
	}
	clear(e.rbuf[n:])
	if len(p) < ReportSize {
		return copy(p, e.rbuf[:]), fmt.Errorf("usb: read report: %w: buffer of %d bytes", io.ErrShortBuffer, len(p))
	}
	return copy(p, e.rbuf[:]), nil
}

// Write sends p, which must be one whole report, to the OUT endpoint.
//
// Errors: an error wrapping device.ErrProtocol when p is not ReportSize
// bytes, device.ErrClosed after Close, device.ErrTimeout when the endpoint
// does not take the report within the write timeout, and otherwise the
// endpoint's error wrapping the sentinel classify names for it.
func (e *endpoints) Write(p []byte) (int, error) {
	if len(p) != ReportSize {
		return 0, fmt.Errorf("usb: write report: %w: %d bytes, want %d", device.ErrProtocol, len(p), ReportSize)
	}
	if e.ctx.Err() != nil {
		return 0, errEndpointsClosed
	}
	ctx, cancel := context.WithTimeout(e.ctx, e.writeTimeout)
	defer cancel()
	n, err := e.out.WriteContext(ctx, p)
	switch {
	case e.ctx.Err() != nil:
		return 0, errEndpointsClosed
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return 0, fmt.Errorf("usb: write report: %w after %v", device.ErrTimeout, e.writeTimeout)
	case err != nil:
		return 0, e.wrap("write report", err)
	case n != len(p):
		return n, fmt.Errorf("usb: write report: %w: %d of %d bytes sent", device.ErrProtocol, n, len(p))
	}
	return n, nil
}

// Close ends pending and later Reads and Writes. It returns nil.
func (e *endpoints) Close() error {
	e.cancel()
	return nil
}

func (e *endpoints) wrap(op string, err error) error {
	if s := e.classify(err); s != nil {
		return fmt.Errorf("usb: %s: %w: %w", op, s, err)
	}
	return fmt.Errorf("usb: %s: %w", op, err)
}

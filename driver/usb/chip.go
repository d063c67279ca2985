package usb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/u2f"
)

// DefaultTimeout bounds a Chip call whose context has no deadline. It is
// long enough for a person to find and touch the key.
const DefaultTimeout = 2 * time.Minute

// Options configure Open and NewChip. The zero value is the default.
type Options struct {
	// Timeout bounds every call (and the CTAPHID_INIT of Open and NewChip)
	// whose context has no deadline; zero means DefaultTimeout and a
	// negative value means no bound.
	Timeout time.Duration

	// CancelWait is how long a call whose context ended waits for the key
	// to answer the CTAPHID_CANCEL it sent; zero means
	// ctaphid.DefaultCancelWait.
	CancelWait time.Duration

	// Rand is the source of CTAPHID_INIT nonces; nil means crypto/rand.
	Rand io.Reader

	// U2FPollInterval is how often the U2F client repeats a request while
	// the key waits for a touch; zero means u2f.DefaultPollInterval.
	U2FPollInterval time.Duration

	// WriteTimeout bounds one report written to the key's OUT endpoint
	// (Open only); zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
}

// Chip is a FIDO security key (a MitID chip) reached through CTAPHID over a
// report transport: a USB interface opened by Open, or any io.ReadWriter of
// 64-byte reports given to NewChip.
//
// It implements device.Chip, device.NextAssertioner, device.Resetter and
// device.Selector through a ctap2.Client, the messengers ctap2.Messenger
// (CBOR: CTAPHID_CBOR) and u2f.Messenger (APDU: CTAPHID_MSG), and offers a
// U2F client. Calls run one at a time; a Chip is safe for concurrent use.
//
// A key whose CTAPHID_INIT capabilities lack the CBOR flag speaks only U2F
// (CTAP 2.1 §11.2.9.1.3): its Info, MakeCredential and GetAssertion go over
// CTAPHID_MSG through the CTAP 2.1 §10 translation of u2f.Chip (a
// "fido-u2f" attestation; no discoverable credentials), and
// GetNextAssertion, Reset and Selection return device.ErrNotSupported.
//
// Errors from every method: a *ctap2.StatusError (errors.Is with the ctap2
// sentinels) when the key answered with a CTAP2 status; an error wrapping
// ctx.Err() and, for a deadline (including Options.Timeout),
// device.ErrTimeout when the key did not answer in time; *ctaphid.Error
// when the key answered CTAPHID_ERROR (ERR_CHANNEL_BUSY unwraps to
// device.ErrBusy, ERR_INVALID_CMD to device.ErrNotSupported, for instance a
// U2F-only key sent CBOR); device.ErrRemoved when the transport
// failed (the key was unplugged); device.ErrProtocol for malformed
// answers; device.ErrClosed after Close. Each error starts with "usb:" and
// the key's path.
type Chip struct {
	info    device.Info
	opts    Options
	conn    *ctaphid.Conn
	ctap    *ctap2.Client
	u2f     *u2f.Client
	u2fChip *u2f.Chip    // the CTAP 2.1 §10 translation, for a key without CBOR
	release func() error // frees what Open opened, after the Conn stopped

	closeOnce sync.Once
	closeErr  error
}

var (
	_ device.Chip             = (*Chip)(nil)
	_ device.NextAssertioner  = (*Chip)(nil)
	_ device.Resetter         = (*Chip)(nil)
	_ device.Selector         = (*Chip)(nil)
	_ ctap2.Messenger         = (*Chip)(nil)
	_ u2f.Messenger           = (*Chip)(nil)
	_ device.ProtocolReporter = (*Chip)(nil)
)

// NewChip starts CTAPHID on a report transport (CTAPHID_INIT on the
// broadcast channel, CTAP 2.1 §11.2.9.1.3) and returns the Chip. rw moves
// one whole 64-byte report per Read and Write, without a report-ID byte:
// ctaphid.PipeEnd, a sim/udphid Conn, or the endpoints Open claims. info
// describes the key (its Kind defaults to device.KindChip); DeviceInfo
// returns it.
//
// rw stays the caller's: Close stops using it but does not close it. For
// Close to stop the Chip's reading goroutine, rw needs a SetReadDeadline
// method (as net.Conn and ctaphid.PipeEnd have); otherwise close rw after
// the Chip.
//
// Errors: those of ctaphid.Open, prefixed: ctx's error (with
// device.ErrTimeout for a deadline) when the key does not answer INIT,
// *ctaphid.Error, and errors wrapping device.ErrProtocol or
// device.ErrRemoved.
func NewChip(ctx context.Context, rw io.ReadWriter, info device.Info, opts Options) (*Chip, error) {
	return newChip(ctx, rw, info, opts, false, nil)
}

// newChip is NewChip; with own set, the Chip closes rw (an io.Closer) when
// it closes, and then calls release.
func newChip(ctx context.Context, rw io.ReadWriter, info device.Info, opts Options, own bool, release func() error) (*Chip, error) {
	if info.Kind == "" {
		info.Kind = device.KindChip
	}
	c := &Chip{info: info, opts: opts, release: release}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	conn, err := ctaphid.Open(ctx, rw, ctaphid.Options{Rand: opts.Rand, CancelWait: opts.CancelWait, CloseTransport: own})
	if err != nil {
		err = c.wrap("open", err)
		if release != nil {
			if cl, ok := rw.(io.Closer); ok && own {
				cl.Close()
			}
			err = errors.Join(err, release())
		}
		return nil, err
	}
	c.conn = conn
	c.ctap = ctap2.NewClient(conn)
	c.u2f = u2f.NewClient(boundAPDU{c}, &u2f.Options{PollInterval: opts.U2FPollInterval})
	if conn.DeviceInfo().Capabilities&ctaphid.CapCBOR == 0 {
		c.u2fChip = u2f.NewChip(c.u2f)
	}
	return c, nil
}

// bound gives ctx the Options.Timeout deadline when it has none.
func (c *Chip) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || c.opts.Timeout < 0 {
		return ctx, func() {}
	}
	d := c.opts.Timeout
	if d == 0 {
		d = DefaultTimeout
	}
	return context.WithTimeout(ctx, d)
}

// wrap names the key in err, and adds device.ErrTimeout to a deadline.
func (c *Chip) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, device.ErrTimeout) {
		return fmt.Errorf("%s: %s: %s: %w: %w", c.transport(), c.name(), op, device.ErrTimeout, err)
	}
	return fmt.Errorf("%s: %s: %s: %w", c.transport(), c.name(), op, err)
}

// transport names what carries the reports in errors: "usb", or the
// transport of NewChip's info ("udp" for CTAPHID over UDP), so that an
// error of a chip on UDP does not send anyone looking for a USB key.
func (c *Chip) transport() string {
	if c.info.Transport != "" {
		return c.info.Transport
	}
	return "usb"
}

func (c *Chip) name() string {
	if c.info.Path != "" {
		return c.info.Path
	}
	if c.info.Transport != "" {
		return c.info.Transport
	}
	return "chip"
}

// boundAPDU is the U2F client's messenger: the Conn, with Options.Timeout.
type boundAPDU struct{ c *Chip }

func (b boundAPDU) APDU(ctx context.Context, req []byte) ([]byte, error) {
	ctx, cancel := b.c.bound(ctx)
	defer cancel()
	return b.c.conn.APDU(ctx, req)
}

// DeviceInfo returns what is known about the key: as List found it for
// Open, as given to NewChip.
func (c *Chip) DeviceInfo() device.Info { return c.info }

// HIDInfo returns the CTAPHID version and capabilities from the key's INIT
// response (CTAP 2.1 §11.2.9.1.3). A key without ctaphid.CapCBOR speaks
// only U2F.
func (c *Chip) HIDInfo() ctaphid.DeviceInfo { return c.conn.DeviceInfo() }

// Protocols reports what the key speaks, from its INIT capabilities: CTAP2
// with the CBOR flag, U2F without the NMSG flag (CTAP 2.1 §11.2.9.1.3).
func (c *Chip) Protocols() device.Protocols {
	caps := c.conn.DeviceInfo().Capabilities
	var p device.Protocols
	if caps&ctaphid.CapCBOR != 0 {
		p |= device.ProtocolCTAP2
	}
	if caps&ctaphid.CapNMSG == 0 {
		p |= device.ProtocolU2F
	}
	return p
}

// U2FOnly reports whether the key speaks only U2F: its INIT capabilities
// lack the CBOR flag. Its CTAP2 methods are then translated to U2F (CTAP
// 2.1 §10).
func (c *Chip) U2FOnly() bool { return c.u2fChip != nil }

// notU2F is the error of a CTAP2-only command on a U2F-only key.
func (c *Chip) notU2F(op string) error {
	return c.wrap(op, fmt.Errorf("a U2F-only key (no CBOR in its CTAPHID_INIT capabilities) has no such command: %w", device.ErrNotSupported))
}

// U2F returns a U2F (CTAP1) client that talks to the key through
// CTAPHID_MSG (FIDO U2F Raw Message Formats; CTAP 2.1 §11.2.9.1.1). Its
// requests are bounded by Options.Timeout like the Chip's; its errors are
// the u2f package's.
func (c *Chip) U2F() *u2f.Client { return c.u2f }

// CBOR sends one CTAP2 request (command byte and CBOR parameters) with
// CTAPHID_CBOR and returns the answer (status byte and CBOR). Keepalives
// reach ctap2.WithKeepalive's function.
//
// Errors: see Chip; a CTAP2 status is part of the answer, not an error.
func (c *Chip) CBOR(ctx context.Context, req []byte) ([]byte, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.conn.CBOR(ctx, req)
	return resp, c.wrap("CBOR", err)
}

// APDU sends one U2F request APDU with CTAPHID_MSG and returns the
// response data followed by SW1 SW2.
//
// Errors: see Chip; a status word is part of the answer, not an error.
func (c *Chip) APDU(ctx context.Context, req []byte) ([]byte, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.conn.APDU(ctx, req)
	return resp, c.wrap("APDU", err)
}

// Info sends authenticatorGetInfo (CTAP 2.1 §6.4).
//
// Errors: see Chip.
func (c *Chip) Info(ctx context.Context) (*ctap2.Info, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	if c.u2fChip != nil {
		info, err := c.u2fChip.Info(ctx)
		return info, c.wrap("getInfo", err)
	}
	info, err := c.ctap.Info(ctx)
	return info, c.wrap("getInfo", err)
}

// MakeCredential sends authenticatorMakeCredential (CTAP 2.1 §6.1); the key
// usually waits for a touch, sending keepalives meanwhile.
//
// Errors: see Chip; the request's validation error when it is malformed.
func (c *Chip) MakeCredential(ctx context.Context, req *ctap2.MakeCredentialRequest) (*ctap2.Attestation, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	if c.u2fChip != nil {
		att, err := c.u2fChip.MakeCredential(ctx, req)
		return att, c.wrap("makeCredential", err)
	}
	att, err := c.ctap.MakeCredential(ctx, req)
	return att, c.wrap("makeCredential", err)
}

// GetAssertion sends authenticatorGetAssertion (CTAP 2.1 §6.2).
//
// Errors: see Chip; the request's validation error when it is malformed.
func (c *Chip) GetAssertion(ctx context.Context, req *ctap2.GetAssertionRequest) (*ctap2.Assertion, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	if c.u2fChip != nil {
		as, err := c.u2fChip.GetAssertion(ctx, req)
		return as, c.wrap("getAssertion", err)
	}
	as, err := c.ctap.GetAssertion(ctx, req)
	return as, c.wrap("getAssertion", err)
}

// GetNextAssertion sends authenticatorGetNextAssertion (CTAP 2.1 §6.3).
//
// Errors: see Chip.
func (c *Chip) GetNextAssertion(ctx context.Context) (*ctap2.Assertion, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	if c.u2fChip != nil {
		return nil, c.notU2F("getNextAssertion")
	}
	as, err := c.ctap.GetNextAssertion(ctx)
	return as, c.wrap("getNextAssertion", err)
}

// Reset sends authenticatorReset (CTAP 2.1 §6.6), which destroys every
// credential on the key. Keys allow it only within seconds of being plugged
// in, and with a touch.
//
// Errors: see Chip.
func (c *Chip) Reset(ctx context.Context) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	if c.u2fChip != nil {
		return c.notU2F("reset")
	}
	return c.wrap("reset", c.ctap.Reset(ctx))
}

// Selection sends authenticatorSelection (CTAP 2.1 §6.9): the key waits for
// a touch.
//
// Errors: see Chip.
func (c *Chip) Selection(ctx context.Context) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	if c.u2fChip != nil {
		return c.notU2F("selection")
	}
	return c.wrap("selection", c.ctap.Selection(ctx))
}

// Wink asks the key to show itself, e.g. by blinking (CTAPHID_WINK, CTAP
// 2.1 §11.2.9.2.1).
//
// Errors: see Chip; a key without the command gives a *ctaphid.Error that
// unwraps to device.ErrNotSupported.
func (c *Chip) Wink(ctx context.Context) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.wrap("wink", c.conn.Wink(ctx))
}

// Close stops the Chip: calls in progress end with an error wrapping
// device.ErrClosed, its reading goroutine ends, and a Chip made by Open
// releases the interface and the device (libusb attaches the kernel driver
// again). It returns what releasing said; later calls return the same.
func (c *Chip) Close() error {
	c.closeOnce.Do(func() {
		err := c.conn.Close()
		if c.release != nil {
			err = errors.Join(err, c.release())
		}
		if err != nil {
			c.closeErr = fmt.Errorf("usb: %s: close: %w", c.name(), err)
		}
	})
	return c.closeErr
}

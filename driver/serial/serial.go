package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.bug.st/serial"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/voice"
)

// The line settings of the CDP/1 test UART (CDP/1 §1, docs/cdp1.md): 115200 baud,
// 8 data bits, no parity, 1 stop bit, no flow control.
const BaudRate = 115200

// DefaultProbeTimeout is Probe's wait for an answer when given 0.
const DefaultProbeTimeout = 200 * time.Millisecond

// Options configure Open. The zero value gives the defaults.
type Options struct {
	// Timeout is how long one try of a command waits for the answer before
	// the frame is sent again; 0 means frame.DefaultTimeout.
	Timeout time.Duration
	// Retries is how many times a frame is sent again after a try timed
	// out; 0 means frame.DefaultRetries, a negative number none.
	Retries int
	// Voice checks what an audio code reader says on Press: the digits of
	// its speech must be the code it reports. nil means voice.DefaultDecoder,
	// which knows the prompts of the simulated reader (sim/code) in Danish
	// and English; a real reader with another voice needs a Decoder of its
	// own prompts, learnt from it (voice.Learn, `authbench voice learn`,
	// then voice.LoadPrompts and voice.NewDecoder).
	Voice *voice.Decoder
	// NoVoiceCheck makes Press fetch an audio reader's speech into
	// Code.Audio without decoding it; Voice is then ignored.
	NoVoiceCheck bool
	// Logger receives debug records of resends and ignored frames; nil
	// discards them.
	Logger *slog.Logger
	// Rand picks the first SEQ; nil means crypto/rand (see frame.Options).
	Rand io.Reader
}

// CodeDevice is a code display (kodeviser) or an audio code reader
// (kodeoplæser) on a serial port, spoken to in CDP/1 (docs/cdp1.md). It
// implements device.CodeDevice; one command runs at a time, and it is safe
// for concurrent use. Close it when done: it owns the port.
type CodeDevice struct {
	path  string
	port  *Port
	host  *frame.Host
	voice *voice.Decoder
	info  device.Info
	id    *device.CodeDeviceInfo

	once     sync.Once
	closeErr error
}

var _ device.CodeDevice = (*CodeDevice)(nil)

// Open opens the serial port at path (such as /dev/ttyUSB0, or a pty such
// as /dev/pts/3) at 115200 8N1 without flow control, and sends IDENTIFY
// to learn what is connected. It does not touch the DTR and RTS lines
// (ptys refuse those ioctls).
//
// Errors: device.ErrNotFound when there is no such serial port; a
// *NoDeviceError (unwrapping to device.ErrNotFound, and to
// device.ErrTimeout or device.ErrProtocol) when no CDP/1 device answers,
// as happens within about (1+Retries)×Timeout; an error wrapping
// device.ErrNotSupported for a device of a kind or protocol version this
// driver does not know; device.ErrBusy or fs.ErrPermission when the port
// cannot be opened; a *frame.StatusError when the device refuses
// IDENTIFY; ctx.Err(), wrapped, when ctx ends first; for an audio reader
// with neither Voice nor NoVoiceCheck set, voice.DefaultDecoder's error
// (only if the embedded prompts are damaged).
func Open(ctx context.Context, path string, opts Options) (*CodeDevice, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("serial: open %s: %w", path, err)
	}
	p, err := OpenPort(path)
	if err != nil {
		return nil, err
	}
	d := &CodeDevice{
		path:  path,
		port:  p,
		voice: opts.Voice,
		host: frame.NewHost(p, &frame.Options{
			Timeout: opts.Timeout,
			Retries: opts.Retries,
			Rand:    opts.Rand,
			Logger:  opts.Logger,
		}),
	}
	id, err := d.host.Identity(ctx)
	if err == nil && id.Kind.DeviceKind() == "" {
		err = fmt.Errorf("serial: %s: device kind %d: %w", path, id.Kind, device.ErrNotSupported)
	} else if err == nil && id.ProtocolVersion != frame.ProtocolVersion {
		err = fmt.Errorf("serial: %s: CDP/%d: %w", path, id.ProtocolVersion, device.ErrNotSupported)
	}
	if err != nil {
		d.Close()
		var pe *frame.PayloadError
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("serial: open %s: %w", path, ctx.Err())
		case errors.Is(err, device.ErrTimeout), errors.As(err, &pe):
			return nil, &NoDeviceError{Path: path, Err: err}
		}
		return nil, err
	}
	d.id = id.Info()
	switch {
	case opts.NoVoiceCheck || d.id.Kind != device.KindAudioCodeReader:
		d.voice = nil
	case d.voice == nil:
		if d.voice, err = voice.DefaultDecoder(); err != nil {
			d.Close()
			return nil, fmt.Errorf("serial: %s: %w", path, err)
		}
	}
	d.info = device.Info{
		Kind:      d.id.Kind,
		Transport: "serial",
		Path:      path,
		Serial:    d.id.Serial,
		Model:     d.id.Model,
		Firmware:  d.id.Firmware,
	}
	if usbPort(path) {
		if pi, ok := lookup(path); ok {
			d.info.VendorID, d.info.ProductID = pi.VendorID, pi.ProductID
		}
	}
	return d, nil
}

// usbPort reports whether path names (or links to) a USB serial port
// (ttyUSB*, ttyACM*): only then is it worth asking the enumerator for USB
// IDs.
func usbPort(path string) bool {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	base := filepath.Base(path)
	return strings.HasPrefix(base, "ttyUSB") || strings.HasPrefix(base, "ttyACM")
}

// Probe opens path with a short timeout (DefaultProbeTimeout when timeout
// is 0) and no resend, asks IDENTIFY, and closes the port again: what
// `authbench devices` shows for a port. It returns Open's errors.
func Probe(ctx context.Context, path string, timeout time.Duration) (*device.CodeDeviceInfo, error) {
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	d, err := Open(ctx, path, Options{Timeout: timeout, Retries: -1, NoVoiceCheck: true})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	id := *d.id
	return &id, nil
}

// Info describes the device as found when it was opened: its kind,
// serial, model and firmware from IDENTIFY, the port, and the USB vendor
// and product IDs when the port is a USB serial adapter the OS describes.
func (d *CodeDevice) Info() device.Info { return d.info }

// Path returns the port's path.
func (d *CodeDevice) Path() string { return d.path }

// Host returns the CDP/1 host, for the commands that device.CodeDevice
// does not cover: Display, Audio, Settings, Status, Provision, SetClock,
// Seal. Its errors are those of Identify; Close closes it too.
func (d *CodeDevice) Host() *frame.Host { return d.host }

// Identify sends IDENTIFY (CDP/1 CMD 0x01) and returns the answer.
//
// Errors: an error wrapping device.ErrTimeout when the device stops
// answering, device.ErrRemoved when the port goes away (the adapter is
// unplugged, the pty closes), device.ErrClosed after Close; a
// *frame.StatusError or a *frame.PayloadError (device.ErrProtocol) for a
// refused or malformed answer; ctx.Err(), wrapped, when ctx ends first.
func (d *CodeDevice) Identify(ctx context.Context) (*device.CodeDeviceInfo, error) {
	return d.host.Identify(ctx)
}

// Press presses the button with PRESS (CDP/1 CMD 0x02) and returns the
// code. On an audio code reader it fetches what was said with AUDIO
// (CMD 0x04) into Code.Audio and, unless Options.NoVoiceCheck is set,
// checks the spoken digits with Options.Voice (voice.DefaultDecoder when
// nil; Decoder.Check): every repetition must say the reported code.
//
// Errors: those of Identify; a *frame.StatusError unwrapping to
// device.ErrBusy or device.ErrNoCode, or with StatusBatteryLow; an error
// wrapping device.ErrProtocol when an audio reader's answer has no audio;
// an *AudioMismatchError (ErrAudioMismatch) when the speech says other
// digits or cannot be decoded.
func (d *CodeDevice) Press(ctx context.Context) (*device.Code, error) {
	c, err := d.host.Press(ctx)
	if err != nil {
		return nil, err
	}
	if d.id.Kind != device.KindAudioCodeReader {
		return c, nil
	}
	if c.Audio == nil {
		return nil, fmt.Errorf("serial: %s: PRESS answer of an audio reader carries no audio: %w", d.path, device.ErrProtocol)
	}
	if d.voice == nil {
		return c, nil
	}
	res, err := d.voice.Check(ctx, c.Audio, c.Digits)
	switch {
	case err == nil:
		return c, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("serial: %s: decode audio: %w", d.path, ctx.Err())
	case errors.Is(err, voice.ErrMismatch):
		return nil, &AudioMismatchError{Path: d.path, Returned: c.Digits, Spoken: strings.Join(res.Utterances, " "), Code: c}
	}
	return nil, &AudioMismatchError{Path: d.path, Returned: c.Digits, Code: c, Err: err}
}

// Close stops the CDP/1 host (a command in progress fails with
// device.ErrClosed) and closes the port. It returns the port's close
// error; closing again returns the same.
func (d *CodeDevice) Close() error {
	d.once.Do(func() {
		d.host.Close()
		if err := d.port.sp.Close(); err != nil {
			d.closeErr = fmt.Errorf("serial: close %s: %w", d.path, err)
		}
	})
	return d.closeErr
}

// SaveWAV writes a recording (Code.Audio of an audio code reader) to w as
// a WAV file, 16-bit mono PCM. It returns voice.WriteWAV's errors.
func SaveWAV(w io.Writer, a *device.Audio) error {
	return voice.WriteWAV(w, a)
}

// Port is a serial port set up for CDP/1 (115200 8N1, no flow control, no
// modem-line ioctls), as the byte stream a frame.Host reads: its
// SetReadTimeout bounds each read, and its errors say when the port is
// gone (device.ErrRemoved: the cable pulled, the pty hung up). Open uses
// one; hosts that speak CDP/1 themselves, such as the raw frame checks of
// the conformance suite, open one with OpenPort.
type Port struct {
	sp   serial.Port
	path string
}

// OpenPort opens the serial port at path for CDP/1, without sending
// anything. Errors: as Open's for opening the port (device.ErrNotFound,
// device.ErrBusy, fs.ErrPermission).
func OpenPort(path string) (*Port, error) {
	sp, err := serial.Open(path, &serial.Mode{
		BaudRate: BaudRate,
		DataBits: 8,
		Parity:   serial.NoParity,
		StopBits: serial.OneStopBit,
		// InitialStatusBits stays nil: no modem-line ioctls.
	})
	if err != nil {
		return nil, openErr(path, err)
	}
	return &Port{sp: sp, path: path}, nil
}

// Read reads from the port; an error wrapping device.ErrRemoved says the
// port is gone.
func (p *Port) Read(b []byte) (int, error) {
	n, err := p.sp.Read(b)
	return n, ioErr(p.path, "read", err)
}

// Write writes to the port; an error wrapping device.ErrRemoved says the
// port is gone.
func (p *Port) Write(b []byte) (int, error) {
	n, err := p.sp.Write(b)
	return n, ioErr(p.path, "write", err)
}

// SetReadTimeout bounds each Read.
func (p *Port) SetReadTimeout(d time.Duration) error {
	return ioErr(p.path, "set read timeout on", p.sp.SetReadTimeout(d))
}

// Close closes the port.
func (p *Port) Close() error {
	if err := p.sp.Close(); err != nil {
		return fmt.Errorf("serial: close %s: %w", p.path, err)
	}
	return nil
}

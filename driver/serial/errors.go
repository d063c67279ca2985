package serial

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"go.bug.st/serial"

	"github.com/authbench/authbench/device"
)

// ErrAudioMismatch is wrapped by *AudioMismatchError: what an audio code
// reader said is not the code it reported.
var ErrAudioMismatch = errors.New("serial: spoken digits differ from the code")

// AudioMismatchError reports an audio code reader whose speech does not
// say the code its PRESS answer carries, or could not be understood. Code
// holds what PRESS returned, with the audio, so that a bench can keep the
// recording (SaveWAV).
//
// It unwraps to ErrAudioMismatch and, when the speech could not be
// decoded, to the decoder's error (voice.ErrNoSpeech or
// voice.ErrUnrecognised, in a *voice.DecodeError).
type AudioMismatchError struct {
	Path     string       // the port
	Returned string       // the digits of the PRESS answer
	Spoken   string       // the digits heard, one group per repetition, space separated; "" when not decoded
	Code     *device.Code // the PRESS answer, Code.Audio filled
	Err      error        // the decoder's error, or nil
}

func (e *AudioMismatchError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("serial: %s: audio of code %q not understood: %v", e.Path, e.Returned, e.Err)
	}
	return fmt.Sprintf("serial: %s: device reported code %q but said %q", e.Path, e.Returned, e.Spoken)
}

// Unwrap returns ErrAudioMismatch and the decoder's error, if any.
func (e *AudioMismatchError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrAudioMismatch, e.Err}
	}
	return []error{ErrAudioMismatch}
}

// NoDeviceError reports a port on which no CDP/1 device answered IDENTIFY
// (nothing connected, another kind of device, wrong wiring). It unwraps to
// device.ErrNotFound and to the cause: an error wrapping device.ErrTimeout
// when nothing answered, device.ErrProtocol when the answer made no sense.
type NoDeviceError struct {
	Path string
	Err  error
}

func (e *NoDeviceError) Error() string {
	return fmt.Sprintf("serial: no CDP/1 device answered on %s: %v", e.Path, e.Err)
}

// Unwrap returns device.ErrNotFound and the cause.
func (e *NoDeviceError) Unwrap() []error { return []error{device.ErrNotFound, e.Err} }

// openErr turns an error of serial.Open into the driver's: a missing port
// wraps device.ErrNotFound, a busy one device.ErrBusy, one we may not open
// fs.ErrPermission (all of them also keep the original error).
func openErr(path string, err error) error {
	var pe *serial.PortError
	if errors.As(err, &pe) {
		switch pe.Code() {
		case serial.PortNotFound, serial.InvalidSerialPort:
			return fmt.Errorf("serial: open %s: %w (%w)", path, device.ErrNotFound, err)
		case serial.PortBusy:
			return fmt.Errorf("serial: open %s: %w (%w)", path, device.ErrBusy, err)
		case serial.PermissionDenied:
			return fmt.Errorf("serial: open %s: %w (%w)", path, fs.ErrPermission, err)
		}
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENOTTY) {
		return fmt.Errorf("serial: open %s: %w (%w)", path, device.ErrNotFound, err)
	}
	return fmt.Errorf("serial: open %s: %w", path, err)
}

// ioErr turns an error of a read or write on an open port into one that
// wraps device.ErrRemoved when the port is gone: closed under the reader
// (*serial.PortError PortClosed, a hung-up pty), or its device unplugged
// (EIO, ENXIO, ENODEV, EBADF).
func ioErr(path, op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *serial.PortError
	if errors.As(err, &pe) && pe.Code() == serial.PortClosed ||
		errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENXIO) ||
		errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.EBADF) ||
		errors.Is(err, fs.ErrClosed) {
		return fmt.Errorf("serial: %s %s: %w (%w)", op, path, device.ErrRemoved, err)
	}
	return fmt.Errorf("serial: %s %s: %w", op, path, err)
}

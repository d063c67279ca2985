package frame

import (
	"fmt"

	"github.com/authbench/authbench/device"
)

// Status is the first payload byte of every response (CDP/1 §5,
// docs/cdp1.md).
type Status byte

// Statuses.
const (
	StatusOK             Status = 0x00 // ok
	StatusUnknownCommand Status = 0x01 // unknown command
	StatusBadRequest     Status = 0x02 // bad length or parameter
	StatusNotFactory     Status = 0x03 // not in factory mode
	StatusBusy           Status = 0x04 // busy
	StatusBatteryLow     Status = 0x05 // battery low
	StatusNoCode         Status = 0x06 // no code to read
	StatusSealed         Status = 0x07 // sealed
)

var statusText = [...]string{
	StatusOK:             "ok",
	StatusUnknownCommand: "unknown command",
	StatusBadRequest:     "bad length or parameter",
	StatusNotFactory:     "not in factory mode",
	StatusBusy:           "busy",
	StatusBatteryLow:     "battery low",
	StatusNoCode:         "no code to read",
	StatusSealed:         "sealed",
}

// String returns the status's meaning ("not in factory mode"), or
// "unknown status" for a byte CDP/1 does not define.
func (s Status) String() string {
	if int(s) < len(statusText) {
		return statusText[s]
	}
	return "unknown status"
}

// Err returns nil for StatusOK and a *StatusError naming cmd otherwise.
func (s Status) Err(cmd byte) error {
	if s == StatusOK {
		return nil
	}
	return &StatusError{Cmd: cmd &^ ResponseBit, Status: s}
}

// StatusError is a response whose status byte is not StatusOK.
//
// It unwraps to a device sentinel where one fits: StatusUnknownCommand to
// device.ErrNotSupported, StatusBusy to device.ErrBusy and StatusNoCode to
// device.ErrNoCode. The other statuses unwrap to nothing; compare Status.
type StatusError struct {
	Cmd    byte // the command answered (without the response bit)
	Status Status
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("frame: %s: device status 0x%02X %s", CmdName(e.Cmd), byte(e.Status), e.Status)
}

// Unwrap returns the device sentinel that matches the status, or nil.
func (e *StatusError) Unwrap() error {
	switch e.Status {
	case StatusUnknownCommand:
		return device.ErrNotSupported
	case StatusBusy:
		return device.ErrBusy
	case StatusNoCode:
		return device.ErrNoCode
	}
	return nil
}

// PayloadError reports a payload that does not follow CDP/1 for its
// command: wrong length, a value out of range, a malformed TLV. Decoders
// return it for bytes from the wire, encoders for values that cannot be
// sent. It unwraps to device.ErrProtocol.
type PayloadError struct {
	Cmd    byte   // the command, with ResponseBit set for a response payload
	Reason string // what is wrong, in a few words
}

func (e *PayloadError) Error() string {
	kind := "request"
	if e.Cmd&ResponseBit != 0 {
		kind = "response"
	}
	return fmt.Sprintf("frame: bad %s %s: %s", CmdName(e.Cmd&^ResponseBit), kind, e.Reason)
}

// Unwrap returns device.ErrProtocol.
func (e *PayloadError) Unwrap() error { return device.ErrProtocol }

func payloadErr(cmd byte, format string, args ...any) error {
	return &PayloadError{Cmd: cmd, Reason: fmt.Sprintf(format, args...)}
}

package u2f

import (
	"errors"
	"fmt"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
)

// Status words of U2F responses (Raw Message Formats §3.3, ISO 7816-4).
const (
	SWNoError                = apdu.SWOK                     // 9000
	SWConditionsNotSatisfied = apdu.SWConditionsNotSatisfied // 6985: test of user presence required
	SWWrongData              = apdu.SWWrongData              // 6A80: bad key handle
	SWWrongLength            = apdu.SWWrongLength            // 6700: request length wrong
	SWINSNotSupported        = apdu.SWINSNotSupported        // 6D00
	SWCLANotSupported        = apdu.SWCLANotSupported        // 6E00
	SWUnknown                = apdu.SWUnknown                // 6F00: no precise diagnosis
)

// Sentinel errors. Errors returned by this package wrap them; callers
// branch with errors.Is.
var (
	// ErrPresenceRequired is status 6985: the authenticator wants a touch
	// before it answers (§4.2, §5.2). For a check-only authenticate
	// (ControlCheckOnly) it means the key handle is known (§5.1).
	ErrPresenceRequired = errors.New("u2f: test of user presence required: touch the authenticator")
	// ErrBadKeyHandle is status 6A80: the key handle was not made by this
	// authenticator, or not for this application (§5.3).
	ErrBadKeyHandle = errors.New("u2f: key handle not recognized by this authenticator")
	// ErrWrongLength is status 6700: the request had the wrong length.
	ErrWrongLength = errors.New("u2f: wrong request length")
	// ErrBadSignature is returned by the Verify methods when a signature
	// does not verify.
	ErrBadSignature = errors.New("u2f: signature does not verify")
)

// StatusError is a status word other than 9000 in a U2F response.
//
// It unwraps to ErrPresenceRequired (6985), ErrBadKeyHandle (6A80),
// ErrWrongLength and device.ErrProtocol (6700), device.ErrNotSupported
// (6D00, 6E00), and to nothing for other status words.
type StatusError struct {
	SW uint16
}

func (e *StatusError) Error() string {
	switch e.SW {
	case SWConditionsNotSatisfied:
		return "u2f: status 6985: test of user presence required: touch the authenticator"
	case SWWrongData:
		return "u2f: status 6A80: key handle not recognized (wrong data)"
	case SWWrongLength:
		return "u2f: status 6700: wrong request length"
	case SWINSNotSupported:
		return "u2f: status 6D00: instruction not supported"
	case SWCLANotSupported:
		return "u2f: status 6E00: class not supported"
	}
	if s := apdu.StatusText(e.SW); s != "" {
		return fmt.Sprintf("u2f: status %04X: %s", e.SW, s)
	}
	return fmt.Sprintf("u2f: status %04X", e.SW)
}

// Unwrap returns the sentinels that match the status word.
func (e *StatusError) Unwrap() []error {
	switch e.SW {
	case SWConditionsNotSatisfied:
		return []error{ErrPresenceRequired}
	case SWWrongData:
		return []error{ErrBadKeyHandle}
	case SWWrongLength:
		return []error{ErrWrongLength, device.ErrProtocol}
	case SWINSNotSupported, SWCLANotSupported:
		return []error{device.ErrNotSupported}
	}
	return nil
}

// FormatError reports bytes that are not a well-formed U2F message, or a
// message that cannot be encoded. It unwraps to device.ErrProtocol.
type FormatError struct {
	Message string // which message: "register request", ...
	Reason  string // what is wrong
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("u2f: malformed %s: %s", e.Message, e.Reason)
}

// Unwrap returns device.ErrProtocol.
func (e *FormatError) Unwrap() error { return device.ErrProtocol }

func formatErr(msg, format string, args ...any) error {
	return &FormatError{Message: msg, Reason: fmt.Sprintf(format, args...)}
}

package pcsc

import (
	"context"
	"errors"
	"fmt"

	"github.com/authbench/authbench/device"
)

// ErrNoService means that the PC/SC resource manager (pcscd) is not running
// or went away (SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED). Start pcscd
// (Debian: `pcscd -f`, or its systemd socket) and open a new Context.
var ErrNoService = errors.New("pcsc: PC/SC service (pcscd) not available")

// Code is a PC/SC return code (the SCARD_E_*, SCARD_W_* and SCARD_F_* values
// of pcsc-lite's pcsclite.h, which are the Windows winscard values). It is
// declared here, not taken from the scard package, so that errors can be
// inspected in a build without cgo.
type Code uint32

// PC/SC return codes that the driver tells apart (PC/SC Workgroup
// specification part 5, pcsc-lite pcsclite.h).
const (
	CodeInternalError      Code = 0x80100001 // SCARD_F_INTERNAL_ERROR
	CodeCancelled          Code = 0x80100002 // SCARD_E_CANCELLED
	CodeInvalidHandle      Code = 0x80100003 // SCARD_E_INVALID_HANDLE
	CodeInvalidParameter   Code = 0x80100004 // SCARD_E_INVALID_PARAMETER
	CodeNoMemory           Code = 0x80100006 // SCARD_E_NO_MEMORY
	CodeInsufficientBuffer Code = 0x80100008 // SCARD_E_INSUFFICIENT_BUFFER
	CodeUnknownReader      Code = 0x80100009 // SCARD_E_UNKNOWN_READER
	CodeTimeout            Code = 0x8010000A // SCARD_E_TIMEOUT
	CodeSharingViolation   Code = 0x8010000B // SCARD_E_SHARING_VIOLATION
	CodeNoSmartcard        Code = 0x8010000C // SCARD_E_NO_SMARTCARD
	CodeProtoMismatch      Code = 0x8010000F // SCARD_E_PROTO_MISMATCH
	CodeNotReady           Code = 0x80100010 // SCARD_E_NOT_READY
	CodeInvalidValue       Code = 0x80100011 // SCARD_E_INVALID_VALUE
	CodeSystemCancelled    Code = 0x80100012 // SCARD_E_SYSTEM_CANCELLED
	CodeCommError          Code = 0x80100013 // SCARD_F_COMM_ERROR
	CodeUnknownError       Code = 0x80100014 // SCARD_F_UNKNOWN_ERROR
	CodeNotTransacted      Code = 0x80100016 // SCARD_E_NOT_TRANSACTED
	CodeReaderUnavailable  Code = 0x80100017 // SCARD_E_READER_UNAVAILABLE
	CodeShutdown           Code = 0x80100018 // SCARD_P_SHUTDOWN
	CodeCardUnsupported    Code = 0x8010001C // SCARD_E_CARD_UNSUPPORTED
	CodeNoService          Code = 0x8010001D // SCARD_E_NO_SERVICE
	CodeServiceStopped     Code = 0x8010001E // SCARD_E_SERVICE_STOPPED
	CodeUnsupportedFeature Code = 0x8010001F // SCARD_E_UNSUPPORTED_FEATURE (also SCARD_E_UNEXPECTED)
	CodeNoReaders          Code = 0x8010002E // SCARD_E_NO_READERS_AVAILABLE
	CodeCommDataLost       Code = 0x8010002F // SCARD_E_COMM_DATA_LOST
	CodeServerTooBusy      Code = 0x80100031 // SCARD_E_SERVER_TOO_BUSY
	CodeUnsupportedCard    Code = 0x80100065 // SCARD_W_UNSUPPORTED_CARD
	CodeUnresponsiveCard   Code = 0x80100066 // SCARD_W_UNRESPONSIVE_CARD
	CodeUnpoweredCard      Code = 0x80100067 // SCARD_W_UNPOWERED_CARD
	CodeResetCard          Code = 0x80100068 // SCARD_W_RESET_CARD
	CodeRemovedCard        Code = 0x80100069 // SCARD_W_REMOVED_CARD
)

var codeNames = map[Code]string{
	CodeInternalError:      "SCARD_F_INTERNAL_ERROR",
	CodeCancelled:          "SCARD_E_CANCELLED",
	CodeInvalidHandle:      "SCARD_E_INVALID_HANDLE",
	CodeInvalidParameter:   "SCARD_E_INVALID_PARAMETER",
	CodeNoMemory:           "SCARD_E_NO_MEMORY",
	CodeInsufficientBuffer: "SCARD_E_INSUFFICIENT_BUFFER",
	CodeUnknownReader:      "SCARD_E_UNKNOWN_READER",
	CodeTimeout:            "SCARD_E_TIMEOUT",
	CodeSharingViolation:   "SCARD_E_SHARING_VIOLATION",
	CodeNoSmartcard:        "SCARD_E_NO_SMARTCARD",
	CodeProtoMismatch:      "SCARD_E_PROTO_MISMATCH",
	CodeNotReady:           "SCARD_E_NOT_READY",
	CodeInvalidValue:       "SCARD_E_INVALID_VALUE",
	CodeSystemCancelled:    "SCARD_E_SYSTEM_CANCELLED",
	CodeCommError:          "SCARD_F_COMM_ERROR",
	CodeUnknownError:       "SCARD_F_UNKNOWN_ERROR",
	CodeNotTransacted:      "SCARD_E_NOT_TRANSACTED",
	CodeReaderUnavailable:  "SCARD_E_READER_UNAVAILABLE",
	CodeShutdown:           "SCARD_P_SHUTDOWN",
	CodeCardUnsupported:    "SCARD_E_CARD_UNSUPPORTED",
	CodeNoService:          "SCARD_E_NO_SERVICE",
	CodeServiceStopped:     "SCARD_E_SERVICE_STOPPED",
	CodeUnsupportedFeature: "SCARD_E_UNSUPPORTED_FEATURE",
	CodeNoReaders:          "SCARD_E_NO_READERS_AVAILABLE",
	CodeCommDataLost:       "SCARD_E_COMM_DATA_LOST",
	CodeServerTooBusy:      "SCARD_E_SERVER_TOO_BUSY",
	CodeUnsupportedCard:    "SCARD_W_UNSUPPORTED_CARD",
	CodeUnresponsiveCard:   "SCARD_W_UNRESPONSIVE_CARD",
	CodeUnpoweredCard:      "SCARD_W_UNPOWERED_CARD",
	CodeResetCard:          "SCARD_W_RESET_CARD",
	CodeRemovedCard:        "SCARD_W_REMOVED_CARD",
}

var codeText = map[Code]string{
	CodeNoSmartcard:       "no card in the reader",
	CodeRemovedCard:       "card removed",
	CodeResetCard:         "card reset by another program",
	CodeUnpoweredCard:     "card not powered",
	CodeUnresponsiveCard:  "card does not answer",
	CodeUnknownReader:     "no such reader",
	CodeReaderUnavailable: "reader unavailable",
	CodeNoReaders:         "no readers",
	CodeNoService:         "pcscd is not running",
	CodeServiceStopped:    "pcscd stopped",
	CodeSharingViolation:  "card in use by another program",
	CodeTimeout:           "timed out",
	CodeNotTransacted:     "exchange with the card failed",
	CodeCommError:         "communication error",
	CodeCommDataLost:      "communication data lost",
	CodeCancelled:         "cancelled",
}

// String returns the PC/SC name of the code ("SCARD_W_REMOVED_CARD"), or its
// value in hex when the name is not known here.
func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("SCARD 0x%08X", uint32(c))
}

// Error is a PC/SC call that failed: which operation, on which reader, with
// which return code.
//
// It unwraps to the sentinel the code stands for:
//   - card gone: SCARD_W_REMOVED_CARD, SCARD_E_NO_SMARTCARD,
//     SCARD_W_RESET_CARD, SCARD_W_UNPOWERED_CARD → device.ErrRemoved (but
//     SCARD_E_NO_SMARTCARD when connecting → device.ErrNotFound: there was
//     no card to remove);
//   - reader gone: SCARD_E_UNKNOWN_READER, SCARD_E_READER_UNAVAILABLE,
//     SCARD_E_NO_READERS_AVAILABLE → device.ErrNotFound;
//   - pcscd gone: SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED → ErrNoService;
//   - SCARD_E_SHARING_VIOLATION → device.ErrBusy;
//   - SCARD_E_TIMEOUT, SCARD_W_UNRESPONSIVE_CARD → device.ErrTimeout;
//   - SCARD_E_NOT_TRANSACTED, SCARD_F_COMM_ERROR, SCARD_E_COMM_DATA_LOST,
//     SCARD_E_PROTO_MISMATCH → device.ErrProtocol (the exchange failed
//     without PC/SC saying why; OpenChip and Chip look again and report
//     ErrRemoved when the card turns out to be gone);
//   - any other code → nothing.
//
// An answer of no bytes at all to SCardTransmit, which no card gives (a
// response APDU holds at least its status word) and which vpcd returns when
// its card leaves in the middle of a command, is reported as Code
// CodeRemovedCard with a Detail saying so.
type Error struct {
	Op     string // the PC/SC operation: "connect", "transmit", "begin transaction", ...
	Reader string // the reader, "" for operations on the whole context
	Code   Code
	// Detail, when set, says what the driver saw that made it report Code
	// when PC/SC itself returned no error code.
	Detail string
}

func (e *Error) Error() string {
	where := ""
	if e.Reader != "" {
		where = fmt.Sprintf(" on %q", e.Reader)
	}
	if e.Detail != "" {
		return fmt.Sprintf("pcsc: %s%s: %s (%s)", e.Op, where, codeText[e.Code], e.Detail)
	}
	if t, ok := codeText[e.Code]; ok {
		return fmt.Sprintf("pcsc: %s%s: %s (%s)", e.Op, where, t, e.Code)
	}
	return fmt.Sprintf("pcsc: %s%s: %s", e.Op, where, e.Code)
}

// Unwrap returns the sentinel for the code (see Error), or nil.
func (e *Error) Unwrap() error {
	switch e.Code {
	case CodeNoSmartcard:
		if e.Op == opConnect {
			return device.ErrNotFound
		}
		return device.ErrRemoved
	case CodeRemovedCard, CodeResetCard, CodeUnpoweredCard:
		return device.ErrRemoved
	case CodeUnknownReader, CodeReaderUnavailable, CodeNoReaders:
		return device.ErrNotFound
	case CodeNoService, CodeServiceStopped:
		return ErrNoService
	case CodeSharingViolation:
		return device.ErrBusy
	case CodeTimeout, CodeUnresponsiveCard:
		return device.ErrTimeout
	case CodeNotTransacted, CodeCommError, CodeCommDataLost, CodeProtoMismatch:
		return device.ErrProtocol
	}
	return nil
}

// Operation names used in Error.Op.
const (
	opEstablish  = "establish context"
	opList       = "list readers"
	opStatus     = "get status change"
	opConnect    = "connect"
	opCardStatus = "card status"
	opBegin      = "begin transaction"
	opTransmit   = "transmit"
	opDisconnect = "disconnect"
	opRelease    = "release context"
)

// wrapCode turns an error from the seam into an *Error when it carries a
// PC/SC code, and leaves it alone otherwise.
func wrapCode(op, reader string, err error) error {
	if err == nil {
		return nil
	}
	var c Code
	if errors.As(err, &c) {
		return &Error{Op: op, Reader: reader, Code: c}
	}
	return fmt.Errorf("pcsc: %s: %w", op, err)
}

// asError is wrapCode for callers that want the *Error itself; it returns
// nil for an error without a PC/SC code.
func asError(op, reader string, err error) *Error {
	var c Code
	if errors.As(err, &c) {
		return &Error{Op: op, Reader: reader, Code: c}
	}
	return nil
}

// Error makes a bare Code usable as an error by the seam.
func (c Code) Error() string { return c.String() }

// ctxError wraps the end of a context. A deadline also wraps
// device.ErrTimeout, so callers that only know the device sentinels see a
// timeout.
func ctxError(op, reader string, ctx context.Context) error {
	err := context.Cause(ctx)
	if err == nil {
		err = ctx.Err()
	}
	where := ""
	if reader != "" {
		where = fmt.Sprintf(" on %q", reader)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("pcsc: %s%s: %w (%w)", op, where, err, device.ErrTimeout)
	}
	return fmt.Errorf("pcsc: %s%s: %w", op, where, err)
}

// removed reports whether err says that the card is gone.
func removed(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case CodeNoSmartcard, CodeRemovedCard, CodeUnpoweredCard:
		return true
	}
	return false
}

// fatal reports whether err leaves the card handle useless: the card, the
// reader or pcscd is gone.
func fatal(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case CodeNoSmartcard, CodeRemovedCard, CodeUnpoweredCard,
		CodeUnknownReader, CodeReaderUnavailable, CodeNoReaders,
		CodeNoService, CodeServiceStopped, CodeInvalidHandle:
		return true
	}
	return false
}

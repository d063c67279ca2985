package apdu

import (
	"fmt"

	"github.com/authbench/authbench/device"
)

// Status words (ISO/IEC 7816-4 §5.6, and CTAP 2.1 §11.3 for 9100). For the
// 61xx and 6Cxx families the constant holds SW1 with SW2 = 00; compare with
// Response.SW1 or SW&0xFF00.
const (
	SWOK                     uint16 = 0x9000 // normal processing
	SWStatusUpdate           uint16 = 0x9100 // CTAP over NFC: still working, data = one keepalive status byte (CTAP 2.1 §11.3)
	SWBytesRemaining         uint16 = 0x6100 // 61xx: xx more response bytes (00 = 256 or more), fetch with GET RESPONSE
	SWWrongLe                uint16 = 0x6C00 // 6Cxx: wrong Le, resend with Le = xx
	SWWrongLength            uint16 = 0x6700 // wrong length (Lc or Le)
	SWLastCommandExpected    uint16 = 0x6883 // the last command of a chain was expected
	SWChainingNotSupported   uint16 = 0x6884 // command chaining not supported
	SWSecurityNotSatisfied   uint16 = 0x6982 // security status not satisfied
	SWConditionsNotSatisfied uint16 = 0x6985 // conditions of use not satisfied (U2F: test of user presence required)
	SWWrongData              uint16 = 0x6A80 // incorrect parameters in the data field (U2F: bad key handle)
	SWFuncNotSupported       uint16 = 0x6A81 // function not supported
	SWFileNotFound           uint16 = 0x6A82 // file or application not found
	SWIncorrectP1P2          uint16 = 0x6A86 // incorrect parameters P1-P2
	SWWrongP1P2              uint16 = 0x6B00 // wrong parameters P1-P2
	SWINSNotSupported        uint16 = 0x6D00 // instruction code not supported or invalid
	SWCLANotSupported        uint16 = 0x6E00 // class not supported
	SWUnknown                uint16 = 0x6F00 // no precise diagnosis
)

var statusText = map[uint16]string{
	SWOK:                     "success",
	SWStatusUpdate:           "status update, response not ready",
	SWWrongLength:            "wrong length",
	SWLastCommandExpected:    "last command of the chain expected",
	SWChainingNotSupported:   "command chaining not supported",
	SWSecurityNotSatisfied:   "security status not satisfied",
	SWConditionsNotSatisfied: "conditions of use not satisfied",
	SWWrongData:              "incorrect data",
	SWFuncNotSupported:       "function not supported",
	SWFileNotFound:           "file or application not found",
	SWIncorrectP1P2:          "incorrect P1 P2",
	SWWrongP1P2:              "wrong P1 P2",
	SWINSNotSupported:        "instruction not supported",
	SWCLANotSupported:        "class not supported",
	SWUnknown:                "no precise diagnosis",

	// Further interindustry status words (ISO/IEC 7816-4 §5.6, table 6),
	// for tools that show what a card said.
	0x6200: "warning, non-volatile memory unchanged",
	0x6281: "warning: part of the returned data may be corrupted",
	0x6282: "warning: end of file or record reached before Ne bytes",
	0x6283: "warning: selected file deactivated",
	0x6300: "warning, non-volatile memory changed: verification failed",
	0x6400: "execution error, non-volatile memory unchanged",
	0x6500: "execution error, non-volatile memory changed",
	0x6581: "memory failure",
	0x6800: "function in CLA not supported",
	0x6881: "logical channel not supported",
	0x6882: "secure messaging not supported",
	0x6900: "command not allowed",
	0x6981: "command incompatible with file structure",
	0x6983: "authentication method blocked",
	0x6984: "reference data not usable",
	0x6986: "command not allowed (no current EF)",
	0x6987: "expected secure messaging data objects missing",
	0x6988: "incorrect secure messaging data objects",
	0x6A00: "wrong parameters P1-P2",
	0x6A84: "not enough memory space in the file",
	0x6A88: "referenced data or reference data not found",
}

// StatusText returns a short English description of a status word, or ""
// when it is not one of the status words this package knows.
func StatusText(sw uint16) string {
	if s, ok := statusText[sw]; ok {
		return s
	}
	switch sw & 0xFF00 {
	case SWBytesRemaining:
		if sw&0xFF == 0 {
			return "256 or more response bytes remain"
		}
		return fmt.Sprintf("%d response bytes remain", sw&0xFF)
	case SWWrongLe:
		return fmt.Sprintf("wrong Le, %d bytes available", sw&0xFF)
	}
	if sw&0xFFF0 == 0x63C0 {
		return fmt.Sprintf("warning: verification failed, %d tries left", sw&0x0F)
	}
	return ""
}

// StatusError is a status word other than 9000 that a card answered.
//
// It unwraps to a device sentinel where one fits: 6A82 to device.ErrNotFound;
// 6A81, 6D00, 6E00 and 6884 to device.ErrNotSupported; 6700, 6883, 6A86,
// 6B00 and 6Cxx to device.ErrProtocol. Status words whose meaning depends on
// the application (6982, 6985, 6A80, 6F00, ...) unwrap to nothing; the
// application package (u2f, for instance) interprets them.
type StatusError struct {
	SW uint16
}

func (e *StatusError) Error() string {
	if s := StatusText(e.SW); s != "" {
		return fmt.Sprintf("apdu: card answered %04X (%s)", e.SW, s)
	}
	return fmt.Sprintf("apdu: card answered %04X", e.SW)
}

// Unwrap returns the device sentinel that matches the status word, or nil.
func (e *StatusError) Unwrap() error {
	switch e.SW {
	case SWFileNotFound:
		return device.ErrNotFound
	case SWFuncNotSupported, SWINSNotSupported, SWCLANotSupported, SWChainingNotSupported:
		return device.ErrNotSupported
	case SWWrongLength, SWLastCommandExpected, SWIncorrectP1P2, SWWrongP1P2:
		return device.ErrProtocol
	}
	if e.SW&0xFF00 == SWWrongLe {
		return device.ErrProtocol
	}
	return nil
}

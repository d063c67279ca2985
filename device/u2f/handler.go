package u2f

import (
	"context"
	"errors"

	"github.com/authbench/authbench/device/apdu"
)

// Authenticator is the device-side logic of a U2F authenticator, served by
// Handler. Its version is always "U2F_V2".
//
// Implementations return ErrPresenceRequired (status 6985) when they need a
// touch first, or block until the touch while reporting
// ctap2.Keepalive(ctx, ctap2.StatusUPNeeded); ErrBadKeyHandle (6A80) for a
// key handle they did not make for this application; and a *StatusError to
// answer a status word of their choice. For ControlCheckOnly, Authenticate
// answers ErrPresenceRequired for a known key handle (§5.1) and never
// signs. Any other error is answered with 6F00.
type Authenticator interface {
	Register(ctx context.Context, req *RegisterRequest) (*RegisterResponse, error)
	Authenticate(ctx context.Context, req *AuthenticateRequest) (*AuthenticateResponse, error)
}

// Handler serves U2F request APDUs for an Authenticator: the device side of
// the protocol, used by the ctaphid and apdu transports.
type Handler struct {
	a Authenticator
}

// NewHandler returns a Handler that serves a.
func NewHandler(a Authenticator) *Handler {
	return &Handler{a: a}
}

// ServeU2F answers one U2F request APDU (short or extended encoding) with
// response data followed by SW1 SW2. It never panics on malformed input:
// an unparsable APDU or wrong data length gets 6700, a CLA other than 00
// gets 6E00, an unknown instruction 6D00, an unknown control byte 6A80.
// Errors of the Authenticator are mapped as described there.
func (h *Handler) ServeU2F(ctx context.Context, req []byte) []byte {
	cmd, err := apdu.ParseCommand(req)
	if err != nil {
		return sw(SWWrongLength)
	}
	if cmd.CLA != 0x00 {
		return sw(SWCLANotSupported)
	}
	switch cmd.INS {
	case InsVersion:
		if len(cmd.Data) != 0 {
			return sw(SWWrongLength)
		}
		return (&apdu.Response{Data: []byte(Version), SW: SWNoError}).Encode()
	case InsRegister:
		// P1 is ignored: hosts send 00 or 03 here.
		r, err := ParseRegisterRequest(cmd.Data)
		if err != nil {
			return sw(SWWrongLength)
		}
		resp, err := h.a.Register(ctx, r)
		if err != nil {
			return sw(errorSW(err))
		}
		if resp == nil {
			return sw(SWUnknown)
		}
		data, err := resp.Encode()
		if err != nil {
			return sw(SWUnknown)
		}
		return (&apdu.Response{Data: data, SW: SWNoError}).Encode()
	case InsAuthenticate:
		if !validControl(cmd.P1) {
			return sw(SWWrongData)
		}
		r, err := ParseAuthenticateRequest(cmd.P1, cmd.Data)
		if err != nil {
			return sw(SWWrongLength)
		}
		resp, err := h.a.Authenticate(ctx, r)
		if err != nil {
			return sw(errorSW(err))
		}
		if r.Control == ControlCheckOnly {
			// A check-only request is never signed (§5.1); a success
			// means the key handle is known.
			return sw(SWConditionsNotSatisfied)
		}
		if resp == nil {
			return sw(SWUnknown)
		}
		data, err := resp.Encode()
		if err != nil {
			return sw(SWUnknown)
		}
		return (&apdu.Response{Data: data, SW: SWNoError}).Encode()
	}
	return sw(SWINSNotSupported)
}

func sw(s uint16) []byte { return []byte{byte(s >> 8), byte(s)} }

// errorSW maps an Authenticator error to a status word.
func errorSW(err error) uint16 {
	var se *StatusError
	switch {
	case errors.As(err, &se) && se.SW>>8 >= 0x62 && se.SW>>8 <= 0x6F && se.SW>>8 != 0x6C:
		return se.SW // warnings and errors only; 61xx, 6Cxx, 9000 and 91xx belong to the transport
	case errors.Is(err, ErrPresenceRequired):
		return SWConditionsNotSatisfied
	case errors.Is(err, ErrBadKeyHandle):
		return SWWrongData
	case errors.Is(err, ErrWrongLength):
		return SWWrongLength
	}
	return SWUnknown
}

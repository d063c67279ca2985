package ctap2

import (
	"context"
	"errors"
	"fmt"
)

// Authenticator is what a Handler serves: the three methods of device.Chip
// (declared here again because package device imports this one). A Client is
// an Authenticator too, so a Handler over a Client is a proxy.
type Authenticator interface {
	MakeCredential(ctx context.Context, req *MakeCredentialRequest) (*Attestation, error)
	GetAssertion(ctx context.Context, req *GetAssertionRequest) (*Assertion, error)
	Info(ctx context.Context) (*Info, error)
}

// NextAssertioner is an Authenticator that answers
// authenticatorGetNextAssertion (CTAP 2.1 §6.3).
type NextAssertioner interface {
	GetNextAssertion(ctx context.Context) (*Assertion, error)
}

// Resetter is an Authenticator that answers authenticatorReset (CTAP 2.1
// §6.6).
type Resetter interface {
	Reset(ctx context.Context) error
}

// Selector is an Authenticator that answers authenticatorSelection (CTAP 2.1
// §6.9).
type Selector interface {
	Selection(ctx context.Context) error
}

// HandlerOptions configures a Handler. The zero value is the default.
type HandlerOptions struct {
	// OnError, when not nil, is called with the command byte and the error of
	// every request the Handler answers with a non-zero status (cmd is 0 for
	// an empty request). It must not block. The Handler logs nothing itself.
	OnError func(cmd byte, err error)
}

// Handler is the device side of the authenticator API (CTAP 2.1 §6): it
// decodes requests strictly, calls an Authenticator and encodes its answers.
// Optional commands are served when the Authenticator implements
// NextAssertioner, Resetter or Selector. A Handler holds no state of its own
// and is safe for concurrent use as far as its Authenticator is.
type Handler struct {
	a    Authenticator
	opts HandlerOptions
}

// NewHandler returns a Handler that serves a.
func NewHandler(a Authenticator, opts HandlerOptions) *Handler {
	return &Handler{a: a, opts: opts}
}

// ServeCTAP2 answers one CTAP2 request: req is the command byte followed by
// the CBOR parameters, the answer is the status byte followed by CBOR (CTAP
// 2.1 §8). It always returns at least one byte.
//
// Statuses: an empty request is CTAP1_ERR_INVALID_LENGTH; an unknown command,
// or an optional one the Authenticator does not implement (authenticatorClientPIN
// is never served), CTAP1_ERR_INVALID_COMMAND; parameters that are not
// canonical CBOR CTAP2_ERR_INVALID_CBOR, of the wrong type
// CTAP2_ERR_CBOR_UNEXPECTED_TYPE, missing CTAP2_ERR_MISSING_PARAMETER;
// parameters on a command that takes none CTAP1_ERR_INVALID_LENGTH. An error
// from the Authenticator answers with the code of the *StatusError in its
// chain (see StatusCode); a context error, or any error once ctx is done,
// with CTAP2_ERR_KEEPALIVE_CANCEL; anything else, and an answer that does not
// validate, with CTAP1_ERR_OTHER.
func (h *Handler) ServeCTAP2(ctx context.Context, req []byte) []byte {
	if len(req) == 0 {
		return h.fail(ctx, 0, fmt.Errorf("%w: empty request", ErrInvalidLength))
	}
	cmd := req[0]
	body, err := h.serve(ctx, cmd, req[1:])
	if err != nil {
		return h.fail(ctx, cmd, err)
	}
	out := make([]byte, 1+len(body))
	out[0] = CodeOK
	copy(out[1:], body)
	return out
}

func (h *Handler) fail(ctx context.Context, cmd byte, err error) []byte {
	code := StatusCode(err)
	if code == CodeOther && ctx.Err() != nil {
		code = CodeKeepaliveCancel
	}
	if h.opts.OnError != nil {
		h.opts.OnError(cmd, err)
	}
	return []byte{code}
}

// errNoAnswer is returned when an Authenticator returns neither a value nor
// an error.
var errNoAnswer = errors.New("ctap2: authenticator returned nothing")

// badAnswer turns an answer that fails validation into CTAP1_ERR_OTHER; the
// status sentinels the validation wraps describe the answer, not the request,
// and must not reach the host.
func badAnswer(cmd byte, err error) error {
	return fmt.Errorf("%w: %s: the authenticator's answer is invalid: %v", ErrOther, CommandName(cmd), err)
}

func (h *Handler) serve(ctx context.Context, cmd byte, params []byte) ([]byte, error) {
	switch cmd {
	case CmdMakeCredential:
		r, err := DecodeMakeCredentialRequest(params)
		if err != nil {
			return nil, err
		}
		att, err := h.a.MakeCredential(ctx, r)
		if err != nil {
			return nil, err
		}
		if att == nil {
			return nil, errNoAnswer
		}
		b, err := EncodeAttestation(att)
		if err != nil {
			return nil, badAnswer(cmd, err)
		}
		return b, nil

	case CmdGetAssertion:
		r, err := DecodeGetAssertionRequest(params)
		if err != nil {
			return nil, err
		}
		return h.assertion(cmd, func() (*Assertion, error) { return h.a.GetAssertion(ctx, r) })

	case CmdGetInfo:
		if err := noParams(cmd, params); err != nil {
			return nil, err
		}
		info, err := h.a.Info(ctx)
		if err != nil {
			return nil, err
		}
		if info == nil {
			return nil, errNoAnswer
		}
		b, err := EncodeInfo(info)
		if err != nil {
			return nil, badAnswer(cmd, err)
		}
		return b, nil

	case CmdGetNextAssertion:
		n, ok := h.a.(NextAssertioner)
		if !ok {
			return nil, unsupported(cmd)
		}
		if err := noParams(cmd, params); err != nil {
			return nil, err
		}
		return h.assertion(cmd, func() (*Assertion, error) { return n.GetNextAssertion(ctx) })

	case CmdReset:
		r, ok := h.a.(Resetter)
		if !ok {
			return nil, unsupported(cmd)
		}
		if err := noParams(cmd, params); err != nil {
			return nil, err
		}
		return nil, r.Reset(ctx)

	case CmdSelection:
		s, ok := h.a.(Selector)
		if !ok {
			return nil, unsupported(cmd)
		}
		if err := noParams(cmd, params); err != nil {
			return nil, err
		}
		return nil, s.Selection(ctx)
	}
	return nil, unsupported(cmd)
}

func (h *Handler) assertion(cmd byte, call func() (*Assertion, error)) ([]byte, error) {
	as, err := call()
	if err != nil {
		return nil, err
	}
	if as == nil {
		return nil, errNoAnswer
	}
	b, err := EncodeAssertion(as)
	if err != nil {
		return nil, badAnswer(cmd, err)
	}
	return b, nil
}

func unsupported(cmd byte) error {
	return fmt.Errorf("%w: %s is not supported", ErrInvalidCommand, CommandName(cmd))
}

func noParams(cmd byte, params []byte) error {
	if len(params) != 0 {
		return fmt.Errorf("%w: %s takes no parameters, got %d bytes", ErrInvalidLength, CommandName(cmd), len(params))
	}
	return nil
}

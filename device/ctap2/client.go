package ctap2

import (
	"context"
	"fmt"
	"sync"
)

// Messenger carries one CTAP2 message to an authenticator and returns its
// answer (CTAP 2.1 §8: the command byte followed by CBOR parameters; the
// answer is the status byte followed by CBOR). *ctaphid.Conn (CTAPHID_CBOR)
// and *apdu.Client (NFCCTAP_MSG) implement it. Transports report keepalives
// through Keepalive while they wait.
type Messenger interface {
	CBOR(ctx context.Context, req []byte) ([]byte, error)
}

// Client is the host side of the authenticator API (CTAP 2.1 §6) over a
// Messenger. It implements device.Chip and the optional abilities
// device.NextAssertioner, device.Resetter and device.Selector. A Client is safe
// for concurrent use as far as its Messenger is.
//
// Every method validates its request before sending it, so a request the
// authenticator would refuse as malformed is not sent. Errors are:
//   - the validation error (wrapping ErrMissingParameter, ErrInvalidLength, ...);
//   - the Messenger's error, wrapped (context errors stay visible to errors.Is);
//   - a *StatusError when the authenticator answered with a non-zero status;
//   - an error wrapping ErrInvalidResponse when the answer cannot be decoded
//     or breaks CTAP 2.1 §6 (it does not wrap the decoder's status sentinels,
//     so a Handler that proxies a Client answers CTAP1_ERR_OTHER for it).
type Client struct {
	m Messenger

	mu   sync.Mutex
	info []byte // body of the last good authenticatorGetInfo answer
}

// NewClient returns a Client that talks through m.
func NewClient(m Messenger) *Client {
	return &Client{m: m}
}

// call sends one command and returns the body of a successful answer.
func (c *Client) call(ctx context.Context, cmd byte, params any) ([]byte, error) {
	req, err := EncodeRequest(cmd, params)
	if err != nil {
		return nil, err
	}
	resp, err := c.m.CBOR(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("ctap2: %s: %w", CommandName(cmd), err)
	}
	if len(resp) == 0 {
		return nil, fmt.Errorf("%w: %s: empty answer", ErrInvalidResponse, CommandName(cmd))
	}
	if resp[0] != CodeOK {
		return nil, &StatusError{Code: resp[0]}
	}
	return resp[1:], nil
}

func badResponse(cmd byte, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrInvalidResponse, CommandName(cmd), err)
}

// Info sends authenticatorGetInfo (CTAP 2.1 §6.4) and returns the answer. It
// asks the authenticator every time; CachedInfo asks once.
//
// Errors: see Client.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	body, err := c.call(ctx, CmdGetInfo, nil)
	if err != nil {
		return nil, err
	}
	info, err := DecodeInfo(body)
	if err != nil {
		return nil, badResponse(CmdGetInfo, err)
	}
	c.mu.Lock()
	c.info = append([]byte(nil), body...)
	c.mu.Unlock()
	return info, nil
}

// CachedInfo returns the last answer Info got, asking the authenticator only
// when there is none yet. Each call returns a fresh copy.
//
// Errors: those of Info.
func (c *Client) CachedInfo(ctx context.Context) (*Info, error) {
	c.mu.Lock()
	body := c.info
	c.mu.Unlock()
	if body == nil {
		return c.Info(ctx)
	}
	return DecodeInfo(body)
}

// MakeCredential sends authenticatorMakeCredential (CTAP 2.1 §6.1) and
// returns the attestation. The authenticator usually waits for a touch; the
// transport reports keepalives meanwhile.
//
// Errors: see Client; typical statuses are ErrCredentialExcluded,
// ErrUnsupportedAlgorithm, ErrOperationDenied, ErrUserActionTimeout,
// ErrKeyStoreFull and ErrKeepaliveCancel.
func (c *Client) MakeCredential(ctx context.Context, req *MakeCredentialRequest) (*Attestation, error) {
	if req == nil {
		return nil, req.Validate()
	}
	body, err := c.call(ctx, CmdMakeCredential, req)
	if err != nil {
		return nil, err
	}
	att, err := DecodeAttestation(body)
	if err != nil {
		return nil, badResponse(CmdMakeCredential, err)
	}
	return att, nil
}

// GetAssertion sends authenticatorGetAssertion (CTAP 2.1 §6.2) and returns the
// first assertion; Assertion.NumberOfCredentials tells how many
// GetNextAssertion calls may follow.
//
// Errors: see Client; typical statuses are ErrNoCredentials,
// ErrOperationDenied, ErrUserActionTimeout and ErrKeepaliveCancel.
func (c *Client) GetAssertion(ctx context.Context, req *GetAssertionRequest) (*Assertion, error) {
	if req == nil {
		return nil, req.Validate()
	}
	body, err := c.call(ctx, CmdGetAssertion, req)
	if err != nil {
		return nil, err
	}
	as, err := DecodeAssertion(body)
	if err != nil {
		return nil, badResponse(CmdGetAssertion, err)
	}
	return as, nil
}

// GetNextAssertion sends authenticatorGetNextAssertion (CTAP 2.1 §6.3) and
// returns the next assertion of the last GetAssertion.
//
// Errors: see Client; ErrNotAllowed when there is no assertion left or the
// authenticator's timer ran out.
func (c *Client) GetNextAssertion(ctx context.Context) (*Assertion, error) {
	body, err := c.call(ctx, CmdGetNextAssertion, nil)
	if err != nil {
		return nil, err
	}
	as, err := DecodeAssertion(body)
	if err != nil {
		return nil, badResponse(CmdGetNextAssertion, err)
	}
	return as, nil
}

// Reset sends authenticatorReset (CTAP 2.1 §6.6), which destroys every
// credential on the authenticator.
//
// Errors: see Client; ErrNotAllowed when the authenticator was powered up too
// long ago, ErrOperationDenied or ErrUserActionTimeout without a touch.
func (c *Client) Reset(ctx context.Context) error {
	return c.noBody(ctx, CmdReset)
}

// Selection sends authenticatorSelection (CTAP 2.1 §6.9): the authenticator
// waits for a touch and answers when it gets one.
//
// Errors: see Client; ErrOperationDenied, ErrUserActionTimeout or
// ErrKeepaliveCancel when nobody touches it.
func (c *Client) Selection(ctx context.Context) error {
	return c.noBody(ctx, CmdSelection)
}

func (c *Client) noBody(ctx context.Context, cmd byte) error {
	body, err := c.call(ctx, cmd, nil)
	if err != nil {
		return err
	}
	if len(body) != 0 {
		return badResponse(cmd, fmt.Errorf("%d unexpected bytes after the status", len(body)))
	}
	return nil
}

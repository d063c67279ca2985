package chip

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/u2f"
)

var _ u2f.Authenticator = (*Chip)(nil)

// errNoPresence is U2F's "test of user presence required" (SW 6985).
var errNoPresence = fmt.Errorf("chip: no touch yet: %w", u2f.ErrPresenceRequired)

// errNoU2F is a CTAP2-only chip's answer to a U2F request: the instruction
// is not supported (SW 6D00).
var errNoU2F = fmt.Errorf("chip: a CTAP2-only chip speaks no U2F: %w", &u2f.StatusError{SW: u2f.SWINSNotSupported})

// u2fBegin starts a U2F command: as begin, and errNoU2F for a CTAP2-only
// chip.
func (c *Chip) u2fBegin() error {
	if err := c.begin(); err != nil {
		return err
	}
	if !c.opts.Profile.Protocols().Has(device.ProtocolU2F) {
		return errNoU2F
	}
	return nil
}

func isDenied(err error) bool { return errors.Is(err, ctap2.ErrOperationDenied) }

// u2fPresence maps the chip's presence answer to U2F: a refusal is just a
// touch that did not happen (6985).
func (c *Chip) u2fPresence(ctx context.Context, op Op) error {
	err := c.checkPresence(ctx, op)
	if err != nil && isDenied(err) {
		return errNoPresence
	}
	return err
}

// Register answers U2F_REGISTER (FIDO U2F Raw Message Formats §4): after a
// touch it creates a P-256 credential for the application parameter, with
// the credential ID as key handle, and signs the registration with the
// chip's attestation key and certificate (with AttestationSelf, with the
// credential key and a self-signed certificate of it). The credential is
// usable by CTAP2 getAssertion through an allowList, with rpIdHash =
// application (CTAP 2.1 §10.3).
//
// It returns an error wrapping u2f.ErrPresenceRequired when the user has not
// touched the chip (the host retries), ctap2.ErrKeepaliveCancel when ctx
// ends during a Delay, a *u2f.StatusError 6D00 for a CTAP2-only chip, and
// device.ErrClosed after Close.
func (c *Chip) Register(ctx context.Context, req *u2f.RegisterRequest) (*u2f.RegisterResponse, error) {
	if err := c.u2fBegin(); err != nil {
		return nil, err
	}
	if req == nil {
		return nil, fmt.Errorf("chip: nil register request: %w", u2f.ErrWrongLength)
	}
	if err := c.u2fPresence(ctx, OpU2FRegister); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errClosed
	}
	cr, err := c.st.newCredential()
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	cr.rpIDHash = req.Application
	cr.u2f = true
	c.st.add(cr)
	if err := c.persistLocked(); err != nil {
		c.mu.Unlock()
		return nil, err
	}
	c.mu.Unlock()

	resp := &u2f.RegisterResponse{
		KeyHandle:       bytes.Clone(cr.id),
		AttestationCert: bytes.Clone(c.attCert.Raw),
	}
	attKey := c.attKey
	if c.opts.attestation() == AttestationSelf {
		cert, err := selfSignedCertificate(c.opts.Profile.Model(), cr.key)
		if err != nil {
			return nil, err
		}
		resp.AttestationCert, attKey = cert, cr.key
	}
	copy(resp.PublicKey[:], rawPublicKey(&cr.key.PublicKey))
	app := c.reportedRPIDHash(req.Application)
	sig, err := c.sign(attKey, u2f.RegisterSignedData(app, req.Challenge, resp.KeyHandle, resp.PublicKey))
	if err != nil {
		return nil, err
	}
	resp.Signature = sig
	return resp, nil
}

// Authenticate answers U2F_AUTHENTICATE (FIDO U2F Raw Message Formats §5).
// The key handle must be a credential of this chip for the application
// (made by U2F or CTAP2). Control 0x07 (check-only) only tells whether it
// is; 0x03 needs a touch; 0x08 signs without one (user presence byte 0).
// The credential's counter is incremented before it signs, and is the same
// counter CTAP2 assertions use.
//
// It returns an error wrapping u2f.ErrBadKeyHandle for a key handle that is
// not ours for this application, u2f.ErrPresenceRequired for a known key
// handle with control 0x07 or when the user has not touched the chip,
// ctap2.ErrKeepaliveCancel when ctx ends during a Delay, a *u2f.StatusError
// 6D00 for a CTAP2-only chip, and device.ErrClosed after Close.
func (c *Chip) Authenticate(ctx context.Context, req *u2f.AuthenticateRequest) (*u2f.AuthenticateResponse, error) {
	if err := c.u2fBegin(); err != nil {
		return nil, err
	}
	if req == nil {
		return nil, fmt.Errorf("chip: nil authenticate request: %w", u2f.ErrWrongLength)
	}
	c.mu.Lock()
	cr := c.st.credByID[string(req.KeyHandle)]
	known := cr != nil && cr.rpIDHash == req.Application
	c.mu.Unlock()
	if !known {
		return nil, fmt.Errorf("chip: key handle: %w", u2f.ErrBadKeyHandle)
	}
	var presence byte
	switch req.Control {
	case u2f.ControlCheckOnly:
		return nil, fmt.Errorf("chip: key handle is ours: %w", u2f.ErrPresenceRequired)
	case u2f.ControlEnforcePresence:
		if err := c.u2fPresence(ctx, OpU2FAuthenticate); err != nil {
			return nil, err
		}
		presence = 0x01
	case u2f.ControlDontEnforcePresence:
	default:
		return nil, fmt.Errorf("chip: control byte %02X: %w", req.Control, u2f.ErrBadKeyHandle)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errClosed
	}
	if c.st.credByID[string(req.KeyHandle)] != cr { // reset meanwhile
		c.mu.Unlock()
		return nil, fmt.Errorf("chip: key handle: %w", u2f.ErrBadKeyHandle)
	}
	count, err := c.bumpLocked(cr)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	app := c.reportedRPIDHash(req.Application)
	sig, err := c.sign(cr.key, u2f.AuthenticateSignedData(app, presence, count, req.Challenge))
	if err != nil {
		return nil, err
	}
	return &u2f.AuthenticateResponse{UserPresence: presence, Counter: count, Signature: sig}, nil
}

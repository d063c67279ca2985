package u2f

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctap2"
)

// Messenger sends one U2F request APDU and returns the response: data
// followed by SW1 SW2. *ctaphid.Conn (CTAPHID_MSG) and *apdu.Client both
// implement it.
type Messenger interface {
	APDU(ctx context.Context, req []byte) ([]byte, error)
}

// DefaultPollInterval is how long Client waits between two tries of a
// request that was answered with "test of user presence required".
const DefaultPollInterval = 100 * time.Millisecond

// Options configures a Client. The zero value is the default.
type Options struct {
	// PollInterval is the pause between two tries while the authenticator
	// waits for a touch; 0 means DefaultPollInterval.
	PollInterval time.Duration
	// Sleep pauses for d or until ctx ends, returning ctx.Err() in that
	// case; nil means a timer. Tests inject their own.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client is the host side of U2F (CTAP1) over a Messenger. It is safe for
// concurrent use when the Messenger is.
type Client struct {
	m    Messenger
	opts Options
}

// NewClient returns a Client that talks through m. opts may be nil.
func NewClient(m Messenger, opts *Options) *Client {
	c := &Client{m: m}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.PollInterval <= 0 {
		c.opts.PollInterval = DefaultPollInterval
	}
	if c.opts.Sleep == nil {
		c.opts.Sleep = device.Sleep
	}
	return c
}

// Version sends U2F_VERSION (§6.1) and returns the version string, which
// is "U2F_V2" for every U2F authenticator.
//
// It returns the errors described on transact.
func (c *Client) Version(ctx context.Context) (string, error) {
	data, err := c.transact(ctx, "version", &apdu.Command{INS: InsVersion, Ne: apdu.MaxExtendedNe}, false)
	if err != nil {
		return "", err
	}
	return string(data), nil
}

// Register sends U2F_REGISTER (§4.1) and returns the parsed response. While
// the authenticator answers "test of user presence required" (§4.2) it
// reports ctap2.StatusUPNeeded through ctap2.Keepalive and tries again
// every PollInterval, until the user touches it or ctx ends. The caller
// verifies the response with RegisterResponse.Verify.
//
// It returns the errors described on transact, and a *FormatError when the
// response does not parse.
func (c *Client) Register(ctx context.Context, challenge, app [32]byte) (*RegisterResponse, error) {
	req := &RegisterRequest{Challenge: challenge, Application: app}
	data, err := c.transact(ctx, "register", req.Command(), true)
	if err != nil {
		return nil, err
	}
	return ParseRegisterResponse(data)
}

// Authenticate sends U2F_AUTHENTICATE (§5.1) and returns the parsed
// response. With ControlEnforcePresence it waits for a touch as Register
// does. With ControlCheckOnly it does not wait: a known key handle comes
// back as an error wrapping ErrPresenceRequired (that is the spec's
// success signal; CheckKeyHandle turns it into a bool), an unknown one as
// ErrBadKeyHandle. ControlDontEnforcePresence signs without a touch where
// the authenticator supports it.
//
// It returns the errors described on transact, a *FormatError for an
// unknown control byte, a key handle over 255 bytes or a response that does
// not parse. An unknown key handle gives a *StatusError wrapping
// ErrBadKeyHandle.
func (c *Client) Authenticate(ctx context.Context, control byte, challenge, app [32]byte, keyHandle []byte) (*AuthenticateResponse, error) {
	req := &AuthenticateRequest{Control: control, Challenge: challenge, Application: app, KeyHandle: keyHandle}
	cmd, err := req.Command()
	if err != nil {
		return nil, err
	}
	data, err := c.transact(ctx, "authenticate", cmd, control != ControlCheckOnly)
	if err != nil {
		return nil, err
	}
	return ParseAuthenticateResponse(data)
}

// CheckKeyHandle asks whether the authenticator made keyHandle for app,
// with a check-only U2F_AUTHENTICATE (§5.1). It needs no touch and signs
// nothing. It reports true for status 6985 and false for 6A80, and returns
// the errors described on transact otherwise (including a *StatusError for
// a 9000 answer, which a check-only request must not get).
func (c *Client) CheckKeyHandle(ctx context.Context, app [32]byte, keyHandle []byte) (bool, error) {
	req := &AuthenticateRequest{Control: ControlCheckOnly, Application: app, KeyHandle: keyHandle}
	cmd, err := req.Command()
	if err != nil {
		return false, err
	}
	_, err = c.transact(ctx, "check key handle", cmd, false)
	var se *StatusError
	if errors.As(err, &se) {
		switch se.SW {
		case SWConditionsNotSatisfied:
			return true, nil
		case SWWrongData:
			return false, nil
		}
	}
	if err == nil {
		return false, fmt.Errorf("u2f: check key handle: authenticator signed a check-only request: %w", &StatusError{SW: SWNoError})
	}
	return false, err
}

// transact sends cmd in the extended encoding (§3.1) and returns the
// response data of a 9000 answer. When poll is set, a 6985 answer makes it
// report ctap2.StatusUPNeeded and try again after PollInterval.
//
// Errors: a *StatusError for any other status word (wrapping
// ErrPresenceRequired, ErrBadKeyHandle, ErrWrongLength or
// device.ErrNotSupported where they fit); the Messenger's error, wrapped;
// an error wrapping device.ErrProtocol when the answer is shorter than a
// status word; and, when ctx ends first, an error wrapping ctx.Err() (and
// ErrPresenceRequired if it ended while waiting for a touch).
func (c *Client) transact(ctx context.Context, what string, cmd *apdu.Command, poll bool) ([]byte, error) {
	req, err := cmd.EncodeExtended()
	if err != nil {
		return nil, fmt.Errorf("u2f: %s: %w", what, err)
	}
	// waiting is set once the authenticator asked for a touch: if ctx
	// ends from then on, at whatever point of the next poll, the caller
	// learns that the touch never came.
	waiting := false
	gaveUp := func(err error) error {
		if waiting && ctx.Err() != nil {
			return fmt.Errorf("u2f: %s: gave up waiting for a touch: %w (%w)", what, err, ErrPresenceRequired)
		}
		return fmt.Errorf("u2f: %s: %w", what, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, gaveUp(err)
		}
		raw, err := c.m.APDU(ctx, req)
		if err != nil {
			return nil, gaveUp(err)
		}
		resp, err := apdu.ParseResponse(raw)
		if err != nil {
			return nil, fmt.Errorf("u2f: %s: %w", what, err)
		}
		switch {
		case resp.SW == SWNoError:
			return resp.Data, nil
		case resp.SW == SWConditionsNotSatisfied && poll:
			waiting = true
			ctap2.Keepalive(ctx, ctap2.StatusUPNeeded)
			if err := c.opts.Sleep(ctx, c.opts.PollInterval); err != nil {
				return nil, gaveUp(err)
			}
		default:
			return nil, &StatusError{SW: resp.SW}
		}
	}
}

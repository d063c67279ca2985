package apdu

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
)

// Instruction bytes used by this package (ISO/IEC 7816-4 §11 and CTAP 2.1
// §11.3).
const (
	INSSelect              byte = 0xA4 // SELECT (CLA 00)
	INSGetResponse         byte = 0xC0 // GET RESPONSE (CLA 00, cards also take 80)
	INSNFCCTAPMsg          byte = 0x10 // NFCCTAP_MSG (CLA 80)
	INSNFCCTAPGetResponse  byte = 0x11 // NFCCTAP_GETRESPONSE (CLA 80)
	CLAChaining            byte = 0x10 // CLA bit: more command data follows (ISO/IEC 7816-4 §5.4.1)
	CLAProprietary         byte = 0x80 // CLA of the NFCCTAP commands
	P1GetResponseSupported byte = 0x80 // NFCCTAP_MSG P1: the client will poll with NFCCTAP_GETRESPONSE
)

// FIDOAID is the application identifier of the FIDO applet (CTAP 2.1 §11.3.3,
// FIDO U2F NFC Protocol §4).
var FIDOAID = [8]byte{0xA0, 0x00, 0x00, 0x06, 0x47, 0x2F, 0x00, 0x01}

// Versions a FIDO applet answers to SELECT (CTAP 2.1 §11.3.3).
const (
	VersionU2F   = "U2F_V2"   // U2F (CTAP1), alone or with CTAP2
	VersionFIDO2 = "FIDO_2_0" // CTAP2 without U2F
)

// Defaults of ClientOptions.
const (
	DefaultMaxChunk     = 250                   // CTAP 2.1 §11.3.5: command pieces of at most 250 bytes
	DefaultPollInterval = 20 * time.Millisecond // pause between NFCCTAP_GETRESPONSE polls
)

// maxCollect bounds the response bytes gathered through 61xx and GET RESPONSE,
// so that a card that never stops answering 61xx cannot make a host loop
// forever.
const maxCollect = 1 << 20

// Transmitter sends one command APDU and returns the response APDU (data
// followed by SW1 SW2). *scard.Card has this method as it is; so do Card and
// the fakes in apdutest. A Transmit call is synchronous and cannot be
// interrupted: how long one call may take is up to the transport.
type Transmitter interface {
	Transmit(cmd []byte) ([]byte, error)
}

// ClientOptions configures a Client. The zero value gives the defaults.
type ClientOptions struct {
	// Extended sends commands that do not fit a short APDU as one extended
	// APDU and asks for the whole answer at once (Le = 00 00), instead of
	// command chaining and 61xx / GET RESPONSE. Use it only with readers and
	// cards that take extended APDUs.
	Extended bool
	// MaxChunk is the largest command piece when chaining (1..255, default
	// 250).
	MaxChunk int
	// GetResponseCLA is the CLA of GET RESPONSE commands (default 00; some
	// cards want 80).
	GetResponseCLA byte
	// PollInterval is the pause before each NFCCTAP_GETRESPONSE after the
	// card answered 9100 (default 20 ms; negative: no pause). A card may
	// itself hold the poll until it has news, as Card does.
	PollInterval time.Duration
}

// Client is the host side of CTAP over ISO 7816 (CTAP 2.1 §11.3): it sends
// APDUs to a FIDO applet through a Transmitter. It implements the one-method
// messengers of ctap2 (CBOR) and u2f (APDU). Calls are serialised: a Client
// may be shared, but the card sees one exchange at a time.
type Client struct {
	t    Transmitter
	opts ClientOptions
	sem  chan struct{}
}

// NewClient returns a Client that talks through t.
func NewClient(t Transmitter, opts ClientOptions) *Client {
	switch {
	case opts.MaxChunk <= 0:
		opts.MaxChunk = DefaultMaxChunk
	case opts.MaxChunk > MaxShortData:
		opts.MaxChunk = MaxShortData
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultPollInterval
	}
	return &Client{t: t, opts: opts, sem: make(chan struct{}, 1)}
}

func (c *Client) lock(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("apdu: %w", ctx.Err())
	}
}

func (c *Client) unlock() { <-c.sem }

// Select selects the FIDO applet (CTAP 2.1 §11.3.3) and returns the version
// it answers: VersionU2F, VersionFIDO2, or another "FIDO_2_" string that some
// CTAP 2.1 cards send ("FIDO_2_1", "FIDO_2_1_PRE"), returned as it is;
// anything but VersionU2F means CTAP2. A card that answers VersionU2F
// implements U2F and may implement CTAP2 too (§11.3.3 asks every dual-mode
// card to answer so): authenticatorGetInfo tells. The SELECT carries Le = 00; a card that
// answers 6700 to that gets the same SELECT without Le.
//
// Errors: a *StatusError when the card refuses (6A82, unwrapping to
// device.ErrNotFound, means there is no FIDO applet); an error wrapping
// device.ErrNotSupported, with the version string, when the applet names
// something else; and the errors of Transceive.
func (c *Client) Select(ctx context.Context) (string, error) {
	if err := c.lock(ctx); err != nil {
		return "", err
	}
	defer c.unlock()
	cmd := &Command{CLA: 0x00, INS: INSSelect, P1: 0x04, P2: 0x00, Data: FIDOAID[:], Ne: MaxShortNe}
	resp, err := c.transceive(ctx, cmd)
	if err == nil && resp.SW == SWWrongLength {
		cmd.Ne = 0
		resp, err = c.transceive(ctx, cmd)
	}
	if err != nil {
		return "", err
	}
	if err := resp.Err(); err != nil {
		return "", fmt.Errorf("apdu: select FIDO applet: %w", err)
	}
	v := string(resp.Data)
	if v != VersionU2F && !strings.HasPrefix(v, "FIDO_2_") {
		return v, fmt.Errorf("apdu: FIDO applet answers unknown version %q: %w", v, device.ErrNotSupported)
	}
	return v, nil
}

// Transceive sends cmd and returns the card's final response, whatever its
// status word (ISO/IEC 7816-4 §5.3).
//
// Without ClientOptions.Extended, data longer than MaxChunk is sent by
// command chaining (CLA|0x10, §5.4.1); a piece answered with anything but
// 9000 ends the exchange and that response is returned. Ne is capped at 256.
// With Extended, a command that does not fit a short APDU goes as one
// extended APDU. In both modes a 61xx answer is followed by GET RESPONSE until
// the data is complete, and a 6Cxx answer makes Transceive resend the last
// command once with Le = xx.
//
// Errors: a *FormatError or an error wrapping device.ErrMessageTooLarge when
// cmd cannot be encoded; an error wrapping ctx.Err() when ctx ends (checked
// before each Transmit); the Transmitter's error, wrapped; a *FormatError
// (device.ErrProtocol) when the card answers fewer than two bytes, data with
// an intermediate 9000, or more than 1 MiB through GET RESPONSE.
func (c *Client) Transceive(ctx context.Context, cmd *Command) (*Response, error) {
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	defer c.unlock()
	return c.transceive(ctx, cmd)
}

func (c *Client) transceive(ctx context.Context, cmd *Command) (*Response, error) {
	if err := cmd.check(); err != nil {
		return nil, err
	}
	if c.opts.Extended {
		return c.collect(ctx, cmd)
	}
	ne := min(cmd.Ne, MaxShortNe)
	data := cmd.Data
	for len(data) > c.opts.MaxChunk {
		piece := &Command{CLA: cmd.CLA | CLAChaining, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Data: data[:c.opts.MaxChunk]}
		resp, err := c.send(ctx, piece)
		if err != nil {
			return nil, err
		}
		if resp.SW != SWOK {
			return resp, nil
		}
		if len(resp.Data) != 0 {
			return nil, &FormatError{What: "response", Len: len(resp.Data) + 2, Reason: "data in the answer to a chained command piece"}
		}
		data = data[c.opts.MaxChunk:]
	}
	last := &Command{CLA: cmd.CLA, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Data: data, Ne: ne}
	return c.collect(ctx, last)
}

// collect sends cmd and gathers its answer through 61xx / GET RESPONSE, and
// 6Cxx retries.
func (c *Client) collect(ctx context.Context, cmd *Command) (*Response, error) {
	var acc []byte
	retried := false
	for {
		resp, err := c.send(ctx, cmd)
		if err != nil {
			return nil, err
		}
		switch {
		case resp.SW&0xFF00 == SWBytesRemaining:
			acc = append(acc, resp.Data...)
			if len(acc) > maxCollect {
				return nil, &FormatError{What: "response", Len: len(acc), Reason: "GET RESPONSE data exceeds 1 MiB"}
			}
			cmd = &Command{CLA: c.opts.GetResponseCLA, INS: INSGetResponse, Ne: shortNe(resp.SW2())}
			retried = false
		case resp.SW&0xFF00 == SWWrongLe && !retried:
			again := *cmd
			again.Ne = shortNe(resp.SW2())
			cmd = &again
			retried = true
		default:
			if acc != nil {
				resp.Data = append(acc, resp.Data...)
			}
			return resp, nil
		}
	}
}

// send encodes and transmits one APDU, after checking ctx.
func (c *Client) send(ctx context.Context, cmd *Command) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("apdu: %w", err)
	}
	raw, err := cmd.Encode()
	if err != nil {
		return nil, err
	}
	out, err := c.t.Transmit(raw)
	if err != nil {
		return nil, fmt.Errorf("apdu: transmit %02X %02X: %w", cmd.CLA, cmd.INS, err)
	}
	return ParseResponse(out)
}

// CBOR sends a CTAP2 request (command byte followed by CBOR parameters) in an
// NFCCTAP_MSG with P1 = 80 and returns the answer (status byte followed by
// CBOR), as CTAP 2.1 §11.3.4 describes. While the card answers 9100 with a
// status byte, CBOR reports that status through ctap2.Keepalive(ctx, ...),
// waits PollInterval and polls with NFCCTAP_GETRESPONSE. It stops polling
// when ctx ends; a single Transmit in flight is not interrupted. A card keeps
// working on an abandoned request until it gets another command or is reset.
//
// Errors: an error wrapping device.ErrProtocol when req is empty, the card
// answers 9100 with more than one status byte, or 9000 with no data; a
// *StatusError for any other final status word (6D00, unwrapping to
// device.ErrNotSupported, from a U2F-only card); an error wrapping ctx.Err();
// and the errors of Transceive.
func (c *Client) CBOR(ctx context.Context, req []byte) ([]byte, error) {
	if len(req) == 0 {
		return nil, fmt.Errorf("apdu: empty CTAP2 request: %w", device.ErrProtocol)
	}
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	defer c.unlock()
	ne := MaxShortNe
	if c.opts.Extended {
		ne = MaxExtendedNe
	}
	resp, err := c.transceive(ctx, &Command{CLA: CLAProprietary, INS: INSNFCCTAPMsg, P1: P1GetResponseSupported, Data: req, Ne: ne})
	for err == nil && resp.SW == SWStatusUpdate {
		status := ctap2.StatusProcessing
		switch len(resp.Data) {
		case 0:
		case 1:
			status = ctap2.KeepaliveStatus(resp.Data[0])
		default:
			return nil, fmt.Errorf("apdu: status update with %d data bytes: %w", len(resp.Data), device.ErrProtocol)
		}
		ctap2.Keepalive(ctx, status)
		if err := c.pause(ctx); err != nil {
			return nil, err
		}
		resp, err = c.transceive(ctx, &Command{CLA: CLAProprietary, INS: INSNFCCTAPGetResponse, Ne: ne})
	}
	if err != nil {
		return nil, err
	}
	if err := resp.Err(); err != nil {
		return nil, fmt.Errorf("apdu: NFCCTAP_MSG %02X: %w", req[0], err)
	}
	if len(resp.Data) == 0 {
		return nil, fmt.Errorf("apdu: empty CTAP2 response: %w", device.ErrProtocol)
	}
	return resp.Data, nil
}

func (c *Client) pause(ctx context.Context) error {
	if c.opts.PollInterval < 0 {
		return nil
	}
	t := time.NewTimer(c.opts.PollInterval)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("apdu: %w", ctx.Err())
	}
}

// APDU sends a U2F request APDU (FIDO U2F Raw Message Formats §3, usually
// extended-length encoded) and returns the response data followed by SW1 SW2,
// whatever the status word; interpreting it is up to the caller. Without
// ClientOptions.Extended the request is re-encoded as short APDUs (chaining,
// GET RESPONSE) as Transceive describes.
//
// Errors: a *FormatError when req is not a command APDU, and the errors of
// Transceive.
func (c *Client) APDU(ctx context.Context, req []byte) ([]byte, error) {
	cmd, err := ParseCommand(req)
	if err != nil {
		return nil, err
	}
	resp, err := c.Transceive(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return resp.Encode(), nil
}

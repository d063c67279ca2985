package devicetest

import (
	"context"
	"fmt"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/u2f"
)

// MessengerChip is a chip target reached through a messenger (a
// *ctaphid.Conn, an *apdu.Client, or a driver's): a ctap2.Client for the
// typed checks, and the messenger itself for the raw ones (CBOR) and for
// U2F (U2F, when the messenger also carries U2F APDUs).
type MessengerChip struct {
	*ctap2.Client
	m   ctap2.Messenger
	u2f *u2f.Client
}

var (
	_ device.Chip            = (*MessengerChip)(nil)
	_ device.NextAssertioner = (*MessengerChip)(nil)
	_ device.Resetter        = (*MessengerChip)(nil)
	_ device.Selector        = (*MessengerChip)(nil)
	_ ctap2.Messenger        = (*MessengerChip)(nil)
)

// NewMessengerChip returns a chip target over m. When m is also a
// u2f.Messenger (both *ctaphid.Conn and *apdu.Client are), U2F returns a
// client over it.
func NewMessengerChip(m ctap2.Messenger) *MessengerChip {
	c := &MessengerChip{Client: ctap2.NewClient(m), m: m}
	if um, ok := m.(u2f.Messenger); ok {
		c.u2f = u2f.NewClient(um, nil)
	}
	return c
}

// CBOR sends a raw CTAP2 message through the messenger: the command byte
// and CBOR parameters, unchecked. It returns the status byte and CBOR, or
// the messenger's error wrapped.
func (c *MessengerChip) CBOR(ctx context.Context, req []byte) ([]byte, error) {
	resp, err := c.m.CBOR(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("devicetest: %w", err)
	}
	return resp, nil
}

// U2F returns a U2F client over the same messenger, or nil when the
// messenger does not carry U2F.
func (c *MessengerChip) U2F() *u2f.Client { return c.u2f }

// APDU sends a raw U2F request APDU through the messenger, unchecked, and
// returns the response data and status word. It returns an error wrapping
// device.ErrNotSupported when the messenger does not carry U2F, and the
// messenger's error wrapped.
func (c *MessengerChip) APDU(ctx context.Context, req []byte) ([]byte, error) {
	m, ok := c.m.(u2f.Messenger)
	if !ok {
		return nil, fmt.Errorf("devicetest: %T carries no U2F messages: %w", c.m, device.ErrNotSupported)
	}
	resp, err := m.APDU(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("devicetest: %w", err)
	}
	return resp, nil
}

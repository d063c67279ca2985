package chip

import (
	"context"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/u2f"
)

// handlers are the device-side protocol handlers serving the chip.
type handlers struct {
	ctap2 *ctap2.Handler
	u2f   *u2f.Handler
}

func (c *Chip) serve() *handlers {
	c.handlersOnce.Do(func() {
		c.handlers = &handlers{
			ctap2: ctap2.NewHandler(c, ctap2.HandlerOptions{}),
			u2f:   u2f.NewHandler(c),
		}
	})
	return c.handlers
}

// ServeCTAP2 answers one CTAP2 request from the wire (command byte and CBOR
// parameters; CTAP 2.1 §6, §8) with a status byte and CBOR, through
// ctap2.Handler. Together with ServeU2F it makes the chip the device-side
// Handler of device/ctaphid and device/apdu. Malformed bytes get an error
// status, never a panic; after Close every request gets CTAP1_ERR_OTHER.
func (c *Chip) ServeCTAP2(ctx context.Context, req []byte) []byte {
	return c.serve().ctap2.ServeCTAP2(ctx, req)
}

// ServeU2F answers one U2F request APDU (FIDO U2F Raw Message Formats §3)
// with response data and SW1 SW2, through u2f.Handler. A CTAP2-only chip
// answers every request, U2F_VERSION too, with 6D00 (instruction not
// supported).
func (c *Chip) ServeU2F(ctx context.Context, req []byte) []byte {
	if !c.opts.Profile.Protocols().Has(device.ProtocolU2F) {
		return []byte{0x6D, 0x00} // u2f.SWINSNotSupported
	}
	return c.serve().u2f.ServeU2F(ctx, req)
}

// Wink answers CTAPHID_WINK (CTAP 2.1 §11.2.9.2.1): a real chip blinks its
// light; the simulated one has nothing to show.
func (c *Chip) Wink() {}

// Host returns the chip as an in-process host drives it, a device.Chip:
// the chip itself when it speaks CTAP2, and for a U2F-only chip the CTAP
// 2.1 §10 translation (u2f.Chip) over its U2F handler, as a platform drives
// such a key over any transport. The U2F-only host view also offers the
// chip's ServeU2F and DeviceInfo, for conformance checks that send raw U2F
// messages.
func (c *Chip) Host() device.Chip {
	if c.opts.Profile.Protocols().Has(device.ProtocolCTAP2) {
		return c
	}
	return &u2fHost{Chip: u2f.NewChip(u2f.NewClient(u2fWire(c.ServeU2F), nil)), sim: c}
}

// u2fHost is a U2F-only chip seen in-process through the translation.
type u2fHost struct {
	*u2f.Chip
	sim *Chip
}

// ServeU2F is the chip's.
func (h *u2fHost) ServeU2F(ctx context.Context, req []byte) []byte { return h.sim.ServeU2F(ctx, req) }

// DeviceInfo is the chip's.
func (h *u2fHost) DeviceInfo() device.Info { return h.sim.DeviceInfo() }

// u2fWire is a u2f.Messenger that calls a device-side handler.
type u2fWire func(ctx context.Context, req []byte) []byte

func (f u2fWire) APDU(ctx context.Context, req []byte) ([]byte, error) { return f(ctx, req), nil }

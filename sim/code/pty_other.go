//go:build !linux

package code

import (
	"context"
	"fmt"
	"io"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/frame"
)

// PTY is a device served on a pseudo-terminal; only Linux has them here.
type PTY struct {
	// Path is the terminal end of the pty.
	Path string
}

// ServePTY returns an error wrapping device.ErrNotSupported: pty serving is
// implemented for Linux only.
func ServePTY(ctx context.Context, d *Device) (*PTY, error) {
	return nil, fmt.Errorf("code: serving on a pty: %w on this system", device.ErrNotSupported)
}

// PTYOptions adjust ServePTYOptions.
type PTYOptions struct {
	Handler frame.Handler
	Wrap    func(io.ReadWriter) io.ReadWriter
}

// ServePTYOptions returns an error wrapping device.ErrNotSupported, as
// ServePTY does.
func ServePTYOptions(ctx context.Context, d *Device, o PTYOptions) (*PTY, error) {
	return ServePTY(ctx, d)
}

// ServerStats returns zero counters.
func (p *PTY) ServerStats() frame.ServerStats { return frame.ServerStats{} }

// Close does nothing.
func (p *PTY) Close() error { return nil }

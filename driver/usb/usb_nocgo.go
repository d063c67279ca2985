//go:build !cgo

package usb

import (
	"context"
	"fmt"

	"github.com/authbench/authbench/device"
)

var errNoCgo = fmt.Errorf("usb: %w: USB support was not compiled in (this binary was built without cgo; rebuild with CGO_ENABLED=1 and libusb-1.0-0-dev installed)", device.ErrNotSupported)

// List returns the FIDO keys on the USB buses. This binary was built
// without cgo, so it always returns an error wrapping
// device.ErrNotSupported.
func List(ctx context.Context) ([]device.Info, error) {
	return nil, errNoCgo
}

// Open opens the key sel picks. This binary was built without cgo, so it
// always returns an error wrapping device.ErrNotSupported.
func Open(ctx context.Context, sel Selector, opts Options) (*Chip, error) {
	return nil, errNoCgo
}

func sight(ctx context.Context) ([]sighting, error) {
	return nil, errNoCgo
}

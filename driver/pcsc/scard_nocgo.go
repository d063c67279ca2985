//go:build !cgo

package pcsc

import (
	"fmt"

	"github.com/authbench/authbench/device"
)

// defaultSystem reports that this binary has no PC/SC: the scard package
// needs cgo and libpcsclite.
func defaultSystem() (system, error) {
	return nil, fmt.Errorf("pcsc: PC/SC support was not compiled in (build with CGO_ENABLED=1 and libpcsclite-dev): %w", device.ErrNotSupported)
}

//go:build !cgo

package pcsc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/authbench/authbench/device"
)

func TestOpenWithoutCgo(t *testing.T) {
	pc, err := Open(context.Background(), Options{})
	if pc != nil || !errors.Is(err, device.ErrNotSupported) || !strings.Contains(err.Error(), "PC/SC support was not compiled in") {
		t.Fatalf("Open = %v, %v; want an error wrapping ErrNotSupported", pc, err)
	}
}

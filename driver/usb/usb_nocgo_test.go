//go:build !cgo

package usb

import (
	"context"
	"errors"
	"testing"

	"github.com/authbench/authbench/device"
)

func TestNoCgo(t *testing.T) {
	if _, err := List(context.Background()); !errors.Is(err, device.ErrNotSupported) {
		t.Errorf("List = %v", err)
	}
	if _, err := Open(context.Background(), Selector{}, Options{}); !errors.Is(err, device.ErrNotSupported) {
		t.Errorf("Open = %v", err)
	}
	if err := Watch(context.Background(), 0, func(Event) {}); !errors.Is(err, device.ErrNotSupported) {
		t.Errorf("Watch = %v", err)
	}
}

package main

import (
	"context"
	"fmt"

	"github.com/authbench/authbench/sim/umockdev"
)

// startBus plugs the chips given as --chip usb into one emulated USB bus
// and fills in where each appears.
func (s *simulation) startBus(ctx context.Context, devs []simDevice) ([]simDevice, error) {
	bus, err := umockdev.Start(ctx, s.usbKeys, umockdev.Options{Log: s.log})
	if err != nil {
		// Without the Debian packages, the error says which to install.
		return nil, fmt.Errorf("--chip usb: %w", err)
	}
	s.addCloser(bus)
	s.bus = bus
	for i, where := range bus.Devices() {
		devs[i].Path = where.Path
		devs[i].Hidraw = where.Hidraw
		devs[i].USBFS = where.USB
		devs[i].Testbed = bus.Dir()
	}
	return devs, nil
}

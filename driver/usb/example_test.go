package usb_test

import (
	"context"
	"fmt"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/driver/usb"
	"github.com/authbench/authbench/sim/chip"
)

// NewChip runs the driver's CTAPHID stack over any report transport; here a
// simulated chip on an in-memory pipe stands in for a key that Open would
// claim on the USB bus.
func ExampleNewChip() {
	sc, err := chip.New(chip.Options{Seed: []byte("example")})
	if err != nil {
		panic(err)
	}
	defer sc.Close()
	dev, host := ctaphid.NewPipe()
	defer dev.Close()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ctaphid.Serve(ctx, dev, sc, ctaphid.ServeOptions{}) }()
	defer func() { stop(); <-served }()

	ch, err := usb.NewChip(ctx, host, device.Info{Transport: "sim", Path: "pipe"}, usb.Options{})
	if err != nil {
		panic(err)
	}
	defer ch.Close()
	info, err := ch.Info(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(info.Versions)
	fmt.Println("CBOR:", ch.HIDInfo().Capabilities.Has(ctaphid.CapCBOR))
	// Output:
	// [U2F_V2 FIDO_2_0 FIDO_2_1]
	// CBOR: true
}

// The selector syntax of the -hw test flag and the command line.
func ExampleParseSelector() {
	sel, err := usb.ParseSelector("usb:1050:0407:index=1")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%04x %04x %d\n", sel.VID, sel.PID, sel.Index)
	// Output: 1050 0407 1
}

//go:build cgo

package usb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/internal/umockdevtest"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/umockdev"
	"github.com/google/gousb"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want error // nil: none
	}{
		{gousb.ErrorNoDevice, device.ErrRemoved},
		{gousb.ErrorIO, device.ErrRemoved},
		{gousb.ErrorTimeout, device.ErrTimeout},
		{gousb.ErrorBusy, device.ErrBusy},
		{gousb.ErrorAccess, os.ErrPermission},
		{gousb.ErrorNotFound, device.ErrNotFound},
		{gousb.ErrorNotSupported, device.ErrNotSupported},
		{gousb.ErrorPipe, device.ErrProtocol},
		{gousb.ErrorOverflow, device.ErrProtocol},
		{gousb.ErrorNoMem, nil},
		{gousb.TransferNoDevice, device.ErrRemoved},
		{gousb.TransferError, device.ErrRemoved},
		{gousb.TransferTimedOut, device.ErrTimeout},
		{gousb.TransferStall, device.ErrProtocol},
		{gousb.TransferOverflow, device.ErrProtocol},
		{gousb.TransferCancelled, nil},
		{fmt.Errorf("claim: %w", gousb.ErrorBusy), device.ErrBusy},
		// gousb's Config.Interface formats the libusb error with %v.
		{fmt.Errorf("failed to claim interface 0 on vid=1209,pid=0001,bus=1,addr=2,config=1: %v", gousb.ErrorBusy), device.ErrBusy},
		{fmt.Errorf("set config: %v", gousb.ErrorNoDevice), device.ErrRemoved},
		{errors.New("libusb: something [code 5]"), nil},
		{errors.New("something else"), nil},
	}
	for _, tt := range tests {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("classify(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestListWithoutKeys runs the real enumeration. These machines have no USB
// at all, so it finds nothing; with keys plugged in it lists them.
func TestListWithoutKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	list, err := List(ctx)
	if errors.Is(err, device.ErrNotSupported) {
		t.Skipf("no libusb here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range list {
		if info.Kind != device.KindChip || info.Transport != "usb" || info.Path == "" {
			t.Errorf("listed %+v", info)
		}
	}
	if len(list) > 0 {
		t.Skipf("%d key(s) plugged in", len(list))
	}
	ch, err := Open(ctx, Selector{}, Options{})
	if ch != nil || !errors.Is(err, device.ErrNotFound) {
		t.Errorf("Open without keys = %v, %v; want device.ErrNotFound", ch, err)
	}
	ended, stop := context.WithCancel(ctx)
	stop()
	if _, err := List(ended); !errors.Is(err, context.Canceled) {
		t.Errorf("List with an ended context = %v", err)
	}
}

// TestClaimWithoutDetach: on the emulated bus as on Linux, usbhid holds a
// key's interface, so a libusb program that claims it without detaching
// the kernel driver is refused (which is why Open switches auto-detach on).
func TestClaimWithoutDetach(t *testing.T) {
	sc, err := chip.New(chip.Options{Seed: []byte("claim without detach")})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	bed := umockdevtest.Start(t, umockdev.Key{Chip: sc, Serial: sc.Serial()})
	umockdevtest.Use(t, bed.Dir())
	uc, err := newContext()
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	d, err := uc.OpenDeviceWithVIDPID(umockdev.DefaultVendorID, umockdev.DefaultProductID)
	if err != nil || d == nil {
		t.Fatalf("OpenDeviceWithVIDPID = %v, %v", d, err)
	}
	defer d.Close()
	cfg, err := d.Config(1)
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	intf, err := cfg.Interface(0, 0)
	if err == nil {
		intf.Close()
		t.Fatal("claimed the interface from usbhid without detaching it")
	}
	if classify(err) != device.ErrBusy {
		t.Errorf("claim = %v, classified %v; want device.ErrBusy", err, classify(err))
	}
}

//go:build cgo

package usb

// This file is the only one that touches gousb (and so libusb and the OS).
// It enumerates devices, reads descriptors and claims the interface; the
// endpoints it claims go to newEndpoints as they are.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/driver/usb/hid"
	"github.com/google/gousb"
)

// controlTimeout bounds each control transfer made while enumerating.
const controlTimeout = time.Second

// Standard request GET_DESCRIPTOR (USB 2.0 §9.4.3) as bmRequestType,
// bRequest and wValue's descriptor type in the high byte.
const (
	reqTypeDeviceIn    = 0x80 // device to host, standard, recipient device
	reqTypeInterfaceIn = 0x81 // device to host, standard, recipient interface
	reqGetDescriptor   = 0x06
)

// newContext starts libusb. gousb panics when libusb_init fails; that
// becomes an error here.
func newContext() (uc *gousb.Context, err error) {
	defer func() {
		if r := recover(); r != nil {
			uc, err = nil, fmt.Errorf("usb: %w: libusb_init failed: %v", device.ErrNotSupported, r)
		}
	}()
	return gousb.NewContext(), nil
}

// key is one CTAPHID interface found by scan, with what Open needs to reach
// it again.
type key struct {
	info          device.Info
	bus, addr     int
	config, iface int
	in, out       int
	opened        bool // info has the key's strings: scan could open it
}

// List returns the FIDO keys on the USB buses, ordered by Info.Path, with
// Kind device.KindChip, Transport "usb", the vendor and product IDs, the
// product string as Model, bcdDevice as Firmware and the serial number
// string. A key that cannot be opened (no permission) is listed without
// strings when its interface has the CTAPHID shape. No keys is an empty
// list and no error.
//
// Errors: an error wrapping device.ErrNotSupported when libusb cannot start
// (or, without cgo, always); libusb's error when it cannot list the
// devices; ctx's error when ctx ends first.
func List(ctx context.Context) ([]device.Info, error) {
	seen, err := sight(ctx)
	if err != nil {
		return nil, err
	}
	infos := make([]device.Info, len(seen))
	for i, s := range seen {
		infos[i] = s.info
	}
	return infos, nil
}

// sight is List, each key saying whether it could be opened (Watch
// holds back those that could not).
func sight(ctx context.Context) ([]sighting, error) {
	uc, err := newContext()
	if err != nil {
		return nil, err
	}
	defer uc.Close()
	keys, err := scan(ctx, uc)
	if err != nil {
		return nil, err
	}
	seen := make([]sighting, len(keys))
	for i, k := range keys {
		seen[i] = sighting{info: k.info, opened: k.opened}
	}
	return seen, nil
}

// scan enumerates the devices, opens those with an interface of CTAPHID
// shape, and keeps the interfaces whose report descriptor is FIDO's. The
// result is sorted by path; devices are closed again.
func scan(ctx context.Context, uc *gousb.Context) ([]key, error) {
	type busAddr struct{ bus, addr int }
	shaped := map[busAddr][]key{}
	var order []busAddr
	listed := false
	devs, err := uc.OpenDevices(func(d *gousb.DeviceDesc) bool {
		listed = true
		if ctx.Err() != nil {
			return false
		}
		var ks []key
		for _, cfg := range d.Configs {
			for _, intf := range cfg.Interfaces {
				for _, alt := range intf.AltSettings {
					in, out, ok := ctaphidEndpoints(describe(alt))
					if !ok {
						continue
					}
					ks = append(ks, key{
						info: device.Info{
							Kind:      device.KindChip,
							Transport: "usb",
							Path:      sysfsPath(d.Bus, d.Path, cfg.Number, alt.Number),
							Firmware:  d.Device.String(),
							VendorID:  uint16(d.Vendor),
							ProductID: uint16(d.Product),
						},
						bus: d.Bus, addr: d.Address, config: cfg.Number, iface: alt.Number, in: in, out: out,
					})
				}
			}
		}
		if len(ks) == 0 {
			return false
		}
		ba := busAddr{d.Bus, d.Address}
		shaped[ba] = ks
		order = append(order, ba)
		return true
	})
	defer func() {
		for _, d := range devs {
			d.Close()
		}
	}()
	if err != nil && !listed {
		return nil, fmt.Errorf("usb: list devices: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("usb: list devices: %w", err)
	}
	var keys []key
	opened := map[busAddr]bool{}
	for _, d := range devs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("usb: list devices: %w", err)
		}
		ba := busAddr{d.Desc.Bus, d.Desc.Address}
		opened[ba] = true
		keys = append(keys, examine(d, shaped[ba])...)
	}
	for _, ba := range order {
		if !opened[ba] {
			keys = append(keys, shaped[ba]...) // could not open: keep what the shape says
		}
	}
	sortKeys(keys)
	return keys, nil
}

// describe copies what ctaphidEndpoints looks at out of gousb's types.
func describe(alt gousb.InterfaceSetting) interfaceDesc {
	d := interfaceDesc{
		Number: alt.Number, Alternate: alt.Alternate,
		Class: byte(alt.Class), SubClass: byte(alt.SubClass), Protocol: byte(alt.Protocol),
	}
	for _, e := range alt.Endpoints {
		d.Endpoints = append(d.Endpoints, endpointDesc{
			Address:   byte(e.Address),
			Interrupt: e.TransferType == gousb.TransferTypeInterrupt,
			MaxPacket: e.MaxPacketSize,
		})
	}
	return d
}

// examine reads an opened device's strings and, for each candidate
// interface of the active configuration, its report descriptor; it returns
// the candidates that are CTAPHID interfaces.
func examine(d *gousb.Device, cands []key) []key {
	d.ControlTimeout = controlTimeout
	active, err := d.ActiveConfigNum()
	if err != nil {
		return nil
	}
	product, _ := d.Product()
	if product == "" {
		product, _ = d.Manufacturer()
	}
	serial, _ := d.SerialNumber()
	config := configDescriptor(d, active)
	var keys []key
	for _, k := range cands {
		if k.config != active {
			continue
		}
		n := hid.DefaultReportDescriptorLen
		if cd, _, err := hid.FindClassDescriptor(config, k.iface); err == nil && cd.ReportLength() > 0 {
			n = cd.ReportLength()
		}
		buf := make([]byte, n)
		got, err := d.Control(reqTypeInterfaceIn, reqGetDescriptor, uint16(hid.DescriptorTypeReport)<<8, uint16(k.iface), buf)
		if err != nil || got < 0 {
			continue
		}
		if _, err := hid.FindFIDO(buf[:got]); err != nil {
			continue
		}
		k.info.Model, k.info.Serial = product, serial
		k.opened = true
		keys = append(keys, k)
	}
	return keys
}

// configDescriptor reads the whole configuration descriptor whose
// bConfigurationValue is value (USB 2.0 §9.4.3: GET_DESCRIPTOR takes the
// configuration's index, so it looks at each). It returns nil when it
// cannot.
func configDescriptor(d *gousb.Device, value int) []byte {
	for idx := 0; idx < len(d.Desc.Configs) && idx < 256; idx++ {
		wValue := uint16(hid.DescriptorTypeConfig)<<8 | uint16(idx)
		head := make([]byte, 9)
		n, err := d.Control(reqTypeDeviceIn, reqGetDescriptor, wValue, 0, head)
		if err != nil || n < 9 || head[1] != hid.DescriptorTypeConfig {
			return nil
		}
		if int(head[5]) != value {
			continue
		}
		full := make([]byte, binary.LittleEndian.Uint16(head[2:]))
		n, err = d.Control(reqTypeDeviceIn, reqGetDescriptor, wValue, 0, full)
		if err != nil || n < 9 {
			return nil
		}
		return full[:n]
	}
	return nil
}

// Open finds the key sel picks (as List would), claims its CTAPHID
// interface, and starts CTAPHID on its interrupt endpoints (NewChip). Close
// the Chip to release the key.
//
// Errors: those of List; an error wrapping device.ErrNotFound when no key
// matches sel or it left meanwhile; one wrapping os.ErrPermission when the
// key's node cannot be opened (install the udev rule, see the package
// documentation); one wrapping device.ErrBusy when another program claimed
// the interface; device.ErrRemoved when the key leaves while opening; and
// those of NewChip.
func Open(ctx context.Context, sel Selector, opts Options) (*Chip, error) {
	uc, err := newContext()
	if err != nil {
		return nil, err
	}
	ch, err := open(ctx, uc, sel, opts)
	if err != nil {
		uc.Close()
		return nil, err
	}
	return ch, nil
}

func open(ctx context.Context, uc *gousb.Context, sel Selector, opts Options) (*Chip, error) {
	keys, err := scan(ctx, uc)
	if err != nil {
		return nil, err
	}
	infos := make([]device.Info, len(keys))
	for i, k := range keys {
		infos[i] = k.info
	}
	i, err := sel.pick(infos)
	if err != nil {
		return nil, err
	}
	k := keys[i]
	fail := func(what string, err error) error {
		if s := classify(err); s != nil {
			err = fmt.Errorf("%w: %w", s, err)
		}
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("usb: %s: %s: %w (install driver/usb/70-authbench-fido.rules, or run as root)", k.info.Path, what, err)
		}
		return fmt.Errorf("usb: %s: %s: %w", k.info.Path, what, err)
	}

	devs, err := uc.OpenDevices(func(d *gousb.DeviceDesc) bool {
		return d.Bus == k.bus && d.Address == k.addr
	})
	for _, d := range devs[min(1, len(devs)):] {
		d.Close()
	}
	if len(devs) == 0 {
		if err == nil {
			return nil, fmt.Errorf("usb: %s: %w: the key left", k.info.Path, device.ErrNotFound)
		}
		return nil, fail("open", err)
	}
	d := devs[0]
	d.ControlTimeout = controlTimeout
	cfg, err := d.Config(k.config)
	if err != nil {
		d.Close()
		return nil, fail("take configuration", err)
	}
	// Switched on only now, so that gousb's Config did not detach the
	// kernel drivers of every interface: libusb detaches the one claimed
	// below and attaches it again when it is released.
	if err := d.SetAutoDetach(true); err != nil {
		cfg.Close()
		d.Close()
		return nil, fail("auto-detach", err)
	}
	intf, err := cfg.Interface(k.iface, 0)
	if err != nil {
		cfg.Close()
		d.Close()
		return nil, fail("claim interface", err)
	}
	release := func() error {
		intf.Close()
		return errors.Join(cfg.Close(), d.Close(), uc.Close())
	}
	in, err := intf.InEndpoint(k.in)
	if err != nil {
		release()
		return nil, fail("IN endpoint", err)
	}
	out, err := intf.OutEndpoint(k.out)
	if err != nil {
		release()
		return nil, fail("OUT endpoint", err)
	}
	rw := newEndpoints(in, out, opts.WriteTimeout, classify)
	// On failure newChip has released everything; closing the gousb
	// context again in Open does nothing.
	return newChip(ctx, rw, k.info, opts, true, release)
}

func sortKeys(keys []key) {
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].info.Path < keys[j].info.Path })
}

// classify names the sentinel a libusb error stands for, or nil.
func classify(err error) error {
	var code gousb.Error
	if errors.As(err, &code) || flattened(err, &code) {
		switch code {
		case gousb.ErrorNoDevice, gousb.ErrorIO:
			return device.ErrRemoved
		case gousb.ErrorTimeout:
			return device.ErrTimeout
		case gousb.ErrorBusy:
			return device.ErrBusy
		case gousb.ErrorAccess:
			return os.ErrPermission
		case gousb.ErrorNotFound:
			return device.ErrNotFound
		case gousb.ErrorNotSupported:
			return device.ErrNotSupported
		case gousb.ErrorPipe, gousb.ErrorOverflow:
			return device.ErrProtocol
		}
		return nil
	}
	var status gousb.TransferStatus
	if errors.As(err, &status) {
		switch status {
		case gousb.TransferNoDevice, gousb.TransferError:
			return device.ErrRemoved
		case gousb.TransferTimedOut:
			return device.ErrTimeout
		case gousb.TransferStall, gousb.TransferOverflow:
			return device.ErrProtocol
		}
	}
	return nil
}

// libusbCode is how gousb.Error ends its message: "libusb: ... [code -6]".
var libusbCode = regexp.MustCompile(`libusb: [^\[]*\[code (-[0-9]+)\]`)

// flattened finds a gousb.Error that gousb formatted into a message with %v
// instead of wrapping it (as Config.Interface does when the claim fails).
func flattened(err error, code *gousb.Error) bool {
	if err == nil {
		return false
	}
	m := libusbCode.FindStringSubmatch(err.Error())
	if m == nil {
		return false
	}
	n, convErr := strconv.Atoi(m[1])
	if convErr != nil {
		return false
	}
	*code = gousb.Error(n)
	return true
}

package serial

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"

	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"
)

// PortInfo describes a serial port the OS lists.
type PortInfo struct {
	Path         string // such as /dev/ttyUSB0
	USB          bool   // a USB serial adapter
	VendorID     uint16 // USB vendor ID, when USB
	ProductID    uint16 // USB product ID, when USB
	SerialNumber string // USB serial number, when the OS tells it
	Product      string // product name, when the OS tells it
}

// List returns the serial ports of the machine, sorted by path, with the
// USB details the OS gives (on Linux from sysfs, through
// go.bug.st/serial/enumerator). Pseudo-terminals are not listed: open them
// by path. It does not open the USB ports; on Linux it opens the ttyS*
// ports briefly to tell real UARTs from placeholders (the enumerator's
// way).
//
// Errors: the enumerator's error, wrapped; ctx.Err(), wrapped, when ctx
// ends first (the enumeration then finishes in the background).
func List(ctx context.Context) ([]PortInfo, error) {
	type result struct {
		ports []PortInfo
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		ports, err := list()
		ch <- result{ports, err}
	}()
	select {
	case r := <-ch:
		return r.ports, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("serial: list ports: %w", ctx.Err())
	}
}

func list() ([]PortInfo, error) {
	details, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, fmt.Errorf("serial: list ports: %w", err)
	}
	seen := make(map[string]bool)
	var out []PortInfo
	unnamed := false
	for _, d := range details {
		if d == nil || d.Name == "" {
			unnamed = true
			continue
		}
		pi := PortInfo{Path: d.Name, USB: d.IsUSB, SerialNumber: d.SerialNumber, Product: d.Product}
		if d.IsUSB {
			pi.VendorID = parseID(d.VID)
			pi.ProductID = parseID(d.PID)
		}
		seen[d.Name] = true
		out = append(out, pi)
	}
	// The enumerator leaves the name out for ports without a sysfs device
	// link; list them by name.
	if unnamed {
		if names, err := serial.GetPortsList(); err == nil {
			for _, n := range names {
				if !seen[n] {
					out = append(out, PortInfo{Path: n})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// parseID reads a USB ID as the enumerator gives it (hex, "0403").
func parseID(s string) uint16 {
	v, err := strconv.ParseUint(s, 16, 16)
	if err != nil {
		return 0
	}
	return uint16(v)
}

// lookup finds path among the listed ports, following symbolic links
// (/dev/serial/by-id/...).
func lookup(path string) (PortInfo, bool) {
	ports, err := list()
	if err != nil {
		return PortInfo{}, false
	}
	want := path
	if p, err := filepath.EvalSymlinks(path); err == nil {
		want = p
	}
	for _, pi := range ports {
		if pi.Path == path || pi.Path == want {
			return pi, true
		}
	}
	return PortInfo{}, false
}

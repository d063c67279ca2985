package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/driver/pcsc"
	"github.com/authbench/authbench/driver/usb"
	"github.com/authbench/authbench/sim/udphid"
	"github.com/authbench/authbench/sim/umockdev"
)

// devicesCmd is `authbench devices`.
type devicesCmd struct {
	JSON     bool          `help:"Print a JSON array (with --watch: one JSON object per event and line)."`
	Timeout  time.Duration `default:"500ms" placeholder:"DURATION" help:"How long to wait for each device to answer a probe."`
	Watch    bool          `help:"Print readers, cards, keys, serial ports and simulators as they come and go, until Ctrl-C (exit status 0), like pcsc_scan."`
	Interval time.Duration `default:"1s" placeholder:"DURATION" help:"With --watch: how often to look for USB keys, serial ports and simulators (PC/SC changes come at once)."`
}

// listedDevice is one row of `authbench devices`.
type listedDevice struct {
	device.Info
	Note string `json:"note,omitempty"`
}

func (c *devicesCmd) Run(ctx context.Context, e *env) error {
	if c.Watch {
		return c.watch(ctx, e)
	}
	jsonOut, timeout := &c.JSON, &c.Timeout
	var (
		found    []listedDevice
		problems []string
	)
	note := func(what string, err error) {
		problems = append(problems, fmt.Sprintf("%s: %v", what, err))
	}

	sims := runningSims()
	simReaders := map[string]string{} // vpcd reader → simulated chip's serial
	for _, d := range sims {
		if d.Reader != "" {
			simReaders[d.Reader] = d.Serial
		}
	}

	// PC/SC: every reader with a FIDO card in it.
	if pc, err := pcsc.Open(ctx, pcsc.Options{}); err != nil {
		note("pcsc", err)
	} else {
		readers, err := pc.Readers(ctx)
		if err != nil {
			note("pcsc", err)
		}
		for _, r := range readers {
			if !r.CardPresent {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 5**timeout)
			ch, err := pc.OpenChip(pctx, r.Name)
			cancel()
			if err != nil {
				if !errors.Is(err, device.ErrNotFound) {
					note("pcsc "+r.Name, err)
				}
				continue
			}
			info := ch.DeviceInfo()
			ch.Close()
			if info.Serial == "" {
				info.Serial = simReaders[r.Name]
			}
			found = append(found, listedDevice{Info: info})
		}
		pc.Close()
	}

	// USB HID.
	if infos, err := usb.List(ctx); err != nil {
		if !errors.Is(err, device.ErrNotSupported) {
			note("usb", err)
		}
	} else {
		for _, i := range infos {
			found = append(found, listedDevice{Info: i})
		}
	}

	// Keys of running simulators on an emulated USB bus: only programs run
	// with the bus's environment see them.
	for _, d := range sims {
		if d.Transport != "usb" || slices.ContainsFunc(found, func(f listedDevice) bool { return f.Transport == "usb" && f.Serial == d.Serial }) {
			continue
		}
		found = append(found, listedDevice{
			Info: device.Info{Kind: d.Kind, Transport: "usb", Path: d.Path, Serial: d.Serial, Model: "emulated USB key"},
			Note: fmt.Sprintf("on an emulated bus: run programs with LD_PRELOAD=%s UMOCKDEV_DIR=%s", umockdev.Preload, d.Testbed),
		})
	}

	// Serial ports the OS knows, and the ptys and UDP chips of running
	// simulators (which no enumerator lists).
	paths := map[string]bool{}
	if ports, err := enumerator.GetDetailedPortsList(); err == nil {
		for _, p := range ports {
			paths[p.Name] = true
		}
	}
	udp := map[string]simDevice{}
	for _, d := range sims {
		switch d.Transport {
		case "serial":
			paths[d.Path] = true
		case "udp":
			udp[d.Addr] = d
		}
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	for _, p := range sorted {
		if info, err := probeSerial(ctx, p, *timeout); err == nil {
			found = append(found, listedDevice{Info: info})
		}
	}
	for addr, d := range udp {
		if info, u2fOnly, err := probeUDP(ctx, addr, *timeout); err == nil {
			// CTAPHID says nothing of the model: the simulator that
			// registered the chip does.
			info.Serial, info.Model = d.Serial, cmp.Or(d.Model, "-")
			ld := listedDevice{Info: info}
			if u2fOnly {
				ld.Note = "U2F-only: no CBOR in CTAPHID INIT (CTAP 2.1 §11.2.9.1.3)"
			}
			found = append(found, ld)
		}
	}

	if *jsonOut {
		if found == nil {
			found = []listedDevice{}
		}
		b, _ := json.MarshalIndent(found, "", "  ")
		fmt.Fprintln(e.stdout, string(b))
	} else {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tTRANSPORT\tWHERE\tSERIAL\tMODEL\tFIRMWARE")
		for _, d := range found {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Kind, d.Transport, d.Path, d.Serial, d.Model, d.Firmware)
		}
		tw.Flush()
		if len(found) == 0 {
			fmt.Fprintln(e.stdout, "no devices found")
		}
	}
	for _, p := range problems {
		fmt.Fprintln(e.stderr, "note: "+p)
	}
	return nil
}

// probeSerial asks whatever is on a serial port for IDENTIFY, once, briefly.
func probeSerial(ctx context.Context, path string, timeout time.Duration) (device.Info, error) {
	port, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		return device.Info{}, err
	}
	defer port.Close()
	h := frame.NewHost(port, &frame.Options{Timeout: timeout, Retries: -1})
	defer h.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	id, err := h.Identify(pctx)
	if err != nil {
		return device.Info{}, err
	}
	return device.Info{Kind: id.Kind, Transport: "serial", Path: path, Serial: id.Serial, Model: id.Model, Firmware: id.Firmware}, nil
}

// probeUDP opens a CTAPHID channel to a chip on UDP, and reports whether
// it is U2F-only (no CBOR in INIT). The Info has no model: CTAPHID does
// not say it.
func probeUDP(ctx context.Context, addr string, timeout time.Duration) (device.Info, bool, error) {
	conn, err := udphid.Dial(addr, "127.0.0.1:0")
	if err != nil {
		return device.Info{}, false, err
	}
	defer conn.Close()
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hid, err := ctaphid.Open(pctx, conn, ctaphid.Options{})
	if err != nil {
		return device.Info{}, false, err
	}
	di := hid.DeviceInfo()
	hid.Close()
	return device.Info{Kind: device.KindChip, Transport: "udp", Path: addr,
		Firmware: fmt.Sprintf("%d.%d.%d", di.Major, di.Minor, di.Build)}, !di.Capabilities.Has(ctaphid.CapCBOR), nil
}

// simRegistry is where `authbench sim` says which devices it runs, so that
// `authbench devices` finds ptys and UDP chips that no enumerator lists.
func simRegistry() string { return filepath.Join(os.TempDir(), "authbench-sim") }

// registerSim writes the running simulation's devices; the returned function
// removes the entry.
func registerSim(devs []simDevice) func() {
	dir := simRegistry()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return func() {}
	}
	path := filepath.Join(dir, strconv.Itoa(os.Getpid())+".json")
	b, _ := json.Marshal(devs)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return func() {}
	}
	return func() { os.Remove(path) }
}

// runningSims reads the entries of simulations whose process still runs.
func runningSims() []simDevice {
	files, _ := filepath.Glob(filepath.Join(simRegistry(), "*.json"))
	var out []simDevice
	for _, f := range files {
		pid, err := strconv.Atoi(filepath.Base(f[:len(f)-len(".json")]))
		if err != nil || syscall.Kill(pid, 0) != nil {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var devs []simDevice
		if json.Unmarshal(b, &devs) == nil {
			out = append(out, devs...)
		}
	}
	return out
}

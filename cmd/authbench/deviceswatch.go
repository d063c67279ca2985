package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"go.bug.st/serial/enumerator"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/driver/pcsc"
	"github.com/authbench/authbench/driver/usb"
)

// watchEvent is one line of `authbench devices --watch`: something arrived
// or left.
type watchEvent struct {
	Time   time.Time    `json:"time"`
	Event  string       `json:"event"`  // "reader added", "card inserted", "arrived", "departed", "updated", ...
	Source string       `json:"source"` // "pcsc", "usb", "serial", "sim"
	Reader string       `json:"reader,omitempty"`
	ATR    string       `json:"atr,omitempty"`
	Device *device.Info `json:"device,omitempty"`
	Note   string       `json:"note,omitempty"`
	// Initial marks the devices already there when the watch started.
	Initial bool `json:"initial,omitempty"`
}

// endsOnInterrupt: `devices --watch` runs until interrupted, as sim and
// serve do, and then exits 0.
func (c *devicesCmd) endsOnInterrupt() bool { return c.Watch }

// watch prints insert and remove events as they happen until ctx ends:
// PC/SC readers and cards (SCardGetStatusChange), USB keys (polled: gousb
// has no hotplug), serial ports (polled) and running simulators (their
// registry, polled).
func (c *devicesCmd) watch(ctx context.Context, e *env) error {
	events := make(chan watchEvent, 64)
	var wg sync.WaitGroup
	emit := func(ev watchEvent) {
		if ev.Time.IsZero() {
			ev.Time = time.Now()
		}
		select {
		case events <- ev:
		case <-ctx.Done():
		}
	}
	note := func(source string, err error) {
		emit(watchEvent{Event: "not watched", Source: source, Note: err.Error()})
	}
	sources := []func(){
		func() { c.watchPCSC(ctx, emit, note) },
		func() {
			err := usb.Watch(ctx, c.Interval, func(ev usb.Event) {
				info := ev.Info
				emit(watchEvent{Event: ev.Kind.String(), Source: "usb", Device: &info})
			})
			if err != nil && ctx.Err() == nil {
				note("usb", err)
			}
		},
		func() { c.watchSerial(ctx, emit) },
		func() { c.watchSims(ctx, emit) },
	}
	for _, f := range sources {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	go func() { wg.Wait(); close(events) }()
	if !c.JSON {
		fmt.Fprintln(e.stderr, "watching PC/SC readers, USB keys, serial ports and simulators; press Ctrl-C to stop")
	}
	for ev := range events {
		if c.JSON {
			b, _ := json.Marshal(ev)
			fmt.Fprintln(e.stdout, string(b))
			continue
		}
		printEvent(e.stdout, ev)
	}
	return nil
}

// printEvent writes one event as a line: time, +/-, what and where.
func printEvent(w io.Writer, ev watchEvent) {
	sign := map[bool]string{true: "+", false: "-"}[strings.Contains(ev.Event, "added") || strings.Contains(ev.Event, "inserted") || ev.Event == "arrived"]
	switch ev.Event {
	case "not watched":
		sign = "!"
	case "updated": // a USB key reported before it could be opened, now with its strings
		sign = "~"
	}
	var parts []string
	if ev.Reader != "" {
		parts = append(parts, fmt.Sprintf("reader %q", ev.Reader))
	}
	if ev.ATR != "" {
		parts = append(parts, "ATR "+ev.ATR)
	}
	if d := ev.Device; d != nil {
		for _, s := range []string{string(d.Kind), d.Path, d.Model} {
			if s != "" {
				parts = append(parts, s)
			}
		}
		if d.Serial != "" {
			parts = append(parts, "serial "+d.Serial)
		}
	}
	if ev.Note != "" {
		parts = append(parts, ev.Note)
	}
	initial := ""
	if ev.Initial {
		initial = " (present at start)"
	}
	fmt.Fprintf(w, "%s %s %-6s %s: %s%s\n", ev.Time.Format("15:04:05.000"), sign, ev.Source, ev.Event, strings.Join(parts, ", "), initial)
}

// watchPCSC reports readers and cards as pcscd sees them, at once.
func (c *devicesCmd) watchPCSC(ctx context.Context, emit func(watchEvent), note func(string, error)) {
	pc, err := pcsc.Open(ctx, pcsc.Options{})
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, device.ErrNotSupported) {
			note("pcsc", err)
		}
		return
	}
	defer pc.Close()
	readers, err := pc.Readers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			note("pcsc", err)
		}
		return
	}
	report := func(evs []pcsc.Event, initial bool) {
		for _, ev := range evs {
			we := watchEvent{Event: ev.Kind.String(), Source: "pcsc", Reader: ev.Reader, Initial: initial}
			if ev.Kind == pcsc.CardInserted {
				we.ATR = fmt.Sprintf("% X", ev.ATR)
				we.Device = c.probeCard(ctx, pc, ev.Reader)
			}
			emit(we)
		}
	}
	report(pcsc.Diff(nil, readers), true)
	for ctx.Err() == nil {
		next, err := pc.Wait(ctx, readers)
		if err != nil {
			if ctx.Err() == nil {
				note("pcsc", err)
			}
			return
		}
		report(pcsc.Diff(readers, next), false)
		readers = next
	}
}

// probeCard says what the card just inserted in reader is: a FIDO chip
// (with its profile, and the serial a simulator registered), or nothing
// known.
func (c *devicesCmd) probeCard(ctx context.Context, pc *pcsc.Context, reader string) *device.Info {
	pctx, cancel := context.WithTimeout(ctx, 5*c.Timeout)
	defer cancel()
	ch, err := pc.OpenChip(pctx, reader)
	if err != nil {
		return nil
	}
	info := ch.DeviceInfo()
	info.Model = strings.TrimSpace(info.Model + " " + ch.Protocols().String())
	ch.Close()
	for _, d := range runningSims() {
		if d.Reader == reader && info.Serial == "" {
			info.Serial = d.Serial
		}
	}
	return &info
}

// watchSerial polls the serial ports the OS lists.
func (c *devicesCmd) watchSerial(ctx context.Context, emit func(watchEvent)) {
	var known []string
	initial := true
	for {
		var now []string
		if ports, err := enumerator.GetDetailedPortsList(); err == nil {
			for _, p := range ports {
				now = append(now, p.Name)
			}
		}
		slices.Sort(now)
		for _, p := range now {
			if !slices.Contains(known, p) {
				emit(watchEvent{Event: "arrived", Source: "serial", Device: &device.Info{Transport: "serial", Path: p}, Initial: initial})
			}
		}
		for _, p := range known {
			if !slices.Contains(now, p) {
				emit(watchEvent{Event: "departed", Source: "serial", Device: &device.Info{Transport: "serial", Path: p}})
			}
		}
		known, initial = now, false
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.interval()):
		}
	}
}

// watchSims polls the registry of running `authbench sim` processes.
func (c *devicesCmd) watchSims(ctx context.Context, emit func(watchEvent)) {
	key := func(d simDevice) string {
		return strings.Join([]string{string(d.Kind), d.Transport, d.Addr, d.Path, d.Serial}, "|")
	}
	known := map[string]simDevice{}
	initial := true
	for {
		now := map[string]simDevice{}
		for _, d := range runningSims() {
			now[key(d)] = d
		}
		keys := func(m map[string]simDevice) []string {
			ks := make([]string, 0, len(m))
			for k := range m {
				ks = append(ks, k)
			}
			slices.Sort(ks)
			return ks
		}
		for _, k := range keys(now) {
			if _, ok := known[k]; !ok {
				emit(watchEvent{Event: "arrived", Source: "sim", Device: simInfo(now[k]), Initial: initial})
			}
		}
		for _, k := range keys(known) {
			if _, ok := now[k]; !ok {
				emit(watchEvent{Event: "departed", Source: "sim", Device: simInfo(known[k])})
			}
		}
		known, initial = now, false
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.interval()):
		}
	}
}

func simInfo(d simDevice) *device.Info {
	where := d.Addr
	if d.Path != "" {
		where = d.Path
	}
	if d.Reader != "" {
		where = d.Reader
	}
	model := d.Model
	if d.Profile != "" {
		model = strings.TrimSpace(model + " " + d.Profile)
	}
	return &device.Info{Kind: d.Kind, Transport: d.Transport, Path: where, Serial: d.Serial, Model: model}
}

func (c *devicesCmd) interval() time.Duration {
	if c.Interval <= 0 {
		return time.Second
	}
	return c.Interval
}
